import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { chunksOf } from './stream-chunks';

const KiB = 1024;

/** A stream holding `count` chunks of `size` bytes already, as a channel does after a burst. */
function buffered(count: number, size: number): { stream: Readable; chunks: Buffer[]; emitted: () => number } {
  const chunks = Array.from({ length: count }, (_, i) => Buffer.alloc(size, i));
  const stream = new Readable({ read() {}, highWaterMark: 256 * KiB });
  for (const chunk of chunks) stream.push(chunk);
  stream.push(null);
  let emitted = 0;
  stream.on('data', () => emitted++);
  return { stream, chunks, emitted: () => emitted };
}

describe('chunksOf', () => {
  it('yields each chunk as it arrived instead of joining what is buffered', async () => {
    const { stream, chunks } = buffered(40, 32 * KiB);
    const seen: Buffer[] = [];
    for await (const chunk of chunksOf(stream)) seen.push(chunk);
    // The very Buffers the stream emitted, in order: nothing joined, nothing copied.
    expect(seen).toHaveLength(40);
    seen.forEach((chunk, i) => expect(chunk).toBe(chunks[i]));
  });

  it('pauses the stream while its high-water mark waits unread', async () => {
    const { stream, emitted } = buffered(40, 32 * KiB);
    const iterator = chunksOf(stream, 128 * KiB);
    await iterator.next();
    // 128 KiB is 4 chunks: the stream stopped there rather than emitting all 40 into the queue.
    expect(emitted()).toBeLessThanOrEqual(5);
    expect(stream.isPaused()).toBe(true);
    let rest = 0;
    for await (const chunk of iterator) rest += chunk.length;
    expect(rest).toBe(39 * 32 * KiB);
  });

  it('throws the stream error after the chunks that came before it', async () => {
    const stream = new Readable({ read() {} });
    stream.push(Buffer.from('one'));
    stream.push(Buffer.from('two'));
    setTimeout(() => stream.destroy(new Error('the link dropped')), 20);
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const chunk of chunksOf(stream)) seen.push(chunk.toString());
      })(),
    ).rejects.toThrow('the link dropped');
    expect(seen).toEqual(['one', 'two']);
  });

  it('throws when the stream is destroyed before its end, and destroys a stream left early', async () => {
    const cut = new Readable({ read() {} });
    cut.push(Buffer.from('partial'));
    setTimeout(() => cut.destroy(), 20);
    await expect(
      (async () => {
        for await (const chunk of chunksOf(cut)) expect(chunk.length).toBeGreaterThan(0);
      })(),
    ).rejects.toThrow(/premature close/i);

    const { stream } = buffered(10, KiB);
    for await (const chunk of chunksOf(stream)) {
      expect(chunk.length).toBe(KiB);
      break;
    }
    expect(stream.destroyed).toBe(true);
  });

  it("carries a real process's output byte for byte", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-chunks-'));
    try {
      const file = path.join(dir, 'data');
      writeFileSync(file, randomBytes(5_000_000));
      const child = spawn('cat', [file], { stdio: ['ignore', 'pipe', 'inherit'] });
      const read = createHash('sha256');
      let bytes = 0;
      for await (const chunk of chunksOf(child.stdout)) {
        bytes += chunk.length;
        read.update(chunk);
        // A slow reader: the pipe is paused and resumed along the way.
        if (bytes % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      expect(bytes).toBe(5_000_000);
      expect(read.digest('hex')).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
