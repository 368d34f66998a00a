/**
 * Content-defined chunking, FastCDC style (normalized chunking, level 2) over a 32-bit gear hash:
 *   h = ((h << 1) + gear[byte]) mod 2^32
 * so h at byte i depends only on bytes i-31..i and boundaries resynchronize after an edit. The gear
 * table is the AES-256-CTR keystream of the repository's chunker key, so boundaries (and chunk
 * sizes) of a known file cannot be predicted without the key. Before `avg` a cut needs the top
 * (bits+2) hash bits zero, after it the top (bits-2); `min` bytes are skipped and `max` forces a cut.
 */
import { createCipheriv } from 'node:crypto';

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = { min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 };

export function validateChunkerParams(p: ChunkerParams): void {
  const bits = Math.log2(p.avg);
  if (!Number.isInteger(bits) || bits < 6 || bits > 28 || p.min < 64 || p.min >= p.avg || p.max <= p.avg || p.max > 64 * 1024 * 1024) {
    throw new Error(`invalid chunker parameters ${JSON.stringify(p)}: avg must be a power of two, min < avg < max <= 64 MiB`);
  }
}

/** The gear table (256 u32 from the keystream), held as int32 for the hash loop. */
export function gearTable(chunkerKey: Buffer): Int32Array {
  const cipher = createCipheriv('aes-256-ctr', chunkerKey, Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(256 * 4));
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = stream.readInt32LE(i * 4);
  return table;
}

/**
 * Finds the end of the chunk that starts at data[start] with `length` bytes available. Returns the
 * cut length, or -1 when more data is needed (`final` false and no boundary yet). Positions below
 * `resume` are known to hold no boundary (a previous call saw them), so scanning restarts there.
 * `scan`, when given, does the scanning instead of the loop below (the chunk workers pass the
 * WebAssembly one, see gearScanner): from `from` to the stops, over the bytes `data` stands for,
 * returning the position after the boundary or -1 — positions are indexes into `data`.
 * Self-contained on purpose: its source text also runs inside the chunk workers.
 */
export function findBoundary(
  data: Uint8Array,
  start: number,
  length: number,
  gear: Int32Array,
  min: number,
  avg: number,
  max: number,
  final: boolean,
  resume: number,
  scan?: (from: number, stopS: number, stopL: number, maskS: number, maskL: number) => number,
): number {
  if (length <= min) return final ? length : -1;
  const bits = Math.round(Math.log2(avg));
  // int32 arithmetic throughout (| 0, not >>> 0) keeps V8 in small integers: twice as fast.
  const maskS = ~(0xffffffff >>> (bits + 2)) | 0;
  const maskL = ~(0xffffffff >>> (bits - 2)) | 0;
  const end = Math.min(length, max);
  const normal = Math.min(end, avg);
  const from = Math.max(min, Math.min(resume, end));
  if (scan) {
    const cut = scan(start + from, start + normal, start + end, maskS, maskL);
    if (cut >= 0) return cut - start;
    return end === max ? max : final ? length : -1;
  }
  let h = 0;
  // Warm the 32-byte window up so the decision at `from` depends on content only.
  let i = start + from - 32;
  const warm = start + from;
  const stopS = start + normal;
  const stopL = start + end;
  for (; i < warm; i++) h = ((h << 1) + gear[data[i]!]!) | 0;
  for (; i < stopS; i++) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & maskS) === 0) return i + 1 - start;
  }
  for (; i < stopL; i++) {
    h = ((h << 1) + gear[data[i]!]!) | 0;
    if ((h & maskL) === 0) return i + 1 - start;
  }
  if (end === max) return max;
  return final ? length : -1;
}

/**
 * The scan of findBoundary in WebAssembly (gear.wat): `load` copies the bytes to cut into the
 * module's memory once; `scan` is then findBoundary's `scan` for them (the chunk workers cut with
 * it). Self-contained on purpose, like findBoundary: its source text runs inside the workers.
 */
