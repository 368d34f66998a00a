/**
 * Every resource a fleet creates (processes, namespaces, users, mounts, directories) is written to
 * `<fleetDir>/fleet.json` before or right after it exists, so that three independent paths can undo
 * it: `Fleet.stop()`, the exit/signal handlers of the fleet's own process, and a detached reaper that
 * outlives a killed test worker. All of it carries the `jvf-` prefix so `cleanupStale()` can also find
 * leftovers whose owner died. The cleanup is synchronous on purpose: it must also run in an `exit`
 * handler, where nothing asynchronous happens any more.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive } from './exec';

export const PREFIX = 'jvf-';
/** One small file per live fleet, wherever its dir is, so cleanupStale() never touches a live fleet's resources. */
export const INDEX_DIR = '/run/jvf-fleets';

/** `tag` names the device a resource belongs to, so one device can be stopped alone. */
export type Resource = { tag?: string } & (
  | { kind: 'pid'; pid: number; start: string; what: string; graceful?: 'SIGINT' | 'SIGTERM' }
  | { kind: 'netns'; name: string }
  | { kind: 'user'; name: string; uid: number }
  | { kind: 'mount'; path: string }
  | { kind: 'dir'; path: string }
);

export interface FleetRecord {
  id: string;
  owner: { pid: number; start: string };
  resources: Resource[];
}

/** The kernel's start time of a process (field 22 of /proc/PID/stat): tells a pid apart from a reused one. */
export function startTimeOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

/** Alive and not a zombie (our own unreaped children stay zombies while cleanup blocks the loop). */
function sameProcess(pid: number, start: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return false;
  } catch {
    return false;
  }
  return start === '' || startTimeOf(pid) === start;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** What the parts of a device need: record a resource, forget one. */
export interface ResourceLog {
  add(resource: Resource): void;
  addPid(pid: number, what: string, graceful?: 'SIGINT' | 'SIGTERM'): void;
  remove(match: (r: Resource) => boolean): void;
}

export class Registry implements ResourceLog {
  readonly record: FleetRecord;

  constructor(
    readonly dir: string,
    id: string,
  ) {
    this.record = { id, owner: { pid: process.pid, start: startTimeOf(process.pid) }, resources: [] };
    mkdirSync(INDEX_DIR, { recursive: true });
    writeFileSync(path.join(INDEX_DIR, `${id}.json`), JSON.stringify({ dir, owner: this.record.owner }));
    this.save();
  }

  get file(): string {
    return path.join(this.dir, 'fleet.json');
  }

  add(resource: Resource): void {
    this.record.resources.push(resource);
    this.save();
  }

  addPid(pid: number, what: string, graceful?: 'SIGINT' | 'SIGTERM', tag?: string): void {
    this.add({ kind: 'pid', pid, start: startTimeOf(pid), what, ...(graceful ? { graceful } : {}), ...(tag ? { tag } : {}) });
  }

  remove(match: (r: Resource) => boolean): void {
    this.record.resources = this.record.resources.filter((r) => !match(r));
    this.save();
  }

  private save(): void {
    if (!existsSync(this.dir)) return;
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.record, null, 1));
    renameSync(tmp, this.file);
  }

  /** A view that tags everything recorded through it. */
  scoped(tag: string): ResourceLog {
    return {
      add: (resource) => this.add({ ...resource, tag }),
      addPid: (pid, what, graceful) => this.addPid(pid, what, graceful, tag),
      remove: (match) => this.remove(match),
    };
  }

  /** Undo only what carries `tag` (one device), and forget it. */
  cleanupTagged(tag: string): string[] {
    const mine = this.record.resources.filter((r) => r.tag === tag);
    const problems = cleanupRecord({ ...this.record, resources: mine });
    this.remove((r) => r.tag === tag);
    return problems;
  }

  /** Undo everything, newest first where order matters. Never throws; returns what it could not undo. */
  cleanup(): string[] {
    const problems = cleanupRecord(this.record);
    this.record.resources = [];
    rmSync(path.join(INDEX_DIR, `${this.record.id}.json`), { force: true });
    return problems;
  }
}

