import { z } from './zod';
import { NameSchema } from './devices';

const DevicePath = z
  .string()
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'Must be an absolute path on the device');

/**
 * What to restore. Either one snapshot (`snapshotId`), or a point in time and a scope: `device`
 * (every source of the run in force at `at`), `source` (the named `sources`) or `files` (one files
 * source, limited to `include`). `at` defaults to now; the latest snapshot committed at or before it
 * is chosen per source.
 */
export const RestoreRequestSchema = z
  .object({
    device: NameSchema,
    snapshotId: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'Not a snapshot id')
      .optional(),
    at: z.iso.datetime({ offset: true }).max(64).optional(),
    scope: z.enum(['device', 'source', 'files']).optional(),
    sources: z.array(NameSchema).max(64).optional(),
    /** Restore files below this folder on the device instead of in place. */
    targetRoot: DevicePath.optional(),
    /** Only these paths/patterns (relative to the snapshot's folders). */
    include: z.array(z.string().min(1).max(1024)).max(256).optional(),
    /** PostgreSQL / MySQL: restore into this (new) database instead of replacing the live one. */
    targetDatabase: z
      .string()
      .min(1)
      .max(64)
      .refine((n) => !n.includes('\0'), 'Not a database name')
      .optional(),
    /** SQLite: restore to this (new) file instead of replacing the live one. */
    targetPath: DevicePath.optional(),
    /**
     * Files: also compare the contents of files whose size, time and mode match the snapshot (read
     * on the device and from the repository), so a copy damaged with its metadata intact is restored.
     */
    checkContents: z.boolean().optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (!r.snapshotId && (r.scope === 'source' || r.scope === 'files') && (r.sources ?? []).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['sources'], message: 'Choose the source to restore' });
    }
    if (r.scope === 'files' && (r.sources ?? []).length > 1) ctx.addIssue({ code: 'custom', path: ['sources'], message: 'A files restore works on one source' });
  });
export type RestoreRequest = z.infer<typeof RestoreRequestSchema>;

export const RestoreDatabaseSchema = z.object({
  source: z.string(),
  kind: z.enum(['postgres', 'sqlite', 'mysql']),
  /** Database name or file path that will hold the restored data. */
  target: z.string(),
  inPlace: z.boolean(),
  targetExists: z.boolean(),
  /** `replace` the live one (kept until confirmed), `create` it (none there), or a `copy` under another name. */
  action: z.enum(['replace', 'create', 'copy']),
  bytes: z.number(),
  tables: z.number().nullable(),
  rows: z.number().nullable(),
  /** Where the new database is written when that is another disk than the work folder's: its room is counted there. */
  space: z.object({ location: z.string(), needed: z.number(), freeBytes: z.number() }).nullable().default(null),
});

export const RestorePlanSummarySchema = z.object({
  restoreId: z.string(),
  device: z.string(),
  /** The first chosen snapshot (all of them are in `snapshots`). */
  snapshotId: z.string(),
  at: z.string().nullable().default(null),
  snapshots: z
    .array(z.object({ source: z.string(), kind: z.string(), snapshotId: z.string(), time: z.string(), runId: z.string().nullable(), l4t: z.string().nullable(), board: z.string().nullable() }))
    .default([]),
  bytesToSend: z.number(),
  /** Of bytesToSend: large files the device has a copy of, which cross as the blocks that differ where the device has python3 (usually far less). */
  patchableBytes: z.number().default(0),
  /** Of bytesToSend: what an earlier restore its link cut off had staged already (taken up on the device, not sent again). */
  resumableBytes: z.number().default(0),
  freeBytes: z.number(),
  spaceNeeded: z.number(),
  warnings: z.array(z.string()),
  roots: z.array(
    z.object({
      target: z.string(),
      targetExists: z.boolean(),
      add: z.number(),
      replace: z.number(),
      remove: z.number(),
      unchanged: z.number(),
      /** Bytes of the files to add or replace. */
      bytes: z.number().default(0),
      /** Up to 20 paths of each kind, prefixed `~` (replace), `+` (add), `-` (remove). */
      samples: z.array(z.string()),
      /** With checkContents: files that looked unchanged and were read, those that differed (counted in `replace`), those the device's login could not read. */
      contents: z.object({ checked: z.number(), differ: z.number(), unreadable: z.number() }).nullable().default(null),
      /** The folder's own mode on the device (`from`) differs from the snapshot's (`to`): restored too. Permission bits. */
      mode: z.object({ from: z.number(), to: z.number() }).nullable().default(null),
      /** The folder's own owner on the device (`from`, "uid:gid") differs from the snapshot's (`to`), and the device's login can give it back: restored too. */
      owner: z.object({ from: z.string(), to: z.string() }).nullable().default(null),
      /** Of `replace`: entries whose owner goes back to the snapshot's (some differ in nothing else). */
      owners: z.number().default(0),
    }),
  ),
  databases: z.array(RestoreDatabaseSchema).default([]),
  services: z.object({ stop: z.array(z.string()), start: z.array(z.string()) }).default({ stop: [], start: [] }),
  /** What the device runs now, compared with the snapshots' facts. */
  platform: z.object({ l4t: z.string().nullable(), board: z.string().nullable() }).nullable().default(null),
  /** After a run: how long each step took (`plan`, `stage:<source>`, `verify:<source>`, `swap`, `validate`…), in ms. */
  timings: z.array(z.object({ step: z.string(), ms: z.number() })).default([]),
  /** After a run: whether files and dumps went to the device gzip'ed (a slow link, decision 019). */
  wireCompression: z.boolean().default(false),
  /** After a run: what the operator must act on (roles created on a server that lacked them). */
  notes: z.array(z.string()).default([]),
});
export type RestorePlanSummary = z.infer<typeof RestorePlanSummarySchema>;

export const PendingRestoreSchema = z.object({
  restoreId: z.string(),
  device: z.string(),
  snapshotId: z.string(),
  finishedAt: z.string(),
  targets: z.array(z.string()),
  /** Databases restored in place whose previous version waits on the device. */
  databases: z.array(z.string()).default([]),
  /** The time of the snapshot restored; null for a restore found on the device after an interruption. */
  pointInTime: z.string().nullable().default(null),
  /** How long it took; null for a restore found on the device after an interruption. */
  seconds: z.number().nullable().default(null),
  /** Whether its bytes crossed the link gzip'ed (a slow link, decision 019). */
  wireCompression: z.boolean().default(false),
});
