import { z } from './zod';
import { cronError } from '../cron';
import { formatBytes } from '../format-bytes';

/** Names of devices and sources: safe in file names, tags, logs and shell words. */
export const NameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'Use 1–64 letters, digits, dots, dashes or underscores, starting with a letter or digit');

/** The most sources a device profile has. */
export const MAX_SOURCES = 64;

/** A profiles file (import) holds at most this much: some thousands of devices, read whole. */
export const PROFILES_FILE_MAX_BYTES = 4 * 1024 * 1024;

/** Why a profiles file of `bytes` is refused before it is read, or null when its size is fine. */
export function profilesFileTooLarge(name: string, bytes: number): string | null {
  return bytes > PROFILES_FILE_MAX_BYTES ? `Nothing was imported: ${name} is ${formatBytes(bytes)}, and a profiles file holds at most ${formatBytes(PROFILES_FILE_MAX_BYTES)} (some thousands of devices). Split it into several files.` : null;
}

/** An OpenSSH-style SHA-256 host key fingerprint, e.g. `SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8`. */
export const FingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'Expected an OpenSSH SHA256 fingerprint (SHA256:… 43 characters)');

const HostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:[\]_-]+$/, 'Not a host name or address')
  // Brackets only set an IPv6 address apart from a port: the address inside them is what is connected to.
  .transform((host) => host.replace(/^\[(.*)\]$/, '$1'));
const PortSchema = z.number().int().min(1).max(65535);
const AbsolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/'), 'Paths on the device must be absolute')
  .refine((p) => !p.includes('\0'), 'Paths cannot contain NUL bytes');
const Glob = z.string().min(1).max(1024).refine((p) => !p.includes('\0'), 'Patterns cannot contain NUL bytes');
/** A cron schedule (minute hour day-of-month month day-of-week, local time). */
const CronSchema = z
  .string()
  .max(200)
  .superRefine((text, ctx) => {
    const error = cronError(text);
    if (error) ctx.addIssue({ code: 'custom', message: error });
  });
/** Every source may carry its own schedule: it is then also backed up alone at those times. */
const scheduled = { schedule: CronSchema.optional() };

export const PostgresSourceSchema = z.object({
  name: NameSchema,
  kind: z.literal('postgres'),
  ...scheduled,
  database: z.string().min(1).max(63),
  /** Host name or socket directory (as pg_dump's --host). */
  host: z.string().min(1).max(1024).optional(),
  port: PortSchema.optional(),
  user: z.string().min(1).max(63).optional(),
});
export const SqliteSourceSchema = z.object({ name: NameSchema, kind: z.literal('sqlite'), path: AbsolutePath, ...scheduled });
export const MysqlSourceSchema = z.object({
  name: NameSchema,
  kind: z.literal('mysql'),
  ...scheduled,
  database: z.string().min(1).max(64),
  host: z.string().min(1).max(1024).optional(),
  /** Unix socket path (mysqldump's --socket); the client's default when neither host nor socket is set. */
  socket: z.string().min(1).max(1024).optional(),
  port: PortSchema.optional(),
  user: z.string().min(1).max(64).optional(),
});
export const FilesSourceSchema = z.object({
  name: NameSchema,
  kind: z.literal('files'),
  ...scheduled,
  paths: z.array(AbsolutePath).min(1).max(256),
  include: z.array(Glob).max(256).optional(),
  exclude: z.array(Glob).max(256).optional(),
  /** Rotate (truncate) matching logs on the device once their snapshot is committed. */
  rotateAfterBackup: z.boolean().optional(),
});

export const SourceSchema = z.discriminatedUnion('kind', [PostgresSourceSchema, SqliteSourceSchema, MysqlSourceSchema, FilesSourceSchema]);
export type Source = z.infer<typeof SourceSchema>;

/** A source reached through a database server's login (user, password), not a file on the device. */
export function isServerDatabase(kind: string): kind is 'postgres' | 'mysql' {
  return kind === 'postgres' || kind === 'mysql';
}

/**
 * A jump host (bastion) the device is reached through, as `ssh -J` does. Its host key is pinned like
 * a device's; it authenticates with its own key file when given, else with the device's credentials.
 */
export const JumpHostSchema = z.object({
  host: HostSchema,
  port: PortSchema.default(22),
  user: z.string().min(1).max(64).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*$/, 'Not a user name'),
  hostKey: FingerprintSchema.optional(),
  identityFile: z.string().min(1).max(4096).optional(),
});
export type JumpHost = z.infer<typeof JumpHostSchema>;

