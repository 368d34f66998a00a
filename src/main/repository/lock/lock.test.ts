/**
 * Leases on a real local repository: create-only exclusive generations (exactly one of many racing
 * prunes proceeds, also when they all break the same stale lease), the write-then-list fallback on
 * a store without create-only writes, and breaking leases (stale freely, live only with force).
 */
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { Backend } from '../backend/backend';
import { NAMES } from '../backend/backend';
import { LocalBackend } from '../backend/local-backend';
import { sealJson } from '../crypto/sealed-object';
import { RepositoryError } from '../errors';
import { Repository } from '../repo/repository';
import { newRepo, PASSWORD } from '../testing/fixtures';
import { breakLock, hasCreateOnly, listLocks, RepositoryLock, removeLocks, STALE_MS, withLock, readLease } from './lock';

const failure = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (error) {
    if (error instanceof RepositoryError) return error.failure;
    throw error;
  }
  return 'none';
};

/** A lease as a crashed console on another host leaves it: not refreshed for `minutes`. */
async function leftLease(repo: Repository, id: string, exclusive: boolean, minutes: number): Promise<void> {
  const at = new Date(Date.now() - minutes * 60_000).toISOString();
  await repo.backend.put(`${NAMES.locks}${id}`, sealJson(repo.keys.enc, 'lock', { host: 'depot-laptop-2', pid: 4242, exclusive, created: at, refreshed: at }));
}

/** The local backend as a store without create-only writes (e.g. an old S3 gateway). */
function withoutCreateOnly(inner: LocalBackend): Backend {
  return {
    location: inner.location,
    put: (n, d) => inner.put(n, d),
    get: (n, r) => inner.get(n, r),
    stat: (n) => inner.stat(n),
    list: (p) => inner.list(p),
    delete: (n) => inner.delete(n),
    exists: () => inner.exists(),
  };
}

describe('the local backend create-only put', () => {
  it('stores once; a second create of the name fails and leaves the first', async () => {
    const { dir } = await newRepo();
    const b = new LocalBackend(dir);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => b.putIfAbsent(`locks/x`, Buffer.from(`writer ${i}`))));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await b.get('locks/x')).toString()).toBe(`writer ${results.indexOf(true)}`);
    expect((await b.list('locks/')).map((o) => o.name)).toEqual(['locks/x']); // no temp files left
    expect(await hasCreateOnly(b)).toBe(true);
  });
});

