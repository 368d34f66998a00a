import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Chunker, DEFAULT_CHUNKER, gearTable } from './chunker';

const SMALL = { min: 2048, avg: 8192, max: 65536 };

function chunkAll(data: Buffer, key: Buffer, params = SMALL, piece = 7777): Buffer[] {
  const chunker = new Chunker(gearTable(key), params);
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) chunker.push(data.subarray(i, i + piece), out);
  return chunker.finish(out);
}

describe('chunker', () => {
  const key = randomBytes(32);
  const data = randomBytes(1 << 20);

  it('reassembles exactly and respects min/max', () => {
    const chunks = chunkAll(data, key);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    for (const c of chunks.slice(0, -1)) {
      expect(c.length).toBeGreaterThanOrEqual(SMALL.min);
      expect(c.length).toBeLessThanOrEqual(SMALL.max);
    }
    const mean = data.length / chunks.length;
    expect(mean).toBeGreaterThan(SMALL.avg / 2);
    expect(mean).toBeLessThan(SMALL.avg * 2);
  });

  it('does not depend on how the stream is split into buffers', () => {
    const a = chunkAll(data, key, SMALL, 1000).map((c) => c.length);
    const b = chunkAll(data, key, SMALL, 300_000).map((c) => c.length);
    expect(a).toEqual(b);
  });

  it('resynchronizes after an insertion, so most chunks are shared', () => {
    const edited = Buffer.concat([data.subarray(0, 500_000), Buffer.from('inserted!'), data.subarray(500_000)]);
    const set = new Set(chunkAll(data, key).map((c) => c.toString('base64')));
    const after = chunkAll(edited, key);
    const shared = after.filter((c) => set.has(c.toString('base64'))).length;
    expect(shared).toBeGreaterThan(after.length - 4);
  });

  it('cuts differently under another key, so boundaries do not reveal known files', () => {
    const a = chunkAll(data, key).map((c) => c.length);
    const b = chunkAll(data, randomBytes(32)).map((c) => c.length);
    expect(a).not.toEqual(b);
  });

  it('handles realistic parameters on zeros (forced max cuts)', () => {
    const zeros = Buffer.alloc(DEFAULT_CHUNKER.max * 2 + 100);
    const chunks = chunkAll(zeros, key, DEFAULT_CHUNKER, 1 << 20);
    expect(Buffer.concat(chunks).length).toBe(zeros.length);
    expect(chunks.every((c) => c.length <= DEFAULT_CHUNKER.max)).toBe(true);
  });
});