/** `user@host:port` (port optional; an IPv6 address in brackets, as ssh -J takes it) → jump host object. */
export function parseJump(text: string): z.infer<typeof JumpHostSchema> | null {
  const match = /^([^@\s]+)@([^:\s]+|\[[^\]]+\])(?::(\d+))?$/.exec(text);
  if (!match) return null;
  // The brackets only set the address apart from the port: the address is what is connected to.
  const parsed = JumpHostSchema.safeParse({ user: match[1], host: match[2]!.replace(/^\[(.*)\]$/, '$1'), port: match[3] ? Number(match[3]) : 22 });
  return parsed.success ? parsed.data : null;
}

/** Restic-style retention, counted in runs of the device: the newest run of each of the last N hours/days/…. */
export const RetentionSchema = z
  .object({
    last: z.number().int().min(1).max(100_000).optional(),
    hourly: z.number().int().min(1).max(100_000).optional(),
    daily: z.number().int().min(1).max(100_000).optional(),
    weekly: z.number().int().min(1).max(100_000).optional(),
    monthly: z.number().int().min(1).max(100_000).optional(),
    yearly: z.number().int().min(1).max(1000).optional(),
    /** Keep every run within this long of the newest, e.g. "2d", "3w", "1y6m". */
    within: z.string().max(64).regex(/^(\d+[ymwdh])+$/, 'Expected a duration such as 7d, 3w, 6m, 1y').optional(),
  })
  .strict();
export type Retention = z.infer<typeof RetentionSchema>;

/**
 * A device profile as technicians share it (import/export JSON). Secrets (passwords, passphrases)
 * are never part of a profile. Fields it does not have are dropped here, and refused by an import
 * (a misspelt setting in a profiles file must not vanish without a word).
 */
export const DeviceProfileSchema = z
  .object({
    name: NameSchema,
    host: HostSchema,
    port: PortSchema.default(22),
    user: z.string().min(1).max(64).regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*$/, 'Not a user name'),
    auth: z.enum(['agent', 'key', 'password']).optional(),
    identityFile: z.string().min(1).max(4096).optional(),
    jump: z.union([JumpHostSchema, z.string().max(512).transform((s, ctx) => parseJump(s) ?? (ctx.addIssue({ code: 'custom', message: 'Expected USER@HOST[:PORT]' }), z.NEVER))]).optional(),
    hostKey: FingerprintSchema.optional(),
    site: z.string().max(128).default(''),
    tags: z.array(z.string().min(1).max(64)).max(32).default([]),
    rpoMinutes: z.number().int().min(1).max(60 * 24 * 31).optional(),
    /** Which runs to keep (applied after every backup of the device; data is freed by the next prune). */
    retention: RetentionSchema.optional(),
    /** Backups at fixed times as well (cron: minute hour day-of-month month day-of-week, local time), on top of the RPO. */
    schedule: CronSchema.optional(),
    /** How long a full recovery of this device may take; restore drills measure against it. */
    rtoMinutes: z.number().int().min(1).max(60 * 24 * 31).optional(),
    sources: z.array(SourceSchema).max(MAX_SOURCES).default([]),
    /** Commands run (quoted as given, by the device's shell) around a restore. */
    services: z.object({ stop: z.array(z.string().max(1024)).max(256).default([]), start: z.array(z.string().max(1024)).max(256).default([]) }).optional(),
    healthCommand: z.string().max(1024).optional(),
    /**
     * Seconds this device may stay silent before its connection is given up, over the console's
     * `silentLinkSeconds` (a satellite or cellular link that drops for longer than the rest).
     */
    silentLinkSeconds: z.number().int().min(10).max(600).optional(),
    /** Transfers cross the link gzip-compressed: `auto` (default) when the link is slow, or always / never. */
    wireCompression: z.enum(['auto', 'on', 'off']).optional(),
    /** Where the device's filesystem starts as seen over SSH: `/` on a Jetson; a folder for test stand-ins. */
    sysroot: AbsolutePath.optional(),
  })
  .superRefine((profile, ctx) => {
    const names = new Set<string>();
    profile.sources.forEach((source, i) => {
      if (names.has(source.name)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'name'], message: `Duplicate source name "${source.name}"` });
      names.add(source.name);
    });
  });
export type DeviceProfile = z.infer<typeof DeviceProfileSchema>;
export type DeviceProfileInput = z.input<typeof DeviceProfileSchema>;

