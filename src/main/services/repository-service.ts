/**
 * The console's repository: where it is, whether it is unlocked, and exclusive use of the open
 * Repository for writers. The password is asked once per session (or taken from
 * JETVAULT_PASSWORD for headless use) and held only in memory.
 */
import path from 'node:path';
import { AppError } from '../../shared/errors';
import { backendFor, backendForInit } from '../repository/backend/open-backend';
import { withLock } from '../repository/lock/lock';
import type { Lease } from '../repository/lock/lock';
import { Repository } from '../repository/repo/repository';
import type { InitOptions } from '../repository/repo/repository';
import type { SettingsService } from './settings-service';

export interface RepositoryStatus {
  location: string;
  exists: boolean;
  unlocked: boolean;
}

export class RepositoryService {
  readonly #dataDir: string;
  readonly #settings: SettingsService;
  readonly #env: NodeJS.ProcessEnv;
  #repo: Repository | null = null;
  #opening: Promise<Repository> | null = null;
  /** Writers (backups, prune) take turns on the one open Repository. */
  #writer: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string, settings: SettingsService, env: NodeJS.ProcessEnv = process.env) {
    this.#dataDir = dataDir;
    this.#settings = settings;
    this.#env = env;
  }

  location(): string {
    return this.#settings.get().repositoryPath || this.#env.JETVAULT_REPOSITORY || path.join(this.#dataDir, 'repository');
  }

  async status(): Promise<RepositoryStatus> {
    const location = this.location();
    return { location, exists: await backendFor(location, this.#env).exists().catch(() => false), unlocked: this.#repo !== null && this.#repo.backend.location === location };
  }

  async init(password: string, options?: InitOptions): Promise<RepositoryStatus> {
    if (password.length < 8) throw new AppError('VALIDATION', 'Choose a repository password of at least 8 characters');
    this.#repo = await Repository.init(await backendForInit(this.location(), this.#env), password, options);
    return this.status();
  }

  async unlock(password: string): Promise<RepositoryStatus> {
    this.#repo = await Repository.open(backendFor(this.location(), this.#env), password);
    return this.status();
  }

  lock(): void {
    this.#repo = null;
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
    if (password === undefined) throw new AppError('UNAVAILABLE', `The repository at ${this.location()} is locked: unlock it with its password first`);
    this.#opening ??= Repository.open(backendFor(this.location(), this.#env), password).finally(() => {
      this.#opening = null;
    });
    this.#repo = await this.#opening;
    return this.#repo;
  }

  /**
   * Runs a writer under a shared lease in the repository (passed on so the archiver can re-check it
   * before writing index and snapshot), one writer of this console at a time.
   */
  write<T>(work: (repo: Repository, lease: Lease) => Promise<T>): Promise<T> {
    const run = this.#writer.catch(() => undefined).then(async () => {
      const repo = await this.open();
      return withLock(repo, false, (lease) => work(repo, lease));
    });
    this.#writer = run;
    return run;
  }
}