describe('exclusive leases with create-only writes', () => {
  it('of eight racing prunes (separate opens of one repository) exactly one proceeds', async () => {
    const { dir } = await newRepo();
    const opens = await Promise.all(Array.from({ length: 8 }, () => Repository.open(new LocalBackend(dir), PASSWORD)));
    const outcomes = await Promise.allSettled(opens.map((r) => RepositoryLock.acquire(r, true)));
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ failure: 'locked' });
    expect((await listLocks(opens[0]!)).map((l) => l.id)).toEqual(['exclusive-0000000001']);
    // A backup meanwhile is refused with the holder named.
    await expect(RepositoryLock.acquire(opens[1]!, false)).rejects.toThrow(/locked exclusively by pid \d+ on .* turns stale at/);
    await (won[0] as PromiseFulfilledResult<RepositoryLock>).value.release();
    expect(await listLocks(opens[0]!)).toEqual([]);
  });

  it('a stale exclusive lease is superseded by the next generation, by exactly one of many racing breakers', async () => {
    const { dir, repo } = await newRepo();
    await leftLease(repo, 'exclusive-0000000007', true, STALE_MS / 60_000 + 1);
    const opens = await Promise.all(Array.from({ length: 6 }, () => Repository.open(new LocalBackend(dir), PASSWORD)));
    const outcomes = await Promise.allSettled(opens.map((r) => RepositoryLock.acquire(r, true)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const locks = await listLocks(repo);
    expect(locks.map((l) => [l.id, l.stale])).toEqual([['exclusive-0000000008', false]]); // the stale one is cleaned up
    await (outcomes.find((o) => o.status === 'fulfilled') as PromiseFulfilledResult<RepositoryLock>).value.release();
  });

  it('a live exclusive lease of another console blocks prunes and backups until it is stale', async () => {
    const { repo } = await newRepo();
    await leftLease(repo, 'exclusive-0000000001', true, 1);
    expect(await failure(RepositoryLock.acquire(repo, true))).toBe('locked');
    expect(await failure(RepositoryLock.acquire(repo, false))).toBe('locked');
    await expect(RepositoryLock.acquire(repo, false)).rejects.toThrow(/by pid 4242 on depot-laptop-2 .*refreshed 60 s ago/);
    expect(await removeLocks(repo)).toBe(0); // live: unlock leaves it
    expect((await listLocks(repo))[0]).toMatchObject({ id: 'exclusive-0000000001', stale: false, host: 'depot-laptop-2' });
  });

  it('a prune backs off when a backup holds a shared lease, and a backup backs off from a prune', async () => {
    const { repo } = await newRepo();
    const shared = await RepositoryLock.acquire(repo, false);
    expect(await failure(RepositoryLock.acquire(repo, true))).toBe('locked');
    expect((await listLocks(repo)).map((l) => l.exclusive)).toEqual([false]); // the prune removed its own
    await shared.release();
    const exclusive = await RepositoryLock.acquire(repo, true);
    expect(await failure(RepositoryLock.acquire(repo, false))).toBe('locked');
    await exclusive.release();
    // The next generation number is reused once the lease is gone: nothing grows without bound.
    const again = await RepositoryLock.acquire(repo, true);
    expect((await listLocks(repo)).map((l) => l.id)).toEqual(['exclusive-0000000001']);
    await again.release();
  });
});

describe('without create-only writes (write-then-list fallback)', () => {
  it('an exclusive lease is a random-named lock; racing prunes never both proceed', async () => {
    const { dir } = await newRepo();
    const opens = await Promise.all(Array.from({ length: 4 }, () => Repository.open(withoutCreateOnly(new LocalBackend(dir)), PASSWORD)));
    expect(await hasCreateOnly(opens[0]!.backend)).toBe(false);
    const outcomes = await Promise.allSettled(opens.map((r) => RepositoryLock.acquire(r, true)));
    const won = outcomes.filter((o): o is PromiseFulfilledResult<RepositoryLock> => o.status === 'fulfilled');
    expect(won.length).toBeLessThanOrEqual(1);
    for (const w of won) await w.value.release();
    const alone = await RepositoryLock.acquire(opens[0]!, true);
    expect((await listLocks(opens[0]!)).map((l) => [/^[0-9a-f]{32}$/.test(l.id), l.exclusive])).toEqual([[true, true]]);
    expect(await failure(RepositoryLock.acquire(opens[1]!, false))).toBe('locked');
    await alone.release();
  });

  it('a store that ignores create-only requests is detected by the probe and gets the fallback', async () => {
    const { dir } = await newRepo();
    const inner = new LocalBackend(dir);
    const ignoring: Backend = { ...withoutCreateOnly(inner), putIfAbsent: async (n, d) => (await inner.put(n, d), true) };
    expect(await hasCreateOnly(ignoring)).toBe(false);
    expect(await inner.list('locks/')).toEqual([]); // the probe cleaned up
  });
});

