/**
 * Per-blob compression. The codec byte is stored inside the encrypted blob, so the codec can evolve
 * without a format change: 0 = stored, 1 = Brotli. Reserved: 2 = zstd. Brotli ships in Node (no
 * native addon); the qualities were chosen by measurement on the benchmark's SQL dump and small
 * text files, see docs/decisions/201-compression-codec.md.
 */
import { brotliCompressSync, brotliDecompressSync, constants } from 'node:zlib';
import { RepositoryError } from '../errors';

export const CODEC_NONE = 0;
export const CODEC_BROTLI = 1;

/** Bytes tried first: if a sample does not shrink by ~3%, the whole blob is stored as is. */
export const SAMPLE = 64 * 1024;
export const WORTH = 0.97;

/**
 * Brotli quality by blob size and by how well a quality-1 probe of its start packed (`probe` =
 * probe output / input; 0 when no probe was made). Small blobs (whole small files, trees) cost a
 * fixed ~20–40 µs per call whatever the quality, so they get quality 5 (ratio 0.125 vs 0.218 at
 * quality 1 on config files). Large ones get quality 4 when the probe shows dense text (an SQL dump:
 * 0.057 vs 0.095 at quality 1, at ~230 MiB/s per core vs ~540), and quality 1 when it shrank to only
 * a fifth or more (a binary pg_dump of numeric rows: 0.275 vs 0.312, for ~2.8× the CPU — not worth a
 * core). See docs/decisions/201-compression-codec.md. Self-contained: its source also runs inside
 * the chunk workers.
 */
export function qualityFor(length: number, probe = 0): number {
  if (length < 32768) return 5;
  return probe > 0.2 ? 1 : 4;
}

function brotli(data: Buffer, quality: number): Buffer {
  return brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });
}

/**
 * Trees (the repository's own JSON) always shrink: no probe, and quality 1 once they are large — a
 * 500-entry directory (125 KB) packs to 0.191 at quality 1 in 0.47 ms vs 0.185 at quality 4 in
 * 0.94 ms, on the main thread, at the end of every backup that changed the directory.
 */
export function treeQuality(length: number): number {
  return length < 32768 ? 5 : 1;
}

export function compress(data: Buffer, kind: 'data' | 'tree' = 'data'): { codec: number; data: Buffer } {
  if (data.length < 64) return { codec: CODEC_NONE, data };
  let quality = treeQuality(data.length);
  if (kind === 'data') {
    let probe = 0;
    if (data.length > SAMPLE * 2) {
      // A fast quality-1 probe: incompressible data (model files) is stored without trying the rest.
      probe = brotli(data.subarray(0, SAMPLE), 1).length / SAMPLE;
      if (probe > WORTH) return { codec: CODEC_NONE, data };
    }
    quality = qualityFor(data.length, probe);
  }
  const packed = brotli(data, quality);
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
