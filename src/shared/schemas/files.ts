import { z } from './zod';
import { SnapshotIdSchema } from './catalog';
import { NameSchema } from './devices';

/** A path inside a snapshot ('/'-separated, relative to the device's root, as the browser shows it). */
export const SnapshotPathSchema = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0') && !p.split('/').some((part) => part === '..'), 'Not a path inside a snapshot')
  .transform((p) => p.replace(/^\/+/, '').replace(/\/+$/, ''));

/** One distinct content of a file across a device's snapshots of one source (newest first). */
export const FileVersionSchema = z.object({
  /** The newest snapshot that holds this content. */
  snapshotId: SnapshotIdSchema,
  /** When this content was first and last seen in a snapshot. */
  firstSeen: z.string(),
  lastSeen: z.string(),
  /** How many snapshots hold it. */
  snapshots: z.number().int(),
  size: z.number(),
  mode: z.number(),
  mtime: z.string(),
  /** A short id of the content (from its chunk ids): equal ids, equal bytes. */
  contentId: z.string(),
});
export type FileVersion = z.infer<typeof FileVersionSchema>;

export const FileVersionsSchema = z.object({
  device: z.string(),
  source: z.string().nullable(),
  path: z.string(),
  versions: z.array(FileVersionSchema),
  /** Snapshots of the same source that do not have the file (it was added later or removed). */
  missingIn: z.number().int(),
});
export type FileVersions = z.infer<typeof FileVersionsSchema>;

export const DiffLineSchema = z.object({ op: z.enum([' ', '-', '+']), text: z.string(), oldLine: z.number().nullable(), newLine: z.number().nullable() });
export const FileDiffSchema = z.object({
  path: z.string(),
  from: SnapshotIdSchema,
  to: SnapshotIdSchema,
  /**
   * Why no line diff is shown: a binary file, too large to diff in the console, or text whose lines
   * are the same on both sides though its bytes are not — the line endings (CRLF and LF) or the
   * newline at the end differ.
   */
  notText: z.enum(['binary', 'too-large', 'line-endings', 'final-newline']).nullable(),
  identical: z.boolean(),
  added: z.number().int(),
  removed: z.number().int(),
  hunks: z.array(z.object({ oldStart: z.number(), oldLines: z.number(), newStart: z.number(), newLines: z.number(), lines: z.array(DiffLineSchema) })),
});
export type FileDiff = z.infer<typeof FileDiffSchema>;

/** Absolute folder on this laptop (typed in the test host, chosen by a native dialog in the app). */
export const LocalFolderSchema = z
  .string()
  .min(1)
  .max(4096)
  // POSIX, a Windows drive (C:\… or C:/…) or a Windows share (\\server\share): what the native
  // folder picker hands back on each platform the app is built for.
  .refine((p) => /^(\/|[A-Za-z]:[\\/]|\\\\[^\\])/.test(p) && !p.includes('\0'), 'Must be an absolute folder on this computer');

export const DownloadRequestSchema = z
  .object({
    snapshotId: SnapshotIdSchema,
    /** Snapshot paths (files or folders) to download; none means the whole snapshot. */
    paths: z.array(SnapshotPathSchema).max(256).optional(),
    /** The folder the download goes into; it lands in a new sub-folder named after the snapshot. */
    folder: LocalFolderSchema,
  })
  .strict();
export type DownloadRequest = z.infer<typeof DownloadRequestSchema>;

export const DownloadResultSchema = z.object({ target: z.string(), files: z.number(), dirs: z.number(), bytes: z.number(), warnings: z.array(z.string()) });
export type DownloadResult = z.infer<typeof DownloadResultSchema>;

export const VersionsRequestSchema = z.object({ snapshotId: SnapshotIdSchema, path: SnapshotPathSchema }).strict();
export const DiffRequestSchema = z.object({ from: SnapshotIdSchema, to: SnapshotIdSchema, path: SnapshotPathSchema }).strict();
/** A one-file restore request for the Restore channels: the device, snapshot and include of that file. */
export const VersionRestoreSchema = z.object({ device: NameSchema, snapshotId: SnapshotIdSchema, include: z.array(z.string()) });
