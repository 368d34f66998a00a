import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Chunker, gearTable } from '../chunker/chunker';
import { compress } from '../compress/codec';
import { blobId } from '../crypto/aead';
import { tempDir } from '../testing/fixtures';
import { ChunkPool } from './chunk-pool';
import type { HashedChunk } from './chunk-pool';
import { StreamPieces } from './stream-pieces';

const params = { min: 4096, avg: 16384, max: 65536 };

describe('chunk pool (worker threads)', () => {
  it('cuts, hashes and compresses exactly as the main-thread code does, on every path', async () => {
    const mac = randomBytes(32);
    const gear = gearTable(randomBytes(32));
    const dir = await tempDir();
    const text = Buffer.from(Array.from({ length: 30_000 }, (_, i) => `row ${i} value ${i % 97}\n`).join(''));
    // Over 16 MiB, so the file is cut in several worker pieces that must join seamlessly.
    const data = Buffer.concat([randomBytes(300_000), text, randomBytes(17 * 1024 * 1024)]);
    await writeFile(join(dir, 'big'), data);
    await writeFile(join(dir, 'small'), 'tiny file');

    const chunker = new Chunker(gear, params);
    const expected = chunker.push(data).concat(chunker.finish()).map((c) => ({ id: blobId(mac, c).toString('hex'), ...compress(c) }));
    const pool = new ChunkPool({ mac, gear, chunker: params }, 2);
    try {
      const viaFile: HashedChunk[] = [];
      for (let offset = 0, resume = 0; ; ) {
        const job = await pool.filePiece(join(dir, 'big'), offset, resume);
        const [cut, piece] = await Promise.all([job.cut, job.result]);
        viaFile.push(...piece.chunks);
        expect(cut.next).toBe(piece.next);
        offset = piece.next;
        resume = cut.scanned;
        if (piece.eof) break;
      }
      // Streamed bytes collected in pieces on the main thread, cut in the workers: pushed in odd sizes.
      const byId = new Map<string, HashedChunk>();
      let piecesStored = 0;
      const pieces = new StreamPieces(pool, params, (chunks) => {
        piecesStored++;
        for (const c of chunks) byId.set(c.id.toString('hex'), c);
        return Promise.resolve(chunks.map((c) => c.id.toString('hex')));
      });
      for (let at = 0; at < data.length; ) {
        const n = 1 + ((at * 7919) % 300_000);
        await pieces.push(data.subarray(at, at + n));
        at += n;
      }
      const ids = await (await pieces.finish()).done;
      expect(piecesStored).toBeGreaterThan(1);
      const viaPieces = ids.map((id) => byId.get(id)!);
      for (const got of [viaFile, viaPieces]) {
        expect(got.map((c) => c.id.toString('hex'))).toEqual(expected.map((e) => e.id));
        expect(got.map((c) => c.codec)).toEqual(expected.map((e) => e.codec));
        expect(got.every((c, i) => c.payload.equals(expected[i]!.data))).toBe(true);
      }
      expect(expected.some((e) => e.codec === 1) && expected.some((e) => e.codec === 0)).toBe(true);
      // Small streamed files back to back in one buffer (an empty one among them).
      const files = [Buffer.from('tiny file'), Buffer.alloc(0), text.subarray(0, 3000)];
      const batch = pool.buffer(8192);
      Buffer.concat(files).copy(batch);
      const ends = [9, 9, 3009];
      const viaBytes = await (await pool.smallBytes(new Uint8Array(batch.buffer, 0, 3009), ends)).result;
      expect(viaBytes.map((f) => f.chunks.map((c) => c.id.toString('hex')))).toEqual(files.map((f) => (f.length ? [blobId(mac, f).toString('hex')] : [])));
      expect(viaBytes[2]!.chunks[0]!.payload.equals(compress(files[2]!).data)).toBe(true);
      const [small, missing] = await (await pool.smallFiles([join(dir, 'small'), join(dir, 'nope')])).result;
      expect(small).toMatchObject({ chunks: [{ id: blobId(mac, Buffer.from('tiny file')) }] });
      expect(missing).toMatchObject({ error: expect.stringMatching(/ENOENT/) as unknown });
    } finally {
      await pool.close();
    }
  });

  it('cuts a stream given in many small pieces exactly as one pass does: each scan resumes after the rest it was given back', async () => {
    const mac = randomBytes(32);
    const gear = gearTable(randomBytes(32));
    const data = randomBytes(3 * 1024 * 1024);
    const chunker = new Chunker(gear, params);
    const expected = chunker.push(data).concat(chunker.finish()).map((c) => blobId(mac, c).toString('hex'));
    const pool = new ChunkPool({ mac, gear, chunker: params }, 2);
    try {
      const got: string[] = [];
      let tail: Buffer = Buffer.alloc(0);
      let resumed = 0;
      for (let at = 0; at < data.length; ) {
        // Pieces from 1 KiB to ~40 KiB: most end without a boundary after the rest they carry.
        const n = Math.min(data.length - at, 1024 + ((at * 7919) % 40_000));
        const final = at + n === data.length;
        const piece = new Uint8Array(Buffer.concat([tail, data.subarray(at, at + n)]));
        if (tail.length > params.min) resumed++;
        const job = await pool.streamPiece(piece, final, tail.length);
        tail = await job.tail;
        got.push(...(await job.result).chunks.map((c) => c.id.toString('hex')));
        at += n;
      }
      expect(resumed).toBeGreaterThan(50);
      expect(got).toEqual(expected);
    } finally {
      await pool.close();
    }
  });
});
