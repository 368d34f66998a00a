/**
 * Copies between two real local repositories: with shared ids (`init --copy-chunker-params-from`)
 * and between independent ones (re-chunked), byte-exact restores from the copy, `check --read-data`
 * clean on the destination, dedup carrying over (a second copy stores nothing), parent linkage,
 * filters, read-back verification that notices damage, and leases.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { LocalBackend } from '../backend/local-backend';
import { NAMES } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { RepositoryError } from '../errors';
import { check } from '../checker/checker';
import { RepositoryLock } from '../lock/lock';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { listSnapshots } from '../snapshot/snapshot';
import type { SnapshotWithId } from '../snapshot/snapshot';
import { describeTree, FAST, makeAwkwardTree, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { copyBetween } from './copy';
import type { CopyProgress } from './copy';

const OTHER_PASSWORD = 'a different password for the offsite copy';

async function makeData(root: string): Promise<number> {
  await makeAwkwardTree(root);
  await mkdir(join(root, 'models'));
  let total = 0;
  for (let i = 0; i < 6; i++) {
    const size = i % 2 === 0 ? 400_000 : 30_000;
    await writeFile(join(root, 'models', `m${i}.bin`), randomBytes(size));
    total += size;
  }
  // Compressible text as well, so stored-as-compressed blobs are copied too.
  await writeFile(join(root, 'models', 'labels.txt'), Array.from({ length: 20_000 }, (_, i) => `label ${i % 97}`).join('\n'));
  return total;
}

async function newDestination(options: Parameters<typeof Repository.init>[2]): Promise<{ dir: string; repo: Repository }> {
  const dir = join(await tempDir('jv-copy-'), 'repo');
  await mkdir(dir);
  return { dir, repo: await Repository.init(new LocalBackend(dir), OTHER_PASSWORD, options) };
}

async function restoresLike(repo: Repository, snapshot: SnapshotWithId, src: string, expected: Awaited<ReturnType<typeof describeTree>>): Promise<void> {
  const target = await tempDir('jv-restore-');
  await restore(repo, snapshot, target);
  expect(await describeTree(join(target, src.replace(/^\//, '')))).toEqual(expected);
}

/** A source repository with `makeData` backed up once, and an empty destination (its folder). */
async function backedUpSourceAndDestination(): Promise<{ source: Repository; dir: string }> {
  const { repo: source } = await newRepo();
  const src = await tempDir('jv-src-');
  await makeData(src);
  await backup(source, new LocalSource([src]));
  const { dir } = await newDestination(FAST);
  return { source, dir };
}

