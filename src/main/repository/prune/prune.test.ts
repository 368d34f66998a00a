import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NAMES } from '../backend/backend';
import { backup } from '../archiver/archiver';
import { check } from '../checker/checker';
import { restore } from '../restorer/restorer';
import { findSnapshot, listSnapshots, loadTree } from '../snapshot/snapshot';
import type { SnapshotWithId } from '../snapshot/snapshot';
import { describeTree, flipByte, newRepo, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { breakLock, listLocks, withLock } from '../lock/lock';
import { applyPolicy } from './forget-policy';
import { forget } from './forget';
import { prune } from './prune';

const snap = (time: string, device = 'jetson-1'): SnapshotWithId =>
  ({ id: time, time, device, paths: ['/data'], tree: '', version: 1, hostname: 'h', username: 'u', source: 'local', tags: [], summary: {} }) as unknown as SnapshotWithId;

describe('forget policy', () => {
  const times = ['2026-01-01T10:00:00', '2026-01-01T11:00:00', '2026-01-02T10:00:00', '2026-01-09T10:00:00', '2026-02-01T10:00:00', '2026-02-01T12:00:00'];
  const snaps = times.map((t) => snap(t));

  it('keeps the last N and the newest per day/month', () => {
    const kept = (policy: Parameters<typeof applyPolicy>[1]): string[] =>
      applyPolicy(snaps, policy).filter((d) => d.keep).map((d) => d.snapshot.time).sort();
    expect(kept({ last: 2 })).toEqual(times.slice(4));
    expect(kept({ daily: 3 })).toEqual(['2026-01-02T10:00:00', '2026-01-09T10:00:00', '2026-02-01T12:00:00']);
    expect(kept({ monthly: 5 })).toEqual(['2026-01-09T10:00:00', '2026-02-01T12:00:00']);
    expect(kept({ within: '1w' })).toEqual(['2026-02-01T10:00:00', '2026-02-01T12:00:00']);
    expect(kept({})).toEqual(times);
  });

  it('applies the policy per device', () => {
    const mixed = [...snaps, snap('2025-01-01T00:00:00', 'jetson-2')];
    expect(applyPolicy(mixed, { last: 1 }).filter((d) => d.keep).map((d) => d.snapshot.time).sort()).toEqual(['2025-01-01T00:00:00', '2026-02-01T12:00:00']);
  });
});

describe('forget + prune', () => {
  it('frees the data only forgotten snapshots used, repacks, and keeps the rest restorable', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'keep.bin'), randomBytes(400_000));
    await writeFile(join(src, 'gone.bin'), randomBytes(400_000));
    const { repo } = await newRepo();
    await backup(repo, new LocalSource([src]));
    await rm(join(src, 'gone.bin'));
    await writeFile(join(src, 'new.bin'), randomBytes(100_000));
    const second = await backup(repo, new LocalSource([src]));

    const plan = await forget(repo, { last: 1 }, { dryRun: true });
    expect(plan.filter((d) => !d.keep)).toHaveLength(1);
    expect(await listSnapshots(repo)).toHaveLength(2);
    await forget(repo, { last: 1 });
    expect((await listSnapshots(repo)).map((s) => s.id)).toEqual([second.id]);

    const dry = await prune(repo, { dryRun: true });
    expect(dry.packsDeleted).toBeGreaterThan(0);
    const report = await prune(repo);
    expect(report.bytesFreed).toBeGreaterThan(300_000);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    const target = await tempDir();
    await restore(repo, await findSnapshot(repo, 'latest'), target);
    expect(await describeTree(join(target, src))).toEqual(await describeTree(src));
  });
});

describe('prune of packs prune has nothing to free in', () => {
  it('leaves a pack all of whose blobs are used as it is, on every prune', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'a.txt'), 'a small file');
    const { repo } = await newRepo();
    await backup(repo, new LocalSource([src]));
    const packs = [...repo.index.packs.keys()].sort();
    // A small pack is mostly header and prefix: that is no garbage, and rewriting it frees nothing.
    for (let run = 0; run < 2; run++) {
      const report = await prune(repo);
      expect(report).toMatchObject({ packsDeleted: 0, packsRepacked: 0, packsWritten: 0, bytesFreed: 0, blobsRemoved: 0 });
      expect([...repo.index.packs.keys()].sort()).toEqual(packs);
    }
  });
});

