/**
 * Locks are leases: a sealed object locks/<random id> { host, pid, exclusive, created, refreshed }
 * rewritten every REFRESH_MS. A lock is stale when it was not refreshed for STALE_MS, or when it
 * names this host and a pid that no longer runs. Backups, restores and checks share; only prune
 * (which deletes packs) is exclusive. Taking a lock: write ours, then list; if a live conflicting
 * lock exists, remove ours and fail — two racing writers both back off, neither proceeds unsafely.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { NAMES } from '../backend/backend';
import { openJson, sealJson } from '../crypto/sealed-object';
import { RepositoryError } from '../errors';
import type { Repository } from '../repo/repository';

export const REFRESH_MS = 60_000;
export const STALE_MS = 5 * 60_000;

export interface LockInfo {
  id: string;
  host: string;
  pid: number;
  exclusive: boolean;
  created: string;
  refreshed: string;
  stale: boolean;
}

interface LockFile {
  host: string;
  pid: number;
  exclusive: boolean;
  created: string;
  refreshed: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isStale(lock: LockFile, now = Date.now()): boolean {
  if (now - Date.parse(lock.refreshed) > STALE_MS) return true;
  return lock.host === hostname() && lock.pid !== process.pid && !pidAlive(lock.pid);
}

export async function listLocks(repo: Repository): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for (const object of await repo.backend.list(NAMES.locks)) {
    const id = object.name.slice(NAMES.locks.length);
    try {
      const lock = openJson<LockFile>(repo.keys.enc, 'lock', await repo.backend.get(object.name), id);
      out.push({ id, ...lock, stale: isStale(lock) });
    } catch (error) {
      // Deleted meanwhile (its holder finished): not a lock any more.
      if (error instanceof RepositoryError && error.failure === 'not-found') continue;
      throw error;
    }
  }
  return out;
}

/** What a long operation checks before it writes objects that refer to its earlier writes. */
export interface Lease {
  assertHeld(): Promise<void>;
}

export class RepositoryLock implements Lease {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly created = new Date().toISOString();
  private refreshedAt = Date.now();

  private constructor(
    private readonly repo: Repository,
    readonly id: string,
    readonly exclusive: boolean,
  ) {}

  static async acquire(repo: Repository, exclusive: boolean): Promise<RepositoryLock> {
    const lock = new RepositoryLock(repo, randomBytes(16).toString('hex'), exclusive);
    await lock.write();
    const conflicts = (await listLocks(repo)).filter((l) => l.id !== lock.id && !l.stale && (exclusive || l.exclusive));
    if (conflicts.length > 0) {
      await repo.backend.delete(lock.name);
      const c = conflicts[0]!;
      throw new RepositoryError(
        'locked',
        `repository is locked ${c.exclusive ? 'exclusively ' : ''}by pid ${c.pid} on ${c.host} since ${c.created} ` +
          '(if that process is gone, the lock turns stale after 5 minutes; `jetvault unlock` removes stale locks)',
      );
    }
    lock.timer = setInterval(() => void lock.refresh(), REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  /** Periodic refresh: only while our lock object is still there (`unlock` may have removed it). */
  private async refresh(): Promise<void> {
    try {
      if ((await this.repo.backend.stat(this.name)) !== null) await this.write();
    } catch {
      // A failed refresh shows up in assertHeld() as a lapsed lease.
    }
  }

  private get name(): string {
    return `${NAMES.locks}${this.id}`;
  }

  private async write(): Promise<void> {
    const now = Date.now();
    const file: LockFile = { host: hostname(), pid: process.pid, exclusive: this.exclusive, created: this.created, refreshed: new Date(now).toISOString() };
    await this.repo.backend.put(this.name, sealJson(this.repo.keys.enc, 'lock', file));
    this.refreshedAt = now;
  }

  /**
   * Throws `locked` if this lease may have been taken for stale (not refreshed in time, e.g. the
   * laptop slept, or removed by `unlock`): a prune may then have deleted packs this run wrote but had
   * not indexed yet, so the run must stop before writing an index or snapshot that names them.
   */
  async assertHeld(): Promise<void> {
    const lapsed = Date.now() - this.refreshedAt > STALE_MS - 30_000;
    const present = (await this.repo.backend.stat(this.name)) !== null;
    if (lapsed || !present) {
      throw new RepositoryError(
        'locked',
        `this run's lock ${present ? 'was not refreshed for over 4.5 minutes' : 'was removed'}; another process may have pruned meanwhile, ` +
          'so nothing more is written (run the command again: data already stored is reused)',
      );
    }
    await this.write();
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.repo.backend.delete(this.name);
  }
}

/** Runs `work` under a lock and always releases it. */
export async function withLock<T>(repo: Repository, exclusive: boolean, work: (lease: Lease) => Promise<T>): Promise<T> {
  const lock = await RepositoryLock.acquire(repo, exclusive);
  try {
    return await work(lock);
  } finally {
    await lock.release();
  }
}

/** Removes stale locks (or all, when `all`); returns how many were removed. */
export async function removeLocks(repo: Repository, all = false): Promise<number> {
  let removed = 0;
  for (const lock of await listLocks(repo)) {
    if (!all && !lock.stale) continue;
    await repo.backend.delete(`${NAMES.locks}${lock.id}`);
    removed++;
  }
  return removed;
}
