/**
 * A repository location to its backend: `s3:ENDPOINT/BUCKET[/PREFIX]` for S3-compatible storage
 * (credentials from the standard AWS environment — AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_PROFILE — as the AWS tools read them), `sftp:USER@HOST[:PORT]:/PATH` for an SSH server
 * (JETVAULT_SFTP_HOST_KEY or known_hosts pins its key; JETVAULT_SFTP_IDENTITY, JETVAULT_SFTP_PASSWORD or the
 * ssh-agent log in, see sftp-backend.ts), anything else a local folder. Remote backends come wrapped
 * in the retry wrapper, so a dropped link or a restarted server costs a retry, not a job.
 */
import type { Backend } from './backend';
import { LocalBackend } from './local-backend';
import { RetryBackend } from './retry-backend';
import type { RetryOptions } from './retry-backend';
import { S3Backend } from './s3-backend';
import { SftpBackend, sftpOptionsFromEnv } from './sftp-backend';

/** Whether a location is a remote store (the ones that get retries and the metadata cache). */
export function isRemoteLocation(location: string): boolean {
  return location.startsWith('s3:') || location.startsWith('sftp:');
}

export function backendFor(location: string, env: NodeJS.ProcessEnv = process.env, retry: RetryOptions = {}): Backend {
  if (location.startsWith('s3:')) {
    const credentials = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } : undefined;
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    return new RetryBackend(new S3Backend(location, { ...(credentials ? { credentials } : {}), ...(region ? { region } : {}) }), retry);
  }
  if (location.startsWith('sftp:')) return new RetryBackend(new SftpBackend(location, sftpOptionsFromEnv(location, env)), retry);
  return new LocalBackend(location);
}

/** For `init`: the backend, with its container (bucket, folder) created when the store allows it. */
export async function backendForInit(location: string, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  const backend = backendFor(location, env);
  const store = backend instanceof RetryBackend ? backend.inner : backend;
  try {
    if (store instanceof S3Backend) await store.ensureBucket();
    if (store instanceof SftpBackend) await store.ensureRoot();
  } catch (error) {
    backend.close?.();
    throw error;
  }
  return backend;
}
