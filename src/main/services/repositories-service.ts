/**
 * The console's repositories for 3-2-1: the primary (the one it backs up into: the repository
 * location in Settings) and secondaries that hold copies, each optionally offsite. Passwords and
 * S3/SFTP credentials go to the secret store; the table keeps only locations and flags.
 *
 * Which runs each repository holds is cached per device (`repository_holdings`): written when a
 * repository is tested (it is opened and its snapshots listed anyway) and, for the primary, after
 * every backup, so the fleet overview shows copies without opening remote repositories (decision 017).
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError, toAppError } from '../../shared/errors';
import { RepositoryAddSchema, RepositoryUpdateSchema, repositoryKind } from '../../shared/schemas/repositories';
import type { DeviceCopies, RepositoryAdd, RepositoryEntry, RepositoryTest, RepositoryUpdate } from '../../shared/schemas/repositories';
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { HoldingRow, RepositoryRow } from '../history/statements';
import { issuesOf } from '../ipc/router';
import type { Logger } from '../log';
import type { Backend } from '../repository/backend/backend';
import { NAMES } from '../repository/backend/backend';
import { backendFor } from '../repository/backend/open-backend';
import { Repository } from '../repository/repo/repository';
import { listSnapshots, tagValue } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { SecretStore } from '../secrets/secret-store';
import { inCompleteRun } from './catalog-service';
import type { RepositoryService } from './repository-service';
import type { SettingsService } from './settings-service';

/** A test or listing that takes longer than this is reported as not reachable. */
export const TEST_TIMEOUT_MS = 30_000;

const secretRef = (id: string, what: 'password' | 'access-key-id' | 'secret-access-key' | 'sftp-password') => `repository:${id}:${what}`;

/**
 * The newest run per device among snapshots that carry a run tag (device backups). A run killed
 * part-way (fewer snapshots than its `run-size`) is no copy of the device: left out, as the catalog
 * leaves it out.
 */
export function holdingsOf(snapshots: readonly SnapshotWithId[]): Map<string, { latestRun: string; latestAt: string; runs: number }> {
  const runs = new Map<string, Map<string, string>>();
  const complete = inCompleteRun(snapshots);
  for (const s of snapshots) {
    const run = tagValue(s.tags, 'run');
    if (!run || !complete(s)) continue;
    const mine = runs.get(s.device) ?? new Map<string, string>();
    const at = mine.get(run);
    if (at === undefined || s.time > at) mine.set(run, s.time);
    runs.set(s.device, mine);
  }
  const out = new Map<string, { latestRun: string; latestAt: string; runs: number }>();
  for (const [device, mine] of runs) {
    // The newest run is the one with the newest snapshot (run ids carry only the second they began).
    const latestRun = [...mine.entries()].reduce((a, b) => (b[1] > a[1] || (b[1] === a[1] && b[0] > a[0]) ? b : a))[0];
    out.set(device, { latestRun, latestAt: mine.get(latestRun)!, runs: mine.size });
  }
  return out;
}

/**
 * Whether a repository whose newest run of a device is `held` has that device's `latest` run: the
 * same run, or one begun in a later second (run ids start with the UTC second they began, so two
 * different runs of one second are not ordered: counted conservatively as not held).
 */
