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
