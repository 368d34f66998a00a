import { z } from './zod';

/**
 * `folderMissing`: a local repository folder (not the data folder's own) that is not there at all —
 * its disk not connected, or moved — where creating one would make a new, empty repository.
 */
export const RepositoryStatusSchema = z.object({ location: z.string(), exists: z.boolean(), unlocked: z.boolean(), folderMissing: z.boolean() });
export type RepositoryStatus = z.infer<typeof RepositoryStatusSchema>;

export const RepositoryPasswordSchema = z.string().min(1).max(1024);

export const SnapshotIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'Not a snapshot id');

/** One snapshot as the catalog lists it. */
export const SnapshotInfoSchema = z.object({
  id: SnapshotIdSchema,
  time: z.string(),
  device: z.string(),
  source: z.string().nullable(),
  kind: z.string(),
  runId: z.string().nullable(),
  paths: z.array(z.string()),
  tags: z.array(z.string()),
  files: z.number(),
  bytes: z.number(),
  bytesAdded: z.number(),
  filesRead: z.number(),
  durationMs: z.number(),
});
export type SnapshotInfo = z.infer<typeof SnapshotInfoSchema>;

/** A directory's entries inside a snapshot (for the file browser). */
export const SnapshotEntrySchema = z.object({
  name: z.string(),
  type: z.string(),
  size: z.number(),
  mode: z.number(),
  mtime: z.string(),
  target: z.string().optional(),
});
export type SnapshotEntry = z.infer<typeof SnapshotEntrySchema>;
