import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Chunker, gearTable } from '../chunker/chunker';
import { compress } from '../compress/codec';
import { blobId } from '../crypto/aead';
import { tempDir } from '../testing/fixtures';
import { ChunkPool, GROW_AFTER_BYTES, KNOWN_CHUNK, mergeSortedIds, sortedIds } from './chunk-pool';
import type { HashedChunk } from './chunk-pool';
import { PIECE_BYTES, StreamPieces, UNSTORED_PIECES } from './stream-pieces';

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
        // Payloads are views into the piece, valid until this store settles: kept as copies.
        for (const c of chunks) byId.set(c.id.toString('hex'), { ...c, payload: Buffer.from(c.payload) });
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
      const { value: viaBytes, release } = await (await pool.smallBytes(new Uint8Array(batch.buffer, 0, 3009), ends)).result;
      expect(viaBytes.map((f) => f.chunks.map((c) => c.id.toString('hex')))).toEqual(files.map((f) => (f.length ? [blobId(mac, f).toString('hex')] : [])));
      // Payloads are left in the batch's shared buffer: the compressed one where its file was, the stored one as it is.
      expect(compress(files[2]!).codec).toBe(1);
      expect(viaBytes[2]!.chunks[0]!.payload.equals(compress(files[2]!).data)).toBe(true);
      expect(viaBytes[2]!.chunks[0]!.payload.buffer).toBe(batch.buffer);
      expect(viaBytes[0]!.chunks[0]!.payload.equals(files[0]!)).toBe(true);
      release();
      // Released, the buffer is handed out again rather than a new one.
      expect(pool.buffer(8192).buffer).toBe(batch.buffer);
      const [small, missing] = await (await pool.smallFiles([join(dir, 'small'), join(dir, 'nope')])).result;
      expect(small).toMatchObject({ chunks: [{ id: blobId(mac, Buffer.from('tiny file')) }] });
      expect(missing).toMatchObject({ error: expect.stringMatching(/ENOENT/) as unknown });
    } finally {
      await pool.close();
    }
  });

  it('reuses a piece buffer only once its payloads are stored: slow stores still see every payload intact', async () => {
    const mac = randomBytes(32);
    const gear = gearTable(randomBytes(32));
    const text = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${i} of ${i % 13}\n`).join(''));
    const data = Buffer.concat(Array.from({ length: 12 }, () => Buffer.concat([randomBytes(5 * 1024 * 1024), text])));
    const chunker = new Chunker(gear, params);
    const expected = new Map(chunker.push(data).concat(chunker.finish()).map((c) => [blobId(mac, c).toString('hex'), compress(c)]));
    const pool = new ChunkPool({ mac, gear, chunker: params }, 2);
    try {
      const pieceBuffers = new Set<ArrayBufferLike>();
      const checked = new Set<string>();
      let pieces = 0;
      const stream = new StreamPieces(pool, params, async (chunks) => {
        // The first piece is stored slowly (a disk behind): the later ones pass it and free their buffers.
        if (pieces++ === 0) await new Promise((resolve) => setTimeout(resolve, 300));
        for (const c of chunks) pieceBuffers.add(c.payload.buffer);
        // Still the payload the worker left, though later pieces were filled meanwhile.
        for (const c of chunks) {
          const want = expected.get(c.id.toString('hex'))!;
          expect(c.codec).toBe(want.codec);
          expect(c.payload.equals(want.data)).toBe(true);
          checked.add(c.id.toString('hex'));
        }
        return chunks.map((c) => c.id.toString('hex'));
      });
      for (let at = 0; at < data.length; at += 1 << 20) await stream.push(data.subarray(at, at + (1 << 20)));
      await (await stream.finish()).done;
      expect(checked.size).toBe(expected.size);
      // Buffers were reused (fewer than pieces), so the check above covered reuse.
      expect(pieceBuffers.size).toBeLessThan(pieces);
    } finally {
      await pool.close();
    }
  });

  it('a stream waits while two of its pieces await their store: a slow store bounds the buffers filled, and the next stream reuses them', async () => {
    const mac = randomBytes(32);
    const gear = gearTable(randomBytes(32));
    const data = randomBytes(7 * PIECE_BYTES + 12345);
    const pool = new ChunkPool({ mac, gear, chunker: params }, 2);
    try {
      const buffers = new Set<ArrayBufferLike>();
      let storing = 0;
      let mostStoring = 0;
      const slowStore = async (chunks: HashedChunk[]) => {
        mostStoring = Math.max(mostStoring, ++storing);
        for (const c of chunks) buffers.add(c.payload.buffer);
        await new Promise((resolve) => setTimeout(resolve, 40));
        storing--;
        return chunks.map((c) => c.id.toString('hex'));
      };
      const sizes: number[] = [];
      for (let stream = 0; stream < 2; stream++) {
        const pieces = new StreamPieces(pool, params, slowStore);
        for (let at = 0; at < data.length; at += 1 << 20) await pieces.push(data.subarray(at, at + (1 << 20)));
        const ids = await (await pieces.finish()).done;
        sizes.push(ids.length);
      }
      expect(sizes[0]).toBeGreaterThan(100);
      expect(sizes[1]).toBe(sizes[0]);
      expect(mostStoring).toBeLessThanOrEqual(UNSTORED_PIECES);
      // Two awaiting their store and one being filled, for 16 pieces over two streams.
      expect(buffers.size).toBeLessThanOrEqual(UNSTORED_PIECES + 1);
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
        const piece = pool.buffer(tail.length + n);
        piece.set(tail);
        piece.set(data.subarray(at, at + n), tail.length);
        if (tail.length > params.min) resumed++;
        const job = await pool.streamPiece(piece, final, tail.length);
        tail = await job.tail;
        const { value, release } = await job.result;
        got.push(...value.chunks.map((c) => c.id.toString('hex')));
        release();
        at += n;
      }
      expect(resumed).toBeGreaterThan(50);
      expect(got).toEqual(expected);
    } finally {
      await pool.close();
    }
  });

  it('lays out known ids sorted for the workers, however they are spread, and the workers skip exactly those chunks', async () => {
    const naive = (ids: string[]): Buffer => Buffer.concat([...ids].map((id) => id.toLowerCase()).sort().map((id) => Buffer.from(id, 'hex')));
    const random = Array.from({ length: 20_000 }, () => randomBytes(32).toString('hex'));
    // One two-byte prefix for 300 ids (one counting bucket), ids equal but for their last byte, repeats, capitals.
    const crowded = Array.from({ length: 300 }, () => 'beef' + randomBytes(30).toString('hex'));
    const tails = Array.from({ length: 40 }, (_, i) => '00'.repeat(31) + (255 - i).toString(16).padStart(2, '0'));
    const mixed = [...random.slice(0, 500), ...crowded, ...tails, ...tails.slice(0, 5), random[0]!.toUpperCase()];
    for (const ids of [[], [random[0]!], random, mixed]) expect(Buffer.from(sortedIds(ids)).equals(naive(ids))).toBe(true);

    const mac = randomBytes(32);
    const data = Buffer.from('a chunk the repository holds already, '.repeat(20));
    const other = Buffer.from('a chunk it does not hold, '.repeat(30));
    const pool = new ChunkPool({ mac, gear: gearTable(randomBytes(32)), chunker: params, known: [...random, blobId(mac, data).toString('hex')] }, 1);
    try {
      const both = pool.buffer(data.length + other.length);
      data.copy(both);
      other.copy(both, data.length);
      const { result } = await pool.smallBytes(both, [data.length, data.length + other.length]);
      const [held, fresh] = (await result).value.map((f) => f.chunks[0]!);
      expect(held).toMatchObject({ codec: KNOWN_CHUNK, rawLength: data.length });
      expect(held!.id.equals(blobId(mac, data))).toBe(true);
      expect(fresh!.codec).not.toBe(KNOWN_CHUNK);
      expect(fresh!.id.equals(blobId(mac, other))).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('merges a sorted run of ids with the few added since into the run sortedIds lays out for them all', () => {
    const random = (n: number, prefix = '') => Array.from({ length: n }, () => prefix + randomBytes(32 - prefix.length / 2).toString('hex'));
    const held = random(5_000);
    const lowest = '00'.repeat(32);
    const highest = 'ff'.repeat(32);
    const cases: [string[], string[]][] = [
      [held, random(300)],
      [held, []],
      [[], random(40)],
      [held, [lowest, highest]],
      // Added ids crowded between two held neighbours, and ids held that the added ones straddle.
      [[...held, 'beef' + '00'.repeat(30), 'beef' + 'ff'.repeat(30)], random(200, 'beef')],
      [random(3), random(3_000)],
    ];
    for (const [a, b] of cases) {
      const merged = Buffer.from(mergeSortedIds(sortedIds(a), sortedIds(b)));
      expect(merged.equals(Buffer.from(sortedIds([...a, ...b])))).toBe(true);
    }
  });

  it('starts one worker and the next only once the work in flight asks for it; a worker started later skips the ids known by then', async () => {
    const mac = randomBytes(32);
    const gear = gearTable(randomBytes(32));
    const pool = new ChunkPool({ mac, gear, chunker: params }, 2);
    const piece = (bytes: Buffer) => {
      const view = pool.buffer(bytes.length);
      bytes.copy(view);
      return view;
    };
    try {
      expect(pool.started).toBe(1);
      // An incremental's kind of work: small batches and a piece, together well under the threshold.
      const small = await Promise.all([pool.smallBytes(piece(randomBytes(1 << 20)), [1 << 20]), pool.streamPiece(piece(randomBytes(PIECE_BYTES)), true)]);
      await Promise.all(small.map((job) => job.result));
      expect(pool.started).toBe(1);

      const known = Buffer.from('a chunk stored since the pool started, '.repeat(20));
      pool.setKnown([blobId(mac, known).toString('hex')]);
      // Two pieces of a little under half the threshold each are in flight on the one worker when
      // the third comes: that one passes it and starts the second worker, which must know the ids set above.
      const half = randomBytes(GROW_AFTER_BYTES / 2 - 100);
      const jobs = await Promise.all([pool.streamPiece(piece(half), true), pool.streamPiece(piece(half), true), pool.streamPiece(piece(known), true)]);
      expect(pool.started).toBe(2);
      const [first, second, third] = await Promise.all(jobs.map((job) => job.result));
      expect(third!.value.chunks).toHaveLength(1);
      expect(third!.value.chunks[0]).toMatchObject({ codec: KNOWN_CHUNK, rawLength: known.length });
      expect(first!.value.chunks.map((c) => c.id.toString('hex'))).toEqual(second!.value.chunks.map((c) => c.id.toString('hex')));
      expect(first!.value.chunks.every((c) => c.codec !== KNOWN_CHUNK)).toBe(true);

      // Never more than its size.
      await Promise.all((await Promise.all([0, 1, 2].map(() => pool.streamPiece(piece(half), true)))).map((job) => job.result));
      expect(pool.started).toBe(2);
    } finally {
      await pool.close();
    }
  });
});
