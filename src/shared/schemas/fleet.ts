/** The fleet overview, dashboards, audit log and device report as they cross the IPC boundary. */
import { z } from './zod';
import { NameSchema } from './devices';

export const TierSchema = z.enum(['critical', 'important', 'standard']);
/** protected: newest good backup within the RPO; at-risk: RPO breached or never backed up; unreachable: the last contact failed. */
export const FleetStatusSchema = z.enum(['protected', 'at-risk', 'unreachable']);
export type FleetStatus = z.infer<typeof FleetStatusSchema>;

export const OverviewRowSchema = z.object({
  id: z.string(),
  name: z.string(),
  site: z.string(),
  tags: z.array(z.string()),
  hostKeyPinned: z.boolean(),
  tier: TierSchema,
  rpoMinutes: z.number(),
  rpoFrom: z.enum(['device', 'tier', 'default']),
  /** ok / breached by the newest good backup's age; never: no good backup. */
  rpoState: z.enum(['ok', 'breached', 'never']),
  lastGoodAt: z.string().nullable(),
  ageMinutes: z.number().nullable(),
  lastAttemptAt: z.string().nullable(),
  lastAttemptStatus: z.string().nullable(),
  lastAttemptError: z.string().nullable(),
  /** The last attempt's error code (e.g. HOST_KEY_MISMATCH: the device must be re-confirmed on its page). */
  lastAttemptErrorCode: z.string().nullable(),
  /** Result of the last contact (facts read, or a job that reached or failed to reach the device). */
  reachability: z.enum(['reachable', 'unreachable', 'unknown']),
  lastContactAt: z.string().nullable(),
  rtoObjectiveMinutes: z.number(),
  /** The newest drill's measured recovery time; null: no drill yet. */
  rtoEstimateMs: z.number().nullable(),
  /** `partial`: within the objective, measured by a drill that skipped sources it cannot drill. */
  rtoState: z.enum(['ok', 'partial', 'over', 'failed', 'unknown']),
  lastDrillAt: z.string().nullable(),
  lastVerifyAt: z.string().nullable(),
  lastVerifyStatus: z.string().nullable(),
  /** Smallest free space among the device's real disks (facts), and when the facts were read. */
  diskFreeBytes: z.number().nullable(),
  diskFreeFraction: z.number().nullable(),
  /** Database up: every database source's engine is seen running in the facts; null: no databases or no facts. */
  databaseUp: z.boolean().nullable(),
  openAlerts: z.number(),
  /** Copies of the device's latest run: the primary plus each secondary repository holding it (cached listings). */
  copies: z.number(),
  /** One of those copies is in a repository marked offsite. */
  offsiteCopy: z.boolean(),
  /** The newest run of the device held offsite (its time); null: none. */
  lastOffsiteAt: z.string().nullable(),
  status: FleetStatusSchema,
});
export type OverviewRow = z.infer<typeof OverviewRowSchema>;

export const OverviewSchema = z.object({
  generatedAt: z.string(),
  /** Whether open alerts could be counted (the column shows "—" when not). */
  alertsAvailable: z.boolean(),
  summary: z.object({ total: z.number(), protected: z.number(), atRisk: z.number(), unreachable: z.number() }),
  devices: z.array(OverviewRowSchema),
});
export type Overview = z.infer<typeof OverviewSchema>;

export const RANGES = ['24h', '7d', '30d', '90d', '365d'] as const;
export const RangeSchema = z.enum(RANGES);
export type Range = z.infer<typeof RangeSchema>;

export const DashboardRequestSchema = z.object({ range: RangeSchema.default('30d'), device: NameSchema.optional() }).strict();
export type DashboardRequest = z.input<typeof DashboardRequestSchema>;

export const DashboardSchema = z.object({
  range: RangeSchema,
  device: z.string().nullable(),
  from: z.string(),
  to: z.string(),
  bucketSeconds: z.number(),
  /** Backup runs per time bucket: count, successes, mean/max duration, bytes transferred and added. */
  runs: z.array(
    z.object({
      t: z.number(),
      runs: z.number(),
      succeeded: z.number(),
      failed: z.number(),
      avgDurationMs: z.number().nullable(),
      maxDurationMs: z.number().nullable(),
      bytesTransferred: z.number(),
      bytesAdded: z.number(),
      /** Repository growth: bytes added by backups since the start of the range, cumulative. */
      cumulativeAdded: z.number(),
    }),
  ),
  /** Share of devices within their RPO at each bucket's end (0..1), and how many were checked. */
  /** Per bucket: devices counted, the share of their time within RPO, and device-seconds outside it. */
  rpoCompliance: z.array(z.object({ t: z.number(), devices: z.number(), fraction: z.number(), outsideSeconds: z.number() })),
  /** Per bucket, the last sample: laptop free space and repository size; device disk use (one device: its bytes and share; fleet: mean and fullest share). */
  storage: z.array(
    z.object({
      t: z.number(),
      laptopFree: z.number().nullable(),
      repositoryBytes: z.number().nullable(),
      diskUsed: z.number().nullable(),
      diskPermille: z.number().nullable(),
      diskPermilleMax: z.number().nullable(),
    }),
  ),
  /** Measured recovery time: each drill of one device, or per bucket fleet-wide (mean and slowest). */
  /**
   * Drills per bucket (one device: each drill). `over`: how many measured more than their own
   * device's RTO objective; `objectiveMs` is the console's default objective for the fleet (devices
   * may have their own), the device's own for one device.
   */
  drills: z.array(z.object({ t: z.number(), count: z.number(), failed: z.number(), over: z.number(), avgMs: z.number().nullable(), maxMs: z.number().nullable(), objectiveMs: z.number() })),
});
export type Dashboard = z.infer<typeof DashboardSchema>;

/** How an audited operation ended: ok, failed (with its message) or cancelled. */
export const AuditResultSchema = z.enum(['ok', 'failed', 'cancelled']);
export type AuditResult = z.infer<typeof AuditResultSchema>;

export const AuditQuerySchema = z
  .object({
    from: z.string().max(64).datetime({ offset: true }).optional(),
    to: z.string().max(64).datetime({ offset: true }).optional(),
    actor: z.string().max(128).optional(),
    action: z.string().max(128).optional(),
    target: z.string().max(128).optional(),
    result: AuditResultSchema.optional(),
    /** Words anywhere in the action, target or detail. */
    text: z.string().max(256).optional(),
    limit: z.number().int().min(1).max(10_000).default(500),
  })
  .strict();
export type AuditQuery = z.input<typeof AuditQuerySchema>;

export const AuditEntrySchema = z.object({
  id: z.number(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  detail: z.string().nullable(),
  result: AuditResultSchema,
  /** Why it failed or was cancelled; null when it succeeded. */
  message: z.string().nullable(),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export const TextFileSchema = z.object({ filename: z.string(), mimeType: z.string(), text: z.string() });
export type TextFile = z.infer<typeof TextFileSchema>;
