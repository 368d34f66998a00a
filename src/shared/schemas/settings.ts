import { z } from './zod';
import { DEFAULT_RULES, RulesSchema, WebhookUrlSchema } from './monitoring';

/** Each setting's type and bounds, without defaults (a patch must not fill in what it does not change). */
const fields = {
  theme: z.enum(['system', 'light', 'dark']),
  /** Where the repository lives on this laptop; empty means "<data dir>/repository". */
  repositoryPath: z.string().max(4096),
  /** RPO target applied to devices that do not set their own. */
  defaultRpoMinutes: z.number().int().min(1).max(60 * 24 * 31),
  /** RTO objective applied to devices that do not set their own (drills measure against it). */
  defaultRtoMinutes: z.number().int().min(1).max(60 * 24 * 31),
  /** How many devices back up at the same time. */
  maxParallelDevices: z.number().int().min(1).max(64),
  /** Upload/download cap per device link in KiB/s; 0 means unlimited. */
  bandwidthLimitKiBps: z.number().int().min(0).max(10_000_000),
  /**
   * How long a device may stay silent (nothing from it, nothing of ours taken by it) before its
   * connection is given up: longer on links that drop for a while (cellular, satellite). Decision 028.
   */
  silentLinkSeconds: z.number().int().min(10).max(600),
  desktopNotifications: z.boolean(),
  /** Which new alerts notify the desktop: critical only, or warnings too. */
  desktopNotificationLevel: z.enum(['critical', 'warning']),
  /** Log verbosity of the main process. */
  logLevel: z.enum(['error', 'warn', 'info', 'debug']),
  /** Back devices up by themselves while the console runs (RPO-driven and cron schedules). */
  schedulerEnabled: z.boolean(),
  /** The monitoring rules and their thresholds. */
  monitoringRules: RulesSchema,
  /** Where alerts are POSTed as JSON (queued while unreachable); empty: no webhook. */
  webhookUrl: WebhookUrlSchema,
};

/**
 * Console-wide settings. Every field has a default so a fresh install (or a setting that was
 * stored by an older version and no longer validates) still yields a complete, valid object.
 */
export const SettingsSchema = z.object({
  theme: fields.theme.default('system'),
  repositoryPath: fields.repositoryPath.default(''),
  defaultRpoMinutes: fields.defaultRpoMinutes.default(60),
  defaultRtoMinutes: fields.defaultRtoMinutes.default(60),
  maxParallelDevices: fields.maxParallelDevices.default(8),
  bandwidthLimitKiBps: fields.bandwidthLimitKiBps.default(0),
  silentLinkSeconds: fields.silentLinkSeconds.default(20),
  desktopNotifications: fields.desktopNotifications.default(true),
  desktopNotificationLevel: fields.desktopNotificationLevel.default('warning'),
  logLevel: fields.logLevel.default('info'),
  schedulerEnabled: fields.schedulerEnabled.default(true),
  monitoringRules: fields.monitoringRules.default(DEFAULT_RULES),
  webhookUrl: fields.webhookUrl.default(''),
});
export type Settings = z.infer<typeof SettingsSchema>;
export type SettingKey = keyof Settings;

/** A partial update; unknown keys are an error rather than silently dropped. */
export const SettingsPatchSchema = z
  .object(fields)
  .partial()
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, { message: 'Nothing to change: the update is empty' });
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

/** Validates one stored setting on its own. */
export const SETTING_FIELDS: Record<SettingKey, z.ZodType> = fields;

export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});
