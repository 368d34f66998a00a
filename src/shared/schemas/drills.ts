import { z } from './zod';

export const DrillResultSchema = z.enum(['running', 'passed', 'partial', 'failed', 'cancelled']);
export type DrillResult = z.infer<typeof DrillResultSchema>;

export const DrillSourceRecordSchema = z.object({
  source: z.string(),
  kind: z.string(),
  snapshotId: z.string(),
  result: z.enum(['passed', 'failed', 'skipped']),
  /** Measured recovery time of this source (restore into scratch + verify + validate). */
  durationMs: z.number(),
  bytes: z.number(),
  files: z.number(),
  detail: z.string().nullable(),
  error: z.string().nullable(),
});
export type DrillSourceRecord = z.infer<typeof DrillSourceRecordSchema>;

export const DrillRecordSchema = z.object({
  id: z.string(),
  jobId: z.string().nullable(),
  device: z.string(),
  runId: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  result: DrillResultSchema,
  /** Measured recovery time of the whole device (connect → last source validated); null if it failed. */
  totalMs: z.number().nullable(),
  error: z.string().nullable(),
  /** 'done', or why the scratch area on the device could not be removed (the next drill removes it). */
  cleanup: z.string().nullable(),
  /**
   * What the drill stopped on the device before it began (a backup's or drill's commands a dead link
   * had cut off and left running: a pg_dump, a pg_restore holding its scratch database); absent: nothing.
   */
  leftoversStopped: z.array(z.string()).optional(),
  sources: z.array(DrillSourceRecordSchema),
});
export type DrillRecord = z.infer<typeof DrillRecordSchema>;

/** A device's RTO as the last drill measured it, against its objective. */
export const RtoStatusSchema = z.object({
  device: z.string(),
  objectiveMinutes: z.number(),
  /** Where the objective comes from: the device's own, or the console-wide default. */
  objectiveFrom: z.enum(['device', 'default']),
  /** The last measured recovery time (from the newest drill that measured one). */
  estimateMs: z.number().nullable(),
  measuredAt: z.string().nullable(),
  /** False when that drill skipped sources (e.g. databases): the estimate does not cover them. */
  complete: z.boolean(),
  /** ok: within the objective; over: slower; failed: the newest drill failed; unknown: never drilled. */
  /** `partial`: within the objective, measured by a drill that skipped sources it cannot drill. */
  status: z.enum(['ok', 'partial', 'over', 'failed', 'unknown']),
  lastDrill: DrillRecordSchema.nullable(),
});
export type RtoStatus = z.infer<typeof RtoStatusSchema>;
