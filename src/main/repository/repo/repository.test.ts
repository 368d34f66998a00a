import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { LocalBackend } from '../backend/local-backend';
import { NAMES } from '../backend/backend';
import { hkdf, open, seal } from '../crypto/aead';
import { changePassword, listKeySlots, addKeySlot, removeKeySlot } from '../crypto/key-slots';
import { PACK_PREFIX } from '../pack/pack-format';
import { KNOWN_CHUNK } from '../pipeline/chunk-pool';
import { restore } from '../restorer/restorer';
import { rebuildIndex } from '../index/rebuild-index';
import { listLocks, removeLocks, RepositoryLock } from '../lock/lock';
import { diffTrees } from '../snapshot/diff';
import { findSnapshot, listSnapshots, walkTree } from '../snapshot/snapshot';
import { FAST, folderNode, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { RepositoryError } from '../errors';
import { Repository } from './repository';
import { check } from '../checker/checker';
import { forget } from '../prune/forget';
import { prune } from '../prune/prune';

const failure = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (error) {
    return (error as RepositoryError).failure;
  }
  return 'none';
};

describe('repository', () => {
  it('refuses a wrong password and a missing repository with distinct failures', async () => {
    const { dir } = await newRepo();
    expect(await failure(Repository.open(new LocalBackend(dir), 'wrong'))).toBe('wrong-password');
    expect(await failure(Repository.open(new LocalBackend(join(dir, 'nope')), PASSWORD))).toBe('missing');
    expect(await failure(Repository.init(new LocalBackend(dir), PASSWORD, FAST))).toBe('exists');
  });

  it('key slots: several passwords, change, remove; the master key never changes', async () => {
    const { dir, repo } = await newRepo();
    const backend = new LocalBackend(dir);
    const bob = await addKeySlot(backend, repo.master, 'bob-pw', 'bob', FAST.kdf);
    expect((await listKeySlots(backend, repo.slotId)).map((s) => s.label).sort()).toEqual(['bob', 'initial']);
    const asBob = await Repository.open(backend, 'bob-pw');
    expect(asBob.master.equals(repo.master)).toBe(true);
    await changePassword(backend, asBob.master, bob, 'bob-new', FAST.kdf);
    expect(await failure(Repository.open(backend, 'bob-pw'))).toBe('wrong-password');
    const again = await Repository.open(backend, 'bob-new');
    expect(await failure(removeKeySlot(backend, again.slotId, again.slotId))).toBe('exists');
    await removeKeySlot(backend, repo.slotId, again.slotId);
    expect(await failure(Repository.open(backend, PASSWORD))).toBe('wrong-password');
  });

  it('an init cut off after its key slot, run again with the same password, gives a repository that opens with it', async () => {
    const dir = join(await tempDir(), 'repo');
    await mkdir(dir);
    const backend = new LocalBackend(dir);
    // The first init stored its key slot, then the store failed before the config was written.
    const failing = Object.assign(Object.create(backend) as LocalBackend, {
      put: (name: string, data: Buffer) => (name === NAMES.config ? Promise.reject(new Error('EIO: i/o error, rename')) : backend.put(name, data)),
    });
    // Its slot id is random: made again until it sorts in the lower half, so that a later slot sorts
    // after it at least half the time (a leftover "ff…" left 64 tries below too few: a flaky test).
    let leftover: string[] = [];
    for (let i = 0; i < 64 && !/^[0-7]/.test(leftover[0]?.slice(NAMES.keys.length) ?? 'f'); i++) {
      for (const name of leftover) await backend.delete(name);
      await expect(Repository.init(failing, PASSWORD, FAST)).rejects.toThrow(/EIO/);
      leftover = (await backend.list(NAMES.keys)).map((o) => o.name);
      expect(leftover).toHaveLength(1);
    }
    // Run again until its own slot sorts after the leftover (which the same password also opens,
    // and which is tried first then): slot ids are random.
    let made = await Repository.init(backend, PASSWORD, FAST);
    for (let i = 0; `${NAMES.keys}${made.slotId}` < leftover[0]! && i < 64; i++) {
      for (const o of await backend.list(NAMES.keys)) if (!leftover.includes(o.name)) await backend.delete(o.name);
      await backend.delete(NAMES.config);
      made = await Repository.init(backend, PASSWORD, FAST);
    }
    expect(`${NAMES.keys}${made.slotId}` > leftover[0]!).toBe(true);
    const opened = await Repository.open(backend, PASSWORD);
    expect(opened.config.id).toBe(made.config.id);
    expect(opened.slotId).toBe(made.slotId);
    // A config that is damaged is still reported as damaged, not as a wrong password.
    const config = await backend.get(NAMES.config);
    config[config.length - 1]! ^= 1;
    await backend.put(NAMES.config, config);
    expect(await failure(Repository.open(backend, PASSWORD))).toBe('corrupt');
    expect(await failure(Repository.open(backend, 'not the password'))).toBe('wrong-password');
  });

  it('locks: exclusive conflicts with shared, stale locks are removable', async () => {
    const { repo } = await newRepo();
    const shared = await RepositoryLock.acquire(repo, false);
    const other = await RepositoryLock.acquire(repo, false);
    expect(await failure(RepositoryLock.acquire(repo, true))).toBe('locked');
    await other.release();
    await shared.release();
    const exclusive = await RepositoryLock.acquire(repo, true);
    expect(await failure(RepositoryLock.acquire(repo, false))).toBe('locked');
    expect(await removeLocks(repo)).toBe(0); // ours is live
    expect(await removeLocks(repo, true)).toBe(1);
    expect(await listLocks(repo)).toEqual([]);
    await exclusive.release();
  });

  it('a backup whose lock was removed (taken for stale) writes no index and no snapshot', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a'), randomBytes(100_000));
    const { repo } = await newRepo();
    const lock = await RepositoryLock.acquire(repo, false);
    await removeLocks(repo, true); // as `unlock --remove-all`, or a prune that judged it stale
    expect(await failure(backup(repo, new LocalSource([src]), { lease: lock }))).toBe('locked');
    expect(await repo.backend.list(NAMES.snapshots)).toEqual([]);
    expect(await repo.backend.list(NAMES.index)).toEqual([]);
    await lock.release();
  });

  it('a Repository kept open sees another process prune, and never dedups against deleted data', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'model.bin'), randomBytes(200_000));
    const { dir, repo: kept } = await newRepo();
    await backup(kept, new LocalSource([src]));
    const other = await Repository.open(new LocalBackend(dir), PASSWORD);
    await forget(other, { last: 0 }, {});
    await prune(other);
    expect(await other.backend.list(NAMES.data)).toEqual([]);
    const again = await backup(kept, new LocalSource([src]));
    expect(again.snapshot.summary.bytesAdded).toBeGreaterThan(200_000);
    expect((await check(kept, { readData: true })).errors).toEqual([]);
  });

  it("reads back the trees it saved without reading their packs (the next backup's parent)", async () => {
    const src = await tempDir();
    for (const dir of ['a', 'b', 'b/c']) await mkdir(join(src, dir), { recursive: true });
    for (const file of ['a/1.txt', 'b/2.txt', 'b/c/3.txt']) await writeFile(join(src, file), file);
    const { repo } = await newRepo();
    const first = await backup(repo, new LocalSource([src]));
    const reads: string[] = [];
    const get = repo.backend.get.bind(repo.backend);
    repo.backend.get = (name, range) => {
      reads.push(name);
      return get(name, range);
    };
    const paths: string[] = [];
    for await (const { path } of walkTree(repo, first.snapshot.tree)) paths.push(path);
    expect(paths.filter((p) => p.endsWith('.txt')).map((p) => p.split('/').slice(-2).join('/'))).toEqual(['a/1.txt', 'b/2.txt', 'c/3.txt']);
    expect(reads.filter((name) => name.startsWith(NAMES.data))).toEqual([]);
    // An unchanged second backup compares against those trees, still without reading a pack.
    const second = await backup(repo, new LocalSource([src]), { parent: { ...first.snapshot, id: first.id } });
    expect(reads.filter((name) => name.startsWith(NAMES.data))).toEqual([]);
    expect(await folderNode(repo, second.snapshot.tree, src)).toEqual(await folderNode(repo, first.snapshot.tree, src));
  });

  it('keeps its chunk workers for the next backup, telling them what the last one stored, and closes them once idle', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'settings.json'), '{"mode":"field","retries":3}\n'.repeat(300));
    const { repo } = await newRepo();
    const idle = Repository.poolIdleMs;
    try {
      const pool = repo.acquireChunkPool(1);
      await repo.releaseChunkPool(pool);
      // A backup within the idle time takes the same workers up again.
      await backup(repo, new LocalSource([src]));
      const again = repo.acquireChunkPool(1);
      expect(again).toBe(pool);
      // They know the chunk that backup stored (not compressed a second time), though it came after they started.
      const data = await readFile(join(src, 'settings.json'));
      const piece = again.buffer(data.length);
      data.copy(piece);
      const [file] = (await (await again.smallBytes(piece, [data.length])).result).value;
      expect(file!.chunks[0]!.codec).toBe(KNOWN_CHUNK);
      // The idle time is read at release: shortened only now, so a slow machine cannot let it lapse above.
      Repository.poolIdleMs = 300;
      await repo.releaseChunkPool(again);
      await new Promise((resolve) => setTimeout(resolve, 600));
      // Idle longer than that: closed, and the next backup starts its own.
      const fresh = repo.acquireChunkPool(1);
      expect(fresh).not.toBe(pool);
      await repo.releaseChunkPool(fresh);
      await repo.closeIdleWorkers();
      const last = repo.acquireChunkPool(1);
      expect(last).not.toBe(fresh);
      await repo.releaseChunkPool(last);
    } finally {
      Repository.poolIdleMs = idle;
      await repo.closeIdleWorkers();
    }
  });

  it('tells its chunk workers what it stored since, and forgets what another process pruned however much that one added', async () => {
    const [a, b, c, d] = [await tempDir(), await tempDir(), await tempDir(), await tempDir()];
    await writeFile(join(a, 'settings.json'), '{"mode":"field","retries":3}\n'.repeat(300));
    await writeFile(join(c, 'camera.yaml'), 'camera: {fps: 30, exposure: auto}\n'.repeat(200));
    await writeFile(join(d, 'routes.csv'), 'depot,north,12.5\n'.repeat(400));
    for (let i = 0; i < 40; i++) await writeFile(join(b, `model-${i}.bin`), randomBytes(3_000));
    const { dir, repo: other } = await newRepo();
    await backup(other, new LocalSource([a]));
    const kept = await Repository.open(new LocalBackend(dir), PASSWORD);
    const known = async (file: string): Promise<boolean> => {
      const data = await readFile(file);
      const pool = kept.acquireChunkPool(1);
      try {
        const piece = pool.buffer(data.length);
        data.copy(piece);
        const [result] = (await (await pool.smallBytes(piece, [data.length])).result).value;
        return result!.chunks[0]!.codec === KNOWN_CHUNK;
      } finally {
        await kept.releaseChunkPool(pool);
        // The next question starts new workers, told the ids anew.
        await kept.closeIdleWorkers();
      }
    };
    const fold = Repository.knownFoldIds;
    try {
      // Laid out from the index as opened, then what its own backups indexed merged into a run of their own.
      expect(await known(join(a, 'settings.json'))).toBe(true);
      expect(await known(join(c, 'camera.yaml'))).toBe(false);
      await backup(kept, new LocalSource([c]));
      expect(await known(join(c, 'camera.yaml'))).toBe(true);
      expect(await known(join(a, 'settings.json'))).toBe(true);
      // That run folded into the first once it is large enough: nothing of either is lost.
      Repository.knownFoldIds = 1;
      await backup(kept, new LocalSource([d]));
      expect(await Promise.all([a, c, d].map(async (folder) => known(join(folder, (await readdir(folder))[0]!))))).toEqual([true, true, true]);
      Repository.knownFoldIds = fold;
      // Another process forgets and prunes all of it, then stores more blobs than there were.
      await forget(other, { last: 0 }, {});
      await prune(other);
      await backup(other, new LocalSource([b]));
      // Backing up the same folder again stores its chunk again: not taken for one the repository holds.
      const again = await backup(kept, new LocalSource([a]));
      expect(again.snapshot.summary.bytesAdded).toBeGreaterThan(0);
      expect((await check(kept, { readData: true })).errors).toEqual([]);
      expect(await known(join(a, 'settings.json'))).toBe(true);
      expect(await known(join(c, 'camera.yaml'))).toBe(false);
    } finally {
      Repository.knownFoldIds = fold;
      await kept.closeIdleWorkers();
      await other.closeIdleWorkers();
    }
  });

  it('a Repository kept open lists snapshots another process added or forgot', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a.txt'), 'a');
    const { dir, repo: kept } = await newRepo();
    const first = await backup(kept, new LocalSource([src]), { tags: ['one'] });
    expect((await listSnapshots(kept)).map((s) => s.id)).toEqual([first.id]);
    const other = await Repository.open(new LocalBackend(dir), PASSWORD);
    const second = await backup(other, new LocalSource([src]), { tags: ['two'] });
    expect((await listSnapshots(kept)).map((s) => [s.id, s.tags])).toEqual([[first.id, ['one']], [second.id, ['two']]]);
    await forget(other, { last: 1 }, {});
    expect((await listSnapshots(kept)).map((s) => s.id)).toEqual([second.id]);
  });

  it('rebuild-index recreates the index from packs alone; diff lists changes', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a'), randomBytes(50_000));
    await writeFile(join(src, 'b'), 'b');
    const { dir, repo } = await newRepo();
    const first = await backup(repo, new LocalSource([src]));
    await writeFile(join(src, 'b'), 'changed');
    await writeFile(join(src, 'c'), 'new');
    const second = await backup(repo, new LocalSource([src]), { parent: await findSnapshot(repo, first.id) });
    const backend = new LocalBackend(dir);
    for (const o of await backend.list(NAMES.index)) await backend.delete(o.name);
    const blind = await Repository.open(backend, PASSWORD);
    expect(blind.index.blobCount).toBe(0);
    const report = await rebuildIndex(blind);
    expect(report.blobs).toBe(repo.index.blobCount);
    const reopened = await Repository.open(backend, PASSWORD);
    const changes = await diffTrees(reopened, first.snapshot.tree, second.snapshot.tree);
    const rel = (p: string): string => p.split('/').at(-1)!;
    expect(changes.filter((c) => c.type !== 'dir').map((c) => `${c.kind} ${rel(c.path)}`)).toEqual(['modified b', 'added c']);
  });

  it('rebuild-index stops, changing nothing, when the store does not hand over a pack (an outage is not damage)', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a'), randomBytes(300_000));
    const { dir, repo } = await newRepo();
    await backup(repo, new LocalSource([src]));
    const inner = new LocalBackend(dir);
    const indexesBefore = await inner.list(NAMES.index);
    expect((await inner.list(NAMES.data)).length).toBeGreaterThan(1);
    let reads = 0;
    // The store answers for the first pack only, as when the retries ran out during an S3 outage.
    const flaky = Object.assign(Object.create(inner) as LocalBackend, {
      get: (name: string, range?: { offset: number; length: number }) =>
        name.startsWith(NAMES.data) && ++reads > 3 ? Promise.reject(new RepositoryError('unavailable', `S3 download of ${name} failed: connect ECONNREFUSED`)) : inner.get(name, range),
    });
    const opened = await Repository.open(flaky, PASSWORD);
    await expect(rebuildIndex(opened)).rejects.toMatchObject({ failure: 'unavailable', message: expect.stringMatching(/^rebuild-index stopped, nothing was changed: .*ECONNREFUSED/) as unknown });
    expect(await inner.list(NAMES.index)).toEqual(indexesBefore);
    expect((await check(await Repository.open(inner, PASSWORD), { readData: true })).ok).toBe(true);
  });

  it('reads, checks, re-indexes and adds to packs written as JVP1, beside new JVP2 ones (decision 020)', async () => {
    const src = await tempDir();
    const old = randomBytes(60_000);
    await writeFile(join(src, 'old'), old);
    const { dir, repo } = await newRepo();
    const first = await backup(repo, new LocalSource([src]));
    // Every pack of that backup turned into what the JVP1 writer made: its magic, the header sealed
    // with it as AAD, named by the SHA-256 of all its bytes (blobs are the same in both).
    const backend = new LocalBackend(dir);
    const nonce = Buffer.alloc(12, 0xff);
    for (const object of await backend.list(NAMES.data)) {
      const bytes = await backend.get(object.name);
      const key = hkdf(repo.keys.enc, bytes.subarray(4, PACK_PREFIX), 'jetvault/v1/pack');
      const headerStart = bytes.length - 4 - bytes.readUInt32LE(bytes.length - 4);
      const table = open(key, nonce, bytes.subarray(headerStart, bytes.length - 4), Buffer.from('JVP2'), 'header');
      const v1 = Buffer.concat([Buffer.from('JVP1'), bytes.subarray(4, headerStart), seal(key, nonce, table, Buffer.from('JVP1')), bytes.subarray(bytes.length - 4)]);
      await backend.put(NAMES.pack(createHash('sha256').update(v1).digest('hex')), v1);
      await backend.delete(object.name);
    }
    for (const object of await backend.list(NAMES.index)) await backend.delete(object.name);
    const reopened = await Repository.open(backend, PASSWORD);
    expect((await rebuildIndex(reopened)).unreadable).toEqual([]);

    const added = randomBytes(60_000);
    await writeFile(join(src, 'new'), added);
    const second = await backup(reopened, new LocalSource([src]), { parent: await findSnapshot(reopened, first.id) });
    const magics = new Set<string>();
    for (const object of await backend.list(NAMES.data)) magics.add((await backend.get(object.name, { offset: 0, length: 4 })).toString());
    expect([...magics].sort()).toEqual(['JVP1', 'JVP2']);
    const report = await check(reopened, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.packsRead).toBe((await backend.list(NAMES.data)).length);
    const target = await tempDir();
    await restore(reopened, await findSnapshot(reopened, second.id), target);
    const restored = join(target, ...src.split('/').filter(Boolean));
    expect(await readFile(join(restored, 'old'))).toEqual(old);
    expect(await readFile(join(restored, 'new'))).toEqual(added);
  });

  it('stores two copies of a large file in different trees once', async () => {
    const a = await tempDir();
    const b = await tempDir();
    const model = randomBytes(1_000_000);
    await writeFile(join(a, 'model.onnx'), model);
    await writeFile(join(b, 'same-model-other-device.onnx'), model);
    const { repo } = await newRepo();
    const first = await backup(repo, new LocalSource([a]), { device: 'jetson-a' });
    const second = await backup(repo, new LocalSource([b]), { device: 'jetson-b' });
    expect(first.snapshot.summary.bytesAdded).toBeGreaterThan(1_000_000);
    expect(second.snapshot.summary.bytesAdded).toBeLessThan(10_000);
  });
});
