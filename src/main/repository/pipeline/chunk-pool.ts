/**
 * Worker threads that read, chunk, hash and compress, so both cores work and the main thread
 * (which walks, deduplicates, encrypts and writes packs) stays responsive. Jobs in flight are
 * bounded, which bounds memory: every submit waits for a free slot first.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { ChunkerParams } from '../chunker/chunker';
import { asError } from '../errors';
import { WORKER_SOURCE } from './worker-source';

export interface HashedChunk {
  id: Buffer;
  codec: number;
  payload: Buffer;
  rawLength: number;
}

export interface FilePiece {
  chunks: HashedChunk[];
  /** Offset to continue from; `eof` when the file is done. */
  next: number;
  eof: boolean;
}

export type SmallFileResult = { chunks: HashedChunk[] } | { error: string };

export interface RestoreBlob {
  pack: string;
  salt: string;
  id: string;
  offset: number;
  length: number;
  rawLength: number;
}

export interface RestoreFileJob {
  /** Bytes when the path is not valid UTF-8. */
  path: string | Uint8Array;
  temp: string | Uint8Array;
  blobs: RestoreBlob[];
  size: number;
  mode: number;
  uid: number;
  gid: number;
  chown: boolean;
  /** Seconds since the epoch (fractional). */
  mtime: number;
}

/** `damaged`: the file's data could not be read from the repository (the rest of a restore goes on). */
export type RestoreFileResult = { bytes: number } | { error: string; damaged?: boolean };

interface RawChunk {
  id: Uint8Array;
  codec: number;
  payload: Uint8Array;
  rawLength: number;
}

/** A chunk whose payload a worker left in the shared piece it was given: bytes [at, at + length). */
interface SharedChunk {
  id: Uint8Array;
  codec: number;
  at: number;
  length: number;
  rawLength: number;
}

/** Chunks whose payloads are views into a shared piece; `release` gives the piece back once they are stored. */
export interface SharedResult<T> {
  value: T;
  release: () => void;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  worker: number;
  /** Bytes the job carries (Infinity for jobs that read files or blobs themselves). */
  weight: number;
  /** File jobs report where the next piece starts before they finish. */
  onCut?: (cut: Cut) => void;
}

interface Cut {
  next: number;
  eof: boolean;
  /** File pieces: bytes from `next` on that were scanned and hold no boundary (the next job's `resume`). */
  scanned?: number;
  /** Stream pieces: the bytes after the last cut, which start the next piece. */
  tail?: Uint8Array;
}

type WorkerMessage = { seq: number; result?: unknown; error?: string; cut?: Cut };

/** Codec value a worker returns for a chunk the repository already holds (no payload). */
export const KNOWN_CHUNK = 255;

