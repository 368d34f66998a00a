import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { NAMES } from '../backend/backend';
import { flipByte, newRepo, tempDir } from '../testing/fixtures';
import { findSnapshot, walkTree } from '../snapshot/snapshot';
import { LocalSource } from '../walker/local-walker';
import { BLOB_JOB_BYTES, blobStream, holdBlobWorkers } from './blob-stream';

/** Every data blob id of the snapshot's files, in tree order, with the files' bytes. */
async function contentOf(src: string) {
  const { dir, repo } = await newRepo({ chunker: { min: 4096, avg: 16384, max: 65536 }, packSize: 1024 * 1024, kdf: { N: 1024, r: 8, p: 1 } });
  const snapshot = await findSnapshot(repo, (await backup(repo, new LocalSource([src]))).id);
  const ids: string[] = [];
  for await (const { node } of walkTree(repo, snapshot.tree)) if (node.type === 'file') ids.push(...(node.content ?? []));
  return { dir, repo, ids };
}

describe('blob stream', () => {
  it('yields the same plaintexts in order from the workers as from the main thread, across jobs and packs', async () => {
    const src = await tempDir();
    await mkdir(join(src, 'many'));
    // Large incompressible data (several worker jobs, several packs), text (compressed blobs), and
    // many tiny files (many blobs per job, neighbours read at once), with a repeated blob.
    await writeFile(join(src, 'big.bin'), randomBytes(BLOB_JOB_BYTES + 3 * 1024 * 1024));
    await writeFile(join(src, 'text.log'), Array.from({ length: 20_000 }, (_, i) => `line ${i} of the log\n`).join(''));
    for (let i = 0; i < 300; i++) await writeFile(join(src, 'many', `f${i}`), i % 50 === 0 ? 'same' : `file ${i} ${randomBytes(8).toString('hex')}`);
    const { repo, ids } = await contentOf(src);
    expect(ids.length).toBeGreaterThan(400);

    const expected = await Promise.all(ids.map((id) => repo.loadBlob(id)));
    const hold = holdBlobWorkers(repo);
    try {
      for (const workers of [undefined, 0]) {
        const stream = blobStream(repo, ids, workers === undefined ? {} : { workers });
        const got: Buffer[] = [];
        for (let i = 0; i < ids.length; i++) got.push(await stream.next());
        await expect(stream.next()).rejects.toThrow(/past its end/);
        await stream.close();
        expect(got.length).toBe(expected.length);
        expect(got.every((b, i) => b.equals(expected[i]!))).toBe(true);
      }
      // Closed early (a failed transfer): the jobs ahead are let go, nothing more is read.
      const early = blobStream(repo, ids);
      expect((await early.next()).equals(expected[0]!)).toBe(true);
      await early.close();
      await expect(early.next()).rejects.toThrow(/closed/);
    } finally {
      await hold();
    }
  });

  it('refuses a damaged blob with the repository error', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a.bin'), randomBytes(400_000));
    const { dir, repo, ids } = await contentOf(src);
    const victim = repo.index.get(ids[2]!)!;
    await flipByte(join(dir, NAMES.pack(victim.pack)), victim.offset + 5);

    const stream = blobStream(repo, ids);
    const readAll = async () => {
      for (let i = 0; i < ids.length; i++) await stream.next();
    };
    await expect(readAll()).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringMatching(/authentication failed/) as unknown });
    await stream.close();
  });
});
