import { z } from './zod';

export const RULE_IDS = ['backupFailed', 'rpoBreached', 'repositoryStorageLow', 'deviceDiskLow', 'backupSlower', 'verificationFailed', 'drillOverdue', 'offsiteCopyMissing'] as const;
export const RuleIdSchema = z.enum(RULE_IDS);
export type RuleId = z.infer<typeof RuleIdSchema>;

export const SeveritySchema = z.enum(['critical', 'warning', 'info']);
export type Severity = z.infer<typeof SeveritySchema>;

/**
 * One monitoring rule: on or off, and its threshold, whose unit depends on the rule:
 * backupFailed — consecutive failed backups; rpoBreached — multiple of the device's RPO;
 * repositoryStorageLow — GiB free where the repository lives; deviceDiskLow — % free on a device
 * mount; backupSlower — multiple of the device's median duration over its last 10 runs;
 * verificationFailed — failed checks (1: any); drillOverdue — days since the device's last drill;
 * offsiteCopyMissing — days: the device's newest run held in an offsite repository must be younger.
 */
export const RuleSchema = z.object({ enabled: z.boolean(), threshold: z.number().min(0).max(1_000_000) }).strict();
export type Rule = z.infer<typeof RuleSchema>;
export type Rules = Record<RuleId, Rule>;

export const DEFAULT_RULES: Rules = {
  backupFailed: { enabled: true, threshold: 1 },
  rpoBreached: { enabled: true, threshold: 1 },
  repositoryStorageLow: { enabled: true, threshold: 10 },
  deviceDiskLow: { enabled: true, threshold: 10 },
  backupSlower: { enabled: true, threshold: 2 },
  verificationFailed: { enabled: true, threshold: 1 },
  drillOverdue: { enabled: true, threshold: 30 },
  offsiteCopyMissing: { enabled: true, threshold: 7 },
};

/** Every rule; one a stored setting does not know yet (written before the rule existed) takes its default. */
export const RulesSchema = z
  .object(Object.fromEntries(RULE_IDS.map((id) => [id, RuleSchema.default(DEFAULT_RULES[id])])) as { [K in RuleId]: z.ZodDefault<typeof RuleSchema> })
  .strict();

export const RULE_LABELS: Record<RuleId, { title: string; unit: string }> = {
  backupFailed: { title: 'Backup failed', unit: 'failures in a row' },
  rpoBreached: { title: 'RPO breached', unit: '× the device RPO' },
  repositoryStorageLow: { title: 'Repository storage low', unit: 'GiB free' },
  deviceDiskLow: { title: 'Device disk low', unit: '% free' },
  backupSlower: { title: 'Backup slower than usual', unit: '× the median of recent runs' },
  verificationFailed: { title: 'Verification failed', unit: 'failed checks' },
  drillOverdue: { title: 'Restore drill overdue', unit: 'days since the last drill' },
  offsiteCopyMissing: { title: 'No recent offsite copy', unit: 'days: newest offsite copy at most this old' },
};

export const AlertSchema = z.object({
  id: z.number().int(),
  rule: RuleIdSchema,
  /** The device it concerns; null for the laptop or the repository. */
  device: z.string().nullable(),
  severity: SeveritySchema,
  message: z.string(),
  raisedAt: z.string(),
  lastSeenAt: z.string(),
  acknowledgedAt: z.string().nullable(),
  acknowledgedBy: z.string().nullable(),
  resolvedAt: z.string().nullable(),
});
export type Alert = z.infer<typeof AlertSchema>;

/** `https://…` or `http://…` where alerts are POSTed as JSON; empty turns the webhook off. */
export const WebhookUrlSchema = z.union([
  z.literal(''),
  z
    .string()
    .url()
    .max(2048)
    .regex(/^https?:\/\//, 'Only http(s) URLs')
    // fetch refuses such a URL outright (every alert would wait for good), and its error quoted the password.
    .refine((url) => !/^https?:\/\/[^/?#]*@/.test(url), 'A user or password in the URL (user:password@) is not sent: put the token in the path or the query'),
]);

export const ScheduleEntrySchema = z.object({
  device: z.string(),
  state: z.enum(['running', 'due', 'waiting', 'offline', 'not ready']),
  dueAt: z.string().nullable(),
  reason: z.string(),
  sources: z.array(z.string()).optional(),
});
export type ScheduleEntryInfo = z.infer<typeof ScheduleEntrySchema>;
