/**
 * Stores file contents during a backup and yields their chunk lists. Three paths, all ending in the
 * pack uploader: large local files are read, chunked, hashed and compressed by workers in ~16 MiB
 * pieces; small local files (below the minimum chunk size, so one chunk) go to workers in batches;
 * anything else streams through the main-thread chunker. Files, batches and pieces in flight are
 * bounded, so memory does not grow with the dataset.
 */
import { RepositoryError, throwIfAborted } from '../errors';
import type { ProgressFn } from '../errors';
import { Chunker } from '../chunker/chunker';
import type { ChunkerParams } from '../chunker/chunker';
import { KNOWN_CHUNK } from '../pipeline/chunk-pool';
import type { ChunkPool, FilePiece, HashedChunk } from '../pipeline/chunk-pool';
import type { PackUploader, UploadSession } from '../pack/pack-uploader';
import type { Slots } from '../pipeline/slots';
import type { SourceEntry, SourceWarning } from './source';

export interface FileContent {
  ids: string[];
  /** Bytes actually read (the file may have changed since it was listed). */
  size: number;
}

/** A file that failed to read: already recorded as a warning; its node is left out of the tree. */
export class SkippedFile extends Error {}

const SMALL_BATCH_FILES = 128;
const SMALL_BATCH_BYTES = 4 * 1024 * 1024;

interface Waiter {
  path: string | Uint8Array;
  entry: SourceEntry;
  resolve: (content: FileContent) => void;
  reject: (error: unknown) => void;
}

export class FileSaver {
  blobsAdded = 0;
  readonly warnings: SourceWarning[] = [];
  private readonly chunker: Chunker;
  private batch: Waiter[] = [];
  private batchBytes = 0;

  constructor(
    /** The workers, started on first use (an unchanged re-backup reads no file and starts none). */
    private readonly workers: () => ChunkPool,
    private readonly uploader: PackUploader,
    private readonly session: UploadSession,
    gear: Int32Array,
    private readonly params: ChunkerParams,
    /** Large files being read at once; shared by the backups running on one Repository. */
    private readonly largeFiles: Slots,
    private readonly signal?: AbortSignal,
    private readonly onProgress?: ProgressFn,
  ) {
    this.chunker = new Chunker(gear, params);
  }

  /** Starts storing a file. Resolves once it is accepted (backpressure) to a handle on its content. */
  async save(entry: SourceEntry): Promise<{ content: Promise<FileContent> }> {
    let content: Promise<FileContent>;
    if (entry.localPath !== undefined && entry.meta.size < this.params.min) ({ content } = await this.saveSmall(entry, entry.localPath));
    else if (entry.localPath !== undefined) ({ content } = await this.saveLarge(entry, entry.localPath));
    else ({ content } = await this.saveStream(entry));
    content.catch(() => undefined); // observed by the tree builder; avoids an early "unhandled rejection"
    return { content };
  }

  /** Sends the pending batch of small files; call before waiting on their contents. */
  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const { result } = await this.workers().smallFiles(items.map((i) => i.path));
    void result.then(
      async (files) => {
        for (const [i, file] of files.entries()) {
          const item = items[i]!;
          if ('error' in file) item.reject(this.skip(item.entry, file.error));
          else {
            try {
              item.resolve(await this.storeAll(file.chunks));
            } catch (error) {
              item.reject(error);
            }
          }
        }
      },
      (error: unknown) => items.forEach((i) => i.reject(error)),
    );
  }

  private skip(entry: SourceEntry, message: string): SkippedFile {
    this.warnings.push({ path: entry.path, message });
    return new SkippedFile(message);
  }

  private async store(chunk: HashedChunk): Promise<string> {
    if (chunk.codec === KNOWN_CHUNK) {
      const id = chunk.id.toString('hex');
      if (!this.uploader.reference(this.session, id)) throw new RepositoryError('corrupt', `worker reported blob ${id.slice(0, 12)} as stored, but it is not indexed`);
      return id;
    }
    if (await this.uploader.addCompressed(this.session, 'data', chunk.id, chunk.codec, chunk.payload, chunk.rawLength)) this.blobsAdded++;
    return chunk.id.toString('hex');
  }

  private async storeAll(chunks: HashedChunk[]): Promise<FileContent> {
    const ids: string[] = [];
    let size = 0;
    for (const chunk of chunks) {
      ids.push(await this.store(chunk));
      size += chunk.rawLength;
    }
    this.onProgress?.({ bytes: size });
    return { ids, size };
  }

  private async saveSmall(entry: SourceEntry, path: string | Uint8Array): Promise<{ content: Promise<FileContent> }> {
    const content = new Promise<FileContent>((resolve, reject) => this.batch.push({ path, entry, resolve, reject }));
    this.batchBytes += entry.meta.size;
    if (this.batch.length >= SMALL_BATCH_FILES || this.batchBytes >= SMALL_BATCH_BYTES) await this.flush();
    return { content };
  }

  private async saveLarge(entry: SourceEntry, path: string | Uint8Array): Promise<{ content: Promise<FileContent> }> {
    await this.largeFiles.acquire();
    const run = async (): Promise<FileContent> => {
      const ids: string[] = [];
      const request = async (offset: number): Promise<{ cut: Promise<{ next: number; eof: boolean }>; result: Promise<FilePiece> }> => {
        const job = await this.workers().filePiece(path, offset);
        job.cut.catch(() => undefined);
        job.result.catch(() => undefined);
        return job;
      };
      const settle = async <T>(p: Promise<T>): Promise<T> => {
        try {
          return await p;
        } catch (error) {
          if (error instanceof RepositoryError) throw error;
          throw this.skip(entry, (error as Error).message);
        }
      };
      let offset = 0;
      try {
        let job = await request(0);
        for (;;) {
          throwIfAborted(this.signal);
          // The next piece starts as soon as this one's boundaries are known, on another worker.
          const cut = await settle(job.cut);
          const next = cut.eof ? null : await request(cut.next);
          const piece = await settle(job.result);
          for (const chunk of piece.chunks) ids.push(await this.store(chunk));
          this.onProgress?.({ bytes: piece.next - offset });
          offset = piece.next;
          if (!next) return { ids, size: offset };
          job = next;
        }
      } finally {
        this.largeFiles.release();
      }
    };
    return { content: run() };
  }

  /** Streams through the main-thread chunker: reading is awaited here, hashing continues in workers. */
  private async saveStream(entry: SourceEntry): Promise<{ content: Promise<FileContent> }> {
    // Each chunk is stored as soon as a worker returns it, so a large stream is never held whole.
    const results: Promise<string>[] = [];
    let size = 0;
    const submit = async (chunks: Buffer[]): Promise<void> => {
      for (const chunk of chunks) {
        size += chunk.length;
        const { result } = await this.workers().submit(chunk);
        const stored = result.then((c) => this.store(c));
        stored.catch(() => undefined);
        results.push(stored);
      }
    };
    try {
      for await (const data of entry.open!()) {
        throwIfAborted(this.signal);
        await submit(this.chunker.push(data));
      }
      await submit(this.chunker.finish());
    } catch (error) {
      this.chunker.finish();
      if (error instanceof RepositoryError) throw error;
      await Promise.allSettled(results);
      return { content: Promise.reject(this.skip(entry, (error as Error).message)) };
    }
    const content = Promise.all(results).then((ids) => {
      this.onProgress?.({ bytes: size });
      return { ids, size };
    });
    return { content };
  }
}
