/** The console's repositories (primary and secondaries, for 3-2-1 copies) as they cross the IPC boundary. */
import { z } from './zod';

/** `/absolute/folder`, `s3:ENDPOINT/BUCKET[/PREFIX]` or `sftp:USER@HOST[:PORT]:/PATH`. */
export const S3_LOCATION = /^s3:(?:https?:\/\/)?[^/\s]+\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](?:\/\S*)?$/;
export const SFTP_LOCATION = /^sftp:([^@\s:/]+)@(\[[0-9a-fA-F:]+\]|[^\s:/@[\]]+)(?::(\d{1,5}))?:(\/\S*)$/;

export type RepositoryKind = 'local' | 's3' | 'sftp';

/**
 * Why a location that holds credentials is refused (null: it holds none). `s3:https://KEY:SECRET@host/…`
 * (as some S3 tools take them) or `sftp:USER:PASSWORD@host:…` would be printed in every message about
 * the repository and stored in plain text; the message never repeats the location.
 */
export function locationCredentialsError(location: string): string | null {
  if (location.startsWith('s3:')) {
    const authority = /^s3:(?:https?:\/\/)?([^/]*)/.exec(location)![1]!;
    if (authority.includes('@')) return 'An S3 location cannot hold credentials (KEY:SECRET@): give them as the access key and secret (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the command line) and the location as s3:https://HOST[:PORT]/BUCKET[/PREFIX]';
  }
  if (location.startsWith('sftp:')) {
    const login = /^sftp:([^@]*)@/.exec(location)?.[1];
    if (login?.includes(':')) return 'An SFTP location cannot hold a password (USER:PASSWORD@): give it as the SFTP password (JETVAULT_SFTP_PASSWORD for the command line) and the location as sftp:USER@HOST[:PORT]:/PATH';
  }
  return null;
}

export function repositoryKind(location: string): RepositoryKind {
  return location.startsWith('s3:') ? 's3' : location.startsWith('sftp:') ? 'sftp' : 'local';
}

export const RepositoryLocationSchema = z
  .string()
  .trim()
  .min(1, 'Give a location')
  .max(4096)
  .superRefine((value, ctx) => {
    const kind = repositoryKind(value);
    const credentials = locationCredentialsError(value);
    if (credentials) ctx.addIssue({ code: 'custom', message: credentials });
    else if (kind === 's3' && !S3_LOCATION.test(value)) ctx.addIssue({ code: 'custom', message: 'Expected s3:ENDPOINT/BUCKET[/PREFIX], e.g. s3:https://rgw.example:7480/jetvault' });
    else if (kind === 'sftp') {
      const m = SFTP_LOCATION.exec(value);
      if (!m) ctx.addIssue({ code: 'custom', message: 'Expected sftp:USER@HOST[:PORT]:/PATH, e.g. sftp:backup@vault.example:/srv/jetvault' });
      else if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) ctx.addIssue({ code: 'custom', message: 'The SFTP port must be 1–65535' });
    } else if (kind === 'local' && !value.startsWith('/') && !/^[A-Za-z]:[\\/]/.test(value)) ctx.addIssue({ code: 'custom', message: 'A local repository needs an absolute folder path' });
  });

export const RepositoryIdSchema = z.string().regex(/^repo_[a-z0-9]{6,32}$/, 'Not a repository id');

export const RepositoryTestSchema = z.object({
  at: z.string(),
  /** The store answered (folder readable, bucket or server reachable). */
  reachable: z.boolean(),
  /** A Jetvault repository is there (its config exists). */
  initialised: z.boolean(),
  /** It opened with the stored password and listed this many snapshots; null when it could not. */
  snapshots: z.number().int().nullable(),
  /** Devices with at least one run in it. */
  devices: z.number().int().nullable(),
  error: z.string().nullable(),
});
export type RepositoryTest = z.infer<typeof RepositoryTestSchema>;

export const RepositoryEntrySchema = z.object({
  id: RepositoryIdSchema,
  name: z.string(),
  location: z.string(),
  kind: z.enum(['local', 's3', 'sftp']),
  /** The repository the console backs up into now; every other one is a secondary. */
  primary: z.boolean(),
  offsite: z.boolean(),
  /** Copy new runs here automatically whenever it is reachable (offsite repositories). */
  copyWhenReachable: z.boolean(),
  hasPassword: z.boolean(),
  hasCredentials: z.boolean(),
  lastTest: RepositoryTestSchema.nullable(),
});
export type RepositoryEntry = z.infer<typeof RepositoryEntrySchema>;

const secret = z.string().min(1).max(1024);

export const RepositoryAddSchema = z
  .object({
    name: z.string().trim().min(1).max(64).optional(),
    location: RepositoryLocationSchema,
    /** The repository's password (kept in the secret store). */
    password: z.string().min(1).max(1024),
    offsite: z.boolean().default(false),
    /** S3: an access key (else the standard AWS environment/profile is used). */
    accessKeyId: secret.optional(),
    secretAccessKey: secret.optional(),
    /** SFTP: the login password (else the SSH agent / keys). */
    sftpPassword: secret.optional(),
  })
  .strict()
  .refine((v) => (v.accessKeyId === undefined) === (v.secretAccessKey === undefined), { message: 'Give both the access key id and the secret access key, or neither', path: ['secretAccessKey'] });
export type RepositoryAdd = z.input<typeof RepositoryAddSchema>;

export const RepositoryUpdateSchema = z
  .object({
    id: RepositoryIdSchema,
    offsite: z.boolean().optional(),
    copyWhenReachable: z.boolean().optional(),
    password: z.string().min(1).max(1024).optional(),
  })
  .strict();
export type RepositoryUpdate = z.input<typeof RepositoryUpdateSchema>;

/** How many copies of a device's latest run exist (primary + secondaries holding it) and whether one is offsite. */
export const DeviceCopiesSchema = z.object({
  copies: z.number().int(),
  offsite: z.boolean(),
  /** The newest run of the device held in an offsite repository (its time); null: none. */
  lastOffsiteAt: z.string().nullable(),
  /** When the copies were last checked (the oldest listing they rest on); null: never. */
  checkedAt: z.string().nullable(),
});
export type DeviceCopies = z.infer<typeof DeviceCopiesSchema>;
