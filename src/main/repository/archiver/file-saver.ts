/**
 * Stores file contents during a backup and yields their chunk lists. Every path ends in the pack
 * uploader, and the cutting, hashing and compressing happen in the chunk workers: large local files
 * are read by the workers in ~16 MiB pieces; small local files (below the minimum chunk size, so one
 * chunk) go to them in batches of paths; streamed files (over SSH, dumps) are collected here — small
 * ones back to back in one batch buffer, large ones in pieces (stream-pieces.ts). Files, batches and
 * pieces in flight are bounded, so memory does not grow with the dataset.
 */
import { RepositoryError } from '../errors';
import type { AbortFlag } from '../errors';
import type { ProgressFn } from '../errors';
import type { ChunkerParams } from '../chunker/chunker';
import { KNOWN_CHUNK } from '../pipeline/chunk-pool';
import type { ChunkPool, FilePiece, HashedChunk } from '../pipeline/chunk-pool';
import { StreamPieces } from '../pipeline/stream-pieces';
import { copyInto } from '../pipeline/copy-into';
import type { PackUploader, UploadSession } from '../pack/pack-uploader';
import type { Slots } from '../pipeline/slots';
import type { Segment, SourceEntry, SourceWarning } from './source';

export interface FileContent {
  ids: string[];
  /** Bytes actually read (the file may have changed since it was listed). */
  size: number;
}

/** A file that failed to read: already recorded as a warning; its node is left out of the tree. */
export class SkippedFile extends Error {}

const SMALL_BATCH_FILES = 128;
const SMALL_BATCH_BYTES = 4 * 1024 * 1024;
/** Small streamed files sent to a worker at once (their bytes back to back in one buffer). */
const BYTES_BATCH_FILES = 256;

interface Waiter {
  path: string | Uint8Array;
  entry: SourceEntry;
  resolve: (content: FileContent) => void;
  reject: (error: unknown) => void;
}

export class FileSaver {
  blobsAdded = 0;
  readonly warnings: SourceWarning[] = [];
  private batch: Waiter[] = [];
  private batchBytes = 0;
  /** Small streamed files waiting to be sent: their bytes in `data`, file i ends at `ends[i]`. */
  private bytesBatch: { data: Buffer; used: number; ends: number[]; waiters: Omit<Waiter, 'path'>[] } | null = null;

  constructor(
    /** The workers, started on first use (an unchanged re-backup reads no file and starts none). */
    private readonly workers: () => ChunkPool,
    private readonly uploader: PackUploader,
    private readonly session: UploadSession,
    private readonly params: ChunkerParams,
    /** Large files being read at once; shared by the backups running on one Repository. */
    private readonly largeFiles: Slots,
    private readonly aborted: AbortFlag,
    private readonly onProgress?: ProgressFn,
  ) {}

  /** Starts storing a file. Resolves once it is accepted (backpressure) to a handle on its content. */
  async save(entry: SourceEntry): Promise<{ content: Promise<FileContent> }> {
    let content: Promise<FileContent>;
    if (entry.segments) ({ content } = await this.saveSegments(entry, entry.segments));
    else if (entry.localPath !== undefined && entry.meta.size < this.params.min) ({ content } = await this.saveSmall(entry, entry.localPath));
    else if (entry.localPath !== undefined) ({ content } = await this.saveLarge(entry, entry.localPath));
    else ({ content } = await this.saveStream(entry));
    content.catch(() => undefined); // observed by the tree builder; avoids an early "unhandled rejection"
    return { content };
  }

  /** Sends the pending batches of small files; call before waiting on their contents. */
  async flush(): Promise<void> {
    await this.flushBytes();
    if (this.batch.length === 0) return;
    const items = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    const { result } = await this.workers().smallFiles(items.map((i) => i.path));
    this.settle(items, result.then((files) => ({ files })));
  }

