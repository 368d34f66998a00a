import { z } from 'zod';
import { NameSchema } from './devices';

export const RestoreRequestSchema = z
  .object({
    device: NameSchema,
    snapshotId: z.string().regex(/^[0-9a-f]{64}$/, 'Not a snapshot id'),
    /** Restore below this folder on the device instead of in place. */
    targetRoot: z
      .string()
      .max(4096)
      .refine((p) => p.startsWith('/') && !p.includes('\0'), 'Must be an absolute path on the device')
      .optional(),
    /** Only these paths/patterns (relative to the snapshot's folders). */
    include: z.array(z.string().min(1).max(1024)).max(256).optional(),
  })
  .strict();
export type RestoreRequest = z.infer<typeof RestoreRequestSchema>;

export const RestorePlanSummarySchema = z.object({
  restoreId: z.string(),
  device: z.string(),
  snapshotId: z.string(),
  bytesToSend: z.number(),
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
      /** Up to 20 paths of each kind, prefixed `~` (replace), `+` (add), `-` (remove). */
      samples: z.array(z.string()),
    }),
  ),
});
export type RestorePlanSummary = z.infer<typeof RestorePlanSummarySchema>;

export const PendingRestoreSchema = z.object({ restoreId: z.string(), device: z.string(), snapshotId: z.string(), finishedAt: z.string(), targets: z.array(z.string()) });
