/**
 * Many backups at once on one open Repository (eight devices backing up in parallel): every
 * snapshot restores byte-exact, the repository checks clean with its data read, and content the
 * devices share is stored once.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NAMES } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { LocalBackend } from '../backend/local-backend';
import { blobId } from '../crypto/aead';
import { check } from '../checker/checker';
import { listLocks, RepositoryLock, withLock } from '../lock/lock';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { findSnapshot, listSnapshots } from '../snapshot/snapshot';
import { LocalSource } from '../walker/local-walker';
import { describeTree, FAST, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { backup } from './archiver';

const DEVICES = 8;

/** Eight device trees: the same model files and configs in each, plus data of their own. */
async function makeFleet(): Promise<{ roots: string[]; sharedBytes: number; ownBytes: number }> {
  const shared = await tempDir('jv-shared-');
  const models = [randomBytes(900_000), randomBytes(300_000)];
  await writeFile(join(shared, 'model-a.engine'), models[0]!);
  await writeFile(join(shared, 'model-b.onnx'), models[1]!);
  const roots: string[] = [];
  let ownBytes = 0;
  for (let d = 0; d < DEVICES; d++) {
    const root = await tempDir(`jv-dev${d}-`);
    await mkdir(join(root, 'opt/models'), { recursive: true });
    await mkdir(join(root, 'etc/app'), { recursive: true });
    await mkdir(join(root, 'var/data'), { recursive: true });
    await copyFile(join(shared, 'model-a.engine'), join(root, 'opt/models/model-a.engine'));
    await copyFile(join(shared, 'model-b.onnx'), join(root, 'opt/models/model-b.onnx'));
    for (let f = 0; f < 30; f++) await writeFile(join(root, 'etc/app', `conf${f}.yaml`), `shared: ${f}\nfps: 30\n`);
    const own = randomBytes(150_000 + d * 10_000);
    await writeFile(join(root, 'var/data/own.bin'), own);
    await writeFile(join(root, 'etc/app/device.yaml'), `device: ${d}\n`);
    ownBytes += own.length;
    roots.push(root);
  }
  return { roots, sharedBytes: models[0]!.length + models[1]!.length, ownBytes };
}

async function packBytes(backend: Backend): Promise<number> {
  return (await backend.list(NAMES.data)).reduce((n, o) => n + o.size, 0);
}

describe('concurrent backups', () => {
  it('eight backups at once into one repository restore byte-exact, check clean and store shared content once', { timeout: 120_000 }, async () => {
    const { roots, sharedBytes, ownBytes } = await makeFleet();
    const { dir, repo } = await newRepo();
    const results = await Promise.all(
      roots.map((root, d) => withLock(repo, false, (lease) => backup(repo, new LocalSource([root]), { device: `dev${d}`, lease, workers: 2 }))),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(DEVICES);

    // Each blob is stored in exactly one pack, and the data is the shared part once plus each device's own.
    const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);
    const ids = [...reopened.index.packs.values()].flatMap((p) => p.entries.map((e) => e.id));
    expect(new Set(ids).size).toBe(ids.length);
    const stored = await packBytes(reopened.backend);
    expect(stored).toBeGreaterThan(sharedBytes + ownBytes);
    expect(stored).toBeLessThan((sharedBytes + ownBytes) * 1.1 + 64 * 1024);
    expect(results.reduce((n, r) => n + r.snapshot.summary.bytesAdded, 0)).toBeLessThan((sharedBytes + ownBytes) * 1.1 + 64 * 1024);

    const report = await check(reopened, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);

    for (const [d, root] of roots.entries()) {
      const target = await tempDir('jv-restore-');
      await restore(reopened, await findSnapshot(reopened, results[d]!.id), target, { workers: 0 });
      expect(await describeTree(join(target, root))).toEqual(await describeTree(root));
    }
    expect((await listSnapshots(reopened)).map((s) => s.device).sort()).toEqual(roots.map((_, d) => `dev${d}`).sort());
  });

  it('a backup that reuses a blob another backup has in a pack still queued for upload waits until that pack is stored and indexed', { timeout: 60_000 }, async () => {
    // Uploads are slow here, so packs queue behind the two being written — the case where a pack
    // is in neither the open set nor the upload set.
    const { dir } = await newRepo({ ...FAST, packSize: 64 * 1024 });
    const slow = new LocalBackend(dir);
    // Packs go through the slow put (held in memory, as for a backend that cannot stage).
    (slow as { stage?: unknown }).stage = undefined;
    const put = slow.put.bind(slow);
    slow.put = async (name, data) => {
      if (name.startsWith(NAMES.data)) await new Promise((r) => setTimeout(r, 150));
      return put(name, data);
    };
    const repo = await Repository.open(slow, PASSWORD);
    const a = repo.uploader.session();
    const b = repo.uploader.session();
    const blobs = Array.from({ length: 12 }, () => randomBytes(40_000));
    // A fills six packs; the producer is held back once three are queued, so add without awaiting.
    const adding = Promise.all(blobs.map((data) => repo.saveBlob(a, 'data', data)));
    await new Promise((r) => setTimeout(r, 20));
    // B stores the same content: deduplicated against A's pending blobs, never stored twice.
    const reused = await Promise.all(blobs.slice(0, 6).map((data) => repo.saveBlob(b, 'data', data)));
    expect(reused.every((r) => !r.added)).toBe(true);
    await repo.flush(b);
    for (const data of blobs.slice(0, 6)) {
      const id = blobId(repo.keys.mac, data).toString('hex');
      const where = repo.index.get(id);
      expect(where, 'indexed when the flush returned').toBeDefined();
      expect(await new LocalBackend(dir).stat(NAMES.pack(where!.pack))).not.toBeNull();
    }
    // The index objects on disk name them too, not only the in-memory index.
    const fresh = await Repository.open(new LocalBackend(dir), PASSWORD);
    for (const data of blobs.slice(0, 6)) expect(fresh.index.has(blobId(repo.keys.mac, data).toString('hex'))).toBe(true);
    await adding;
    await repo.flush(a);
    const all = await Repository.open(new LocalBackend(dir), PASSWORD);
    const ids = [...all.index.packs.values()].flatMap((p) => p.entries.map((e) => e.id));
    expect(new Set(ids).size).toBe(blobs.length);
    expect(ids.length).toBe(blobs.length);
    expect((await check(all, { readData: true })).errors).toEqual([]);
  });

  it('a backup that fails leaves no staged pack open, and what it stored is reused', { timeout: 60_000 }, async () => {
    const { roots } = await makeFleet();
    const { dir, repo } = await newRepo();
    // The backup stores its data, then finds its lease gone (as after a suspend) and stops before
    // writing an index or snapshot.
    const lock = await RepositoryLock.acquire(repo, false);
    await repo.backend.delete(`${NAMES.locks}${(await listLocks(repo))[0]!.id}`);
    await expect(backup(repo, new LocalSource([roots[0]!]), { lease: lock })).rejects.toThrow(/lock/i);
    await lock.release();
    expect(await listSnapshots(repo)).toEqual([]);
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect((await check(repo)).errors).toEqual([]);
    const stored = await packBytes(repo.backend);
    expect(stored).toBeGreaterThan(0);
    const again = await backup(repo, new LocalSource([roots[0]!]));
    expect(again.snapshot.summary.bytesAdded).toBeLessThan(1_500_000 - stored * 0.9 + 100_000);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
  });
});
