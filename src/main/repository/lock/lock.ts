/**
 * Locks are leases: sealed objects { host, pid, exclusive, created, refreshed } under locks/,
 * rewritten every REFRESH_MS. A lock is stale when it was not refreshed for STALE_MS, or when it
 * names this host and a pid that no longer runs. Backups, restores and checks share; only prune
 * (which deletes packs) is exclusive.
 *
 * Shared leases are `locks/<32 hex>`: write ours, then list; if a live exclusive lease exists,
 * remove ours and fail.
 *
 * Exclusive leases, where the store has a create-only put (checked once per backend with a probe),
 * are generations `locks/exclusive-<n>`: list, fail if any exclusive lease is live, else create
 * `exclusive-<highest n + 1>` only if absent — of two racing prunes exactly one creates it, the
 * other gets "exists" and fails without writing anything. A stale holder is superseded by the next
 * generation rather than deleted first, so breaking a stale lease never races another breaker.
 * Then list: a live shared lease makes us remove ours and fail (a backup and a prune racing may
 * both back off; neither proceeds unsafely).
 *
 * Stores without create-only writes fall back to the shared protocol with `exclusive: true`
 * (`locks/<32 hex>`, write then list): two racing prunes may then both back off, never both proceed.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Backend } from '../backend/backend';
import { NAMES } from '../backend/backend';
import { openJson, sealJson } from '../crypto/sealed-object';
import { RepositoryError } from '../errors';
import type { Repository } from '../repo/repository';
import { processAlive } from '../../process-alive';

export const REFRESH_MS = 60_000;
export const STALE_MS = 5 * 60_000;

const GENERATION = 'exclusive-';
const PROBE = 'probe-';

export interface LockInfo {
  /** The object name after `locks/`. */
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


export function isStale(lock: LockFile, now = Date.now()): boolean {
  if (now - Date.parse(lock.refreshed) > STALE_MS) return true;
  return lock.host === hostname() && lock.pid !== process.pid && !processAlive(lock.pid);
}

function generationOf(id: string): number | null {
  return id.startsWith(GENERATION) && /^\d+$/.test(id.slice(GENERATION.length)) ? Number(id.slice(GENERATION.length)) : null;
}

function generationId(n: number): string {
  return `${GENERATION}${String(n).padStart(10, '0')}`;
}

export async function listLocks(repo: Repository): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for (const object of await repo.backend.list(NAMES.locks)) {
    const id = object.name.slice(NAMES.locks.length);
    if (id.startsWith(PROBE)) continue;
    try {
      const lock = openJson<LockFile>(repo.keys.enc, 'lock', await repo.backend.get(object.name), id);
      out.push({ id, ...lock, stale: isStale(lock) });
    } catch (error) {
      // Deleted meanwhile (its holder finished): not a lock any more.
      if (error instanceof RepositoryError && error.failure === 'not-found') continue;
      // Unreadable (truncated by a dying server, a stray file): puts are atomic, so no live holder
      // wrote it as it is. Stale, so it blocks no one and `unlock` removes it.
      if (error instanceof RepositoryError && error.failure === 'corrupt') {
        out.push({ id, host: '(damaged lock)', pid: 0, exclusive: id.startsWith(GENERATION), created: '', refreshed: '', stale: true });
        continue;
      }
      throw error;
    }
  }
  return out;
}

const createOnlyChecked = new WeakMap<Backend, Promise<boolean>>();

/**
 * Whether the backend's create-only put really refuses a second create (some S3-compatible stores
 * ignore `If-None-Match`): probed once per backend with a throwaway `locks/probe-<hex>`.
 */
