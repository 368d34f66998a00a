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

export function gearTable(chunkerKey: Buffer): Uint32Array {
  const cipher = createCipheriv('aes-256-ctr', chunkerKey, Buffer.alloc(16));
  const stream = cipher.update(Buffer.alloc(256 * 4));
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) table[i] = stream.readUInt32LE(i * 4);
  return table;
}

const topBits = (n: number): number => (n >= 32 ? 0xffffffff : ~(0xffffffff >>> n) >>> 0);

/**
 * Finds the end of the first chunk in data[0..length). Returns the cut offset, or -1 when more data
 * is needed (`final` false and no boundary before the end of the data).
 */
export function findBoundary(data: Uint8Array, length: number, gear: Uint32Array, p: ChunkerParams, final: boolean): number {
  if (length <= p.min) return final ? length : -1;
  const bits = Math.round(Math.log2(p.avg));
  const maskS = topBits(bits + 2);
  const maskL = topBits(bits - 2);
  const end = Math.min(length, p.max);
  const normal = Math.min(end, p.avg);
  let h = 0;
  // Warm the 32-byte window up so the decision at `min` depends on content only.
  let i = p.min - 32;
  for (; i < p.min; i++) h = ((h << 1) + gear[data[i]!]!) >>> 0;
  for (; i < normal; i++) {
    h = ((h << 1) + gear[data[i]!]!) >>> 0;
    if ((h & maskS) === 0) return i + 1;
  }
  for (; i < end; i++) {
    h = ((h << 1) + gear[data[i]!]!) >>> 0;
    if ((h & maskL) === 0) return i + 1;
  }
  if (end === p.max) return p.max;
  return final ? length : -1;
}

/**
 * Streaming chunker: push() buffers of any size, get whole chunks back (each a fresh Buffer that
 * the caller may transfer to a worker). Holds at most `max` bytes.
 */
export class Chunker {
  private buffer: Buffer;
  private length = 0;

  constructor(
    private readonly gear: Uint32Array,
    private readonly params: ChunkerParams,
  ) {
    this.buffer = Buffer.allocUnsafe(params.max);
  }

  push(data: Buffer, out: Buffer[] = []): Buffer[] {
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(data.length - offset, this.buffer.length - this.length);
      data.copy(this.buffer, this.length, offset, offset + n);
      this.length += n;
      offset += n;
      this.drain(false, out);
    }
    return out;
  }

  /** Returns the last chunks of the stream and resets for the next one. */
  finish(out: Buffer[] = []): Buffer[] {
    this.drain(true, out);
    this.length = 0;
    return out;
  }

  private drain(final: boolean, out: Buffer[]): void {
    while (this.length > 0) {
      const cut = findBoundary(this.buffer, this.length, this.gear, this.params, final);
      if (cut < 0) return;
      // An unpooled copy: its ArrayBuffer can be transferred to a worker without detaching others.
      const chunk = Buffer.allocUnsafeSlow(cut);
      this.buffer.copy(chunk, 0, 0, cut);
      out.push(chunk);
      this.buffer.copyWithin(0, cut, this.length);
      this.length -= cut;
    }
  }
}

/** Chunks a buffer that is wholly in memory; each chunk is an unpooled copy (transferable). */
export function splitAll(data: Buffer, gear: Uint32Array, params: ChunkerParams): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset < data.length) {
    const rest = data.subarray(offset);
    const cut = findBoundary(rest, rest.length, gear, params, true);
    const chunk = Buffer.allocUnsafeSlow(cut);
    rest.copy(chunk, 0, 0, cut);
    out.push(chunk);
    offset += cut;
  }
  return out;
}
