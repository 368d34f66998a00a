import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { NAMES } from '../backend/backend';
import { LocalSource } from '../walker/local-walker';
import { flipByte, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalBackend } from '../backend/local-backend';
import { Repository } from '../repo/repository';
import { check } from './checker';
import { RepositoryError } from '../errors';
import { restore } from '../restorer/restorer';
import { findSnapshot } from '../snapshot/snapshot';

describe('check', () => {
  it('passes on a healthy repository, structure and data', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a'), randomBytes(100_000));
    const { repo } = await newRepo();
    await backup(repo, new LocalSource([src]));
    expect((await check(repo)).errors).toEqual([]);
    const full = await check(repo, { readData: true });
    expect(full.ok).toBe(true);
    expect(full.blobsRead).toBeGreaterThan(3);
  });

  it('reports a flipped byte in a pack with every snapshot and file it affects', async () => {
    const src = await tempDir();
    await mkdir(join(src, 'models'));
    await writeFile(join(src, 'models/victim.bin'), randomBytes(150_000));
    await writeFile(join(src, 'small.txt'), 'hello');
    const { dir, repo } = await newRepo({ chunker: { min: 4096, avg: 16384, max: 65536 }, packSize: 64 * 1024 * 1024, kdf: { N: 1024, r: 8, p: 1 } });
    const first = await backup(repo, new LocalSource([src]));
    const second = await backup(repo, new LocalSource([src]));
    // Flip one byte inside the first data blob of the data pack.
    const where = repo.index.get([...repo.index.allBlobs()].find((b) => b.type === 'data' && b.rawLength > 10_000)!.id)!;
    await flipByte(join(dir, NAMES.pack(where.pack)), where.offset + 10);

    expect((await check(repo)).ok).toBe(true); // structure alone does not read data
    const report = await check(repo, { readData: true });
    expect(report.ok).toBe(false);
    expect(report.damagedPacks).toEqual([where.pack]);
    expect(report.errors.join('\n')).toMatch(/authentication failed/);
    // Restore refuses the damaged file with a clear message instead of writing wrong bytes.
    const target = await tempDir();
    await expect(restore(repo, await findSnapshot(repo, second.id), target)).rejects.toThrow(/victim\.bin.*authentication failed/s);
    const victims = report.affected.map((a) => `${a.snapshot}:${a.path.split('/').slice(-2).join('/')}`).sort();
    expect(victims).toEqual([`${first.id}:models/victim.bin`, `${second.id}:models/victim.bin`].sort());
  });

  it('reads trees from the store even where the Repository that saved them keeps them in memory', async () => {
    const src = await tempDir();
    await mkdir(join(src, 'config'));
    await writeFile(join(src, 'config/app.env'), 'MODE=field\n');
    const { dir, repo } = await newRepo();
    const saved = await backup(repo, new LocalSource([src]));
    // The same open Repository walks the tree it just saved (served from memory)…
    expect((await check(repo)).ok).toBe(true);
    const root = repo.index.get(saved.snapshot.tree)!;
    await flipByte(join(dir, NAMES.pack(root.pack)), root.offset + 10);
    // …but a check reads the store: the damaged tree is found without reading all data.
    const report = await check(repo);
    expect(report.ok).toBe(false);
    expect(report.errors.join('\n')).toMatch(new RegExp(`tree ${saved.snapshot.tree.slice(0, 12)}`));
    expect(report.affected.map((a) => a.snapshot)).toEqual([saved.id]);
  });

  it('detects a tampered snapshot, index or key slot', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a'), 'content');
    const { dir, repo } = await newRepo();
    await backup(repo, new LocalSource([src]));
    const flip = async (name: string, at: number): Promise<void> => {
      const handle = await open(join(dir, name), 'r+');
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] = byte[0]! ^ 0x80;
      await handle.write(byte, 0, 1, at);
      await handle.close();
    };
    await backup(repo, new LocalSource([src]), { tags: ['second'] });
    const [snapshot] = await repo.backend.list(NAMES.snapshots);
    await flip(snapshot!.name, 40);
    const report = await check(repo);
    expect(report.errors).toEqual([expect.stringMatching(/^snapshot .*do not match its name/)]);
    expect(report.snapshots).toBe(1); // the healthy one is still checked
    await flip(snapshot!.name, 40); // restore it
    const [index] = await repo.backend.list(NAMES.index);
    await flip(index!.name, 50);
    await expect(Repository.open(new LocalBackend(dir), PASSWORD)).rejects.toThrow(/index .*authentication failed/);
    await flip(index!.name, 50);
    const [slot] = await repo.backend.list(NAMES.keys);
    const json = JSON.parse((await readFile(join(dir, slot!.name))).toString()) as { wrapped: string };
    const wrapped = Buffer.from(json.wrapped, 'base64');
    wrapped[20] = wrapped[20]! ^ 1;
    await writeFile(join(dir, slot!.name), JSON.stringify({ ...json, wrapped: wrapped.toString('base64') }));
    await expect(Repository.open(new LocalBackend(dir), PASSWORD)).rejects.toThrow(/wrong password/);
  });

  it('stops with the store error when the store stops answering, instead of calling the packs it could not reach damaged', async () => {
    const { dir, repo } = await newRepo();
    const src = await tempDir('jv-src-');
    await writeFile(join(src, 'model.bin'), randomBytes(600_000));
    await backup(repo, new LocalSource([src]));
    // Pack reads fail as an S3 gateway that was killed or an SFTP link that was cut make them fail.
    const inner = new LocalBackend(dir);
    const gone = Object.assign(Object.create(inner) as LocalBackend, {
      get: (name: string, range?: { offset: number; length: number }) =>
        name.startsWith(NAMES.data) ? Promise.reject(new RepositoryError('unavailable', `S3 download of ${name} failed: connect ECONNREFUSED`)) : inner.get(name, range),
    });
    const reopened = await Repository.open(gone, PASSWORD);
    await expect(check(reopened, { readData: true })).rejects.toMatchObject({ failure: 'unavailable', message: expect.stringMatching(/^check could not finish: .*ECONNREFUSED/) as unknown });
  });
});
