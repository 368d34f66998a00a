/**
 * The console's repository: where it is, whether it is unlocked, and the open Repository shared by
 * writers: backups run at once (the engine's uploader and index are shared and safe for that),
 * prune-like work runs alone. The password is asked once per session (or taken from
 * JETVAULT_PASSWORD for headless use) and held only in memory.
 */
import { ResumeStore } from '../devices/resume-store';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import { unlessAborted } from '../unless-aborted';
import { backendFor, backendForInit, isRemoteLocation } from '../repository/backend/open-backend';
import { breakLock, listLocks, readLease, withLock } from '../repository/lock/lock';
import type { Lease, LockInfo } from '../repository/lock/lock';
import { Repository } from '../repository/repo/repository';
import type { InitOptions } from '../repository/repo/repository';
import { RepositoryError } from '../repository/errors';
import type { SettingsService } from './settings-service';

export interface RepositoryStatus {
  location: string;
  exists: boolean;
  unlocked: boolean;
  /** A local folder other than the data folder's own that is not there at all (see #folderMissing). */
  folderMissing: boolean;
}

export class RepositoryService {
  readonly #dataDir: string;
  readonly #settings: SettingsService;
  readonly #env: NodeJS.ProcessEnv;
  #repo: Repository | null = null;
  #opening: Promise<Repository> | null = null;
  /** Shared writers running now, and exclusive work running or queued (it goes first). */
  #shared = 0;
  #exclusive: Promise<unknown> | null = null;
  #exclusiveQueued = 0;
  readonly #idle: (() => void)[] = [];
  /** What device backups cut off part-way stored, for the next run, in `<data folder>/resume`: kept across restarts and between CLI runs. */
  readonly resume: ResumeStore;

  constructor(dataDir: string, settings: SettingsService, env: NodeJS.ProcessEnv = process.env) {
    this.#dataDir = dataDir;
    this.resume = new ResumeStore(path.join(dataDir, 'resume'));
    this.#settings = settings;
    this.#env = env;
  }

  location(): string {
    return this.#settings.get().repositoryPath || this.#env.JETVAULT_REPOSITORY || path.join(this.#dataDir, 'repository');
  }

  async status(): Promise<RepositoryStatus> {
    const location = this.location();
    const backend = backendFor(location, this.#env, { attempts: 1 });
    const exists = await backend.exists().catch(() => false);
    backend.close?.();
    return { location, exists, unlocked: this.#repo !== null && this.#repo.backend.location === location, folderMissing: !exists && (await this.#folderMissing(location)) };
  }

  /**
   * Whether a local repository folder chosen in Settings (not the data folder's own `repository`,
   * which init makes) is not there at all: its disk not connected or mounted elsewhere, or the
   * repository moved. Creating one there would make a new, empty repository on this computer's disk
   * at the mount point, which the disk hides again once it is mounted.
   */
  async #folderMissing(location: string): Promise<boolean> {
    if (isRemoteLocation(location) || path.resolve(location) === path.resolve(this.#dataDir, 'repository')) return false;
    const code = await stat(location).then(
      () => null,
      (error: unknown) => (error as NodeJS.ErrnoException).code,
    );
    return code === 'ENOENT' || code === 'ENOTDIR';
  }

  #missingFolderMessage(location: string): string {
    return `The repository folder ${location} is not there: if the repository is on a disk, connect it so that it is mounted at that path (or set the repository's new location in Settings). Creating a repository there makes a new, empty one on this computer's disk`;
  }

  /** Remote repositories read index and snapshot objects through the encrypted cache in `<data dir>/cache`. */
  #openOptions(location: string): { cacheDir?: string } {
    return isRemoteLocation(location) && this.#env.JETVAULT_NO_CACHE !== '1' ? { cacheDir: path.join(this.#dataDir, 'cache') } : {};
  }

  #replace(repo: Repository | null): void {
    if (this.#repo && this.#repo !== repo) {
      void this.#repo.closeIdleWorkers();
      this.#repo.backend.close?.();
    }
    this.#repo = repo;
  }