export function holdsAtLeast(held: string, latest: string): boolean {
  return held === latest || held.slice(0, 14) > latest.slice(0, 14);
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new AppError('TIMEOUT', `${what} did not answer within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export interface RepositoriesDeps {
  store: HistoryStore;
  secrets: SecretStore;
  settings: SettingsService;
  repository: RepositoryService;
  bus: EventBus;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  clock?: () => Date;
}

export class RepositoriesService {
  readonly #deps: RepositoriesDeps;
  readonly #env: NodeJS.ProcessEnv;
  readonly #clock: () => Date;
  readonly #unsubscribe: () => void;

  constructor(deps: RepositoriesDeps) {
    this.#deps = deps;
    this.#env = deps.env ?? process.env;
    this.#clock = deps.clock ?? (() => new Date());
    // The primary's holdings follow its backups without opening anything.
    this.#unsubscribe = deps.bus.subscribe((event, payload) => {
      if (event !== 'jobs:finished' || !deps.store.db.open) return;
      const { job } = payload as { job: { kind: string; status: string; finishedAt: string | null; result: unknown } };
      const result = job.result as { runId?: unknown; device?: unknown } | null;
      if (job.kind !== 'backup' || job.status !== 'succeeded' || typeof result?.runId !== 'string' || typeof result.device !== 'string') return;
      try {
        this.recordBackup(result.device, result.runId, job.finishedAt ?? this.#clock().toISOString());
      } catch (error) {
        deps.log.warn(`could not record the primary's copy of ${result.device}: ${(error as Error).message}`);
      }
    });
  }

  dispose(): void {
    this.#unsubscribe();
  }

  /** The repository the console uses now, registered on first sight. */
  primary(): RepositoryRow {
    const { store, repository } = this.#deps;
    const location = repository.location();
    const known = store.sql.repositoryByLocation.get(location);
    if (known) return known;
    const id = `repo_${randomBytes(6).toString('hex')}`;
    store.sql.repositoryInsert.run(id, this.#freeName(repositoryKind(location) === 'local' ? 'Primary' : path.basename(location) || 'Primary'), location, 0, this.#clock().toISOString());
    return store.sql.repositoryGet.get(id)!;
  }

  list(): RepositoryEntry[] {
    const primary = this.primary();
    return this.#deps.store.sql.repositoriesAll.all().map((row) => this.#entry(row, row.id === primary.id));
  }

  get(id: string): RepositoryEntry {
    return this.#entry(this.row(id), this.primary().id === id);
  }

  add(input: RepositoryAdd, actor: string): RepositoryEntry {
    const checked = RepositoryAddSchema.safeParse(input);
    if (!checked.success) throw new AppError('VALIDATION', 'Invalid repository', issuesOf(checked.error));
    const { store, secrets } = this.#deps;
    const value = checked.data;
    const location = repositoryKind(value.location) === 'local' ? path.resolve(value.location) : value.location;
    this.primary();
    const existing = store.sql.repositoryByLocation.get(location);
    if (existing) throw new AppError('CONFLICT', `${location} is already in the list as "${existing.name}"`);
    if (value.name && store.sql.repositoriesAll.all().some((r) => r.name === value.name)) throw new AppError('CONFLICT', `A repository is already named "${value.name}"`);
    if (repositoryKind(location) !== 's3' && value.accessKeyId) throw new AppError('VALIDATION', 'Access keys are for S3 locations only');
    if (repositoryKind(location) !== 'sftp' && value.sftpPassword) throw new AppError('VALIDATION', 'An SFTP password is for sftp: locations only');
    const id = `repo_${randomBytes(6).toString('hex')}`;
    const name = value.name ?? this.#freeName(repositoryKind(location) === 's3' ? 'S3' : repositoryKind(location) === 'sftp' ? 'SFTP' : 'Secondary');
    store.db.transaction(() => {
      store.sql.repositoryInsert.run(id, name, location, value.offsite ? 1 : 0, this.#clock().toISOString());
      secrets.set(secretRef(id, 'password'), value.password);
      if (value.accessKeyId && value.secretAccessKey) {
        secrets.set(secretRef(id, 'access-key-id'), value.accessKeyId);
        secrets.set(secretRef(id, 'secret-access-key'), value.secretAccessKey);
      }
      if (value.sftpPassword) secrets.set(secretRef(id, 'sftp-password'), value.sftpPassword);
      store.audit(actor, 'repository.add', name, { location, offsite: value.offsite });
    })();
    return this.get(id);
  }

  update(input: RepositoryUpdate, actor: string): RepositoryEntry {
    const checked = RepositoryUpdateSchema.safeParse(input);
    if (!checked.success) throw new AppError('VALIDATION', 'Invalid repository change', issuesOf(checked.error));
    const { id, offsite, copyWhenReachable, password } = checked.data;
    const row = this.row(id);
    const { store, secrets } = this.#deps;
    const nextOffsite = offsite ?? row.offsite === 1;
    const nextCopy = (copyWhenReachable ?? row.copy_when_reachable === 1) && nextOffsite;
    // The copy policy copies only to offsite repositories (decision 017): the flag needs the offsite mark.
    if (copyWhenReachable === true && !nextOffsite) throw new AppError('VALIDATION', 'Copying when reachable is a policy of offsite repositories: mark it offsite first');
    if (nextCopy && this.primary().id === id) throw new AppError('VALIDATION', 'The primary repository is where copies come from, not where they go');
    store.db.transaction(() => {
      store.sql.repositorySetFlags.run(nextOffsite ? 1 : 0, nextCopy ? 1 : 0, id);
      if (password !== undefined) secrets.set(secretRef(id, 'password'), password);
      store.audit(actor, 'repository.update', row.name, { offsite: nextOffsite, copyWhenReachable: nextCopy, password: password === undefined ? undefined : 'changed' });
    })();
    return this.get(id);
  }

  remove(id: string, actor: string): void {
    const row = this.row(id);
    if (this.primary().id === id) throw new AppError('CONFLICT', `"${row.name}" is the primary repository: make another one primary first`);
    const { store, secrets } = this.#deps;
    store.db.transaction(() => {
      store.sql.repositoryDelete.run(id);
      secrets.deletePrefix(`repository:${id}:`);
      store.audit(actor, 'repository.remove', row.name, { location: row.location });
    })();
  }

  /**
   * Opens the repository with its stored password (the primary: the unlocked one when none is
   * stored), lists its snapshots and records which runs it holds. Never throws for an unreachable
   * or wrong repository: the outcome says what went wrong.
   */
  async test(id: string, actor: string): Promise<RepositoryTest> {
    const row = this.row(id);
    const at = this.#clock().toISOString();
    const outcome: RepositoryTest = { at, reachable: false, initialised: false, snapshots: null, devices: null, error: null };
    let backend: Backend | null = null;
    try {
      backend = this.backendOf(row);
      // A store that cannot even answer whether the config is there is unreachable (the error says why).
      outcome.initialised = (await withTimeout(backend.stat(NAMES.config), TEST_TIMEOUT_MS, row.location)) !== null;
      outcome.reachable = outcome.initialised || (await withTimeout(this.#containerExists(row, backend), TEST_TIMEOUT_MS, row.location));
      if (!outcome.reachable) throw new AppError('NOT_FOUND', `Nothing at ${row.location}: the folder or bucket does not exist (initialise it with \`jetvault init --repo ${row.location}\`)`);
      if (!outcome.initialised) throw new AppError('NOT_FOUND', `${row.location} is reachable but holds no Jetvault repository (initialise it with \`jetvault init --repo ${row.location}\`)`);
      const repo = await withTimeout(this.#open(row, backend), TEST_TIMEOUT_MS, row.location);
      const snapshots = await withTimeout(listSnapshots(repo), TEST_TIMEOUT_MS, row.location);
      outcome.snapshots = snapshots.length;
      const held = holdingsOf(snapshots);
      outcome.devices = held.size;
      this.#storeHoldings(id, held);
    } catch (error) {
      const failure = toAppError(error);
      outcome.error = failure.code === 'VALIDATION' && /password/i.test(failure.message) ? `Wrong password for ${row.location}` : failure.message;
    } finally {
      // An SFTP test left its SSH connection open in the console, one more with every test.
      backend?.close?.();
    }
    const { store } = this.#deps;
    store.db.transaction(() => {
      store.sql.repositorySetTest.run(at, JSON.stringify(outcome), id);
      store.audit(actor, 'repository.test', row.name, { snapshots: outcome.snapshots }, outcome.error ? { result: 'failed', message: outcome.error } : { result: 'ok' });
    })();
    return outcome;
  }

  /** Makes a registered repository the one the console backs up into (unlocked with its stored password). */
  async setPrimary(id: string, actor: string): Promise<RepositoryEntry> {
    const row = this.row(id);
    if (this.primary().id === id) return this.get(id);
    const password = this.#deps.secrets.get(secretRef(id, 'password'));
    if (password === null) throw new AppError('VALIDATION', `No password is stored for "${row.name}": set it before making it primary`);
    // Proves the repository opens before anything changes; a failure leaves the primary as it was.
    const proof = this.backendOf(row);
    try {
      await withTimeout(Repository.open(proof, password), TEST_TIMEOUT_MS, row.location);
    } finally {
      proof.close?.();
    }
    const { settings, repository, store } = this.#deps;
    if (row.copy_when_reachable === 1) store.sql.repositorySetFlags.run(row.offsite, 0, id);
    settings.update({ repositoryPath: row.location }, actor);
    await repository.unlock(password);
    store.audit(actor, 'repository.set-primary', row.name, { location: row.location });
    return this.get(id);
  }

  /** A finished backup put this run into the primary. */
  recordBackup(device: string, runId: string, at: string): void {
    this.#deps.store.sql.holdingAddNewest.run(this.primary().id, device, runId, at, this.#clock().toISOString());
  }

  /**
   * Per device: copies of its latest run (the primary's newest, counted when the primary holds it,
   * plus each secondary holding that run or a newer one), whether one of them is offsite, and the
   * newest run held offsite. From the cached holdings only.
   */
  copiesByDevice(): Map<string, DeviceCopies> {
    const { store } = this.#deps;
    const primary = this.primary();
    const offsiteIds = new Set<string>();
    const known = new Set<string>();
    for (const r of store.sql.repositoriesAll.all()) {
      known.add(r.id);
      if (r.offsite === 1) offsiteIds.add(r.id);
    }
    const byDevice = new Map<string, HoldingRow[]>();
    for (const h of store.sql.holdingsAll.all()) {
      if (!known.has(h.repository_id)) continue;
      const list = byDevice.get(h.device);
      if (list) list.push(h);
      else byDevice.set(h.device, [h]);
    }
    const out = new Map<string, DeviceCopies>();
    for (const [device, holdings] of byDevice) {
      let latest = '';
      for (const h of holdings) if (h.repository_id === primary.id) latest = h.latest_run;
      if (latest === '') for (const h of holdings) if (h.latest_run > latest) latest = h.latest_run;
      let copies = 0;
      let offsite = false;
      let lastOffsiteAt: string | null = null;
      let checkedAt: string | null = null;
      for (const h of holdings) {
        const isOffsite = offsiteIds.has(h.repository_id);
        if (isOffsite && (lastOffsiteAt === null || h.latest_at > lastOffsiteAt)) lastOffsiteAt = h.latest_at;
        if (!holdsAtLeast(h.latest_run, latest)) continue;
        copies++;
        offsite ||= isOffsite;
        if (checkedAt === null || h.checked_at < checkedAt) checkedAt = h.checked_at;
      }
      out.set(device, { copies, offsite, lastOffsiteAt, checkedAt });
    }
    return out;
  }

  /**
   * Whether the repository lacks the primary's newest run of some device (from the cached
   * holdings). True when the primary's runs are not known yet: a copy finds out, and skips what is there.
   */
  lacksLatestRuns(id: string): boolean {
    const { store } = this.#deps;
    const primary = store.sql.holdingsOfRepository.all(this.primary().id);
    if (primary.length === 0) return true;
    const held = new Map(store.sql.holdingsOfRepository.all(id).map((h) => [h.device, h.latest_run]));
    return primary.some((p) => !holdsAtLeast(held.get(p.device) ?? '', p.latest_run));
  }

  /** Records what an open repository holds now (after a copy into it). */
  async refreshHoldings(id: string, repo: Repository): Promise<void> {
    this.#storeHoldings(id, holdingsOf(await listSnapshots(repo)));
  }

  /** One device's copies; a device with no recorded holdings has none known. */
  copiesOf(device: string): DeviceCopies {
    return this.copiesByDevice().get(device) ?? { copies: 0, offsite: false, lastOffsiteAt: null, checkedAt: null };
  }

  /** Whether any repository is marked offsite (the offsite rule only applies then). */
  anyOffsite(): boolean {
    return this.#deps.store.sql.repositoriesAll.all().some((r) => r.offsite === 1);
  }

  /** The backend of a registered repository, with its stored S3 keys or SFTP login password when it has them. */
  backendOf(row: RepositoryRow): Backend {
    const { secrets } = this.#deps;
    const env: NodeJS.ProcessEnv = { ...this.#env };
    const key = secrets.has(secretRef(row.id, 'access-key-id')) ? secrets.get(secretRef(row.id, 'access-key-id')) : null;
    const secret = secrets.has(secretRef(row.id, 'secret-access-key')) ? secrets.get(secretRef(row.id, 'secret-access-key')) : null;
    if (key && secret) {
      env.AWS_ACCESS_KEY_ID = key;
      env.AWS_SECRET_ACCESS_KEY = secret;
      delete env.AWS_SESSION_TOKEN;
    }
    const sftpPassword = secrets.has(secretRef(row.id, 'sftp-password')) ? secrets.get(secretRef(row.id, 'sftp-password')) : null;
    if (sftpPassword) {
      // The SFTP backend reads its login from these (a key file named in the environment wins over it).
      env.JETVAULT_SFTP_PASSWORD = sftpPassword;
    }
    return backendFor(row.location, env);
  }

  /** Opens a registered repository (for copies and tests). */
  async open(id: string): Promise<Repository> {
    const row = this.row(id);
    return this.#open(row, this.backendOf(row));
  }

  async #open(row: RepositoryRow, backend: Backend): Promise<Repository> {
    const password = this.#deps.secrets.get(secretRef(row.id, 'password'));
    if (password !== null) return Repository.open(backend, password);
    if (row.location === this.#deps.repository.location()) return this.#deps.repository.fresh();
    throw new AppError('VALIDATION', `No password is stored for "${row.name}"`);
  }

  /** The folder (local) or bucket (S3) exists, with or without a repository in it. */
  async #containerExists(row: RepositoryRow, backend: Backend): Promise<boolean> {
    if (repositoryKind(row.location) === 'local') return stat(row.location).then((st) => st.isDirectory(), () => false);
    return backend.exists();
  }

  #storeHoldings(id: string, held: Map<string, { latestRun: string; latestAt: string; runs: number }>): void {
    const { store } = this.#deps;
    const now = this.#clock().toISOString();
    store.db.transaction(() => {
      store.sql.holdingsClear.run(id);
      for (const [device, h] of held) store.sql.holdingUpsert.run(id, device, h.latestRun, h.latestAt, h.runs, now);
    })();
  }

  row(id: string): RepositoryRow {
    const row = this.#deps.store.sql.repositoryGet.get(id);
    if (!row) throw new AppError('NOT_FOUND', `No repository ${id}`);
    return row;
  }

  #freeName(base: string): string {
    const taken = new Set(this.#deps.store.sql.repositoriesAll.all().map((r) => r.name));
    if (!taken.has(base)) return base;
    for (let i = 2; ; i++) if (!taken.has(`${base} ${i}`)) return `${base} ${i}`;
  }

  #entry(row: RepositoryRow, primary: boolean): RepositoryEntry {
    const { secrets } = this.#deps;
    let lastTest: RepositoryTest | null;
    try {
      lastTest = row.test ? (JSON.parse(row.test) as RepositoryTest) : null;
    } catch {
      lastTest = null;
    }
    return {
      id: row.id,
      name: row.name,
      location: row.location,
      kind: repositoryKind(row.location),
      primary,
      offsite: row.offsite === 1,
      copyWhenReachable: row.copy_when_reachable === 1,
      hasPassword: secrets.has(secretRef(row.id, 'password')),
      hasCredentials: secrets.has(secretRef(row.id, 'access-key-id')) || secrets.has(secretRef(row.id, 'sftp-password')),
      lastTest,
    };
  }
}
