/**
 * A repository location to its backend: `s3:ENDPOINT/BUCKET[/PREFIX]` for S3-compatible storage
 * (credentials from the standard AWS environment — AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_PROFILE — as the AWS tools read them), `sftp:` (not yet), anything else a local folder.
 */
import { RepositoryError } from '../errors';
import type { Backend } from './backend';
import { LocalBackend } from './local-backend';
import { S3Backend } from './s3-backend';

export function backendFor(location: string, env: NodeJS.ProcessEnv = process.env): Backend {
  if (location.startsWith('s3:')) {
    const credentials = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } : undefined;
    const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    return new S3Backend(location, { ...(credentials ? { credentials } : {}), ...(region ? { region } : {}) });
  }
  if (location.startsWith('sftp:')) throw new RepositoryError('missing', `${location}: SFTP repositories are not supported by this version yet`);
  return new LocalBackend(location);
}

/** For `init`: the backend, with its container (bucket) created when the store allows it. */
export async function backendForInit(location: string, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  const backend = backendFor(location, env);
  if (backend instanceof S3Backend) await backend.ensureBucket();
  return backend;
}
