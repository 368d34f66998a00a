/**
 * A list of data blobs read in order, ahead of the one who consumes them (a restore streaming a
 * snapshot's files somewhere else, e.g. a tar stream onto a device). From a local repository the
 * reading, decrypting, decompressing and id checks run in the chunk workers, a run of neighbouring
 * blobs per job, so the consumer's thread only handles plaintext; other backends read through the
 * repository on the consumer's thread, a few blobs ahead. Memory stays bounded either way.
 */
import { resolve } from 'node:path';
import { LocalBackend } from '../backend/local-backend';
import { RepositoryError } from '../errors';
import type { Repository } from '../repo/repository';
import { ChunkPool } from './chunk-pool';
import type { RestoreBlob } from './chunk-pool';

/** Plaintext bytes one worker job returns at most (chunks average about 1 MiB). */
export const BLOB_JOB_BYTES = 4 * 1024 * 1024;
/** Blobs per worker job at most (many small files). */
const BLOB_JOB_COUNT = 512;
/** Worker jobs of one stream in flight: together with the one being consumed, about 16 MiB. */
const JOBS_AHEAD = 3;
/** Blobs read ahead on the consumer's thread when the repository is not local. */
const READ_AHEAD = 8;

export interface BlobStream {
  /** The next blob's plaintext, in the order given. */
  next(): Promise<Buffer>;
  /** Stops reading ahead and releases the workers (call when done or abandoning the stream). */
  close(): Promise<void>;
}

/** One pool per repository, shared by the streams open at once (two sources staged side by side). */
const pools = new WeakMap<Repository, { pool: ChunkPool; users: number }>();

function acquirePool(repo: Repository, workers?: number): ChunkPool {
  const shared = pools.get(repo);
  if (shared) {
    shared.users++;
    return shared.pool;
  }
  const pool = new ChunkPool({ mac: repo.keys.mac, enc: repo.keys.enc, gear: new Int32Array(256), chunker: repo.config.chunker }, workers);
  pools.set(repo, { pool, users: 1 });
  return pool;
}

async function releasePool(repo: Repository, pool: ChunkPool): Promise<void> {
  const shared = pools.get(repo);
  if (shared?.pool !== pool || --shared.users > 0) return;
  pools.delete(repo);
  await pool.close();
}

/**
 * Keeps the repository's blob workers running until the returned function is called, so the
 * streams of several sources staged one after another share them instead of starting their own.
 */
export function holdBlobWorkers(repo: Repository): () => Promise<void> {
  if (!(repo.backend instanceof LocalBackend)) return () => Promise.resolve();
  const pool = acquirePool(repo);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await releasePool(repo, pool);
  };
}

export function blobStream(repo: Repository, ids: string[], options: { workers?: number } = {}): BlobStream {
  const local = repo.backend instanceof LocalBackend && options.workers !== 0 ? resolve(repo.backend.root) : null;
  if (!local) return mainThreadStream(repo, ids);

  const pool = acquirePool(repo, options.workers);
  let closed = false;
  let planned = 0;
  const jobs: Promise<Buffer[]>[] = [];
  let current: Buffer[] = [];
  let at = 0;

  /** Posts the next run of blobs (up to the job's byte and count limits). */
  const plan = (): void => {
    const blobs: RestoreBlob[] = [];
    let bytes = 0;
    while (planned < ids.length && blobs.length < BLOB_JOB_COUNT) {
      const blob = repo.locateBlob(ids[planned]!);
      if (blobs.length > 0 && bytes + blob.rawLength > BLOB_JOB_BYTES) break;
      planned++;
      blobs.push(blob);
      bytes += blob.rawLength;
    }
    const job = pool
      .readBlobs(local, blobs)
      .then((handle) => handle.result)
      .catch((error: unknown) => {
        throw error instanceof RepositoryError ? error : new RepositoryError('corrupt', (error as Error).message);
      });
    job.catch(() => undefined); // awaited in turn by next()
    jobs.push(job);
  };
  const fill = (): void => {
    while (!closed && jobs.length < JOBS_AHEAD && planned < ids.length) plan();
  };

  return {
    async next() {
      if (closed) throw new RepositoryError('corrupt', 'blob stream read after it was closed');
      if (at >= current.length) {
        fill();
        const job = jobs.shift();
        if (!job) throw new RepositoryError('corrupt', 'blob stream read past its end');
        current = await job;
        at = 0;
        fill();
      }
      const blob = current[at]!;
      current[at++] = Buffer.alloc(0); // the consumer owns it now
      return blob;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await Promise.allSettled(jobs.splice(0));
      await releasePool(repo, pool);
    },
  };
}

function mainThreadStream(repo: Repository, ids: string[]): BlobStream {
  const ahead: Promise<Buffer>[] = [];
  let next = 0;
  let closed = false;
  return {
    next() {
      while (!closed && ahead.length < READ_AHEAD && next < ids.length) {
        const loading = repo.loadBlob(ids[next++]!);
        loading.catch(() => undefined); // awaited in turn below
        ahead.push(loading);
      }
      return ahead.shift() ?? Promise.reject(new RepositoryError('corrupt', 'blob stream read past its end'));
    },
    close: async () => {
      closed = true;
      await Promise.allSettled(ahead.splice(0));
    },
  };
}
