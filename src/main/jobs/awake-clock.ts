/**
 * A clock that stops while the machine sleeps, comparable between processes: the job heartbeats'
 * (job-manager.ts). A laptop that slept an hour leaves every process's heartbeat an hour late on the
 * wall clock, and a process started just after waking — a CLI command, run-scheduler — took the
 * console's backup, still running, for the job of a dead process: "interrupted", with a "backup
 * failed" alert and webhook for a backup that went on to succeed. On this clock that hour never passed.
 *
 * Linux: CLOCK_MONOTONIC (what `process.hrtime` reads) counts from boot and not while suspended, the
 * same for every process; the boot's id tells a stamp of an earlier boot (whose processes are all
 * gone, whatever pid is alive now). Elsewhere there is no such pair to read: null, and the wall-clock
 * rule applies.
 */
import { readFileSync } from 'node:fs';

export interface AwakeStamp {
  boot: string;
  /** Milliseconds awake since that boot. */
  ms: number;
}

let bootId: string | null | undefined;

function currentBoot(): string | null {
  if (bootId === undefined) {
    try {
      bootId = process.platform === 'linux' ? readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null : null;
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

export function awakeClock(): AwakeStamp | null {
  const boot = currentBoot();
  return boot === null ? null : { boot, ms: Number(process.hrtime.bigint() / 1_000_000n) };
}

/** As stored in the jobs table (`heartbeat_awake`). */
export function formatAwake(stamp: AwakeStamp | null): string | null {
  return stamp === null ? null : `${stamp.boot} ${stamp.ms}`;
}

export function parseAwake(text: string | null | undefined): AwakeStamp | null {
  const match = /^(\S+) (\d+)$/.exec(text ?? '');
  return match ? { boot: match[1]!, ms: Number(match[2]) } : null;
}
