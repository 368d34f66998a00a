import { z } from './zod';

export const JOB_KINDS = ['backup', 'restore', 'verify', 'prune', 'drill', 'copy', 'download'] as const;
export const JobKindSchema = z.enum(JOB_KINDS);
export type JobKind = z.infer<typeof JobKindSchema>;

export const JobStatusSchema = z.enum(['running', 'succeeded', 'failed', 'cancelled']);
export type JobStatus = z.infer<typeof JobStatusSchema>;

export const JobIdSchema = z.string().regex(/^job_[0-9a-z]{6,40}$/, 'Not a job id');

/** A snapshot of a job's progress. Totals are null while unknown (then no ETA). */
export const JobProgressSchema = z.object({
  jobId: JobIdSchema,
  kind: JobKindSchema,
  title: z.string(),
  phase: z.string(),
  phaseIndex: z.number().int().min(0),
  phaseCount: z.number().int().min(1),
  bytesDone: z.number().min(0),
  bytesTotal: z.number().min(0).nullable(),
  itemsDone: z.number().int().min(0),
  itemsTotal: z.number().int().min(0).nullable(),
  /** Bytes per second over the last few seconds. */
  rate: z.number().min(0),
  /** Seconds left, or null when no total is known or no rate yet. */
  etaSeconds: z.number().min(0).nullable(),
  /** Overall fraction 0..1, or null while unknown. */
  fraction: z.number().min(0).max(1).nullable(),
  /**
   * Whole seconds since the job last moved (a byte, a file or a new phase), once that is
   * STALLED_AFTER_S or more; null while it moves. On a link that has gone quiet, how long it has been.
   */
  stalledSeconds: z.number().int().min(0).nullable(),
});

/** How long a job may go without moving before its progress says how long it has been still. */
export const STALLED_AFTER_S = 10;
export type JobProgress = z.infer<typeof JobProgressSchema>;

export const JobRecordSchema = z.object({
  id: JobIdSchema,
  kind: JobKindSchema,
  title: z.string(),
  deviceId: z.string().nullable(),
  status: JobStatusSchema,
  phases: z.array(z.string()),
  phase: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  bytesDone: z.number(),
  itemsDone: z.number(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  result: z.unknown().nullable(),
});
export type JobRecord = z.infer<typeof JobRecordSchema>;

export const JobFinishedSchema = z.object({
  job: JobRecordSchema,
});
export type JobFinished = z.infer<typeof JobFinishedSchema>;
