import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Chunker, DEFAULT_CHUNKER, findBoundary, gearScanner, gearTable } from './chunker';
import { GEAR_WASM } from './gear-wasm';
import { randomBytesFrom } from '../../../../fleet/random';

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
    // Fixed bytes and key: on random ones a cut moved by an edit drags the next few along now and
    // then (300 random trials: one chunk differed in 297, two, three and eight in one each), which
    // made this test fail about once in a hundred runs.
    const [data, key] = [randomBytesFrom('chunker resync data', 1 << 20), randomBytesFrom('chunker resync key', 32)];
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

  it('the WebAssembly scanner cuts exactly where findBoundary does, whatever the start, length, resume and ending', () => {
    const gear = gearTable(randomBytes(32));
    const scanner = gearScanner(GEAR_WASM, gear);
    // Random bytes, a run of zeros (no boundary for a long way: forced cuts at max) and text.
    const text = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `row ${i}\n`).join(''));
    const sample = Buffer.concat([randomBytes(3 << 20), Buffer.alloc(1 << 20), text, randomBytes(1 << 20)]);
    let compared = 0;
    let forced = 0;
    for (const p of [SMALL, { min: 4096, avg: 16384, max: 65536 }, DEFAULT_CHUNKER]) {
      // The whole sample loaded once, as a worker loads a piece; cuts followed from the start.
      scanner.load(sample, sample.length);
      for (let pos = 0; pos < sample.length; ) {
        const length = sample.length - pos;
        const resume = compared % 3 === 0 ? 0 : (compared * 7919) % (2 * p.avg);
        for (const final of [true, false]) {
          expect(findBoundary(sample, pos, length, gear, p.min, p.avg, p.max, final, resume, scanner.scan)).toBe(findBoundary(sample, pos, length, gear, p.min, p.avg, p.max, final, resume));
        }
        // Shorter windows too: no boundary before the end of what is there (-1 unless final).
        const short = Math.min(length, p.min + ((compared * 104_729) % p.max));
        for (const final of [true, false]) {
          expect(findBoundary(sample, pos, short, gear, p.min, p.avg, p.max, final, 0, scanner.scan)).toBe(findBoundary(sample, pos, short, gear, p.min, p.avg, p.max, final, 0));
        }
        const cut = findBoundary(sample, pos, length, gear, p.min, p.avg, p.max, true, 0);
        if (cut === p.max) forced++;
        pos += cut;
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(300);
    expect(forced).toBeGreaterThan(3);
    // A smaller buffer loaded after a larger one: only its own bytes count.
    const small = randomBytes(100_000);
    scanner.load(small, small.length);
    expect(findBoundary(small, 0, small.length, gear, 2048, 8192, 65536, true, 0, scanner.scan)).toBe(findBoundary(small, 0, small.length, gear, 2048, 8192, 65536, true, 0));
  });

  it('gear-wasm.ts is gear.wat compiled', () => {
    const script = fileURLToPath(new URL('../../../../scripts/gear-wasm.mjs', import.meta.url));
    const run = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
