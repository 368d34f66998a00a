/** Shared by the fleet's own tests: what "stopped cleanly" means, checked from the outside. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { isRoot } from './accounts';
import { isAlive, sleep } from './exec';
import type { Fleet } from './fleet';
import { INDEX_DIR } from './registry';

export interface FleetTraces {
  id: string;
  dir: string;
  pids: number[];
  users: string[];
  netns: string[];
  dirs: string[];
}

/** Everything a fleet owns, taken while it runs, to check after stop(). */
export function tracesOf(fleet: Fleet): FleetTraces {
  return {
    id: fleet.id,
    dir: fleet.dir,
    pids: [...fleet.devices.flatMap((d) => d.pids()), ...(fleet.reaperPid ? [fleet.reaperPid] : [])],
    users: fleet.devices.map((d) => d.user),
    netns: fleet.devices.flatMap((d) => (d.netns ? [d.netns.name] : [])),
    dirs: [fleet.dir, ...fleet.devices.map((d) => d.dir)],
  };
}

/** What is left of a fleet (empty when it stopped cleanly); waits up to `waitMs` for processes to go. */
export async function leftovers(t: FleetTraces, waitMs = 0): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  const zombie = (pid: number) => {
    try {
      return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return true;
    }
  };
  while (t.pids.some((p) => isAlive(p) && !zombie(p)) && Date.now() < deadline) await sleep(100);
  const left: string[] = [];
  for (const pid of t.pids) if (isAlive(pid) && !zombie(pid)) left.push(`pid ${pid}`);
  const passwd = readFileSync('/etc/passwd', 'utf8');
  for (const user of t.users) if (passwd.includes(`\n${user}:`)) left.push(`user ${user}`);
  for (const u of passwd.split('\n')) if (u.startsWith(`jvf-${t.id}-`)) left.push(`user ${u.split(':')[0]}`);
  if (isRoot()) {
    const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const line of namespaces.split('\n')) if (line.startsWith(`jvf-${t.id}-`)) left.push(`netns ${line}`);
    const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    if (links.includes(`jvf${t.id}`)) left.push(`veth jvf${t.id}*`);
    const mounts = readFileSync('/proc/mounts', 'utf8');
    if (mounts.includes(t.dir)) left.push(`mount under ${t.dir}`);
  }
  for (const dir of t.dirs) if (existsSync(dir)) left.push(`dir ${dir}`);
  if (existsSync(`${INDEX_DIR}/${t.id}.json`)) left.push(`index entry ${INDEX_DIR}/${t.id}.json`);
  return [...new Set(left)];
}

/** Prints why a suite is skipped, so a skip is never silent. */
export function skipReason(suite: string, reason: string | null): boolean {
  if (reason) console.warn(`[skipped] ${suite}: ${reason}`);
  return reason !== null;
}