/** Processes whose real uid is `uid` (the device's own account runs nothing else). */
function pidsOfUid(uid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const real = /^Uid:\s+(\d+)/m.exec(status)?.[1];
      const zombie = /^State:\s+Z/m.test(status);
      if (real !== undefined && Number(real) === uid && !zombie) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

function signalGroupOrPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {}
  }
}

export function cleanupRecord(record: FleetRecord): string[] {
  const problems: string[] = [];
  const of = <K extends Resource['kind']>(kind: K) => record.resources.filter((r): r is Extract<Resource, { kind: K }> => r.kind === kind);

  for (const mount of of('mount').reverse()) {
    const r = spawnSync('umount', ['-l', mount.path], { encoding: 'utf8' });
    if (r.status !== 0 && !/not mounted|no mount point/i.test(r.stderr)) problems.push(`umount ${mount.path}: ${r.stderr.trim()}`);
  }

  // Processes: graceful signal to each group, a bounded wait, then SIGKILL.
  const pids = of('pid').filter((p) => sameProcess(p.pid, p.start));
  for (const p of pids) signalGroupOrPid(p.pid, p.graceful ?? 'SIGTERM');
  const deadline = Date.now() + 5_000;
  while (pids.some((p) => sameProcess(p.pid, p.start)) && Date.now() < deadline) sleepSync(25);
  for (const p of pids) if (sameProcess(p.pid, p.start)) signalGroupOrPid(p.pid, 'SIGKILL');

  // Anything still running as a device account (ssh sessions live in their own sessions/groups).
  const users = of('user');
  for (let round = 0; round < 40; round++) {
    const left = users.flatMap((u) => pidsOfUid(u.uid));
    if (left.length === 0) break;
    for (const pid of left) {
      try {
        process.kill(pid, round < 4 ? 'SIGTERM' : 'SIGKILL');
      } catch {}
    }
    sleepSync(50);
  }
  const killDeadline = Date.now() + 3_000;
  while (pids.some((p) => sameProcess(p.pid, p.start)) && Date.now() < killDeadline) sleepSync(25);
  for (const p of pids) if (sameProcess(p.pid, p.start)) problems.push(`${p.what} (pid ${p.pid}) survived SIGKILL`);

  for (const ns of of('netns')) {
    // Processes inside the namespace that escaped the groups above.
    const inside = spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' });
    for (const pid of (inside.stdout ?? '').split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
    const r = spawnSync('ip', ['netns', 'delete', ns.name], { encoding: 'utf8' });
    if (r.status !== 0 && !/No such file/i.test(r.stderr)) problems.push(`ip netns delete ${ns.name}: ${r.stderr.trim()}`);
  }

  for (const user of users) {
    let ok = false;
    let stderr = '';
    for (let attempt = 0; attempt < 40 && !ok; attempt++) {
      const r = spawnSync('userdel', [user.name], { encoding: 'utf8' });
      stderr = r.stderr ?? '';
      ok = r.status === 0 || /does not exist/.test(stderr);
      if (!ok) sleepSync(50 + Math.random() * 100); // another fleet holds the passwd lock
    }
    if (!ok) problems.push(`userdel ${user.name}: ${stderr.trim()}`);
  }

  for (const dir of of('dir').reverse()) {
    try {
      rmSync(dir.path, { recursive: true, force: true, maxRetries: 3 });
    } catch (error) {
      problems.push(`rm ${dir.path}: ${(error as Error).message}`);
    }
  }
  return problems;
}

/** Parses a fleet.json; null when missing or unreadable. */
export function readRecord(fleetDir: string): FleetRecord | null {
  try {
    return JSON.parse(readFileSync(path.join(fleetDir, 'fleet.json'), 'utf8')) as FleetRecord;
  } catch {
    return null;
  }
}

function ownerAlive(record: FleetRecord): boolean {
  return sameProcess(record.owner.pid, record.owner.start);
}

/** Cleans up one dead fleet given its dir; removes its index entry. */
export function cleanupDeadFleet(dir: string, id: string): void {
  const record = readRecord(dir);
  if (record) cleanupRecord(record);
  rmSync(dir, { recursive: true, force: true });
  rmSync(path.join(INDEX_DIR, `${id}.json`), { force: true });
}

/**
 * Removes leftovers of fleets whose owning process is gone: fleets in the index (wherever their dir
 * is), `jvf-` fleet dirs under `baseDir`, and any `jvf-` namespace or account that belongs to no live
 * fleet. Returns what it removed.
 */
export function cleanupStale(baseDir = '/tmp'): string[] {
  const removed: string[] = [];
  const live = new Set<string>();
  for (const entry of existsSync(INDEX_DIR) ? readdirSync(INDEX_DIR) : []) {
    const id = entry.replace(/\.json$/, '');
    let info: { dir: string; owner: FleetRecord['owner'] } | null = null;
    try {
      info = JSON.parse(readFileSync(path.join(INDEX_DIR, entry), 'utf8')) as { dir: string; owner: FleetRecord['owner'] };
    } catch {}
    if (info && sameProcess(info.owner.pid, info.owner.start)) {
      live.add(id);
      continue;
    }
    if (info) {
      cleanupDeadFleet(info.dir, id);
      removed.push(info.dir);
    } else rmSync(path.join(INDEX_DIR, entry), { force: true });
  }
  for (const entry of existsSync(baseDir) ? readdirSync(baseDir) : []) {
    if (!entry.startsWith(PREFIX)) continue;
    const dir = path.join(baseDir, entry);
    const record = readRecord(dir);
    if (!record || live.has(record.id) || ownerAlive(record)) continue;
    cleanupDeadFleet(dir, record.id);
    removed.push(dir);
  }
  const idOf = (name: string) => /^jvf-([0-9a-f]{4,8})-/.exec(name)?.[1];
  const namespaces = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of namespaces.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const prober = /^jvf-probe(\d+)$/.exec(name)?.[1]; // a netnsSupport() probe whose process died mid-way
    if (prober && !isAlive(Number(prober))) {
      spawnSync('ip', ['netns', 'delete', name]);
      removed.push(`netns ${name}`);
      continue;
    }
    const id = idOf(name);
    if (!id || live.has(id)) continue;
    cleanupRecord({ id, owner: { pid: 0, start: '' }, resources: [{ kind: 'netns', name }] });
    removed.push(`netns ${name}`);
  }
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , uid] = line.split(':');
    const id = name ? idOf(name) : undefined;
    if (!name || !id || live.has(id)) continue;
    cleanupRecord({ id, owner: { pid: 0, start: '' }, resources: [{ kind: 'user', name, uid: Number(uid) }] });
    removed.push(`user ${name}`);
  }
  return removed;
}

const live = new Set<Registry>();
let handlersInstalled = false;

/** Tracks a registry for the process-exit and signal handlers until `forget`. */
export function track(registry: Registry): void {
  live.add(registry);
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const r of live) r.cleanup();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    // Only take over a signal nobody else handles, and die of it afterwards as the default would.
    if (process.listenerCount(signal) > 0) continue;
    const handler = () => {
      for (const r of live) r.cleanup();
      live.clear();
      process.removeListener(signal, handler);
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

export function forget(registry: Registry): void {
  live.delete(registry);
}

/**
 * A fresh `<baseDir>/jvf-<id>` folder for a fleet or a test store: the id is unused by any live
 * registry and the folder is created here (so two processes never share one).
 */
export function allocateDir(baseDir: string, idPrefix = '', mode = 0o755): { id: string; dir: string } {
  for (let attempt = 0; ; attempt++) {
    const id = `${idPrefix}${randomBytes(2).toString('hex')}`;
    const candidate = path.join(baseDir, `${PREFIX}${id}`);
    if (existsSync(path.join(INDEX_DIR, `${id}.json`))) continue;
    try {
      mkdirSync(candidate, { mode });
      return { id, dir: candidate };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 20) throw error;
    }
  }
}