  /**
   * Stores each file of a batch once the worker is done with it, and settles its waiter; then
   * `release` (a batch whose payloads are views into its shared buffer gives the buffer back).
   */
  private settle(waiters: Omit<Waiter, 'path'>[], result: Promise<{ files: ({ chunks: HashedChunk[] } | { error: string })[]; release?: () => void }>): void {
    void result.then(
      async ({ files, release }) => {
        for (const [i, file] of files.entries()) {
          const waiter = waiters[i]!;
          if ('error' in file) waiter.reject(this.skip(waiter.entry, file.error));
          else {
            try {
              waiter.resolve(await this.storeAll(file.chunks));
            } catch (error) {
              waiter.reject(error);
            }
          }
        }
        release?.();
      },
      (error: unknown) => waiters.forEach((w) => w.reject(error)),
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
      const request = async (offset: number, resume = 0): Promise<{ cut: Promise<{ next: number; eof: boolean; scanned: number }>; result: Promise<FilePiece> }> => {
        const job = await this.workers().filePiece(path, offset, resume);
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
          this.aborted.throwIfAborted();
          // The next piece starts as soon as this one's boundaries are known, on another worker.
          const cut = await settle(job.cut);
          const next = cut.eof ? null : await request(cut.next, cut.scanned);
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

  /**
   * A streamed file: read here (the stream must be drained before the next entry), cut, hashed and
   * compressed in the workers. One that ends below the minimum chunk size is one chunk and joins a
   * batch of such files; a larger one goes in pieces.
   */
  private async saveStream(entry: SourceEntry): Promise<{ content: Promise<FileContent> }> {
    const iterator = entry.open!()[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let headBytes = 0;
    let pieces: StreamPieces | null = null;
    try {
      for (;;) {
        const step = await iterator.next();
        this.aborted.throwIfAborted();
        if (step.done) break;
        if (pieces) {
          await pieces.push(step.value);
          continue;
        }
        head.push(step.value);
        headBytes += step.value.length;
        if (headBytes < this.params.min) continue;
        pieces = new StreamPieces(this.workers(), this.params, (chunks) => this.storeAll(chunks).then((c) => c.ids));
        for (const data of head.splice(0)) await pieces.push(data);
      }
      if (!pieces) return await this.saveBytes(entry, head, headBytes);
      const { done } = await pieces.finish();
      const size = pieces.size;
      return { content: done.then((ids) => ({ ids, size })) };
    } catch (error) {
      await iterator.return?.().catch(() => undefined);
      await pieces?.abandon();
      if (error instanceof RepositoryError) throw error;
      return { content: Promise.reject(this.skip(entry, (error as Error).message)) };
    }
  }

  /** A file from chunk runs already stored and streams cut one by one (SourceEntry.segments). */
  private async saveSegments(entry: SourceEntry, segments: Segment[]): Promise<{ content: Promise<FileContent> }> {
    const parts: Promise<FileContent>[] = [];
    for (const segment of segments) {
      if ('content' in segment) parts.push(Promise.resolve({ ids: segment.content, size: segment.size }));
      else parts.push((await this.saveStream({ ...entry, open: segment.open })).content);
    }
    // A part that failed to read fails the file (it is skipped with that warning, as a whole file would be).
    const content = Promise.all(parts).then((done) => ({ ids: done.flatMap((p) => p.ids), size: done.reduce((n, p) => n + p.size, 0) }));
    return { content };
  }

  /** Copies a small streamed file into the current batch (sending the batch first if it is full). */
  private async saveBytes(entry: SourceEntry, parts: Buffer[], bytes: number): Promise<{ content: Promise<FileContent> }> {
    const capacity = Math.max(SMALL_BATCH_BYTES, this.params.min);
    if (this.bytesBatch && (this.bytesBatch.used + bytes > capacity || this.bytesBatch.ends.length >= BYTES_BATCH_FILES)) await this.flushBytes();
    const batch = (this.bytesBatch ??= { data: this.workers().buffer(capacity), used: 0, ends: [], waiters: [] });
    for (const part of parts) {
      copyInto(batch.data, part, batch.used);
      batch.used += part.length;
    }
    batch.ends.push(batch.used);
    return { content: new Promise<FileContent>((resolve, reject) => batch.waiters.push({ entry, resolve, reject })) };
  }

  private async flushBytes(): Promise<void> {
    const batch = this.bytesBatch;
    if (!batch) return;
    this.bytesBatch = null;
    const { result } = await this.workers().smallBytes(new Uint8Array(batch.data.buffer, batch.data.byteOffset, batch.used), batch.ends);
    this.settle(batch.waiters, result.then((r) => ({ files: r.value, release: r.release })));
  }
}