describe('breaking leases', () => {
  it('a stale lease breaks freely; a live one only with force, after which its holder stops and never deletes a successor', async () => {
    const { dir, repo } = await newRepo();
    await leftLease(repo, 'ab'.repeat(16), false, 7);
    expect(await breakLock(repo, 'ab'.repeat(16))).toMatchObject({ host: 'depot-laptop-2', stale: true });
    expect(await failure(breakLock(repo, 'ab'.repeat(16)))).toBe('not-found');

    const holder = await RepositoryLock.acquire(repo, true);
    expect(await failure(breakLock(repo, holder.id))).toBe('locked');
    await expect(breakLock(repo, holder.id)).rejects.toThrow(/is live .* needs force/);
    expect(await breakLock(repo, holder.id, true)).toMatchObject({ host: hostname(), pid: process.pid, exclusive: true, stale: false });
    // Another console now takes the same generation name.
    const other = await Repository.open(new LocalBackend(dir), PASSWORD);
    const successor = await RepositoryLock.acquire(other, true);
    expect(successor.id).toBe(holder.id);
    await expect(holder.assertHeld()).rejects.toThrow(/was removed/);
    await holder.release();
    expect((await listLocks(repo)).map((l) => l.id)).toEqual([successor.id]);
    await successor.release();
  });

  it('withLock reports why the work failed, not that the lease could not be removed from a store that went away', async () => {
    const { dir } = await newRepo();
    const inner = new LocalBackend(dir);
    let down = false;
    const store: Backend = Object.assign(Object.create(inner) as LocalBackend, {
      get: (name: string, range?: { offset: number; length: number }) => (down ? Promise.reject(new RepositoryError('unavailable', 'S3 download failed')) : inner.get(name, range)),
      delete: (name: string) => (down ? Promise.reject(new RepositoryError('unavailable', `S3 delete of ${name} failed`)) : inner.delete(name)),
    });
    const repo = await Repository.open(store, PASSWORD);
    const work = withLock(repo, false, () => {
      down = true;
      return Promise.reject(new RepositoryError('unavailable', 'S3 upload of data/ab/abcd failed: connect ECONNREFUSED'));
    });
    await expect(work).rejects.toThrow(/upload of data\/ab\/abcd/);
    // With the work done, a release that fails is still reported.
    down = false;
    await expect(withLock(repo, false, () => ((down = true), Promise.resolve(1)))).rejects.toThrow(/delete of locks\//);
  });

  it('readLease: on a write-protected store, reading goes on without a lease, unless a prune holds the exclusive one', async () => {
    const { dir, repo } = await newRepo();
    const inner = new LocalBackend(dir);
    const erofs = (): Promise<never> => Promise.reject(Object.assign(new Error(`EROFS: read-only file system, open '${dir}/locks/.tmp-1'`), { code: 'EROFS' }));
    const readOnly = Object.assign(Object.create(inner) as LocalBackend, { put: erofs, putIfAbsent: erofs });
    const reader = await Repository.open(readOnly, PASSWORD);
    // Writing a lease is still refused as before (backup, prune)...
    await expect(RepositoryLock.acquire(reader, false)).rejects.toMatchObject({ code: 'EROFS' });
    // ...but a command that only reads (check, restore to a folder) may go on.
    expect(await readLease(reader)).toBeNull();
    const prune = await RepositoryLock.acquire(repo, true);
    expect(await failure(readLease(reader))).toBe('locked');
    await prune.release();
    // On a writable store it is an ordinary shared lease.
    const lease = await readLease(repo);
    expect(lease).toBeInstanceOf(RepositoryLock);
    await lease!.release();
  });

  it('a damaged lock object blocks no one and unlock removes it', async () => {
    const { repo } = await newRepo();
    // Half an object, as an SFTP server that died mid-write or a stray file leaves it.
    await repo.backend.put(`${NAMES.locks}0123456789abcdef0123456789abcdef`, Buffer.from('garbage'));
    const shared = await RepositoryLock.acquire(repo, false);
    await shared.release();
    const exclusive = await RepositoryLock.acquire(repo, true);
    await exclusive.release();
    expect(await listLocks(repo)).toMatchObject([{ id: '0123456789abcdef0123456789abcdef', stale: true }]);
    expect(await removeLocks(repo)).toBe(1);
    expect(await repo.backend.list(NAMES.locks)).toEqual([]);
  });
});
