/** Test helpers: bounded waits — for a condition, and for a job's end. */
import type { JobRecord } from '../../shared/schemas/jobs';

/** Polls `test` every `intervalMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, test: () => boolean | Promise<boolean>, timeoutMs = 60_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A job's record once it is no longer running. */
export async function jobEnded(jobs: { get(jobId: string): JobRecord | null }, jobId: string, timeoutMs = 120_000): Promise<JobRecord> {
  await waitFor(`job ${jobId} to end`, () => jobs.get(jobId)?.status !== 'running', timeoutMs);
  return jobs.get(jobId)!;
}