describe('prune beside damaged data', () => {
  it('keeps a pack whose used data is damaged, frees the rest, and reports the pack it kept, on every re-run', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'keep.bin'), randomBytes(150_000));
    await writeFile(join(src, 'gone.bin'), randomBytes(150_000));
    const { dir, repo } = await newRepo({ chunker: { min: 4096, avg: 16384, max: 65536 }, packSize: 64 * 1024 * 1024, kdf: { N: 1024, r: 8, p: 1 } });
    const first = await backup(repo, new LocalSource([src]));
    await rm(join(src, 'gone.bin'));
    await writeFile(join(src, 'later.bin'), randomBytes(150_000));
    const second = await backup(repo, new LocalSource([src]));
    // One data pack holds keep.bin and gone.bin; flip a byte of a blob keep.bin still uses.
    const root = await loadTree(repo, (await findSnapshot(repo, second.id)).tree);
    let tree = root;
    for (const part of src.split('/').filter(Boolean)) tree = await loadTree(repo, tree.nodes.find((n) => n.name === part)!.subtree!);
    const keepBlob = tree.nodes.find((n) => n.name === 'keep.bin')!.content![0]!;
    const where = repo.index.get(keepBlob)!;
    await flipByte(join(dir, NAMES.pack(where.pack)), where.offset + 10);
    await forget(repo, { last: 1 });
    expect((await listSnapshots(repo)).map((s) => s.id)).toEqual([second.id]);
    expect(first.id).not.toBe(second.id);

    // Run twice: the first run's result is what a re-run meets.
    for (let run = 0; run < 2; run++) {
      const report = await prune(repo);
      expect(report.damagedPacks).toEqual([where.pack]);
      expect(repo.index.packs.has(where.pack)).toBe(true);
    }
    const packs = (await repo.backend.list(NAMES.data)).map((o) => NAMES.packId(o.name));
    expect(packs).toContain(where.pack);
    // What is not damaged is still there and readable.
    const report = await check(repo, { readData: true });
    expect(report.damagedPacks).toEqual([where.pack]);
    expect(report.affected.map((a) => a.path.split('/').pop())).toEqual(['keep.bin']);
    const target = await tempDir();
    await restore(repo, await findSnapshot(repo, second.id), target, { include: ['**/later.bin'] });
    expect((await readdir(join(target, src))).sort()).toEqual(['later.bin']);
  });
});

describe('prune whose lease is broken while it runs', () => {
  it('stops before it replaces the index or deletes a pack, saying why and what to do; run again, it finishes', async () => {
    const src = await tempDir();
    await writeFile(join(src, 'keep.bin'), randomBytes(400_000));
    await writeFile(join(src, 'gone.bin'), randomBytes(400_000));
    const { dir, repo } = await newRepo();
    await backup(repo, new LocalSource([src]));
    await rm(join(src, 'gone.bin'));
    await backup(repo, new LocalSource([src]));
    await forget(repo, { last: 1 });
    const before = (await readdir(join(dir, 'data'), { recursive: true })).sort();
    const indexes = (await repo.backend.list(NAMES.index)).map((o) => o.name);

    // Another console's operator presses "Break lease" on this live exclusive lease (force) once
    // the prune holds it: the prune finds out before it replaces the index.
    const run = withLock(repo, true, async (lease) => {
      const [held] = await listLocks(repo);
      await breakLock(repo, held!.id, true);
      return prune(repo, { lease });
    });
    await expect(run).rejects.toThrow(/prune stopped before deleting anything: its exclusive lease was removed .*Nothing was deleted; run prune again/);
    // Nothing it had not written itself is gone: the old index and every old pack are there.
    expect((await repo.backend.list(NAMES.index)).map((o) => o.name)).toEqual(indexes);
    const after = await readdir(join(dir, 'data'), { recursive: true });
    expect(before.filter((p) => !after.includes(p))).toEqual([]);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    // Run again: it finishes.
    const report = await withLock(repo, true, (lease) => prune(repo, { lease }));
    expect(report.bytesFreed).toBeGreaterThan(300_000);
  });
});

