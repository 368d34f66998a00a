/**
 * Test helper: a fleet device's processes named `name`, by pid — the device's account is its own, so
 * they are its login's processes on this machine. Zombies are left out: a stopped process whose
 * parent went too waits for init to reap it, which this VM's init is slow to do.
 */
import { spawnSync } from 'node:child_process';

export function deviceProcesses(user: string, name: string): number[] {
  const out = spawnSync('ps', ['-u', user, '-o', 'pid=,stat=,comm='], { encoding: 'utf8' }).stdout;
  return out.split('\n').flatMap((line) => {
    const [pid, stat, comm] = line.trim().split(/\s+/);
    return comm === name && !stat!.startsWith('Z') ? [Number(pid)] : [];
  });
}
