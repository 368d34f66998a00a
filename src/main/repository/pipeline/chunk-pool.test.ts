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
      for (let offset = 0; ; ) {
        const piece = await (await pool.filePiece(join(dir, 'big'), offset)).result;
        viaFile.push(...piece.chunks);
        offset = piece.next;
        if (piece.eof) break;
      }
      const viaStream: HashedChunk[] = [];
      const again = new Chunker(gear, params);
      for (const c of again.push(data).concat(again.finish())) viaStream.push(await (await pool.submit(c)).result);
      for (const got of [viaFile, viaStream]) {
        expect(got.map((c) => c.id.toString('hex'))).toEqual(expected.map((e) => e.id));
        expect(got.map((c) => c.codec)).toEqual(expected.map((e) => e.codec));
        expect(got.every((c, i) => c.payload.equals(expected[i]!.data))).toBe(true);
      }
      expect(expected.some((e) => e.codec === 1) && expected.some((e) => e.codec === 0)).toBe(true);
      const [small, missing] = await (await pool.smallFiles([join(dir, 'small'), join(dir, 'nope')])).result;
      expect(small).toMatchObject({ chunks: [{ id: blobId(mac, Buffer.from('tiny file')) }] });
      expect(missing).toMatchObject({ error: expect.stringMatching(/ENOENT/) as unknown });
    } finally {
      await pool.close();
    }
  });
});