const ID = 32;
const HEX_DIGIT = new Uint8Array(128);
for (let i = 0; i < 16; i++) {
  HEX_DIGIT['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_DIGIT['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/**
 * Ids (64 hex digits) as one sorted run of 32-byte values in shared memory, for the workers' binary
 * search. Built when a backup starts, on the thread that serves the console, so it must not stall
 * it on a large repository: sorting the hex strings took ~1.1–1.4 s for a million ids. Ids are HMAC
 * outputs, spread evenly, so a counting sort by their first two bytes leaves buckets of a few ids
 * each, finished by insertion sort (any spread stays correct, only slower).
 */
export function sortedIds(ids: Iterable<string>): SharedArrayBuffer {
  let raw = new Uint8Array(ID * 4096);
  let count = 0;
  for (const id of ids) {
    if ((count + 1) * ID > raw.length) {
      const grown = new Uint8Array(raw.length * 2);
      grown.set(raw.subarray(0, count * ID));
      raw = grown;
    }
    const at = count++ * ID;
    for (let j = 0; j < ID; j++) raw[at + j] = (HEX_DIGIT[id.charCodeAt(2 * j) & 127]! << 4) | HEX_DIGIT[id.charCodeAt(2 * j + 1) & 127]!;
  }
  const starts = new Uint32Array(65537);
  for (let i = 0; i < count; i++) starts[((raw[i * ID]! << 8) | raw[i * ID + 1]!) + 1]!++;
  for (let b = 1; b <= 65536; b++) starts[b]! += starts[b - 1]!;
  const order = new Uint32Array(count);
  const next = starts.slice(0, 65536);
  for (let i = 0; i < count; i++) order[next[(raw[i * ID]! << 8) | raw[i * ID + 1]!]!++] = i;
  for (let b = 0; b < 65536; b++) if (starts[b + 1]! - starts[b]! > 1) insertionSort(raw, order, starts[b]!, starts[b + 1]!);
  const shared = new SharedArrayBuffer(count * ID);
  const out = new Uint32Array(shared);
  const words = new Uint32Array(raw.buffer, 0, count * (ID / 4));
  for (let i = 0; i < count; i++) for (let w = 0, from = order[i]! * (ID / 4); w < ID / 4; w++) out[i * (ID / 4) + w] = words[from + w]!;
  return shared;
}

/**
 * Ids the workers skip compressing, as sorted runs (sortedIds) searched one after the other: a
 * repository keeps a large run laid out once and a small one of what it indexed since.
 */
export interface KnownIds {
  runs: SharedArrayBuffer[];
}

/**
 * Two sorted runs of ids (as sortedIds lays them out) as one: what a repository knew at its last
 * backup and the few ids indexed since, without decoding and sorting the million it may hold again
 * (sortedIds takes ~0.5 s for a million on this machine's main thread; merging a few hundred into
 * them is a binary search each and one copy).
 */
export function mergeSortedIds(held: SharedArrayBuffer, added: SharedArrayBuffer): SharedArrayBuffer {
  const a = new Uint8Array(held);
  const b = new Uint8Array(added);
  const merged = new SharedArrayBuffer(a.length + b.length);
  const out = new Uint8Array(merged);
  let from = 0;
  let at = 0;
  for (let r = 0; r < b.length; r += ID) {
    // The first record of `a` (from `from` on) above this one.
    let lo = from / ID;
    let hi = a.length / ID;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareAt(a, mid * ID, b, r) <= 0) lo = mid + 1;
      else hi = mid;
    }
    out.set(a.subarray(from, lo * ID), at);
    at += lo * ID - from;
    from = lo * ID;
    out.set(b.subarray(r, r + ID), at);
    at += ID;
  }
  out.set(a.subarray(from), at);
  return merged;
}

