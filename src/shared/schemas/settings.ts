import { z } from 'zod';

/**
 * Console-wide settings. Every field has a default so a fresh install (or a setting that was
 * stored by an older version and no longer validates) still yields a complete, valid object.
 */
export const SettingsSchema = z.object({
  theme: z.enum(['system', 'light', 'dark']).default('system'),
  /** Where the repository lives on this laptop; empty means "<data dir>/repository". */
  repositoryPath: z.string().max(4096).default(''),
  /** RPO target applied to devices that do not set their own. */
  defaultRpoMinutes: z.number().int().min(1).max(60 * 24 * 31).default(60),
  /** How many devices back up at the same time. */
  maxParallelDevices: z.number().int().min(1).max(64).default(8),
  /** Upload/download cap per device link in KiB/s; 0 means unlimited. */
  bandwidthLimitKiBps: z.number().int().min(0).max(10_000_000).default(0),
  desktopNotifications: z.boolean().default(true),
  /** Log verbosity of the main process. */
  logLevel: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
});
export type Settings = z.infer<typeof SettingsSchema>;
export type SettingKey = keyof Settings;

/** A partial update; unknown keys are an error rather than silently dropped. */
export const SettingsPatchSchema = SettingsSchema.partial()
  .strict()
  .refine((patch) => Object.keys(patch).length > 0, { message: 'Nothing to change: the update is empty' });
export type SettingsPatch = z.infer<typeof SettingsPatchSchema>;

export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});