export function hasCreateOnly(backend: Backend): Promise<boolean> {
  const putIfAbsent = backend.putIfAbsent?.bind(backend);
  if (!putIfAbsent) return Promise.resolve(false);
  let checked = createOnlyChecked.get(backend);
  if (!checked) {
    checked = (async () => {
      const name = `${NAMES.locks}${PROBE}${randomBytes(8).toString('hex')}`;
      try {
        const first = await putIfAbsent(name, Buffer.from('1'));
        const second = await putIfAbsent(name, Buffer.from('2'));
        // (An `unlock` removing the probe meanwhile makes it inconclusive: the fallback is taken.)
        return first && !second && (await backend.get(name).catch(() => null))?.toString() === '1';
      } finally {
        await backend.delete(name);
      }
    })();
    checked.catch(() => createOnlyChecked.delete(backend));
    createOnlyChecked.set(backend, checked);
  }
  return checked;
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 120 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function lockedBy(c: LockInfo): RepositoryError {
  const staleAt = new Date(Date.parse(c.refreshed) + STALE_MS).toISOString();
  return new RepositoryError(
    'locked',
    `repository is locked ${c.exclusive ? 'exclusively ' : ''}by pid ${c.pid} on ${c.host} since ${c.created} (refreshed ${age(c.refreshed)} ago); ` +
      `if that process is gone the lock turns stale at ${staleAt} (5 minutes without a refresh), and \`jetvault unlock\` removes stale locks`,
  );
}

/** What a long operation checks before it writes objects that refer to its earlier writes. */
export interface Lease {
  assertHeld(): Promise<void>;
}

export class RepositoryLock implements Lease {
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly created = new Date().toISOString();
  private refreshedAt = Date.now();
  /** The bytes we last stored (sealed with a random salt, so no one else's lease equals them). */
  private stored: Buffer | null = null;
  /** Writes and checks of our object, one at a time (a refresh must not race assertHeld). */
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly repo: Repository,
    readonly id: string,
    readonly exclusive: boolean,
  ) {}

  static async acquire(repo: Repository, exclusive: boolean): Promise<RepositoryLock> {
    const lock = exclusive && (await hasCreateOnly(repo.backend)) ? await RepositoryLock.createGeneration(repo) : await RepositoryLock.writeThenList(repo, exclusive);
    lock.timer = setInterval(() => void lock.serial(() => lock.refresh()).catch(() => undefined), REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  private static async writeThenList(repo: Repository, exclusive: boolean): Promise<RepositoryLock> {
    const lock = new RepositoryLock(repo, randomBytes(16).toString('hex'), exclusive);
    await lock.write();
    await lock.giveUpOnConflict();
    return lock;
  }

  private static async createGeneration(repo: Repository): Promise<RepositoryLock> {
    const before = await listLocks(repo);
    const holder = before.find((l) => l.exclusive && !l.stale);
    if (holder) throw lockedBy(holder);
    const highest = Math.max(0, ...before.map((l) => generationOf(l.id) ?? 0));
    const lock = new RepositoryLock(repo, generationId(highest + 1), true);
    const bytes = lock.seal();
    if (!(await repo.backend.putIfAbsent!(lock.name, bytes))) {
      // A retried request whose first attempt did store ours also answers "exists": compare.
      const there = await repo.backend.get(lock.name).catch(() => null);
      if (!there?.equals(bytes)) {
        const winner = (await listLocks(repo)).find((l) => l.id === lock.id);
        throw winner ? lockedBy(winner) : new RepositoryError('locked', 'another process took the exclusive lock at the same moment; try again');
      }
    }
    lock.stored = bytes;
    await lock.giveUpOnConflict();
    // Superseded generations are stale (we checked); remove them so the list stays short.
    for (const old of before) if (old.stale && (generationOf(old.id) ?? Infinity) < highest + 1) await repo.backend.delete(`${NAMES.locks}${old.id}`).catch(() => undefined);
    return lock;
  }

  /** After our object is stored: a live conflicting lease makes us remove ours and fail. */
  private async giveUpOnConflict(): Promise<void> {
    const conflicts = (await listLocks(this.repo)).filter((l) => l.id !== this.id && !l.stale && (this.exclusive || l.exclusive));
    if (conflicts.length > 0) {
      await this.repo.backend.delete(this.name);
      throw lockedBy(conflicts[0]!);
    }
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.busy.then(work, work);
    this.busy = next.catch(() => undefined);
    return next;
  }

  /** Whether the object under our name is still the one we wrote (not removed, not someone else's). */
  private async ours(): Promise<boolean> {
    const there = await this.repo.backend.get(this.name).catch((error: unknown) => {
      if (error instanceof RepositoryError && error.failure === 'not-found') return null;
      throw error;
    });
    return there !== null && this.stored !== null && there.equals(this.stored);
  }

  /** Periodic refresh: only while our lock object is still ours (`unlock` may have removed it). */
  private async refresh(): Promise<void> {
    try {
      if (await this.ours()) await this.write();
    } catch {
      // A failed refresh shows up in assertHeld() as a lapsed lease.
    }
  }

  private get name(): string {
    return `${NAMES.locks}${this.id}`;
  }

  private seal(now = Date.now()): Buffer {
    const file: LockFile = { host: hostname(), pid: process.pid, exclusive: this.exclusive, created: this.created, refreshed: new Date(now).toISOString() };
    return sealJson(this.repo.keys.enc, 'lock', file);
  }

  private async write(): Promise<void> {
    const now = Date.now();
    const bytes = this.seal(now);
    await this.repo.backend.put(this.name, bytes);
    this.stored = bytes;
    this.refreshedAt = now;
  }

  /**
   * Throws `locked` if this lease may have been taken for stale (not refreshed in time, e.g. the
   * laptop slept, or removed by `unlock` or a "Break lease"): a prune may then have deleted packs
   * this run wrote but had not indexed yet, so the run must stop before writing an index or
   * snapshot that names them.
   */
  async assertHeld(): Promise<void> {
    await this.serial(async () => {
      const lapsed = Date.now() - this.refreshedAt > STALE_MS - 30_000;
      const present = await this.ours();
      if (lapsed || !present) {
        throw new RepositoryError(
          'locked',
          `this run's lock ${present ? 'was not refreshed for over 4.5 minutes' : 'was removed (broken as stale, or by `unlock --remove-all`)'}; another process may have pruned meanwhile, ` +
            'so nothing more is written (run the command again: data already stored is reused)',
        );
      }
      await this.write();
    });
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.serial(async () => {
      // Never delete a same-named lease someone else created after ours was broken.
      if (await this.ours().catch(() => true)) await this.repo.backend.delete(this.name);
    });
  }
}

/**
 * Runs `work`, then releases `lease` whatever happened. When `work` failed, so may the release (the
 * store it lost is the same): that failure is dropped, so the error reported is why the work failed,
 * not "delete of locks/… failed" (a lease left behind turns stale by itself).
 */
export async function releasing<T>(lease: { release(): Promise<void> }, work: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await lease.release().catch(() => undefined);
    throw error;
  }
  await lease.release();
  return result;
}

/** Whether a lease could not be written because the store is read-only to us (a write-protected disk, a read-only key). */
export function isReadOnlyStore(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'EROFS' || code === 'EACCES' || code === 'EPERM' || (error instanceof RepositoryError && error.failure === 'denied');
}

/**
 * A shared lease for a command that only reads (check, restore to a folder). On a store that is
 * read-only to us no lease can be written: then, unless a live exclusive lease (a prune) is there,
 * the command goes on without one — null — rather than refusing to read an offsite disk mounted
 * write-protected.
 */
export async function readLease(repo: Repository): Promise<RepositoryLock | null> {
  try {
    return await RepositoryLock.acquire(repo, false);
  } catch (error) {
    if (!isReadOnlyStore(error)) throw error;
    const holder = (await listLocks(repo)).find((l) => l.exclusive && !l.stale);
    if (holder) throw lockedBy(holder);
    return null;
  }
}

/** Runs `work` under a lock and always releases it. */
export async function withLock<T>(repo: Repository, exclusive: boolean, work: (lease: Lease) => Promise<T>): Promise<T> {
  const lock = await RepositoryLock.acquire(repo, exclusive);
  return releasing(lock, () => work(lock));
}

/** Removes stale locks (or all, when `all`), and probe objects left by a crash; returns how many locks were removed. */
export async function removeLocks(repo: Repository, all = false): Promise<number> {
  let removed = 0;
  for (const lock of await listLocks(repo)) {
    if (!all && !lock.stale) continue;
    await repo.backend.delete(`${NAMES.locks}${lock.id}`);
    removed++;
  }
  for (const probe of await repo.backend.list(`${NAMES.locks}${PROBE}`)) await repo.backend.delete(probe.name);
  return removed;
}

/**
 * Breaks one lease (the console's "Break lease"). A live lease is only broken with `force`: its
 * holder may be a running prune, which would go on deleting packs while others write.
 */
export async function breakLock(repo: Repository, id: string, force = false): Promise<LockInfo> {
  const lock = (await listLocks(repo)).find((l) => l.id === id);
  if (!lock) throw new RepositoryError('not-found', `no lock ${id} in the repository (its holder may have finished)`);
  if (!lock.stale && !force) {
    throw new RepositoryError('locked', `the lock ${id} of pid ${lock.pid} on ${lock.host} is live (refreshed ${age(lock.refreshed)} ago): breaking it needs force`);
  }
  await repo.backend.delete(`${NAMES.locks}${id}`);
  return lock;
}
