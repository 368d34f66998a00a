import type { JobKind, JobRecord } from './schemas/jobs';

/**
 * What changes each time a run of one of `kinds` ends, in a newest-first list of jobs (the jobs
 * store's recent list): the newest such run's id and status, '' with none. A count of them would
 * stop changing once the list is full (it keeps the newest 50), and what it keys would go stale.
 */
export function newestRunKey(jobs: readonly Pick<JobRecord, 'id' | 'kind' | 'status'>[], kinds: readonly JobKind[]): string {
  const newest = jobs.find((j) => kinds.includes(j.kind));
  return newest ? `${newest.id}:${newest.status}` : '';
}

/**
 * How far after "now" a run may be stamped and still count (a clock stepped back a little, by NTP
 * after a sleep): a run stamped later was timed by a clock that was ahead and has been set right
 * since. Counted, it would keep its device looking protected — and the scheduler waiting — until
 * the clock reached that time again.
 */
export const FUTURE_RUN_TOLERANCE_MS = 5 * 60_000;

/** The latest finish time (ISO) of a run that counts at `now`. */
export function runCutoff(now: number): string {
  return new Date(now + FUTURE_RUN_TOLERANCE_MS).toISOString();
}
