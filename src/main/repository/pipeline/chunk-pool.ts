/**
 * Worker threads that hash and compress chunks, so both cores work and the main thread (which
 * reads, chunks, encrypts and writes packs) stays responsive. In-flight chunks are bounded, which
 * bounds memory: run() waits for a free slot before it accepts a chunk.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { WORKER_SOURCE } from './worker-source';
import { asError } from '../errors';

export interface HashedChunk {
  id: Buffer;
  codec: number;
  payload: Buffer;
  rawLength: number;
}

interface Pending {
  resolve: (value: HashedChunk) => void;
  reject: (error: unknown) => void;
  rawLength: number;
}

export class ChunkPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: (() => void)[] = [];
  private seq = 0;
  private next = 0;
  private failure: Error | null = null;

  constructor(
    mac: Buffer,
    size = Math.max(1, Math.min(4, availableParallelism())),
    private readonly maxInFlight = size * 3,
  ) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { mac: new Uint8Array(mac) } });
      worker.on('message', (msg: { seq: number; id: Uint8Array; codec: number; payload: Uint8Array }) => this.settle(msg));
      worker.on('error', (error) => this.fail(error));
      this.workers.push(worker);
    }
  }

  private settle(msg: { seq: number; id: Uint8Array; codec: number; payload: Uint8Array }): void {
    const entry = this.pending.get(msg.seq);
    if (!entry) return;
    this.pending.delete(msg.seq);
    this.waiting.shift()?.();
    entry.resolve({
      id: Buffer.from(msg.id.buffer, msg.id.byteOffset, msg.id.byteLength),
      codec: msg.codec,
      payload: Buffer.from(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength),
      rawLength: entry.rawLength,
    });
  }

  private fail(error: unknown): void {
    this.failure = asError(error);
    for (const entry of this.pending.values()) entry.reject(error);
    this.pending.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  /**
   * Waits for a free slot, then hands `chunk` (its ArrayBuffer is transferred: do not use it after)
   * to a worker. Resolves to a handle on the result (not the result: callers keep several in flight).
   */
  async submit(chunk: Buffer): Promise<{ result: Promise<HashedChunk> }> {
    while (this.pending.size >= this.maxInFlight && !this.failure) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.failure) throw this.failure;
    const seq = this.seq++;
    const worker = this.workers[this.next++ % this.workers.length]!;
    const result = new Promise<HashedChunk>((resolve, reject) => this.pending.set(seq, { resolve, reject, rawLength: chunk.length }));
    const view = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    worker.postMessage({ seq, chunk: view }, [view.buffer as ArrayBuffer]);
    return { result };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
