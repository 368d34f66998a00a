import { z } from './zod';
import { RepositoryPasswordSchema } from './catalog';

/** A copy of the console repository's snapshots into another repository (`jetvault copy --to`). */
export const CopyRequestSchema = z
  .object({
    /** The destination: a folder, `s3:…` or `sftp:…`, as for the console repository. */
    to: z.string().trim().min(1).max(1024),
    password: RepositoryPasswordSchema,
    device: z.string().min(1).max(128).optional(),
    /** A device source's name, or a snapshot kind such as `local`. */
    source: z.string().min(1).max(128).optional(),
    /** Only snapshots taken at or after this time. */
    since: z.string().max(64).datetime({ offset: true }).optional(),
    /** Read back what was written (default true). */
    verify: z.boolean().optional(),
  })
  .strict();
export type CopyRequest = z.infer<typeof CopyRequestSchema>;
