/**
 * One stream (a file arriving over SSH, a database dump, content being re-chunked for a copy) fed
 * to the chunk workers in pieces: the main thread only copies the bytes into a piece buffer (shared
 * memory), the workers cut, hash and compress, leaving the payloads in the piece. Cutting is
 * sequential along the stream, so a piece is posted once the previous one's uncut tail is back (it
 * starts the new piece, in room kept free in front, and is not scanned again); the hashing of
 * earlier pieces goes on meanwhile. Chunk ids come back in stream order.
 */
import type { ChunkerParams } from '../chunker/chunker';
import type { ChunkPool, HashedChunk } from './chunk-pool';
import { copyInto } from './copy-into';

/** New bytes a piece collects before it is posted (the tail in front of them is at most one max chunk). */
export const PIECE_BYTES = 8 * 1024 * 1024;
/**
 * Pieces of one stream posted but not yet stored, at most: the stream (and with it the source)
 * waits instead of filling more fresh buffers while the store is behind. Unbounded, a 224 MB device
 * pull had up to nine 16 MiB pieces out at once and touched 14 fresh buffers; with 2 it touches 9
 * (pieces and small-file batches) and its first backup took 1.46 s instead of 1.75 s (medians of 6
 * alternating runs; 3 gave 1.54 s, 1 gave 1.63 s).
 */
export const UNSTORED_PIECES = 2;

export class StreamPieces {
  private buffer: Buffer | null = null;
  private used = 0;
  private tail: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
  private readonly stored: Promise<string[]>[] = [];
  private unstored = 0;
  private readonly storedWaiters: (() => void)[] = [];
  /** Bytes pushed so far. */
  size = 0;

  constructor(
    private readonly pool: ChunkPool,
    private readonly params: ChunkerParams,
    /** Stores one piece's chunks (in order) and returns their ids; pieces may be stored concurrently. */
    private readonly store: (chunks: HashedChunk[]) => Promise<string[]>,
  ) {}

  /** Takes a copy of `data`; resolves once it is accepted (waits while the workers are busy). */
  async push(data: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      this.buffer ??= await this.take();
      const n = Math.min(data.length - offset, PIECE_BYTES - this.used);
      copyInto(this.buffer, data.subarray(offset, offset + n), this.params.max + this.used);
      this.used += n;
      offset += n;
      this.size += n;
      if (this.used === PIECE_BYTES) await this.post(false);
    }
  }

  /** Posts the last piece; `done` gives every chunk id of the stream, in order. */
  async finish(): Promise<{ done: Promise<string[]> }> {
    await this.post(true);
    const done = Promise.all(this.stored).then((pieces) => pieces.flat());
    done.catch(() => undefined);
    return { done };
  }

  /** For a stream that failed: waits until the pieces already posted are settled. */
  async abandon(): Promise<void> {
    await Promise.allSettled([this.tail, ...this.stored]);
  }

  /** A buffer for the next piece, once fewer than UNSTORED_PIECES of this stream await their store. */
  private async take(): Promise<Buffer> {
    while (this.unstored >= UNSTORED_PIECES) await new Promise<void>((resolve) => this.storedWaiters.push(resolve));
    return this.pool.buffer(this.params.max + PIECE_BYTES);
  }

  private async post(final: boolean): Promise<void> {
    const buffer = this.buffer ?? (await this.take());
    const room = this.params.max;
    const tail = await this.tail;
    copyInto(buffer, tail, room - tail.length);
    const piece = new Uint8Array(buffer.buffer, buffer.byteOffset + room - tail.length, tail.length + this.used);
    this.buffer = null;
    this.used = 0;
    const job = await this.pool.streamPiece(piece, final, tail.length);
    job.tail.catch(() => undefined);
    this.tail = job.tail;
    // The payloads are views into the piece: it is reused only once they are stored.
    this.unstored++;
    const stored = job.result
      .then(async (r) => {
        try {
          return await this.store(r.value.chunks);
        } finally {
          r.release();
        }
      })
      .finally(() => {
        this.unstored--;
        this.storedWaiters.shift()?.();
      });
    stored.catch(() => undefined);
    this.stored.push(stored);
  }
}