/** How a profile authenticates when `auth` is not given: a key file if named, else the agent. */
export function authOf(profile: DeviceProfile): 'agent' | 'key' | 'password' {
  return profile.auth ?? (profile.identityFile ? 'key' : 'agent');
}

/** What the inventory list shows per device. */
export const DeviceSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  host: z.string(),
  port: z.number(),
  user: z.string(),
  auth: z.enum(['agent', 'key', 'password']),
  site: z.string(),
  tags: z.array(z.string()),
  rpoMinutes: z.number().nullable(),
  hostKey: z.string().nullable(),
  sourceCount: z.number(),
  factsAt: z.string().nullable(),
  /** When the last backup that succeeded finished, and how the last attempt ended. */
  lastBackupAt: z.string().nullable(),
  lastAttemptStatus: z.enum(['running', 'succeeded', 'failed', 'cancelled']).nullable(),
});
export type DeviceSummary = z.infer<typeof DeviceSummarySchema>;

export const DiskUsageSchema = z.object({ mount: z.string(), filesystem: z.string(), sizeBytes: z.number(), usedBytes: z.number(), availableBytes: z.number() });
export type DiskUsage = z.infer<typeof DiskUsageSchema>;

/** The disks the newest read of a device saw (a discovery, or the first command of any backup), and when. */
export const DeviceDisksSchema = z.object({ disks: z.array(DiskUsageSchema), at: z.string() });
export type DeviceDisks = z.infer<typeof DeviceDisksSchema>;

/** What a device tells about itself over SSH. */
export const DeviceFactsSchema = z.object({
  collectedAt: z.string(),
  hostname: z.string(),
  kernel: z.string(),
  arch: z.string(),
  l4t: z.object({ release: z.string(), revision: z.string(), board: z.string().nullable(), line: z.string() }).nullable(),
  model: z.string().nullable(),
  /** As read with the rest; a stored device's are the newest read's (DeviceDetail.disks: every backup reads them again). */
  disks: z.array(DiskUsageSchema),
  tools: z.record(z.string(), z.string()),
  services: z.array(z.string()),
  postgresDatabases: z.array(z.string()),
  /** `socket\tdatabase` of MySQL/MariaDB databases the device account can see (facts read before this field existed lack it). */
  mysqlDatabases: z.array(z.string()).default([]),
  /** Database servers found running whose databases the login could not list, and why (facts read before this field existed lack it). */
  databaseErrors: z.array(z.object({ engine: z.enum(['postgres', 'mysql']), where: z.string(), message: z.string() })).default([]),
  sqliteFiles: z.array(z.string()),
  appDirs: z.array(z.string()),
  configPaths: z.array(z.string()),
  logDirs: z.array(z.string()),
});
export type DeviceFacts = z.infer<typeof DeviceFactsSchema>;

/** A key a host presents now beside the one pinned for it (null: none confirmed yet). */
export const KeyComparisonSchema = z.object({ pinned: FingerprintSchema.nullable(), presented: FingerprintSchema, matches: z.boolean() });
export type KeyComparison = z.infer<typeof KeyComparisonSchema>;

/**
 * A device's key check: the device's own key, and its jump host's when it has one. The device's key
 * is fetched through the jump host, so while the jump host's key does not match it is not fetched
 * (`device` null).
 */
export const HostKeyCheckSchema = z.object({ device: KeyComparisonSchema.nullable(), jump: KeyComparisonSchema.nullable() });
export type HostKeyCheck = z.infer<typeof HostKeyCheckSchema>;
export const KeyTargetSchema = z.enum(['device', 'jump']);
export type KeyTarget = z.infer<typeof KeyTargetSchema>;

export const DeviceDetailSchema = z.object({
  id: z.string(),
  profile: DeviceProfileSchema,
  hasPassword: z.boolean(),
  hasPassphrase: z.boolean(),
  /** Database sources (postgres, mysql) whose password is stored; the passwords never leave the main process. */
  databasePasswords: z.array(z.string()).default([]),
  facts: DeviceFactsSchema.nullable(),
  factsAt: z.string().nullable(),
  /** Also for a device never discovered: every backup reads them. */
  disks: DeviceDisksSchema.nullable(),
  /** When the profile was last saved (by anyone): an edit sends it back as `ifUpdatedAt`. */
  updatedAt: z.string(),
});
export type DeviceDetail = z.infer<typeof DeviceDetailSchema>;
