/**
 * What the retry wrapper retries: a store that cannot be reached (a real S3 client against a port
 * nobody listens on) is tried again with backoff; a missing object or damaged data is not.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../shared/errors';
import { RepositoryError } from '../errors';
import { tempDir } from '../testing/fixtures';
import { LocalBackend } from './local-backend';
import { isTransient, RetryBackend } from './retry-backend';
import { S3Backend } from './s3-backend';

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('the retry wrapper', () => {
  it('tells transient failures from the others', () => {
    expect(isTransient(new RepositoryError('unavailable', 'link dropped'))).toBe(true);
    expect(isTransient(new AppError('TIMEOUT', 'no answer'))).toBe(true);
    expect(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    for (const failure of ['not-found', 'corrupt', 'denied', 'wrong-password'] as const) expect(isTransient(new RepositoryError(failure, failure))).toBe(false);
    for (const code of ['AUTH_FAILED', 'HOST_KEY_MISMATCH', 'HOST_KEY_UNKNOWN'] as const) expect(isTransient(new AppError(code, code))).toBe(false);
  });

  it('passes the store\'s upload concurrency and create-only puts through', async () => {
    const s3 = new RetryBackend(new S3Backend('s3:http://127.0.0.1:9/jv-nobody', { credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }));
    expect(s3.uploadConcurrency).toBe(4);
    expect(s3.putIfAbsent).toBeTypeOf('function');
    const local = new RetryBackend(new LocalBackend(await tempDir()));
    expect(local.uploadConcurrency).toBeUndefined();
  });

  it('retries an unreachable S3 endpoint with backoff, then fails with a clear error', async () => {
    const port = await closedPort();
    const seen: number[] = [];
    const b = new RetryBackend(new S3Backend(`s3:http://127.0.0.1:${port}/jv-nobody`, { credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 }), {
      attempts: 3,
      baseDelayMs: 20,
      onRetry: (_what, attempt) => seen.push(attempt),
    });
    const started = Date.now();
    await expect(b.get('config')).rejects.toMatchObject({ failure: 'unavailable', code: 'UNAVAILABLE', message: expect.stringMatching(/ECONNREFUSED/) as unknown });
    expect(seen).toEqual([1, 2]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(20 * 0.75 + 40 * 0.75);
    b.close();
  });

  it('does not retry a missing object', async () => {
    const b = new RetryBackend(new LocalBackend(await tempDir()), { baseDelayMs: 1000 });
    await expect(b.get('snapshots/none')).rejects.toMatchObject({ failure: 'not-found' });
    expect(b.retries).toBe(0);
  });
});