export function gearScanner(wasmBase64: string, gear: Int32Array): {
  load: (data: Uint8Array, length: number) => void;
  scan: (from: number, stopS: number, stopL: number, maskS: number, maskL: number) => number;
} {
  const BASE = 1024;
  // Node's WebAssembly global (its types come with the DOM library, which the main process does not load).
  const wasm = (globalThis as unknown as { WebAssembly: { Instance: new (module: unknown) => { exports: unknown }; Module: new (bytes: Uint8Array) => unknown } }).WebAssembly;
  const instance = new wasm.Instance(new wasm.Module(Buffer.from(wasmBase64, 'base64')));
  const exports = instance.exports as {
    mem: { buffer: ArrayBuffer; grow: (pages: number) => number };
    scan: (i: number, stopS: number, stopL: number, maskS: number, maskL: number) => number;
  };
  const memory = exports.mem;
  new Int32Array(memory.buffer, 0, 256).set(gear);
  return {
    load(data, length) {
      const pages = Math.ceil((BASE + length) / 65536) - memory.buffer.byteLength / 65536;
      if (pages > 0) memory.grow(pages);
      // Buffer#fill is one memcpy; set() from a piece in shared memory copies with relaxed atomics (see copyInto).
      if (length > 0) Buffer.from(memory.buffer, BASE, length).fill(data.subarray(0, length));
    },
    scan(from, stopS, stopL, maskS, maskL) {
      const cut = exports.scan(BASE + from, BASE + stopS, BASE + stopL, maskS, maskL);
      return cut < 0 ? -1 : cut - BASE;
    },
  };
}

/**
 * Streaming chunker: push() buffers of any size, get whole chunks back (each an unpooled copy that
 * may be transferred to a worker). Holds at most 2 x max bytes; each byte is copied about twice.
 */
export class Chunker {
  private readonly buffer: Buffer;
  private start = 0;
  private length = 0;
  private scanned = 0;

  constructor(
    private readonly gear: Int32Array,
    private readonly params: ChunkerParams,
  ) {
    this.buffer = Buffer.allocUnsafe(params.max * 2);
  }

  push(data: Buffer, out: Buffer[] = []): Buffer[] {
    let offset = 0;
    while (offset < data.length) {
      if (this.start + this.length === this.buffer.length) {
        this.buffer.copyWithin(0, this.start, this.start + this.length);
        this.start = 0;
      }
      const n = Math.min(data.length - offset, this.buffer.length - this.start - this.length);
      data.copy(this.buffer, this.start + this.length, offset, offset + n);
      this.length += n;
      offset += n;
      this.drain(false, out);
    }
    return out;
  }

  /** Returns the last chunks of the stream and resets for the next one. */
  finish(out: Buffer[] = []): Buffer[] {
    this.drain(true, out);
    this.start = 0;
    this.length = 0;
    this.scanned = 0;
    return out;
  }

  private drain(final: boolean, out: Buffer[]): void {
    const { min, avg, max } = this.params;
    while (this.length > 0) {
      const cut = findBoundary(this.buffer, this.start, this.length, this.gear, min, avg, max, final, this.scanned);
      if (cut < 0) {
        this.scanned = this.length;
        return;
      }
      const chunk = Buffer.allocUnsafeSlow(cut);
      this.buffer.copy(chunk, 0, this.start, this.start + cut);
      out.push(chunk);
      this.start += cut;
      this.length -= cut;
      this.scanned = 0;
    }
    if (this.length === 0) this.start = 0;
  }
}

/** Chunks a buffer that is wholly in memory; each chunk is an unpooled copy (transferable). */
export function splitAll(data: Buffer, gear: Int32Array, params: ChunkerParams): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const cut = findBoundary(data, offset, data.length - offset, gear, params.min, params.avg, params.max, true, 0);
    const chunk = Buffer.allocUnsafeSlow(cut);
    data.copy(chunk, 0, offset, offset + cut);
    out.push(chunk);
    offset += cut;
  }
  return out;
}
