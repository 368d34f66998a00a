/**
 * Vitest fixtures for the throwaway servers of the test fleet: one S3 store (radosgw) or SFTP server
 * (OpenSSH) per test file, started before its tests and stopped after them, and a reason to skip
 * where this machine cannot run one.
 *
 *   const { why, store } = useS3Store();
 *   describe.skipIf(why)('…', () => { it('…', () => store.endpoint …) });
 */
import { afterAll, beforeAll } from 'vitest';
import { s3Missing, startS3Store } from '../../../../fleet/s3';
import type { S3Store } from '../../../../fleet/s3';
import { sftpMissing, startSftpServer } from '../../../../fleet/sftp';
import type { SftpServer } from '../../../../fleet/sftp';

/** radosgw needs a monitor and an OSD first; stopping waits for the daemons to go. */
const S3_START_MS = 180_000;
const S3_STOP_MS = 60_000;
const SFTP_START_MS = 60_000;
const SFTP_STOP_MS = 30_000;

interface UsedServer<T extends object> {
  /** Why this machine cannot run the server (its tests skip), or null. */
  why: string | null;
  /** The running server, inside the file's tests (reading it before the start or when skipped throws). */
  readonly server: T;
}

/**
 * Registers beforeAll/afterAll hooks starting and stopping one server for the current file (or the
 * enclosing describe block); returns what the tests read it through.
 */
function useServer<T extends { stop(): Promise<void> }>(what: string, why: string | null, start: () => Promise<T>, startMs: number, stopMs: number): UsedServer<T> {
  let current: T | undefined;
  beforeAll(async () => {
    if (!why) current = await start();
  }, startMs);
  afterAll(async () => {
    const running = current;
    current = undefined;
    await running?.stop();
  }, stopMs);
  const server = new Proxy({} as T, {
    get(_target, property) {
      if (!current) throw new Error(why ? `the ${what} is not running here: ${why}` : `the ${what} is read before it started (only inside tests)`);
      const value: unknown = Reflect.get(current, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(current) : value;
    },
  });
  return { why, server };
}

/** One throwaway S3 store (a single-node Ceph with radosgw) for the file's tests. */
export function useS3Store(options: Parameters<typeof startS3Store>[0] = {}): { why: string | null; store: S3Store } {
  const used = useServer('S3 test store', s3Missing(), () => startS3Store(options), S3_START_MS, S3_STOP_MS);
  return { why: used.why, store: used.server };
}

/** One throwaway SFTP server (OpenSSH behind a delay proxy) for the file's tests. */
export function useSftpServer(options: Parameters<typeof startSftpServer>[0] = {}): { why: string | null; server: SftpServer } {
  const used = useServer('SFTP test server', sftpMissing(), () => startSftpServer(options), SFTP_START_MS, SFTP_STOP_MS);
  return { why: used.why, server: used.server };
}