/** Orders the 32-byte records at `xi` in `x` and `yi` in `y` byte by byte (the order the workers search in). */
function compareAt(x: Uint8Array, xi: number, y: Uint8Array, yi: number): number {
  for (let k = 0; k < ID; k++) {
    const d = x[xi + k]! - y[yi + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Sorts order[from..to) by the records they name (all share their first two bytes). */
function insertionSort(raw: Uint8Array, order: Uint32Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const record = order[i]!;
    let j = i - 1;
    while (j >= from && compareAt(raw, order[j]! * ID, raw, record * ID) > 0) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = record;
  }
}

const asRuns = (ids: Iterable<string> | KnownIds): SharedArrayBuffer[] => ('runs' in ids ? ids.runs : [sortedIds(ids)]).filter((run) => run.byteLength > 0);
const toBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const toChunk = (c: RawChunk): HashedChunk => ({ id: toBuffer(c.id), codec: c.codec, payload: toBuffer(c.payload), rawLength: c.rawLength });
const inPiece = (piece: Uint8Array) => (c: SharedChunk): HashedChunk => ({ id: toBuffer(c.id), codec: c.codec, payload: Buffer.from(piece.buffer, piece.byteOffset + c.at, c.length), rawLength: c.rawLength });

/** Spare shared buffers a pool keeps at most (a stream's pieces in flight are bounded well below). */
const MAX_SPARE_BYTES = 192 * 1024 * 1024;

/**
 * A pool starts one worker and adds the next (up to its size) only when a job would wait behind
 * busy workers with more than this many bytes of work in flight, or when the job reads files or
 * blobs itself (local backups and restores: heavy by nature). A worker costs ~90 ms of CPU to
 * start and its heap's page faults; an incremental device backup's work (a 15 MB dump in two
 * pieces, a batch of changed files) is done by one in time, while a longer stream (a first
 * backup's models, a larger dump) posts its second 8 MiB piece, with the first one's tail in front,
 * while the first is still being hashed, and gets the second worker then (decision 005).
 */
export const GROW_AFTER_BYTES = 16 * 1024 * 1024;

export class ChunkPool {
  private readonly workers: Worker[] = [];
  private readonly load: number[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: (() => void)[] = [];
  private seq = 0;
  private failure: Error | null = null;
  /**
   * Shared piece and batch buffers whose chunks are stored, by size, filled again instead of
   * allocated: a fresh buffer costs its page faults on first touch (~0.55 ms per MiB here, as much
   * as copying it five times), so every buffer the run needed at its peak is kept for reuse.
   */
  private readonly spares = new Map<number, SharedArrayBuffer[]>();
  private spareBytes = 0;
  /** What a worker is started with (the known ids as last set, for workers started later). */
  private readonly workerData: { mac: Uint8Array; enc: Uint8Array; gear: Int32Array; chunker: ChunkerParams; known: SharedArrayBuffer[] };
  private referenced = true;

  constructor(
    /** `known`: ids, or runs of them already laid out by sortedIds. */
    keys: { mac: Buffer; enc?: Buffer; gear: Int32Array; chunker: ChunkerParams; known?: Iterable<string> | KnownIds },
    /** Workers at most; one starts now, the others as the work asks for them (GROW_AFTER_BYTES). */
    private readonly size = Math.max(1, Math.min(4, availableParallelism())),
    private readonly maxInFlight = size + 1,
  ) {
    this.workerData = { mac: new Uint8Array(keys.mac), enc: new Uint8Array(keys.enc ?? Buffer.alloc(32)), gear: new Int32Array(keys.gear), chunker: keys.chunker, known: keys.known ? asRuns(keys.known) : [] };
    this.start();
  }

  /** Workers started so far. */
  get started(): number {
    return this.workers.length;
  }

  private start(): number {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: this.workerData });
    worker.on('message', (msg: WorkerMessage) => this.settle(msg));
    worker.on('error', (error) => this.fail(error));
    if (!this.referenced) worker.unref();
    this.workers.push(worker);
    this.load.push(0);
    return this.workers.length - 1;
  }

  private settle(msg: WorkerMessage): void {
    const entry = this.pending.get(msg.seq);
    if (!entry) return;
    if (msg.cut) {
      entry.onCut?.(msg.cut);
      return;
    }
    this.pending.delete(msg.seq);
    this.load[entry.worker]!--;
    this.waiting.shift()?.();
    if (msg.error !== undefined) entry.reject(new Error(msg.error));
    else entry.resolve(msg.result);
  }

  private fail(error: unknown): void {
    this.failure = asError(error);
    for (const entry of this.pending.values()) entry.reject(this.failure);
    this.pending.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  /**
   * Waits for a slot, posts the job to the least busy worker (a new one when all are busy with
   * enough work, see GROW_AFTER_BYTES), returns a handle on its result.
   */
  private async post<T>(
    message: Record<string, unknown>,
    weight: number,
    onCut?: (cut: Cut) => void,
  ): Promise<{ result: Promise<T> }> {
    while (this.pending.size >= this.maxInFlight && !this.failure) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.failure) throw this.failure;
    const seq = this.seq++;
    let index = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.load[i]! < this.load[index]!) index = i;
    if (this.load[index]! > 0 && this.workers.length < this.size) {
      let inFlight = weight;
      for (const entry of this.pending.values()) inFlight += entry.weight;
      if (inFlight > GROW_AFTER_BYTES) index = this.start();
    }
    this.load[index]!++;
    const result = new Promise<T>((resolve, reject) => this.pending.set(seq, { resolve: resolve as (v: unknown) => void, reject, worker: index, weight, ...(onCut ? { onCut } : {}) }));
    this.workers[index]!.postMessage({ ...message, seq });
    return { result };
  }

  /**
   * Reads, chunks, hashes and compresses the next piece of a local file from `offset`. `cut`
   * settles as soon as the piece's chunk boundaries are known (the next piece can start then, with
   * `resume` = the cut's `scanned`: bytes already known to hold no boundary).
   */
  async filePiece(path: string | Uint8Array, offset: number, resume = 0): Promise<{ cut: Promise<{ next: number; eof: boolean; scanned: number }>; result: Promise<FilePiece> }> {
    let onCut!: (cut: Cut) => void;
    const cutKnown = new Promise<Cut>((resolve) => (onCut = resolve));
    const { result } = await this.post<{ chunks: RawChunk[]; next: number; eof: boolean }>({ type: 'file', path, offset, resume }, Infinity, onCut);
    const piece = result.then((r) => ({ chunks: r.chunks.map(toChunk), next: r.next, eof: r.eof }));
    // A job that fails before cutting settles `cut` through its result.
    const cut = Promise.race([cutKnown, piece.then((p): Cut => ({ next: p.next, eof: p.eof }))]).then((c) => ({ next: c.next, eof: c.eof, scanned: c.scanned ?? 0 }));
    return { cut, result: piece };
  }

  /**
   * A buffer in shared memory for a stream piece or a batch of streamed files (one whose chunks
   * were stored, when there is one). Shared, not transferred: a transferred buffer counts as fresh
   * external memory on every crossing, and V8 collects by external memory — a 214 MB device pull
   * moved ~430 MB across (pieces back, payloads in), which set off a third of its collections.
   */
  buffer(bytes: number): Buffer {
    const spare = this.spares.get(bytes)?.pop();
    if (spare) this.spareBytes -= bytes;
    return Buffer.from(spare ?? new SharedArrayBuffer(bytes));
  }

  /** A piece whose chunks are stored: kept for the next (up to MAX_SPARE_BYTES in all). */
  private recycle(data: Uint8Array): void {
    const shared = data.buffer;
    if (!(shared instanceof SharedArrayBuffer) || this.spareBytes + shared.byteLength > MAX_SPARE_BYTES) return;
    const list = this.spares.get(shared.byteLength) ?? [];
    if (list.includes(shared)) return;
    list.push(shared);
    this.spares.set(shared.byteLength, list);
    this.spareBytes += shared.byteLength;
  }

  /** A result whose payloads live in `data`: `release` (once they are stored) makes `data` a spare. */
  private shared<T>(data: Uint8Array, value: T): SharedResult<T> {
    let released = false;
    return {
      value,
      release: () => {
        if (!released) this.recycle(data);
        released = true;
      },
    };
  }

  /**
   * Cuts, hashes and compresses a piece of a stream; `data` must be a view of `buffer()` (shared
   * memory). The payloads come back as views into it (compressed in place): call `release` once
   * they are stored, and do not write to `data` before. Unless `final`, the piece is cut at every
   * boundary it holds: `tail` (a copy of the rest, which holds none) settles first and must start
   * the next piece, with `resume` = its length.
   */
  async streamPiece(data: Uint8Array, final: boolean, resume = 0): Promise<{ tail: Promise<Buffer>; result: Promise<SharedResult<{ chunks: HashedChunk[] }>> }> {
    if (!(data.buffer instanceof SharedArrayBuffer)) throw new TypeError('streamPiece needs a view of buffer()');
    let onCut!: (cut: Cut) => void;
    const cutKnown = new Promise<Cut>((resolve) => (onCut = resolve));
    const { result } = await this.post<{ chunks: SharedChunk[] }>({ type: 'piece', data, final, resume }, data.length, onCut);
    const piece = result.then((r) => this.shared(data, { chunks: r.chunks.map(inPiece(data)) }));
    // A job that fails before cutting rejects `tail` through its result.
    const tail = Promise.race([cutKnown, piece.then(() => cutKnown)]).then((c) => toBuffer(c.tail ?? new Uint8Array(0)));
    return { tail, result: piece };
  }

  /**
   * Hashes and compresses small streamed files given back to back: file i is data[ends[i-1], ends[i]).
   * `data` must be a view of `buffer()`; payloads come back in it, as for streamPiece.
   */
  async smallBytes(data: Uint8Array, ends: number[]): Promise<{ result: Promise<SharedResult<{ chunks: HashedChunk[] }[]>> }> {
    if (!(data.buffer instanceof SharedArrayBuffer)) throw new TypeError('smallBytes needs a view of buffer()');
    const { result } = await this.post<{ files: { chunks: SharedChunk[] }[] }>({ type: 'bytes', data, ends }, data.length);
    return { result: result.then((r) => this.shared(data, r.files.map((f) => ({ chunks: f.chunks.map(inPiece(data)) })))) };
  }

  /** Reads and processes a batch of small local files (each below the minimum chunk size). */
  async smallFiles(paths: (string | Uint8Array)[]): Promise<{ result: Promise<SmallFileResult[]> }> {
    const { result } = await this.post<{ files: ({ chunks: RawChunk[] } | { error: string })[] }>({ type: 'small', paths }, Infinity);
    return { result: result.then((r) => r.files.map((f) => ('error' in f ? f : { chunks: f.chunks.map(toChunk) }))) };
  }

  /** Restores files of a local repository rooted at `root` (see restore-worker-source.ts). */
  async restoreFiles(root: string, files: RestoreFileJob[]): Promise<{ result: Promise<RestoreFileResult[]> }> {
    const { result } = await this.post<{ files: RestoreFileResult[] }>({ type: 'restore', root, files }, Infinity);
    return { result: result.then((r) => r.files) };
  }

  /**
   * Reads, decrypts, decompresses and verifies blobs of a local repository rooted at `root`, in
   * order (neighbours in a pack with one read); the plaintexts come back transferred.
   */
  async readBlobs(root: string, blobs: RestoreBlob[]): Promise<{ result: Promise<Buffer[]> }> {
    const { result } = await this.post<{ blobs: Uint8Array[] }>({ type: 'blobs', root, blobs }, Infinity);
    return { result: result.then((r) => r.blobs.map(toBuffer)) };
  }

  /** SHA-256 of the blobs' plaintext in blocks of `blockSize` (the last one what is left), read by one worker from the local repository at `root`. */
  async blockHashes(root: string, blobs: RestoreBlob[], blockSize: number): Promise<{ result: Promise<string[]> }> {
    const { result } = await this.post<{ hashes: string[] }>({ type: 'hashes', root, blobs, blockSize }, Infinity);
    return { result: result.then((r) => r.hashes) };
  }

  /** Whether a worker failed: the pool cannot be used again. */
  get broken(): boolean {
    return this.failure !== null;
  }

  /** The ids the workers skip compressing (a pool kept between backups: what the repository holds now). */
  setKnown(ids: Iterable<string> | KnownIds): void {
    const known = asRuns(ids);
    this.workerData.known = known;
    for (const worker of this.workers) worker.postMessage({ type: 'known', known });
  }

  /** Idle workers do not keep the process alive (a kept pool waits for the next backup: `ref` again). */
  unref(): void {
    this.referenced = false;
    for (const worker of this.workers) worker.unref();
  }

  ref(): void {
    this.referenced = true;
    for (const worker of this.workers) worker.ref();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
