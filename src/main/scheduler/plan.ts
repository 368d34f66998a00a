/**
 * What the scheduler would run, as one pure function of the devices' state and the time, so its
 * decisions can be tested on any clock. A device is due when its newest good backup is about to
 * exceed its RPO (early enough for a run as long as its usual one to finish), when its cron
 * schedule has fired since its last attempt, or at once when it never had a good backup. After a
 * failure it waits a little before trying again; an unreachable device is offline until a probe
 * finds it again, and is then caught up at once.
 */
import { nextCronTime, parseCron } from '../../shared/cron';
import { byName } from '../../shared/natural';
import { median } from '../stats';
import { counted } from '../../shared/plural';

export interface DeviceScheduleState {
  name: string;
  rpoMinutes: number;
  schedule?: string | undefined;
  /** Sources with schedules of their own: each also runs alone at its times. */
  sourceSchedules?: { source: string; schedule: string; lastAttemptAt: string | null }[];
  /** Devices without sources or a confirmed host key are never started by themselves. */
  ready: boolean;
  notReadyReason?: string;
  lastSuccessAt: string | null;
  lastAttemptAt: string | null;
  /** Failed backups in a row since the last good one. */
  failuresInRow: number;
  /** When the newest attempt ended, if a person (or a stopping process) cancelled it. */
  cancelledAt?: string | null;
  /** Durations of recent good runs (ms), for the lead time. */
  recentDurationsMs: number[];
  running: boolean;
  /** Set while the device is known unreachable: when the next probe may run. */
  offlineUntil?: number | undefined;
}

export type ScheduleState = 'running' | 'due' | 'waiting' | 'offline' | 'not ready';

export interface ScheduleEntry {
  device: string;
  state: ScheduleState;
  /** When it becomes (or became) due; null when it never will by itself. */
  dueAt: string | null;
  reason: string;
  /** Only these sources (a source's own schedule); absent: the whole device. */
  sources?: string[];
}

const MINUTE = 60_000;


/** How long before the RPO runs out a backup starts: 1.5× the usual run, at least 10% of the RPO, at most half. */
export function leadTimeMs(rpoMinutes: number, recentDurationsMs: number[]): number {
  const rpo = rpoMinutes * MINUTE;
  return Math.min(rpo / 2, Math.max(rpo * 0.1, 1.5 * median(recentDurationsMs)));
}

/** Wait after failures in a row: 1, 2, 4 … minutes, at most a quarter of the RPO and 30 minutes. */
export function retryDelayMs(rpoMinutes: number, failuresInRow: number): number {
  if (failuresInRow <= 0) return 0;
  return Math.min(30 * MINUTE, Math.max(MINUTE, (rpoMinutes * MINUTE) / 4), 2 ** (failuresInRow - 1) * MINUTE);
}

/** Wait after a cancelled run: a quarter of the RPO, at least a minute and at most 30 minutes (the longest retry wait). */
export function cancelledWaitMs(rpoMinutes: number): number {
  return Math.min(30 * MINUTE, Math.max(MINUTE, (rpoMinutes * MINUTE) / 4));
}

export function planDevice(d: DeviceScheduleState, now: number): ScheduleEntry {
  if (d.running) return { device: d.name, state: 'running', dueAt: null, reason: 'backing up now' };
  if (!d.ready) return { device: d.name, state: 'not ready', dueAt: null, reason: d.notReadyReason ?? 'not ready' };

  const candidates: { at: number; reason: string; sources?: string[] }[] = [];
  if (d.lastSuccessAt === null) candidates.push({ at: now, reason: d.lastAttemptAt ? 'no run of every source yet' : 'never backed up' });
  else {
    const expires = Date.parse(d.lastSuccessAt) + d.rpoMinutes * MINUTE;
    candidates.push({ at: expires - leadTimeMs(d.rpoMinutes, d.recentDurationsMs), reason: `RPO of ${d.rpoMinutes} min` });
  }
  if (d.schedule) {
    const since = new Date(Date.parse(d.lastAttemptAt ?? d.lastSuccessAt ?? new Date(now - MINUTE).toISOString()));
    const fire = nextCronTime(parseCron(d.schedule), since);
    if (fire) candidates.push({ at: fire.getTime(), reason: `schedule ${d.schedule}` });
  }
  for (const s of d.sourceSchedules ?? []) {
    const since = new Date(Date.parse(s.lastAttemptAt ?? new Date(now - MINUTE).toISOString()));
    const fire = nextCronTime(parseCron(s.schedule), since);
    if (fire) candidates.push({ at: fire.getTime(), reason: `${s.source}: schedule ${s.schedule}`, sources: [s.source] });
  }
  // The earliest wins, but a whole-device run that is due covers any single source that is due too.
  const earliest = (list: typeof candidates) => list.reduce((a, b) => (b.at < a.at ? b : a));
  const due = candidates.filter((c) => c.at <= now);
  let next = due.find((c) => !c.sources) ?? earliest(due.length > 0 ? due : candidates);
  if (d.failuresInRow > 0 && d.lastAttemptAt) {
    const retryAt = Date.parse(d.lastAttemptAt) + retryDelayMs(d.rpoMinutes, d.failuresInRow);
    if (retryAt > next.at) next = { at: retryAt, reason: `retry after ${counted(d.failuresInRow, 'failed attempt')}` };
  }
  if (d.cancelledAt) {
    // Cancelled on purpose (the device busy in the field, a metered link): started again on the next
    // tick, 30 s later, the Cancel button did nothing. It waits as after repeated failures instead.
    const resumeAt = Date.parse(d.cancelledAt) + cancelledWaitMs(d.rpoMinutes);
    if (resumeAt > next.at) next = { at: resumeAt, reason: `the last run was cancelled; next try ${new Date(resumeAt).toISOString()}` };
  }
  if (d.offlineUntil !== undefined && next.at <= now) {
    return { device: d.name, state: 'offline', dueAt: new Date(Math.max(d.offlineUntil, now)).toISOString(), reason: `unreachable; next probe ${new Date(d.offlineUntil).toISOString()}` };
  }
  return { device: d.name, state: next.at <= now ? 'due' : 'waiting', dueAt: new Date(next.at).toISOString(), reason: next.reason, ...(next.sources ? { sources: next.sources } : {}) };
}

/**
 * The queue in the order things run: what is running, then what is due (longest overdue first),
 * then what waits (soonest first), then offline and not-ready devices.
 */
export function planSchedule(devices: DeviceScheduleState[], now: number): ScheduleEntry[] {
  const order: Record<ScheduleState, number> = { running: 0, due: 1, waiting: 2, offline: 3, 'not ready': 4 };
  return devices
    .map((d) => planDevice(d, now))
    .sort((a, b) => order[a.state] - order[b.state] || (a.dueAt ?? '').localeCompare(b.dueAt ?? '') || byName(a.device, b.device));
}

/** Which due devices start now, given how many may run at once. */
export function toStart(queue: ScheduleEntry[], maxParallel: number): string[] {
  const running = queue.filter((e) => e.state === 'running').length;
  return queue
    .filter((e) => e.state === 'due')
    .slice(0, Math.max(0, maxParallel - running))
    .map((e) => e.device);
}
