/**
 * Per-blob compression. The codec byte is stored inside the encrypted blob, so the codec can evolve
 * without a format change: 0 = stored, 1 = Brotli (quality 1). Reserved: 2 = zstd. Brotli q1 was
 * measured to compress as well as zstd -3 at the same speed on this hardware, and it ships in Node
 * (no native addon); see docs/decisions/201-compression-codec.md.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { RepositoryError } from '../errors';

export const CODEC_NONE = 0;
export const CODEC_BROTLI = 1;

/** Bytes tried first: if a sample does not shrink by ~3%, the whole blob is stored as is. */
export const SAMPLE = 64 * 1024;
export const WORTH = 0.97;

function brotli(data: Buffer): Buffer {
  return brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 1, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
}

export function compress(data: Buffer): { codec: number; data: Buffer } {
  if (data.length < 64) return { codec: CODEC_NONE, data };
  if (data.length > SAMPLE * 2) {
    const probe = brotli(data.subarray(0, SAMPLE));
    if (probe.length > SAMPLE * WORTH) return { codec: CODEC_NONE, data };
  }
  const packed = brotli(data);
  if (packed.length > data.length * WORTH) return { codec: CODEC_NONE, data };
  return { codec: CODEC_BROTLI, data: packed };
}

export function decompress(codec: number, data: Buffer, what: string): Buffer {
  if (codec === CODEC_NONE) return data;
  if (codec === CODEC_BROTLI) {
    try {
      return brotliDecompressSync(data);
    } catch {
      throw new RepositoryError('corrupt', `${what}: cannot decompress`);
    }
  }
  throw new RepositoryError('corrupt', `${what}: unknown codec ${codec}`);
}