describe('copy between repositories', () => {
  it('with shared ids: copies snapshots and parents, restores byte-exact, stores nothing twice', { timeout: 120_000 }, async () => {
    const src = await tempDir('jv-src-');
    await makeData(src);
    const { repo: source } = await newRepo();
    const first = await backup(source, new LocalSource([src]), { device: 'jetson-12', tags: ['device:jetson-12', 'source:files', 'run:r1'] });
    const firstTree = await describeTree(src);
    await writeFile(join(src, 'models', 'm0.bin'), randomBytes(200_000));
    const [firstSnap] = await listSnapshots(source);
    const second = await backup(source, new LocalSource([src]), { device: 'jetson-12', parent: firstSnap!, tags: ['device:jetson-12', 'source:files', 'run:r2'] });
    const { dir, repo: destination } = await newDestination({ ...FAST, chunker: { min: 8192, avg: 32768, max: 131072 }, shareIdsWith: source });
    expect(destination.config.chunker).toEqual(source.config.chunker); // taken from the source, not the options
    expect(destination.keys.mac.equals(source.keys.mac)).toBe(true);
    expect(destination.keys.enc.equals(source.keys.enc)).toBe(false);

    const seen: CopyProgress[] = [];
    const result = await copyBetween(source, destination, { onProgress: (p) => seen.push(p) });
    expect(result).toMatchObject({ mode: 'same-ids', skipped: 0, ok: true });
    expect(result.copied.map((c) => c.from)).toEqual([first.id, second.id]);
    expect(result.verification!.packs).toBeGreaterThan(0);
    expect(result.verification!.errors).toEqual([]);
    expect(seen.at(-1)!.phase).toBe('verify');
    expect(seen.some((p) => p.phase === 'copy' && p.bytesDone > 0 && p.bytesDone < p.bytesTotal)).toBe(true);

    // The copies keep what the originals said, with the parent pointing at the copy of the parent.
    const reopened = await Repository.open(new LocalBackend(dir), OTHER_PASSWORD);
    const copies = await listSnapshots(reopened);
    const originals = await listSnapshots(source);
    expect(copies).toHaveLength(2);
    for (const [i, copy] of copies.entries()) {
      const { id: _a, parent: _p, ...original } = originals[i]!;
      expect(copy).toMatchObject({ ...original, copiedFrom: originals[i]!.id });
    }
    expect(copies[0]!.parent).toBeUndefined();
    expect(copies[1]!.parent).toBe(copies[0]!.id);
    await restoresLike(reopened, copies[0]!, src, firstTree);
    await restoresLike(reopened, copies[1]!, src, await describeTree(src));
    expect((await check(reopened, { readData: true })).errors).toEqual([]);

    // Idempotent: a second copy finds both and stores nothing.
    const again = await copyBetween(source, reopened);
    expect(again).toMatchObject({ copied: [], skipped: 2, blobsUploaded: 0, bytesUploaded: 0, ok: true });
    expect(again.verification!.packs).toBe(0);

    // A new snapshot of unchanged data (read in full, no parent) copies without storing data blobs.
    const third = await backup(source, new LocalSource([src]), { device: 'jetson-12', tags: ['device:jetson-12', 'source:files', 'run:r3'] });
    // (Only the listings of the ancestor directories changed: /tmp gained entries meanwhile.)
    expect(third.snapshot.summary.bytesAdded).toBeLessThan(2048);
    const incremental = await copyBetween(source, reopened);
    expect(incremental.copied.map((c) => c.from)).toEqual([third.id]);
    expect(incremental.bytesUploaded).toBe(third.snapshot.summary.bytesAdded);
    expect(incremental.blobsSkipped).toBeGreaterThan(10);

    // Shared chunking: the destination's own backup of the same files finds every chunk there.
    const own = await backup(reopened, new LocalSource([src]));
    expect(own.snapshot.summary.bytesAdded).toBeLessThan(2048);
  });

  it('between independent repositories: re-chunks with the destination keys, then deduplicates', { timeout: 120_000 }, async () => {
    const src = await tempDir('jv-src-');
    const total = await makeData(src);
    const { repo: source } = await newRepo();
    await backup(source, new LocalSource([src]), { device: 'jetson-7' });
    const { repo: destination } = await newDestination({ ...FAST, chunker: { min: 2048, avg: 8192, max: 32768 } });
    expect(destination.keys.mac.equals(source.keys.mac)).toBe(false);

    const result = await copyBetween(source, destination, { workers: 2 });
    expect(result).toMatchObject({ mode: 're-chunk', ok: true });
    expect(result.copied).toHaveLength(1);
    expect(result.bytesUploaded).toBeGreaterThan(total * 0.9);
    const [copy] = await listSnapshots(destination);
    await restoresLike(destination, copy!, src, await describeTree(src));
    expect((await check(destination, { readData: true })).errors).toEqual([]);
    // The copy is cut with the destination's chunker: its chunks are at most its max (32 KiB).
    const sizes = [...destination.index.allBlobs()].filter((b) => b.type === 'data').map((b) => b.rawLength);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32768);

    expect(await copyBetween(source, destination)).toMatchObject({ copied: [], skipped: 1, bytesUploaded: 0 });
    const again = await backup(source, new LocalSource([src]), { device: 'jetson-7' });
    const incremental = await copyBetween(source, destination, { workers: 2 });
    expect(incremental.copied.map((c) => c.from)).toEqual([again.id]);
    expect(incremental.bytesUploaded).toBeLessThan(2048); // a few directory listings, no file content
    // Only what changed is read and re-chunked: the earlier copy of the device maps the rest.
    expect(incremental.bytesRead).toBe(0);
    await writeFile(join(src, 'models', 'm1.bin'), randomBytes(50_000));
    const [, previous] = await listSnapshots(source);
    const changed = await backup(source, new LocalSource([src]), { device: 'jetson-7', parent: previous! });
    const third = await copyBetween(source, destination, { workers: 2 });
    expect(third.copied.map((c) => c.from)).toEqual([changed.id]);
    expect(third.bytesRead).toBe(50_000);
    const copies = await listSnapshots(destination);
    await restoresLike(destination, copies.at(-1)!, src, await describeTree(src));
    expect(copies.at(-1)!.parent).toBe(copies.at(-2)!.id);
    // And the destination's own backup of the same files deduplicates against the copy.
    expect((await backup(destination, new LocalSource([src]))).snapshot.summary.bytesAdded).toBeLessThan(2048);
  });

  it('copies only what the filters select: device, source, since', { timeout: 120_000 }, async () => {
    const { repo: source } = await newRepo();
    const dirs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const d = await tempDir('jv-src-');
      await writeFile(join(d, 'data.bin'), randomBytes(50_000));
      dirs.push(d);
    }
    const run = (dir: string, device: string, name: string) => backup(source, new LocalSource([dir]), { device, tags: [`device:${device}`, `source:${name}`] });
    const a1 = await run(dirs[0]!, 'jetson-a', 'files');
    const b1 = await run(dirs[1]!, 'jetson-b', 'files');
    const a2 = await run(dirs[1]!, 'jetson-a', 'postgres');
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date();
    const b2 = await run(dirs[0]!, 'jetson-b', 'postgres');

    const { repo: destination } = await newDestination({ ...FAST, shareIdsWith: source });
    const byDevice = await copyBetween(source, destination, { device: 'jetson-a' });
    expect(byDevice.copied.map((c) => c.from).sort()).toEqual([a1.id, a2.id].sort());
    expect(byDevice.copied.map((c) => c.source).sort()).toEqual(['files', 'postgres']);
    const bySource = await copyBetween(source, destination, { source: 'postgres' });
    expect(bySource).toMatchObject({ skipped: 1 });
    expect(bySource.copied.map((c) => c.from)).toEqual([b2.id]);
    const bySince = await copyBetween(source, destination, { since });
    expect(bySince).toMatchObject({ copied: [], skipped: 1 });
    expect((await copyBetween(source, destination, { source: 'local' })).copied.map((c) => c.from)).toEqual([b1.id]);
    expect(await listSnapshots(destination)).toHaveLength(4);
    expect((await check(destination, { readData: true })).errors).toEqual([]);
  });

  it('a copy of a copy names the original, and copying back finds it there', { timeout: 60_000 }, async () => {
    const src = await tempDir('jv-src-');
    await writeFile(join(src, 'a.txt'), 'alpha\n');
    const { repo: a } = await newRepo();
    const original = await backup(a, new LocalSource([src]));
    const { repo: b } = await newDestination({ ...FAST, shareIdsWith: a });
    const { repo: c } = await newDestination(FAST);
    await copyBetween(a, b);
    await copyBetween(b, c);
    expect((await listSnapshots(c))[0]!.copiedFrom).toBe(original.id);
    expect(await copyBetween(a, c)).toMatchObject({ copied: [], skipped: 1 });
    expect(await copyBetween(c, a)).toMatchObject({ copied: [], skipped: 1 });
    await expect(copyBetween(a, a)).rejects.toThrow(/same repository/);
  });

  it('keeps names and symlink targets that are not valid UTF-8 byte-exact when re-chunking', { timeout: 60_000 }, async () => {
    const at = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));
    const describeBytes = (root: Buffer): Record<string, string> => {
      const out: Record<string, string> = {};
      const walk = (dir: Buffer, rel: string): void => {
        for (const name of readdirSync(dir, { encoding: 'buffer' })) {
          const path = at(dir, name);
          const key = `${rel}/${name.toString('hex')}`;
          const st = lstatSync(path);
          if (st.isSymbolicLink()) out[key] = `link:${readlinkSync(path, { encoding: 'buffer' }).toString('hex')}`;
          else if (st.isDirectory()) walk(path, key);
          else out[key] = `file:${readFileSync(path).toString('base64')}`;
        }
      };
      walk(root, '');
      return out;
    };
    const src = await tempDir('jv-src-');
    writeFileSync(at(src, Buffer.from([0x66, 0xff, 0x6f])), 'first');
    writeFileSync(at(src, Buffer.from([0x66, 0xfe, 0x6f])), 'second'); // the same lossy string as the first
    mkdirSync(at(src, Buffer.from([0x64, 0xc3, 0x28, 0x80])));
    writeFileSync(at(src, Buffer.from([0x64, 0xc3, 0x28, 0x80]), 'inside'), randomBytes(70_000));
    symlinkSync(Buffer.from([0x74, 0xe9, 0x2f, 0x78]), at(src, 'raw-link'));
    const { repo: source } = await newRepo();
    await backup(source, new LocalSource([src]));
    const { repo: destination } = await newDestination(FAST);
    expect((await copyBetween(source, destination)).mode).toBe('re-chunk');
    const target = await tempDir('jv-restore-');
    await restore(destination, (await listSnapshots(destination))[0]!, target);
    expect(describeBytes(at(target, src.replace(/^\//, '')))).toEqual(describeBytes(Buffer.from(src)));
  });

  it('two consoles copying into one destination at once: both finish, nothing is corrupted, copies are not doubled', { timeout: 120_000 }, async () => {
    const { dir: srcDir, repo: source } = await newRepo();
    for (let i = 0; i < 6; i++) {
      const d = await tempDir('jv-src-');
      await writeFile(join(d, 'data.bin'), randomBytes(300_000));
      await writeFile(join(d, 'shared.bin'), Buffer.alloc(200_000, 3));
      await backup(source, new LocalSource([d]), { device: `jetson-${i}` });
    }
    const { dir } = await newDestination({ ...FAST, shareIdsWith: source });
    const consoles = await Promise.all([0, 1].map(async () => ({ src: await Repository.open(new LocalBackend(srcDir), PASSWORD), dst: await Repository.open(new LocalBackend(dir), OTHER_PASSWORD) })));
    const results = await Promise.all(consoles.map(({ src, dst }) => copyBetween(src, dst)));
    for (const r of results) expect(r.ok).toBe(true);
    const destination = await Repository.open(new LocalBackend(dir), OTHER_PASSWORD);
    const copies = await listSnapshots(destination);
    // Both may have written a snapshot at the same moment: they wrote the same object.
    expect(copies).toHaveLength(6);
    expect(new Set(copies.map((c) => c.copiedFrom)).size).toBe(6);
    expect(new Set(results.flatMap((r) => r.copied.map((c) => c.to)))).toEqual(new Set(copies.map((c) => c.id)));
    expect((await check(destination, { readData: true })).errors).toEqual([]);
  });

  it('reports damage found when reading back what it wrote', { timeout: 60_000 }, async () => {
    const src = await tempDir('jv-src-');
    await makeData(src);
    const { repo: source } = await newRepo();
    await backup(source, new LocalSource([src]));
    const { dir, repo: destination } = await newDestination({ ...FAST, shareIdsWith: source });
    let damaged = '';
    const result = await copyBetween(source, destination, {
      // The disk flips a bit in one written pack between the write and the read-back.
      onProgress: (p) => {
        if (p.phase !== 'verify' || damaged) return;
        const pack = [...destination.index.packs.values()].find((k) => k.entries.some((e) => e.type === 'data'))!;
        damaged = pack.id;
        const file = join(dir, NAMES.pack(pack.id));
        const bytes = readFileSync(file);
        bytes[pack.entries[0]!.offset + 3]! ^= 0x40;
        writeFileSync(file, bytes);
      },
    });
    expect(damaged).not.toBe('');
    expect(result.ok).toBe(false);
    expect(result.verification!.errors.join('\n')).toContain(damaged.slice(0, 12)); // the damaged blob's pack
    expect(result.verification!.errors.join('\n')).toMatch(/authentication failed|does not match its name/);
  });

  it('leaves out a snapshot whose source data is damaged, naming it, and copies the others', { timeout: 60_000 }, async () => {
    const src = await tempDir('jv-src-');
    await makeData(src);
    const { dir: srcDir, repo: source } = await newRepo();
    await backup(source, new LocalSource([src]), { device: 'jetson-1', tags: ['source:files'] });
    const pack = [...source.index.packs.values()].find((k) => k.entries.some((e) => e.type === 'data'))!;
    const entry = pack.entries.find((e) => e.type === 'data')!;
    const file = join(srcDir, NAMES.pack(pack.id));
    const bytes = readFileSync(file);
    bytes[entry.offset + 10]! ^= 0x01;
    writeFileSync(file, bytes);
    // Later snapshots of other data (another source of the device, taken after the damage) do not use it.
    const other = await tempDir('jv-src-');
    await writeFile(join(other, 'app.conf'), 'mode=field\n');
    await writeFile(join(other, 'model.bin'), randomBytes(300_000));
    await backup(source, new LocalSource([other]), { device: 'jetson-1', tags: ['source:config'] });
    const expected = await describeTree(other);
    const [damagedSnap] = await listSnapshots(source);
    for (const shared of [true, false]) {
      const { repo: destination } = await newDestination({ ...FAST, ...(shared ? { shareIdsWith: source } : {}) });
      const result = await copyBetween(source, destination);
      expect(result.ok).toBe(false);
      expect(result.damaged).toEqual([{ id: damagedSnap!.id, time: damagedSnap!.time, device: 'jetson-1', source: 'files', why: expect.stringMatching(new RegExp(`${entry.id.slice(0, 12)}.*authentication failed`)) as unknown }]);
      expect(result.copied.map((c) => c.source)).toEqual(['config']);
      const held = await listSnapshots(destination);
      expect(held.map((s) => s.copiedFrom)).toEqual([result.copied[0]!.from]);
      await restoresLike(destination, held[0]!, other, expected);
      expect((await check(destination, { readData: true })).errors).toEqual([]);
      expect(await readdir(join(destination.backend.location, 'locks'))).toEqual([]);
      // Copied again: the damaged one is named again, nothing is copied twice.
      const again = await copyBetween(source, destination);
      expect([again.copied.length, again.skipped, again.damaged.length]).toEqual([0, 1, 1]);
    }
  });

  it('waits for no one but respects an exclusive lease on either side', { timeout: 60_000 }, async () => {
    const { repo: source } = await newRepo();
    const { repo: destination } = await newDestination(FAST);
    const lock = await RepositoryLock.acquire(destination, true);
    await expect(copyBetween(source, destination)).rejects.toMatchObject({ failure: 'locked' });
    await lock.release();
    // Its own leases are gone afterwards, on both sides.
    await copyBetween(source, destination);
    expect(await readdir(join(destination.backend.location, 'locks'))).toEqual([]);
    expect(await readdir(join(source.backend.location, 'locks'))).toEqual([]);
  });

  it('a destination that goes away mid-copy is reported as the upload that failed, not as the lease it could not remove', { timeout: 60_000 }, async () => {
    const { source, dir } = await backedUpSourceAndDestination();
    // The store answers until the first pack goes up, then nothing (a gateway killed, a link cut).
    const inner = new LocalBackend(dir);
    let down = false;
    const gone = (what: string): Promise<never> => Promise.reject(new RepositoryError('unavailable', `S3 ${what} failed: connect ECONNREFUSED`));
    const store: Backend = {
      location: inner.location,
      put: (name, data) => {
        if (name.startsWith(NAMES.data)) down = true;
        return down ? gone(`upload of ${name}`) : inner.put(name, data);
      },
      putIfAbsent: (name, data) => (down ? gone(`upload of ${name}`) : inner.putIfAbsent(name, data)),
      get: (name, range) => (down ? gone(`download of ${name}`) : inner.get(name, range)),
      stat: (name) => (down ? gone(`stat of ${name}`) : inner.stat(name)),
      list: (prefix) => (down ? gone(`listing of ${prefix}`) : inner.list(prefix)),
      delete: (name) => (down ? gone(`delete of ${name}`) : inner.delete(name)),
      exists: () => inner.exists(),
    };
    const destination = await Repository.open(store, OTHER_PASSWORD);
    await expect(copyBetween(source, destination)).rejects.toThrow(/upload of data\//);
    // Its lease on the source, which stayed reachable, is gone.
    expect(await readdir(join(source.backend.location, 'locks'))).toEqual([]);
  });

  it('a destination that stops answering while the copy is read back is not reported as damaged', { timeout: 60_000 }, async () => {
    const { source, dir } = await backedUpSourceAndDestination();
    const inner = new LocalBackend(dir);
    // Writes go through; reading the packs back finds the gateway gone.
    const store = Object.assign(Object.create(inner) as LocalBackend, {
      get: (name: string, range?: { offset: number; length: number }) =>
        name.startsWith(NAMES.data) && range === undefined ? Promise.reject(new RepositoryError('unavailable', `S3 download of ${name} failed: connect ECONNREFUSED`)) : inner.get(name, range),
    });
    const destination = await Repository.open(store, OTHER_PASSWORD);
    await expect(copyBetween(source, destination)).rejects.toMatchObject({ failure: 'unavailable', message: expect.stringMatching(/^reading back the copy could not finish, the destination stopped answering/) as unknown });
  });
});