  /** `createFolder: false` (the console's form until its box is ticked) refuses a folder that is not there (#folderMissing). */
  async init(password: string, options?: InitOptions, { createFolder = true }: { createFolder?: boolean } = {}): Promise<RepositoryStatus> {
    if (password.length < 8) throw new AppError('VALIDATION', 'Choose a repository password of at least 8 characters');
    if (!createFolder && (await this.#folderMissing(this.location()))) throw new AppError('VALIDATION', `${this.#missingFolderMessage(this.location())}: tick "Create the folder" only for a new repository`);
    this.#replace(await Repository.init(await backendForInit(this.location(), this.#env), password, options));
    return this.status();
  }

  async unlock(password: string): Promise<RepositoryStatus> {
    const location = this.location();
    this.#replace(await Repository.open(backendFor(location, this.#env), password, this.#openOptions(location)));
    return this.status();
  }

  lock(): void {
    this.#replace(null);
  }

  /** The open repository; unlocks with JETVAULT_PASSWORD when set, else asks the user to unlock. */
  async open(): Promise<Repository> {
    if (this.#repo && this.#repo.backend.location === this.location()) return this.#repo;
    return this.#unlockFromEnv();
  }

  /** The open repository with its index re-read: another console or the CLI may have written or pruned. */
  async fresh(): Promise<Repository> {
    const repo = await this.open();
    await repo.refreshIndex();
    return repo;
  }

  async #unlockFromEnv(): Promise<Repository> {
    const password = this.#env.JETVAULT_PASSWORD;
    const location = this.location();
    if (password === undefined) {
      // A first backup before any repository was made is told so, not sent looking for a password.
      // A store that cannot be asked (unreachable) is left to the message about unlocking.
      const backend = backendFor(location, this.#env, { attempts: 1 });
      const exists = await backend.exists().catch(() => true);
      backend.close?.();
      if (!exists && (await this.#folderMissing(location))) throw new RepositoryError('missing', this.#missingFolderMessage(location));
      if (!exists) throw new RepositoryError('missing', `There is no repository at ${location} yet: create one on the Catalog page (or with "jetvault init") before the first backup`);
      throw new AppError('UNAVAILABLE', `The repository at ${location} is locked: unlock it with its password first`);
    }
    this.#opening ??= Repository.open(backendFor(location, this.#env), password, this.#openOptions(location)).finally(() => {
      this.#opening = null;
    });
    const repo = await this.#opening;
    this.#replace(repo);
    return repo;
  }

  /** Every lease in the repository, this console's and other consoles', live and stale. */
  async leases(): Promise<LockInfo[]> {
    return listLocks(await this.open());
  }

  /**
   * Breaks one lease ("Break lease" in the console). A live lease needs `force`: its holder may be
   * a running prune that would go on deleting packs while other consoles write.
   */
  async breakLease(id: string, force: boolean): Promise<LockInfo> {
    return breakLock(await this.open(), id, force);
  }

  /**
   * Runs a writer (a backup) under its own shared lease in the repository (passed on so the
   * archiver can re-check it before writing index and snapshot). Any number run at once; they wait
   * only while exclusive work of this console runs or is queued; `signal` (a job's cancel) ends
   * that wait at once with a CANCELLED error.
   */
  async write<T>(work: (repo: Repository, lease: Lease) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // Cancelled while a prune holds the repository: ends now, not when the prune does.
    while (this.#exclusive || this.#exclusiveQueued > 0) await unlessAborted(this.#turn(), signal);
    this.#shared++;
    try {
      const repo = await this.open();
      return await withLock(repo, false, (lease) => work(repo, lease));
    } finally {
      this.#shared--;
      if (this.#shared === 0) for (const wake of this.#idle.splice(0)) wake();
    }
  }

  /**
   * Runs a reader that streams the repository onto a device (a restore, a drill) under a shared
   * lease, as a backup runs: a prune cannot repack or remove the packs it reads meanwhile. It waits
   * for this console's prune as writers do; another console's prune holding the repository refuses
   * it with the 'locked' failure (the CLI's exit 11). A store that is read-only here takes no lease
   * (`readLease`).
   */
  async read<T>(work: (repo: Repository) => Promise<T>, signal?: AbortSignal): Promise<T> {
    while (this.#exclusive || this.#exclusiveQueued > 0) await unlessAborted(this.#turn(), signal);
    this.#shared++;
    try {
      const repo = await this.open();
      const lease = await readLease(repo);
      try {
        return await work(repo);
      } finally {
        // A restore done on its device stays done if the store cannot be reached to drop the lease
        // (it turns stale by itself): its job must not fail on that.
        await lease?.release().catch(() => undefined);
      }
    } finally {
      this.#shared--;
      if (this.#shared === 0) for (const wake of this.#idle.splice(0)) wake();
    }
  }

  /** Settles when the running exclusive work ends, or (none running) when writers next go idle. */
  #turn(): Promise<unknown> {
    return this.#exclusive ? this.#exclusive.catch(() => undefined) : new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /**
   * Runs work that must be alone (prune) under an exclusive lease: waits for this console's running
   * writers to finish and holds back new ones meanwhile.
   */
  async exclusive<T>(work: (repo: Repository, lease: Lease) => Promise<T>): Promise<T> {
    this.#exclusiveQueued++;
    try {
      while (this.#exclusive || this.#shared > 0) await this.#turn();
    } finally {
      this.#exclusiveQueued--;
    }
    const run = (async () => {
      const repo = await this.open();
      return withLock(repo, true, (lease) => work(repo, lease));
    })();
    this.#exclusive = run;
    try {
      return await run;
    } finally {
      this.#exclusive = null;
      for (const wake of this.#idle.splice(0)) wake();
    }
  }
}
