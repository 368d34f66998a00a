/**
 * The one IPC contract between the renderer and the main process.
 *
 * Every request channel is `domain:action` with a zod schema for its input and its output; every
 * event the main side pushes is `domain:event` with a schema for its payload. The router, the
 * preload, the test host's WebSocket bridge and the renderer all derive their types from this file.
 * Adding a channel here is the only way to add a channel.
 */
import { z } from './schemas/zod';
import { SettingsPatchSchema, SettingsSchema } from './schemas/settings';
import { PendingRestoreSchema, RestorePlanSummarySchema, RestoreRequestSchema } from './schemas/restore';
import { DrillRecordSchema, RtoStatusSchema } from './schemas/drills';
import { AuditEntrySchema, AuditQuerySchema, DashboardRequestSchema, DashboardSchema, OverviewSchema, TextFileSchema } from './schemas/fleet';
import { DiffRequestSchema, DownloadRequestSchema, FileDiffSchema, FileVersionsSchema, LocalFolderSchema, VersionsRequestSchema } from './schemas/files';
import { BreakLeaseSchema, LeaseSchema } from './schemas/leases';
import { RepositoryPasswordSchema, RepositoryStatusSchema, SnapshotEntrySchema, SnapshotIdSchema, SnapshotInfoSchema } from './schemas/catalog';
import { DeviceDetailSchema, DeviceFactsSchema, DeviceSummarySchema, FingerprintSchema, HostKeyCheckSchema, KeyTargetSchema, JumpHostSchema, NameSchema, PROFILES_FILE_MAX_BYTES, RetentionSchema, SourceSchema } from './schemas/devices';
import { CopyRequestSchema } from './schemas/copy';
import { JobFinishedSchema, JobIdSchema, JobKindSchema, JobProgressSchema, JobRecordSchema, JobStatusSchema } from './schemas/jobs';
import { AlertSchema, ScheduleEntrySchema } from './schemas/monitoring';
import { DeviceCopiesSchema, RepositoryAddSchema, RepositoryEntrySchema, RepositoryIdSchema, RepositoryTestSchema, RepositoryUpdateSchema } from './schemas/repositories';

const none = z.undefined();

export const AppInfoSchema = z.object({
  name: z.string(),
  version: z.string(),
  /** Which binding carries this contract: the Electron app or the plain-Node test host. */
  transport: z.enum(['electron', 'websocket']),
  dataDir: z.string(),
  platform: z.string(),
  schemaVersion: z.number().int(),
  /**
   * What encrypts passwords and passphrases at rest here: the OS keychain (the app's safeStorage),
   * the secrets passphrase (JETVAULT_SECRETS_PASSPHRASE, scrypt), or nothing usable (storing refused).
   */
  secrets: z.enum(['keychain', 'passphrase', 'none']),
});
export type AppInfo = z.infer<typeof AppInfoSchema>;

