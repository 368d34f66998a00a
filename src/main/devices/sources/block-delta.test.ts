import { createHash, randomBytes } from 'node:crypto';
import { symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Chunker, gearTable } from '../../repository/chunker/chunker';
import { tempDir } from '../../testing/temp-dir';
import { LocalRunner } from '../local-runner';
import { commandText, raw } from '../shell-quote';
import { DeltaUnavailable, blockSizeFor, failed, changedRanges, deviceBlocks, fetchBlocks, parseBlockHashes, planParts, rebuilt } from './block-delta';
import type { DeviceBlocks, Exec } from './block-delta';

/** `bytes` as buffers cut at the given lengths (the rest as one more), as a stream. */
async function* pieces(bytes: Buffer, lengths: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (const length of lengths) {
    yield await Promise.resolve(bytes.subarray(at, Math.min(bytes.length, at + length)));
    at += length;
    if (at >= bytes.length) return;
  }
  if (at < bytes.length) yield bytes.subarray(at);
}

async function concat(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

function blocksOf(bytes: Buffer, blockSize: number): DeviceBlocks {
  const hashes: string[] = [];
  for (let at = 0; at < bytes.length; at += blockSize) hashes.push(createHash('sha256').update(bytes.subarray(at, at + blockSize)).digest('hex'));
  return { blockSize, size: bytes.length, hashes, bytes: 0 };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('block deltas (pure parts)', () => {
  it("says why the device's hashing failed by Python's last line, not its traceback; a file gone is a change", () => {
    const traceback = (last: string) => `Traceback (most recent call last):\n  File "<string>", line 3, in <module>\n${last}\n`;
    const gone = failed('hashing blocks', 1, traceback("FileNotFoundError: [Errno 2] No such file or directory: '/opt/myrvm/models/a.onnx'"));
    expect([gone.message, gone.why]).toEqual(['the file was gone before its blocks were read', 'changed']);
    const denied = failed('hashing blocks', 1, traceback("PermissionError: [Errno 13] Permission denied: '/opt/myrvm/models/a.onnx'"));
    expect([denied.message, denied.why]).toEqual(["hashing blocks failed (exit 1): PermissionError: [Errno 13] Permission denied: '/opt/myrvm/models/a.onnx'", 'failed']);
    expect(failed('hashing blocks', 2, '').message).toBe('hashing blocks failed (exit 2): no error output');
  });

  it('sizes blocks by the file: more hashes for a larger file, within 64 KiB–8 MiB', () => {
    expect(blockSizeFor(4 * 2 ** 20)).toBe(64 * 1024);
    expect(blockSizeFor(256 * 2 ** 20)).toBe(128 * 1024);
    expect(blockSizeFor(4 * 2 ** 30)).toBe(512 * 1024);
    expect(blockSizeFor(2 ** 50)).toBe(8 * 2 ** 20);
  });

  it('rebuilds the new file from the parent and the changed blocks, wherever the parent is cut', async () => {
    const B = 1024;
    const parent = randomBytes(10 * B + 300);
    const cases: [string, Buffer][] = [
      ['one byte changed in the middle', Buffer.concat([parent.subarray(0, 4 * B + 7), Buffer.from([parent[4 * B + 7]! ^ 1]), parent.subarray(4 * B + 8)])],
      ['grown by 2.5 blocks', Buffer.concat([parent, randomBytes(2 * B + 512)])],
      ['shrunk into its fourth block', parent.subarray(0, 3 * B + 100)],
      ['first and last blocks changed', Buffer.concat([randomBytes(B), parent.subarray(B, 9 * B), randomBytes(B + 300)])],
      ['unchanged', parent],
    ];
    for (const [what, next] of cases) {
      const device = blocksOf(next, B);
      const mine = blocksOf(parent, B).hashes;
      const ranges = changedRanges(device.hashes, mine);
      const fetched = new Map<number, Buffer>();
      for (const [first, count] of ranges) for (let k = first; k < first + count; k++) fetched.set(k, next.subarray(k * B, (k + 1) * B));
      // The parent's buffers cut across block boundaries in several ways, as chunker blobs are.
      for (const cuts of [[B], [7, 3 * B - 7, 100], [B * 20], [1, 1, 1, 2 * B + 13, 511]]) {
        const out = await concat(rebuilt(pieces(parent, cuts), 0, device, fetched));
        expect(sha(out), `${what}, parent cut at ${cuts.join(',')}`).toBe(sha(next));
      }
      const fetchedBytes = [...fetched.values()].reduce((n, b) => n + b.length, 0);
      if (what === 'unchanged') expect(fetchedBytes).toBe(0);
      if (what === 'one byte changed in the middle') expect(ranges).toEqual([[4, 1]]);
      if (what === 'grown by 2.5 blocks') expect(ranges).toEqual([[10, 3]]);
    }
  });

  it('rebuilds a part that starts and ends inside blocks, from the parent chunks it starts at', async () => {
    const B = 1024;
    const parent = randomBytes(8 * B);
    const next = Buffer.from(parent);
    next.fill(7, 3 * B + 10, 3 * B + 20);
    const device = blocksOf(next, B);
    const fetched = new Map([[3, next.subarray(3 * B, 4 * B)]]);
    // Parent chunks from 2000 on, the part [2500, 5300) of the file.
    const out = await concat(rebuilt(pieces(parent.subarray(2000), [700, 900, 3000]), 2000, device, fetched, 2500, 5300));
    expect(out.equals(next.subarray(2500, 5300))).toBe(true);
  });

  it('plans a file so that it is cut exactly as cutting it whole would, re-reading only around the changes', async () => {
    const params = { min: 256, avg: 1024, max: 4096 };
    const gear = gearTable(randomBytes(32));
    const sizesOf = (bytes: Buffer): number[] => {
      const chunker = new Chunker(gear, params);
      const out: number[] = [];
      for (let at = 0; at < bytes.length; at += 777) for (const c of chunker.push(bytes.subarray(at, at + 777))) out.push(c.length);
      for (const c of chunker.finish()) out.push(c.length);
      return out;
    };
    const B = 512;
    const patched = (bytes: Buffer, edits: [number, number][]) => {
      const out = Buffer.from(bytes);
      for (const [at, length] of edits) randomBytes(length).copy(out, at);
      return out;
    };
    const parent = randomBytes(200_000);
    const variants: [string, Buffer][] = [
      ['4 KiB in the middle', patched(parent, [[100_000, 4096]])],
      ['one byte at the start', patched(parent, [[0, 1]])],
      ['scattered bytes', patched(parent, Array.from({ length: 30 }, (_, i): [number, number] => [i * 6_600 + 17, 3]))],
      ['the last byte', patched(parent, [[parent.length - 1, 1]])],
      ['grown', Buffer.concat([parent, randomBytes(9_000)])],
      ['grown and patched', Buffer.concat([patched(parent, [[50_000, 100]]), randomBytes(10)])],
      ['cut', parent.subarray(0, 150_003)],
      ['unchanged', parent],
    ];
    const chunkSizes = sizesOf(parent);
    const starts = [0];
    for (const length of chunkSizes) starts.push(starts.at(-1)! + length);
    for (const [what, next] of variants) {
      const device = blocksOf(next, B);
      const mine = blocksOf(parent, B).hashes;
      const fetched = new Map<number, Buffer>();
      for (const [first, count] of changedRanges(device.hashes, mine)) for (let k = first; k < first + count; k++) fetched.set(k, next.subarray(k * B, (k + 1) * B));
      // Read in pieces that do not follow the chunks (a reader may split or join them).
      const parentFrom = (chunk: number) => pieces(parent.subarray(starts[chunk]), Array<number>(1000).fill(333));
      const parts = await planParts(device, fetched.keys(), chunkSizes, (chunk, at) => rebuilt(parentFrom(chunk), at, device, fetched, at, next.length), new Chunker(gear, params));
      // Kept runs are the parent's chunks; the rest is cut afresh (as the archiver would, one stream per part).
      const planned: number[] = [];
      const bytes: Buffer[] = [];
      let reread = 0;
      for (const part of parts) {
        if ('keep' in part) {
          planned.push(...chunkSizes.slice(...part.keep));
          bytes.push(parent.subarray(starts[part.keep[0]], starts[part.keep[1]]));
          expect(part.size).toBe(starts[part.keep[1]]! - starts[part.keep[0]]!);
        } else {
          const data = await concat(rebuilt(parentFrom(part.chunks[0]), part.parentAt, device, fetched, part.from, part.to));
          planned.push(...sizesOf(data));
          bytes.push(data);
          reread += data.length;
        }
      }
      expect(sha(Buffer.concat(bytes)), what).toBe(sha(next));
      expect(planned, what).toEqual(sizesOf(next));
      if (what === 'unchanged') expect(parts).toEqual([{ keep: [0, chunkSizes.length], size: parent.length }]);
      // Around each change a chunk or three, not the file (30 changes: ~54 KB of 200 KB).
      if (what === '4 KiB in the middle') expect(reread, what).toBeLessThan(30_000);
      if (what === 'scattered bytes') expect(reread, what).toBeLessThan(100_000);
      if (what === 'one byte at the start' || what === 'the last byte' || what === 'cut') expect(reread, what).toBeLessThan(10_000);
    }
  });

  it('takes nothing but the script\'s own output for block hashes', () => {
    const good = `10 5\n${'a'.repeat(64)}\n${'b'.repeat(64)}\n. 1500\n`;
    expect(parseBlockHashes(good, 1024).hashes).toHaveLength(2);
    // Cut short, one hash too few, and a stray line: each refused.
    expect(() => parseBlockHashes(`10 5\n${'a'.repeat(64)}\n`, 1024)).toThrow(DeltaUnavailable);
    expect(() => parseBlockHashes(`10 5\n${'a'.repeat(64)}\n. 1500\n`, 1024)).toThrow(/do not match/);
    expect(() => parseBlockHashes(`10 5\n${'a'.repeat(64)}\nnot a hash\n. 1500\n`, 1024)).toThrow(/do not match/);
  });
});

describe('block deltas on a real shell and python3', () => {
  const runner = new LocalRunner();
  const exec: Exec = (command, signal) => runner.exec(command, signal);

  it('hashes and fetches by name bytes, for a name no shell would take as it is', async () => {
    const dir = tempDir();
    const file = Buffer.concat([Buffer.from(`${dir}/it's $(x) \``), Buffer.from([0xff, 0x0a]), Buffer.from('.onnx')]);
    const data = randomBytes(300_000);
    writeFileSync(file, data);
    const device = await deviceBlocks(exec, file, 65536);
    expect(device.size).toBe(data.length);
    expect(device.hashes).toEqual(blocksOf(data, 65536).hashes);
    const blocks = await fetchBlocks(exec, file, device, [[1, 2], [4, 1]]);
    expect([...blocks.keys()]).toEqual([1, 2, 4]);
    expect(blocks.get(4)).toEqual(data.subarray(4 * 65536));
    expect(blocks.get(1)).toEqual(data.subarray(65536, 2 * 65536));
  });

  it('refuses blocks that changed after they were hashed, and says when the device has no python3', async () => {
    const file = path.join(tempDir(), 'model.onnx');
    writeFileSync(file, randomBytes(200_000));
    const device = await deviceBlocks(exec, Buffer.from(file), 65536);
    writeFileSync(file, randomBytes(200_000));
    await expect(fetchBlocks(exec, Buffer.from(file), device, [[0, 1]])).rejects.toThrow(/changed while its blocks were read/);
    // The same command where no python3 can be found.
    const noPython: Exec = (command, signal) => runner.exec(raw(`PATH=/nonexistent; ${commandText(command)}`), signal);
    await expect(deviceBlocks(noPython, Buffer.from(file), 65536)).rejects.toMatchObject({ device: true, message: /no python3/ });
    await expect(deviceBlocks(exec, Buffer.from(`${file}.gone`), 65536)).rejects.toMatchObject({ device: false, message: /hashing the blocks failed/ });
    // A name that is now a symlink is not read through.
    symlinkSync(file, `${file}.link`);
    await expect(deviceBlocks(exec, Buffer.from(`${file}.link`), 65536)).rejects.toMatchObject({ device: false, message: /hashing the blocks failed/ });
  });
});
