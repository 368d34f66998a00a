import { randomBytes } from 'node:crypto';
import { brotliCompressSync, constants } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CODEC_BROTLI, CODEC_NONE, compress, decompress, SAMPLE } from './codec';

const brotliAt = (data: Buffer, quality: number) => brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: quality, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
const probeRatio = (data: Buffer) => brotliAt(data.subarray(0, SAMPLE), 1).length / SAMPLE;

/** SQL-like text: what a plain-text dump looks like (packs to a tenth at quality 1). */
const dense = (bytes: number) => Buffer.from(Array.from({ length: Math.ceil(bytes / 40) }, (_, i) => `INSERT INTO t VALUES (${i}, 'v${i % 97}');\n`).join('')).subarray(0, bytes);
/** Random hex digits: shrinks to about half, like a binary dump of numeric rows. */
const loose = (bytes: number) => Buffer.from(randomBytes(bytes / 2).toString('hex'));

describe('blob compression', () => {
  it('stores incompressible blobs as they are, after a quality-1 probe of their start', () => {
    const data = randomBytes(1024 * 1024);
    expect(compress(data)).toEqual({ codec: CODEC_NONE, data });
  });

  it('spends quality 4 on large blobs that pack densely and quality 1 on those that only halve', () => {
    const text = dense(1024 * 1024);
    const hex = loose(1024 * 1024);
    expect(probeRatio(text)).toBeLessThan(0.2);
    expect(probeRatio(hex)).toBeGreaterThan(0.2);
    const packedText = compress(text);
    expect(packedText.codec).toBe(CODEC_BROTLI);
    expect(packedText.data.equals(brotliAt(text, 4))).toBe(true);
    const packedHex = compress(hex);
    expect(packedHex.codec).toBe(CODEC_BROTLI);
    expect(packedHex.data.equals(brotliAt(hex, 1))).toBe(true);
    for (const [packed, original] of [[packedText, text], [packedHex, hex]] as const) expect(decompress(packed.codec, packed.data, 'blob').equals(original)).toBe(true);
  });

  it('packs large trees at quality 1 without a probe, small ones at quality 5', () => {
    const tree = (entries: number) => Buffer.from(JSON.stringify({ nodes: Array.from({ length: entries }, (_, i) => ({ name: `asset-${i}.json`, type: 'file', mode: 420, size: 200 + i, content: [randomBytes(32).toString('hex')] })) }));
    const large = tree(500);
    const small = tree(40);
    expect(large.length).toBeGreaterThan(32768);
    expect(small.length).toBeLessThan(32768);
    for (const [data, quality] of [[large, 1], [small, 5]] as const) {
      const packed = compress(data, 'tree');
      expect(packed.codec).toBe(CODEC_BROTLI);
      expect(packed.data.equals(brotliAt(data, quality))).toBe(true);
      expect(decompress(packed.codec, packed.data, 'tree').equals(data)).toBe(true);
    }
    // The same bytes as data get the probe and quality 4.
    expect(compress(large).data.equals(brotliAt(large, 4))).toBe(true);
  });

  it('gives small blobs (files, trees) quality 5, whatever they hold', () => {
    for (const data of [dense(20_000), loose(20_000)]) {
      const packed = compress(data);
      expect(packed.codec).toBe(CODEC_BROTLI);
      expect(packed.data.equals(brotliAt(data, 5))).toBe(true);
    }
    const tiny = Buffer.from('short');
    expect(compress(tiny)).toEqual({ codec: CODEC_NONE, data: tiny });
  });

  it('refuses an unknown codec or a damaged payload with a corruption error', () => {
    expect(() => decompress(7, Buffer.from('x'), 'data blob 1234')).toThrow(/data blob 1234: unknown codec 7/);
    expect(() => decompress(CODEC_BROTLI, Buffer.from('not brotli at all'), 'data blob 1234')).toThrow(/cannot decompress/);
  });
});