describe('prune on a repository disk too full for the packs it rewrites', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`frees what needs no room, keeps the packs to repack as they are, and repacks them on a re-run once there is room${root ? '' : ' (skipped: mounting a small tmpfs needs root; CI runs as root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const { LocalBackend } = await import('../backend/local-backend');
    const { Repository } = await import('../repo/repository');
    const { FAST, PASSWORD } = await import('../testing/fixtures');
    const mount = join(await tempDir(), 'usb');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mount]);
    try {
      const dir = join(mount, 'repo');
      await Repository.init(new LocalBackend(dir), PASSWORD, FAST);
      const repo = await Repository.open(new LocalBackend(dir), PASSWORD);
      const src = await tempDir();
      await writeFile(join(src, 'gone.bin'), randomBytes(300_000));
      await backup(repo, new LocalSource([src]));
      await rm(join(src, 'gone.bin'));
      await writeFile(join(src, 'keep.bin'), randomBytes(150_000));
      await writeFile(join(src, 'later.bin'), randomBytes(150_000));
      await backup(repo, new LocalSource([src]));
      await rm(join(src, 'later.bin'));
      const last = await backup(repo, new LocalSource([src]));
      await forget(repo, { last: 1 });
      const plan = await prune(repo, { dryRun: true });
      expect(plan.packsRepacked).toBeGreaterThan(0);

      // Room for leases and the index, not for the ~150 kB a repacked pack takes.
      let n = 0;
      for (; n < 1000; n++) {
        try {
          await writeFile(join(mount, `filler-${n}`), Buffer.alloc(32 * 1024));
        } catch {
          break;
        }
      }
      await rm(join(mount, `filler-${n - 1}`));
      await rm(join(mount, `filler-${n - 2}`));
      await rm(join(mount, `filler-${n}`), { force: true });

      const report = await withLock(repo, true, (lease) => prune(repo, { lease }));
      expect(report.packsNotRepacked).toBe(plan.packsRepacked);
      expect(report.packsRepacked).toBe(0);
      expect(report.bytesFreed).toBeGreaterThan(250_000);
      expect((await check(repo, { readData: true })).errors).toEqual([]);
      expect((await readdir(dir)).filter((e) => e.startsWith('.tmp-'))).toEqual([]);

      // Room made: the re-run repacks what was left.
      for (let i = 0; i < n; i++) await rm(join(mount, `filler-${i}`), { force: true });
      const again = await withLock(repo, true, (lease) => prune(repo, { lease }));
      expect(again).toMatchObject({ packsRepacked: plan.packsRepacked, packsNotRepacked: 0 });
      const target = await tempDir();
      await restore(repo, await findSnapshot(repo, last.id), target);
      expect(await describeTree(join(target, src))).toEqual(await describeTree(src));
    } finally {
      execFileSync('umount', ['-l', mount]);
    }
  });
});

describe('staged packs', () => {
  it('a pack is written through a staged file, and prune deletes the staged and temp files interrupted runs left', async () => {
    const { dir, repo } = await newRepo();
    const src = await tempDir();
    await writeFile(join(src, 'big.bin'), randomBytes(600_000));
    await backup(repo, new LocalSource([src]));
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    // An interrupted writer's staged pack: bytes written, never committed.
    const staged = repo.backend.stage!();
    staged.write(randomBytes(1000));
    await staged.drained();
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toHaveLength(1);
    // Puts cut off part-way (a prune killed while writing its index, a backup while writing its snapshot).
    const [pack] = await repo.backend.list(NAMES.data);
    const beside = ['index', 'snapshots', join('data', pack!.name.split('/')[1]!)].map((d) => join(dir, d, '.tmp-0123456789abcdef'));
    for (const file of beside) await writeFile(file, randomBytes(1000));
    expect((await check(repo)).errors).toEqual([]);
    await prune(repo);
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect((await readdir(dir, { recursive: true })).filter((n) => n.split('/').pop()!.startsWith('.tmp-'))).toEqual([]);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
  });
});