export const channels = {
  'app:info': { input: none, output: AppInfoSchema },
  /** Opens an https link in the system browser if its origin is on the allowlist. */
  'app:openExternal': { input: z.object({ url: z.string().max(2048) }).strict(), output: z.object({ opened: z.boolean() }) },

  'settings:get': { input: none, output: SettingsSchema },
  'settings:update': { input: SettingsPatchSchema, output: SettingsSchema },
  'settings:reset': { input: none, output: SettingsSchema },

  'jobs:list': {
    input: z
      .object({ limit: z.number().int().min(1).max(1000).default(100), status: JobStatusSchema.optional() })
      .strict()
      .optional(),
    output: z.array(JobRecordSchema),
  },
  /** One device's jobs of one kind, newest first: its backup history on the device page. */
  'jobs:ofDevice': {
    input: z.object({ device: NameSchema, kind: JobKindSchema, limit: z.number().int().min(1).max(1000).default(20) }).strict(),
    output: z.array(JobRecordSchema),
  },
  'jobs:active': { input: none, output: z.array(JobProgressSchema) },
  'jobs:cancel': { input: z.object({ jobId: JobIdSchema }).strict(), output: z.object({ cancelled: z.boolean() }) },

  'devices:list': { input: none, output: z.array(DeviceSummarySchema) },
  'devices:get': { input: z.object({ name: NameSchema }).strict(), output: DeviceDetailSchema },
  /** `profile` is validated by the device schema in the service, so its field errors come back by path. */
  'devices:add': {
    input: z
      .object({
        profile: z.unknown(),
        password: z.string().max(1024).optional(),
        passphrase: z.string().max(1024).optional(),
        databasePasswords: z.record(NameSchema, z.string().max(1024)).optional(),
      })
      .strict(),
    output: DeviceDetailSchema,
  },
  'devices:update': {
    input: z
      .object({
        name: NameSchema,
        profile: z.unknown(),
        password: z.string().max(1024).optional(),
        passphrase: z.string().max(1024).optional(),
        /** Database sources' passwords by source name ("" forgets one); kept in the secret store. */
        databasePasswords: z.record(NameSchema, z.string().max(1024)).optional(),
        /**
         * The `updatedAt` of the profile the edit started from: refused (CONFLICT) when the profile was
         * saved since — by another window or the CLI — instead of sending back the whole old profile.
         */
        ifUpdatedAt: z.string().max(64).optional(),
      })
      .strict(),
    output: DeviceDetailSchema,
  },
  'devices:remove': { input: z.object({ name: NameSchema }).strict(), output: z.object({ removed: z.literal(true) }) },
  /** The text of a profiles file (one profile, an array, or an export). All or nothing. */
  'devices:import': { input: z.object({ json: z.string().max(PROFILES_FILE_MAX_BYTES), replace: z.boolean().default(false) }).strict(), output: z.array(DeviceSummarySchema) },
  /** Key files of these devices' profiles this machine cannot read (one line each): said after an import, not at the first backup. */
  'devices:keyFileWarnings': { input: z.object({ names: z.array(NameSchema).max(100_000) }).strict(), output: z.array(z.string()) },
  'devices:export': { input: z.object({ names: z.array(NameSchema).max(100_000).optional() }).strict(), output: z.object({ json: z.string() }) },
  /** First contact: the host key fingerprint, fetched without authenticating or sending anything. */
  'devices:probeHostKey': {
    input: z
      .object({
        host: z.string().min(1).max(253),
        port: z.number().int().min(1).max(65535).default(22),
        /** A device behind a jump host: the jump host's key must be confirmed already; its login uses these credentials. */
        via: z
          .object({
            jump: JumpHostSchema,
            auth: z.enum(['key', 'password', 'agent']),
            identityFile: z.string().min(1).max(4096).optional(),
            /** The device key's passphrase, when the jump host takes the device's key. */
            passphrase: z.string().min(1).max(1024).optional(),
            password: z.string().min(1).max(1024).optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
    output: z.object({ fingerprint: FingerprintSchema }),
  },
  /**
   * Logs in to a device that is not added yet (its host key confirmed in the profile, its secrets as
   * typed) and reads its facts: the add dialog's connection test. Stores nothing.
   */
  'devices:testLogin': {
    input: z.object({ profile: z.unknown(), password: z.string().max(1024).optional(), passphrase: z.string().max(1024).optional() }).strict(),
    output: DeviceFactsSchema,
  },
  /** The keys the device and its jump host present now (nothing sent; a jump host is logged in to) beside the pinned ones. */
  'devices:checkHostKey': { input: z.object({ name: NameSchema }).strict(), output: HostKeyCheckSchema },
  /**
   * Pins the fingerprint the user compared with the device (or its jump host) — a first
   * confirmation, or a new key after a reinstall — only if it presents exactly that key now.
   */
  'devices:pinHostKey': { input: z.object({ name: NameSchema, fingerprint: FingerprintSchema, target: KeyTargetSchema.default('device') }).strict(), output: DeviceDetailSchema },
  /** Connects (pinned key), reads facts, keeps them, and proposes sources not yet configured. */
  'devices:discover': {
    input: z.object({ name: NameSchema }).strict(),
    output: z.object({ facts: DeviceFactsSchema, proposals: z.array(SourceSchema) }),
  },

  'repository:status': { input: none, output: RepositoryStatusSchema },
  'repository:init': { input: z.object({ password: RepositoryPasswordSchema, createFolder: z.boolean().optional() }).strict(), output: RepositoryStatusSchema },
  'repository:unlock': { input: z.object({ password: RepositoryPasswordSchema }).strict(), output: RepositoryStatusSchema },
  'repository:lock': { input: none, output: RepositoryStatusSchema },
  /** The repository's leases (needs it unlocked: leases are sealed). */
  'repository:leases': { input: none, output: z.array(LeaseSchema) },
  /** Breaks one lease; a live one only with force (it may belong to a running prune). */
  'repository:breakLease': { input: BreakLeaseSchema, output: LeaseSchema },
  /** Starts a copy job of the console repository's snapshots into another repository (only the data it lacks). */
  'repository:copy': { input: CopyRequestSchema, output: z.object({ jobId: z.string() }) },

  /** The console's repositories: the primary (backed up into) and secondaries holding copies. */
  'repositories:list': { input: none, output: z.array(RepositoryEntrySchema) },
  /** Registers a secondary repository; its password and credentials go to the secret store. */
  'repositories:add': { input: RepositoryAddSchema, output: RepositoryEntrySchema },
  /** Changes the offsite flag, the copy policy or the stored password. */
  'repositories:update': { input: RepositoryUpdateSchema, output: RepositoryEntrySchema },
  'repositories:remove': { input: z.object({ id: RepositoryIdSchema }).strict(), output: z.object({ removed: z.literal(true) }) },
  /** Opens it with the stored password: reachable, initialised, snapshot count, or what went wrong; refreshes its copies. */
  'repositories:test': { input: z.object({ id: RepositoryIdSchema }).strict(), output: RepositoryTestSchema },
  /** How many copies of the device's latest run exist across the repositories, and whether one is offsite (cached). */
  'repositories:copies': { input: z.object({ device: NameSchema }).strict(), output: DeviceCopiesSchema },
  /** Backs up into this repository from now on (it must open with its stored password). */
  'repositories:setPrimary': { input: z.object({ id: RepositoryIdSchema }).strict(), output: RepositoryEntrySchema },

  /** Starts a backup job of a device (all its sources, or the ones named); progress arrives as jobs events. */
  'backups:start': { input: z.object({ device: NameSchema, sources: z.array(NameSchema).max(64).optional() }).strict(), output: z.object({ jobId: z.string() }) },
  /**
   * Starts a backup of each device named (the Fleet page's shown devices): each a job of its own,
   * as many at once as Settings allow. A device with a job running now, without sources, or gone
   * is skipped with the reason; the rest start.
   */
  'backups:startMany': {
    input: z.object({ devices: z.array(NameSchema).min(1).max(5000) }).strict(),
    output: z.object({ started: z.array(z.object({ device: z.string(), jobId: z.string() })), skipped: z.array(z.object({ device: z.string(), reason: z.string() })) }),
  },

  'snapshots:list': { input: z.object({ device: NameSchema.optional() }).strict().optional(), output: z.array(SnapshotInfoSchema) },
  /** The entries of one directory of a snapshot ('' is the root). */
  'snapshots:browse': {
    input: z.object({ id: SnapshotIdSchema, path: z.string().max(4096).default('') }).strict(),
    output: z.object({ path: z.string(), entries: z.array(SnapshotEntrySchema) }),
  },

  /** The dry run of a restore: what would change on the device, and whether it fits. Changes nothing. */
  'restore:plan': { input: RestoreRequestSchema, output: RestorePlanSummarySchema },
  'restore:start': { input: RestoreRequestSchema, output: z.object({ jobId: z.string(), restoreId: z.string() }) },
  /** Restores that completed and keep the previous state until confirmed or rolled back. */
  'restore:pending': { input: none, output: z.array(PendingRestoreSchema) },
  // leftovers: staging folders on the device that could not be removed entirely (files of another account).
  'restore:confirm': { input: z.object({ restoreId: z.string().max(64) }).strict(), output: z.object({ done: z.literal(true), leftovers: z.array(z.string()) }) },
  'restore:rollback': { input: z.object({ restoreId: z.string().max(64) }).strict(), output: z.object({ done: z.literal(true), leftovers: z.array(z.string()) }) },
  /** Settles what interrupted restores left on a device: unfinished ones rolled back, completed ones listed as pending. */
  'restore:recover': { input: z.object({ device: NameSchema }).strict(), output: z.object({ pending: z.array(PendingRestoreSchema), settled: z.array(z.string()) }) },

  /** Open alerts (newest first), or the most recent ones whatever their state. */
  'alerts:list': { input: z.object({ status: z.enum(['open', 'all']).default('open') }).strict(), output: z.array(AlertSchema) },
  'alerts:acknowledge': { input: z.object({ id: z.number().int().positive() }).strict(), output: AlertSchema },
  /** Evaluates the monitoring rules now (they also run after every job and once a minute). */
  'alerts:evaluate': { input: none, output: z.object({ raised: z.number().int(), resolved: z.number().int(), open: z.number().int() }) },
  /** What the scheduler runs next, in order (running, due, waiting, offline, not ready). */
  'scheduler:queue': { input: none, output: z.object({ enabled: z.boolean(), entries: z.array(ScheduleEntrySchema) }) },
  /** Runs one scheduler tick now; returns the devices it started. */
  'scheduler:tick': { input: none, output: z.object({ started: z.array(z.string()) }) },
  /** Which of a device's runs a retention policy keeps (the device's own policy when none is given). Changes nothing. */
  'retention:preview': {
    input: z.object({ device: NameSchema, policy: RetentionSchema.optional() }).strict(),
    output: z.array(z.object({ runId: z.string(), time: z.string(), sources: z.array(z.string()), keep: z.boolean(), reasons: z.array(z.string()) })),
  },
  /** Webhook deliveries still waiting (the receiver was down or the laptop offline). */
  'alerts:webhookQueue': { input: none, output: z.object({ pending: z.number().int(), nextAttemptAt: z.string().nullable(), lastError: z.string().max(2000).nullable() }) },

  /** A file's distinct versions across the device's snapshots of the same source, newest first. */
  'files:versions': { input: VersionsRequestSchema, output: FileVersionsSchema },
  /** A line diff of one file between two snapshots (binary or very large files say so instead). */
  'files:diff': { input: DiffRequestSchema, output: FileDiffSchema },
  /** The restore request (for restore:plan / restore:start) that puts back exactly this one file. */
  'files:restoreRequest': { input: VersionsRequestSchema, output: RestoreRequestSchema },

  /** Restores files, folders or a whole snapshot into a new sub-folder of a folder on this computer. */
  'downloads:start': { input: DownloadRequestSchema, output: z.object({ jobId: z.string(), target: z.string() }) },
  /** A native folder picker where the platform has one (the desktop app); `supported: false` elsewhere. */
  'downloads:chooseFolder': { input: none, output: z.object({ supported: z.boolean(), folder: LocalFolderSchema.nullable() }) },

  /** Starts a restore drill of the device's latest complete backup run. */
  'drills:start': { input: z.object({ device: NameSchema }).strict(), output: z.object({ jobId: z.string(), drillId: z.string() }) },
  'drills:list': { input: z.object({ device: NameSchema.optional(), limit: z.number().int().min(1).max(500).default(50) }).strict().optional(), output: z.array(DrillRecordSchema) },
  /** The device's RTO estimate from its last drill, against its objective. */
  'drills:rto': { input: z.object({ device: NameSchema }).strict(), output: RtoStatusSchema },
  /** The fleet overview: every device's protection, reachability, RTO, health and alerts, computed in main. */
  'overview:get': { input: none, output: OverviewSchema },
  /** Dashboard series, aggregated by time bucket in main; fleet-wide or of one device. */
  'dashboards:get': { input: DashboardRequestSchema, output: DashboardSchema },
  /** The newest entries that match (`limit`, 500 by default) and how many match in all (`total`). */
  'audit:list': { input: AuditQuerySchema, output: z.object({ entries: z.array(AuditEntrySchema), total: z.number(), actions: z.array(z.string()) }) },
  /** The filtered audit log as CSV text (the renderer saves it). */
  'audit:exportCsv': { input: AuditQuerySchema, output: TextFileSchema },
  /** A device's printable protection report as one self-contained HTML page. */
  'reports:device': { input: z.object({ name: NameSchema }).strict(), output: TextFileSchema },
  /**
   * Saves the device's report in the data folder and opens it for printing (the desktop app prints it
   * to PDF and opens that); where nothing can open it, only its location comes back.
   */
  'reports:open': {
    input: z.object({ name: NameSchema }).strict(),
    output: z.object({ path: z.string(), format: z.enum(['pdf', 'html']), opened: z.boolean() }),
  },
} as const satisfies Record<`${string}:${string}`, { input: z.ZodType; output: z.ZodType }>;

export const events = {
  'jobs:progress': JobProgressSchema,
  'jobs:finished': JobFinishedSchema,
  /** Settings changed by another window, the CLI, or a reset. */
  'settings:changed': SettingsSchema,
  /** The inventory changed (added, edited, removed, imported, facts refreshed). */
  'devices:changed': z.object({ names: z.array(z.string()) }),
  /** Alerts were raised, resolved or acknowledged; how many are open now. */
  'alerts:changed': z.object({ open: z.number().int() }),
} as const satisfies Record<`${string}:${string}`, z.ZodType>;

export type Channel = keyof typeof channels;
export type EventName = keyof typeof events;
/** What a caller passes (defaults not yet applied). */
export type ChannelInput<C extends Channel> = z.input<(typeof channels)[C]['input']>;
/** What a handler receives (after parsing: defaults applied). */
export type ParsedInput<C extends Channel> = z.output<(typeof channels)[C]['input']>;
export type ChannelOutput<C extends Channel> = z.output<(typeof channels)[C]['output']>;
export type EventPayload<E extends EventName> = z.output<(typeof events)[E]>;

export const CHANNELS = Object.keys(channels) as Channel[];
export const EVENTS = Object.keys(events) as EventName[];

export function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && Object.hasOwn(channels, value);
}
export function isEventName(value: unknown): value is EventName {
  return typeof value === 'string' && Object.hasOwn(events, value);
}
