/**
 * Restores as jobs. A request names one snapshot, or a point in time and a scope (the whole
 * device, some sources, some files of one source); the planner picks, per source, the latest
 * snapshot committed at or before that time (for the whole device: the run in force then). The
 * plan is a dry run. The job runs every source through the same phases — preflight → stage (files
 * beside their targets, databases into a new database / staged file, each verified) → verify →
 * swap (services stopped once around every swap) → validate (databases open with the snapshot's
 * row counts and SQLite integrity_check while the services are still stopped; then, services
 * started, files in place and the health command). A failed validation rolls
 * everything back by itself; a completed restore keeps the previous state on the device until the
 * technician confirms it or rolls it back.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import type { Source as SourceConfig } from '../../shared/schemas/devices';
import type { RestorePlanSummary, RestoreRequest } from '../../shared/schemas/restore';
import type { DeviceConnector } from '../devices/device-connector';
import type { DeviceService } from '../devices/device-service';
import type { HistoryStore } from '../history/history-store';
import { parsePlatform, platformCommand, platformOfTags } from '../devices/facts';
import type { Platform } from '../devices/facts';
import { raw, sh } from '../devices/shell-quote';
import { chooseCompression, probeDevice } from '../devices/wire-compression';
import { leftoversOf, stopLeftovers } from '../devices/leftovers';
import type { CommandRunner } from '../devices/ssh-connection';
import { runToString } from '../devices/ssh-connection';
import type { JobContext, JobManager, StartedJob } from '../jobs/job-manager';
import type { Repository } from '../repository/repo/repository';
import { holdBlobWorkers } from '../repository/pipeline/blob-stream';
import { findSnapshot, listSnapshots, sourceOf, tagValue } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { RepositoryService } from '../services/repository-service';
import { confirmDbRestore, DB_WORK_DIR, dbJournal, markDbKept, planDbRestore, recoverDbRestores, rollbackDbRestore, stageDbRestore, swapDbRestore, validateDbRestore } from './db-restore';
import type { DbRestoreOptions, DbRestorePlan, MysqlSource, PostgresSource } from './db-restore';
import { formatBytes } from '../../shared/format-bytes';
import { activeRoots, confirmRoots, keptError, planFilesRestore, recoverRestores, refuseIfKept, relocateFileRoots, RESTORE_PREFIX, RESUME_HOURS, RESUME_PREFIX, rollbackRestore, rollbackRoots, stageFilesRestore, swapRoots, tooDeepHereText, tooLongText, validateRoots } from './files-restore';
import type { FilesRestoreOptions, FilesRestorePlan } from './files-restore';
import { largeFilesOnDevice } from './device-copies';
import type { DeviceCopy } from './device-copies';

export const RESTORE_PHASES = ['preflight', 'stage', 'verify', 'swap', 'validate'] as const;
const SAMPLE = 20;

/** One source of a restore: its snapshot and how it is restored. */
type Part =
  | { kind: 'files'; source: string; snapshot: SnapshotWithId; options: FilesRestoreOptions; plan: FilesRestorePlan }
  | { kind: 'db'; source: string; snapshot: SnapshotWithId; options: DbRestoreOptions; plan: DbRestorePlan };

export interface PendingRestore {
  restoreId: string;
  device: string;
  snapshotId: string;
  files: FilesRestorePlan[];
  databases: DbRestorePlan[];
  finishedAt: string;
  targets: string[];
  /** The time of the snapshot restored (the first source's), null when found on the device after an interruption. */
  pointInTime: string | null;
  /** How long the restore took, null when found on the device after an interruption. */
  seconds: number | null;
  /** Whether its bytes crossed the link gzip'ed (a slow link, decision 019). */
  wireCompression: boolean;
}

/** What a pending restore keeps in its row's JSON besides the columns. */
/** "2 large files (168.0 MiB)", as the restore's notes count them. */
const largeFiles = ({ files, size }: { files: number; size: number }) => `${files} large file${files === 1 ? '' : 's'} (${formatBytes(size)})`;

/** What a request restores (`chosen`), every snapshot of the repository it was chosen from (`all`), and what the choice warned of. */
type Choice = { chosen: SnapshotWithId[]; all: SnapshotWithId[]; warnings: string[]; repo: Repository };

type PendingDetails = Pick<PendingRestore, 'files' | 'databases' | 'targets' | 'pointInTime' | 'seconds' | 'wireCompression'>;

/** Runs the device's own service commands (its configuration, run by its shell as written). */
async function runDeviceCommands(runner: CommandRunner, commands: string[], what: string): Promise<void> {
  for (const command of commands) {
    await runToString(runner, raw(command)).catch((error: unknown) => {
      // The command did not fail: the link went while it ran.
      if (linkLost(runner)) throw error;
      throw new AppError('REMOTE_COMMAND_FAILED', `${what} command "${command}" failed: ${(error as Error).message}`);
    });
  }
}

/** Whether the device's SSH connection has died (cut, reset, or silent until keepalives gave up). */
function linkLost(runner: CommandRunner): boolean {
  return (runner as { closed?: boolean }).closed === true;
}

/** Why the link went, as the connection said it ("the connection to … was lost (ECONNRESET)"). */
function lostReason(error: unknown): string {
  const message = (error as Error).message.replace(/\.$/, '');
  return /was cut off: (.*)$/s.exec(message)?.[1] ?? /the connection to \S+ was lost(?: \([^)]*\))?|\S+ stopped answering \([^)]*\)/.exec(message)?.[0] ?? message;
}

/** Where a restore was, from the swap on, when the link to its device went. */
type SwapStep = 'stop' | 'swap' | 'check' | 'start' | 'health' | 'rollback';

/**
 * What the operator is told when the link to the device went from the swap on: what the device
 * holds now, as far as the step it went in says, and how to settle it once it can be reached.
 */
function linkLostError(device: string, step: SwapStep, error: unknown, servicesStopped: boolean): AppError {
  const lost = `The link to ${device} was lost`;
  const why = `(${lostReason(error)})`;
  const settle = `Look for interrupted restores on the Restore page (or run jetvault keep or rollback --device ${device}) once the device can be reached`;
  if (step === 'stop') {
    return new AppError(
      'UNAVAILABLE',
      `${lost} while its services were being stopped for the swap ${why}. Nothing was swapped: ${device} holds its previous state, the restored copy staged beside it. Its services may be left stopped: ${settle}; that removes the staged copy and starts them again.`,
    );
  }
  if (step === 'check' || step === 'start' || step === 'health') {
    const what = step === 'check' ? 'the restored state was being checked' : step === 'start' ? 'its services were being started again' : 'its health check ran';
    const stopped = servicesStopped && step !== 'health' ? '; its services may be left stopped until then' : '';
    return new AppError('UNAVAILABLE', `${lost} after the swap, while ${what} ${why}. ${device} holds the restored state, its previous state kept beside it${stopped}. Keep it or roll it back: ${settle}.`);
  }
  const during = step === 'swap' ? 'while the restored state was being swapped in' : 'while the device was being rolled back after a failed check';
  return new AppError(
    'UNAVAILABLE',
    `${lost} ${during} ${why}. ${device} may hold the restored state, its previous state kept beside it, or only part of the ${step === 'swap' ? 'swap' : 'rollback'}: ${settle}; that puts back what was not swapped completely and offers a completed swap to keep or roll back.`,
  );
}

/**
 * Noted on the device (`~/.jetvault-restore/services-stopped`) while a restore or rollback has the
 * device's services stopped: a console killed or cut off before it started them again leaves it, and
 * the next recovery (keep, rollback, the next restore) starts them.
 */
const SERVICES_STOPPED = raw(`"$HOME"/${DB_WORK_DIR}/services-stopped`);

async function stopServices(runner: CommandRunner, commands: string[]): Promise<void> {
  if (commands.length === 0) return;
  await runToString(runner, sh`umask 077 && mkdir -p -- "$HOME"/${raw(DB_WORK_DIR)} && : > ${SERVICES_STOPPED}`);
  await runDeviceCommands(runner, commands, 'Stop');
}

async function startServices(runner: CommandRunner, commands: string[]): Promise<void> {
  if (commands.length === 0) return;
  await runDeviceCommands(runner, commands, 'Start');
  await runToString(runner, sh`rm -f -- ${SERVICES_STOPPED}`);
}

/** Runs at most `n` of the given tasks at a time, in the order they were handed in. */
function limiter(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    // A finished task hands its slot straight to the next waiting one.
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

const runOf = (s: SnapshotWithId) => tagValue(s.tags, 'run');
const kindOf = (s: SnapshotWithId) => tagValue(s.tags, 'kind') ?? 'files';

/**
 * The snapshots a request restores. A point in time picks, per source, the latest snapshot committed
 * at or before it; the whole device takes the sources of the run in force then (the latest run at or
 * before it), and any other configured source from its own latest snapshot, with a warning.
 */
export function chooseSnapshots(all: SnapshotWithId[], device: string, configured: string[], request: Pick<RestoreRequest, 'at' | 'scope' | 'sources'>): { chosen: SnapshotWithId[]; warnings: string[] } {
  const at = request.at ? new Date(request.at).getTime() : Date.now();
  const mine = all.filter((s) => s.device === device && new Date(s.time).getTime() <= at);
  const latestOf = (source: string) => mine.filter((s) => sourceOf(s) === source).at(-1) ?? null;
  const warnings: string[] = [];
  const scope = request.scope ?? (request.sources && request.sources.length > 0 ? 'source' : 'device');
  if (scope !== 'device') {
    const chosen = (request.sources ?? []).map((name) => {
      const found = latestOf(name);
      if (!found) throw new AppError('NOT_FOUND', `${device} has no snapshot of "${name}" at or before ${new Date(at).toISOString()}`);
      return found;
    });
    return { chosen, warnings };
  }
  const last = mine.at(-1);
  if (!last) throw new AppError('NOT_FOUND', `${device} has no snapshot at or before ${new Date(at).toISOString()}`);
  const run = runOf(last);
  const chosen = run ? mine.filter((s) => runOf(s) === run) : [last];
  // One snapshot per source: if a run was repeated for a source, its latest.
  const bySource = new Map<string, SnapshotWithId>();
  for (const s of chosen) bySource.set(sourceOf(s), s);
  for (const name of configured) {
    if (bySource.has(name)) continue;
    const older = latestOf(name);
    if (older) {
      bySource.set(name, older);
      warnings.push(`"${name}" was not part of the run in force (${run ?? 'unknown'}); its latest earlier snapshot (${older.time}) is used.`);
    } else {
      warnings.push(`"${name}" has no snapshot at or before that time and is left as it is.`);
    }
  }
  return { chosen: [...bySource.values()], warnings };
}

export class RestoreService {
  constructor(
    private readonly devices: DeviceService,
    private readonly connector: DeviceConnector,
    private readonly repository: RepositoryService,
    private readonly jobs: JobManager,
    /** Restores waiting for keep / rollback live here, so a restarted console (or the CLI) still offers both. */
    private readonly history: HistoryStore,
  ) {}

  #remember(pending: PendingRestore): void {
    const device = this.devices.get(pending.device);
    const details: PendingDetails = { files: pending.files, databases: pending.databases, targets: pending.targets, pointInTime: pending.pointInTime, seconds: pending.seconds, wireCompression: pending.wireCompression };
    const plans = JSON.stringify(details);
    this.history.sql.pendingRestoreUpsert.run(pending.restoreId, device.id, pending.device, pending.snapshotId, pending.finishedAt, plans);
  }

  #forget(restoreId: string): void {
    this.history.sql.pendingRestoreDelete.run(restoreId);
  }

  /** The snapshots the request restores. */
  async #choose(request: RestoreRequest): Promise<Choice> {
    const device = this.devices.get(request.device);
    const repo = await this.repository.fresh();
    const all = await listSnapshots(repo);
    let chosen: SnapshotWithId[];
    const warnings: string[] = [];
    if (request.snapshotId) {
      const snapshot = await findSnapshot(repo, request.snapshotId, all);
      if (snapshot.device !== request.device) throw new AppError('VALIDATION', `Snapshot ${request.snapshotId.slice(0, 12)} is of ${snapshot.device}, not ${request.device}`);
      chosen = [snapshot];
    } else {
      const picked = chooseSnapshots(all, request.device, device.profile.sources.map((s) => s.name), request);
      chosen = picked.chosen;
      warnings.push(...picked.warnings);
    }
    return { chosen, all, warnings, repo };
  }

  /** Every part of the request, planned against the device as it is now (reads only). */
  async #parts(request: RestoreRequest, runner: CommandRunner, restoreId: string, choice: Choice): Promise<{ parts: Part[]; warnings: string[] }> {
    const device = this.devices.get(request.device);
    const { chosen, repo } = choice;
    const warnings = [...choice.warnings];
    // The large files the device held at its last backups: asked once per restore, and only when a
    // large file it sends has no copy at its own path (device-copies.ts).
    let copies: Promise<Map<number, DeviceCopy[]>> | null = null;
    const copiesOnDevice = () => (copies ??= largeFilesOnDevice(repo, choice.all, request.device, device.profile.sysroot ?? '/'));
    for (const snapshot of chosen) {
      const kind = kindOf(snapshot);
      if (request.scope === 'files' && kind !== 'files') throw new AppError('VALIDATION', `"${sourceOf(snapshot)}" is a ${kind} source: choose "Sources" to restore a database`);
    }
    // Sources are planned four at a time (each lists the device and walks its snapshot; sshd allows
    // 10 sessions per connection).
    const planned: Promise<Part>[] = [];
    const slots = limiter(4);
    for (const snapshot of chosen) {
      const name = sourceOf(snapshot);
      const kind = kindOf(snapshot);
      const config: SourceConfig | undefined = device.profile.sources.find((s) => s.name === name);
      if (kind === 'files') {
        const exclude = config?.kind === 'files' ? (config.exclude ?? []) : [];
        const options: FilesRestoreOptions = {
          repo,
          runner,
          snapshot,
          restoreId,
          ...(device.profile.sysroot ? { sysroot: device.profile.sysroot } : {}),
          ...(request.targetRoot ? { targetRoot: request.targetRoot } : {}),
          ...(request.include && request.include.length > 0 ? { include: request.include } : {}),
          ...(exclude.length > 0 ? { exclude } : {}),
          ...(request.checkContents ? { checkContents: true } : {}),
          copiesOnDevice,
          resume: true,
        };
        planned.push(slots(() => planFilesRestore(options)).then((plan) => ({ kind: 'files', source: name, snapshot, options, plan })));
      } else if (kind === 'postgres' || kind === 'sqlite' || kind === 'mysql') {
        if (!config || config.kind !== kind) {
          warnings.push(`"${name}" (${kind}) is no longer configured on ${request.device}; it is not restored (download its dump instead).`);
          continue;
        }
        const target = kind !== 'sqlite' && request.targetDatabase ? { database: request.targetDatabase } : kind === 'sqlite' && request.targetPath ? { path: request.targetPath } : undefined;
        const options: DbRestoreOptions = { repo, runner, snapshot, source: config, restoreId, ...(target ? { target } : {}) };
        planned.push(slots(() => planDbRestore(options)).then((plan) => ({ kind: 'db', source: name, snapshot, options, plan })));
      } else {
        warnings.push(`"${name}" (${kind}) cannot be restored onto the device by this version; download its dump instead.`);
      }
    }
    const parts = await Promise.all(planned);
    if (parts.length === 0) throw new AppError('VALIDATION', `Nothing of ${request.device} can be restored from that choice`);
    // Into another folder is beside the live data, for inspection: like a database under another
    // name, what is there already is never replaced — the folder could even be the live tree (`/`).
    if (request.targetRoot) {
      const existing = parts.flatMap((p) => (p.kind === 'files' ? p.plan.roots.filter((r) => r.targetExists).map((r) => r.target) : []));
      if (existing.length > 0) {
        throw new AppError('CONFLICT', `${existing.join(', ')} already ${existing.length === 1 ? 'exists' : 'exist'} on ${request.device}: a restore into another folder never overwrites anything there. Choose a folder where ${existing.length === 1 ? 'it does' : 'they do'} not exist yet.`);
      }
    }
    relocateFileRoots(
      parts.flatMap((p) => (p.kind === 'files' ? p.plan.roots.map((root) => ({ root, source: p.source })) : [])),
      restoreId,
    );
    // Files swap first, then databases: a database file inside a restored folder (excluded from
    // the folder's snapshot) is carried into the new folder by the files swap and replaced after it.
    // Within a kind, by source name: the plan reads the same whatever order the run wrote them in.
    parts.sort((a, b) => (a.kind === b.kind ? a.source.localeCompare(b.source) : a.kind === 'files' ? -1 : 1));
    return { parts, warnings };
  }

  #inPlace(request: RestoreRequest, part: Part): boolean {
    return part.kind === 'files' ? !request.targetRoot : part.plan.inPlace;
  }

  #summary(request: RestoreRequest, parts: Part[], warnings: string[], platform: Platform | null): RestorePlanSummary {
    const device = this.devices.get(request.device);
    const services = device.profile.services ?? { stop: [], start: [] };
    const anyInPlace = parts.some((p) => this.#inPlace(request, p));
    const all = [...warnings];
    if (anyInPlace && services.stop.length === 0) all.push('No services are configured to stop around the swap: the app keeps running while its files and databases change.');
    if (!platform || (!platform.l4t && !platform.board)) all.push('The device did not report its L4T release or board: compatibility with the snapshots could not be checked.');
    const seen = new Set<string>();
    for (const part of parts) {
      const facts = platformOfTags(part.snapshot.tags);
      if (!platform) continue;
      if (facts.l4t && platform.l4t && facts.l4t !== platform.l4t) seen.add(`The device runs L4T ${platform.l4t}, the snapshot of "${part.source}" was taken on L4T ${facts.l4t}: binaries, drivers and TensorRT engines may not match.`);
      if (facts.board && platform.board && facts.board !== platform.board) seen.add(`The device is a ${platform.board}, the snapshot of "${part.source}" was taken on a ${facts.board}.`);
      if (!facts.l4t && !facts.board) seen.add(`The snapshot of "${part.source}" has no recorded platform facts (taken before they were recorded).`);
    }
    all.push(...seen);
    const files = parts.filter((p): p is Extract<Part, { kind: 'files' }> => p.kind === 'files');
    for (const { plan } of files) {
      for (const root of plan.roots) {
        const kept = root.ownersKept ?? 0;
        if (kept > 0 && plan.login) all.push(`${kept} ${kept === 1 ? 'entry' : 'entries'} in ${root.target} will not have ${kept === 1 ? 'its' : 'their'} owner (another account's) after the restore: the device's login ${plan.login.name} is not root, and what it writes or copies is its own. Connect as root to restore owners.`);
        if (root.mountPoint) all.push(`${root.target} is a mount point (a file system of its own): the restore cannot move it aside for its swap, so it will stop before changing anything. Restore it into another folder on the device, or download it to this laptop.`);
        if (root.tooLong) all.push(`${tooLongText(root)}. The restore will stop before changing anything.`);
        if (root.tooDeepHere) all.push(`${tooDeepHereText(root)}. The restore will stop before changing anything.`);
        const blocked = root.unreachable;
        if (blocked && plan.login) {
          const one = blocked.count === 1;
          all.push(`${blocked.count} ${one ? 'entry' : 'entries'} in ${root.target} cannot be read by ${plan.login.name} (${blocked.samples.join(', ')}${blocked.count > blocked.samples.length ? ', …' : ''}): the restore's staging copy must read all of the folder, so the restore will stop before changing anything. Connect as root, or make ${one ? 'it' : 'them'} readable for ${plan.login.name}.`);
        }
        const unreadable = root.contents?.unreadable ?? 0;
        if (unreadable > 0) all.push(`${unreadable} file${unreadable === 1 ? '' : 's'} in ${root.target} could not be read by the device's login: ${unreadable === 1 ? 'its contents were' : 'their contents were'} not checked (left as ${unreadable === 1 ? 'it is' : 'they are'}).`);
      }
    }
    const dbs = parts.filter((p): p is Extract<Part, { kind: 'db' }> => p.kind === 'db');
    for (const p of dbs) all.push(...(p.plan.warnings ?? []));
    const first = parts[0]!;
    return {
      restoreId: first.plan.restoreId,
      device: request.device,
      snapshotId: first.snapshot.id,
      at: request.snapshotId ? null : (request.at ?? new Date().toISOString()),
      snapshots: parts.map((p) => ({ source: p.source, kind: kindOf(p.snapshot), snapshotId: p.snapshot.id, time: p.snapshot.time, runId: runOf(p.snapshot), ...platformOfTags(p.snapshot.tags) })),
      bytesToSend: files.reduce((n, p) => n + p.plan.bytesToSend, 0) + dbs.reduce((n, p) => n + p.plan.dumpBytes, 0),
      patchableBytes: files.reduce((n, p) => n + p.plan.patchableBytes, 0),
      resumableBytes: files.reduce((n, p) => n + (p.plan.resumableBytes ?? 0), 0),
      freeBytes: Math.min(...parts.map((p) => p.plan.freeBytes)),
      spaceNeeded: files.reduce((n, p) => n + p.plan.spaceNeeded, 0) + dbs.reduce((n, p) => n + p.plan.spaceNeeded, 0),
      warnings: all,
      roots: files.flatMap((p) =>
        p.plan.roots.map((r) => ({
          target: r.target,
          targetExists: r.targetExists,
          add: r.add.length,
          replace: r.replace.length,
          remove: r.remove.length,
          unchanged: r.unchanged,
          bytes: r.bytesToSend,
          contents: r.contents ?? null,
          mode: r.rootMode ?? null,
          owner: r.rootOwner ?? null,
          owners: r.owners ?? 0,
          // '' is a path that is itself a single file: it is shown by its name.
          samples: [
            ...r.replace.slice(0, SAMPLE).map((x) => `~ ${x || path.posix.basename(r.target)}`),
            ...r.add.slice(0, SAMPLE).map((x) => `+ ${x || path.posix.basename(r.target)}`),
            ...r.remove.slice(0, SAMPLE).map((x) => `- ${x}`),
          ],
        })),
      ),
      databases: dbs.map((p) => ({
        source: p.source,
        kind: p.plan.kind,
        target: p.plan.target,
        inPlace: p.plan.inPlace,
        targetExists: p.plan.targetExists,
        action: !p.plan.inPlace ? ('copy' as const) : p.plan.targetExists ? ('replace' as const) : ('create' as const),
        bytes: p.plan.dumpBytes,
        tables: p.plan.expectedRows ? Object.keys(p.plan.expectedRows).length : null,
        rows: p.plan.expectedRows ? Object.values(p.plan.expectedRows).reduce((n, r) => n + r, 0) : null,
        space: p.plan.dbSpace ?? null,
      })),
      services: anyInPlace ? { stop: services.stop, start: services.start } : { stop: [], start: [] },
      platform,
      timings: [],
      wireCompression: false,
      notes: [],
    };
  }

  async #platform(runner: CommandRunner, sysroot: string | undefined): Promise<Platform | null> {
    return runToString(runner, platformCommand(sysroot)).then(parsePlatform, () => null);
  }

  /** The dry run: which snapshots, what would change, whether it fits, what to watch out for. Changes nothing. */
  plan(request: RestoreRequest): Promise<RestorePlanSummary> {
    const device = this.devices.get(request.device);
    return this.connector.withDevice(request.device, async (connection) => {
      const { parts, warnings } = await this.#parts(request, connection, 'plan', await this.#choose(request));
      return this.#summary(request, parts, warnings, await this.#platform(connection, device.profile.sysroot));
    });
  }

  /** `done`: how the job ended, with the error itself (a repository's failure, e.g. locked by a prune). */
  start(request: RestoreRequest): { jobId: string; restoreId: string; done: StartedJob<RestorePlanSummary>['done'] } {
    const device = this.devices.get(request.device);
    const restoreId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const job = this.jobs.start({ kind: 'restore', title: `Restore ${request.device}`, phases: [...RESTORE_PHASES], deviceId: device.id }, (ctx) =>
      // Under a shared lease, as a backup: a prune elsewhere must not repack what is being sent.
      this.repository.read(() => {
        // The snapshots are chosen (repository reads) while the SSH connection is being set up.
        const choosing = this.#choose(request);
        choosing.catch(() => undefined); // awaited in #run, or the connection failed first
        return this.connector.withDevice(request.device, (connection) => this.#run(request, restoreId, connection, ctx, choosing));
      }, ctx.signal),
    );
    return { jobId: job.id, restoreId, done: job.done };
  }

  /** Whatever earlier, interrupted restores left on the device is settled first. */
  async #recover(runner: CommandRunner, name: string, request: RestoreRequest, chosen: SnapshotWithId[]): Promise<PendingRestore[]> {
    const profile = this.devices.get(name).profile;
    const base = request.targetRoot ?? profile.sysroot ?? '/';
    const dirs = new Set<string>(this.#sourceDirs(name));
    for (const s of chosen) if (kindOf(s) === 'files') for (const p of s.paths) dirs.add(path.posix.dirname(path.posix.join(base, p)));
    return this.#settle(runner, name, [...dirs]);
  }

  /** The folders beside which files restores of the device's own sources stage. */
  #sourceDirs(name: string): string[] {
    const profile = this.devices.get(name).profile;
    const root = profile.sysroot ?? '/';
    const dirs = new Set<string>();
    for (const source of profile.sources) {
      if (source.kind !== 'files') continue;
      for (const p of source.paths) dirs.add(path.posix.dirname(p.startsWith(root) ? p : path.posix.join(root, p)));
    }
    return [...dirs];
  }

  /**
   * Folders beside which this restore stages that no recovery of the device would otherwise look at
   * (a restore into another folder): remembered before anything is staged, so that a restore cut off
   * there is settled by the device's next recovery — and what it kept for a rerun expires — like one
   * beside the device's own sources. Forgotten once a recovery finds nothing of Jetvault's left there.
   */
  #rememberPlaces(name: string, dirs: string[]): void {
    const device = this.devices.get(name);
    const own = new Set(this.#sourceDirs(name));
    const since = new Date().toISOString();
    for (const dir of new Set(dirs)) if (!own.has(dir)) this.history.sql.restorePlaceAdd.run(device.id, dir, since);
  }

  /**
   * Rolls back what interrupted restores left unfinished and offers the ones whose swap completed
   * (a console that died before it could ask) for confirmation or rollback. Looks beside `dirs` and in
   * the places restores into other folders staged (#rememberPlaces). With `report`, each thing it
   * settled is said there in a sentence (what Look for interrupted restores shows).
   */
  async #settle(runner: CommandRunner, name: string, given: string[], report?: string[]): Promise<PendingRestore[]> {
    const device = this.devices.get(name);
    const profile = device.profile;
    const places = this.history.sql.restorePlacesOf.all(device.id).map((row) => row.dir);
    const dirs = [...new Set([...given, ...places])];
    const found = new Map<string, PendingRestore>();
    const entry = (restoreId: string, snapshotId: string) => {
      const existing = found.get(restoreId);
      if (existing) return existing;
      const fresh: PendingRestore = { restoreId, device: name, snapshotId, files: [], databases: [], finishedAt: new Date().toISOString(), targets: [], pointInTime: null, seconds: null, wireCompression: false };
      found.set(restoreId, fresh);
      return fresh;
    };
    const idOf = (staging: string) => path.posix.basename(staging).slice(RESTORE_PREFIX.length).split('-')[0]!;
    // Files first: unfinished ones roll back, cut-off keeps are finished. A restore with any part
    // being kept is kept whole — its databases here, its swapped roots below — never offered for a
    // rollback that could put back only some of it.
    // A files restore its link cut off while staging leaves its large staged files for the next one
    // (files-restore.ts, RESUME_PREFIX).
    const roots = dirs.length > 0 ? await recoverRestores(runner, dirs, { resume: true }) : [];
    const kept = new Set(roots.filter((r) => r.state === 'kept').map((r) => idOf(r.staging)));
    for (const { staging, state } of report ? roots : []) {
      // `.jetvault-restore-<id>-<name>` beside the folder it restored.
      const folder = path.posix.join(path.posix.dirname(staging), path.posix.basename(staging).slice(RESTORE_PREFIX.length).replace(/^[^-]*-/, ''));
      const which = `the restore of ${folder} (${idOf(staging)})`;
      if (state === 'kept') report!.push(`Finished keeping ${which}: it had been cut off while removing the state before it.`);
      else if (state === 'rolledback') report!.push(`Finished rolling back ${which}: ${folder} holds what it held before the restore.`);
      else if (state !== 'swapped') report!.push(`Rolled back ${which}, cut off ${state === 'swapping' ? 'during its swap' : 'before its swap'}: ${folder} holds what it held before, and what had been staged is removed.`);
    }
    const sqliteDirs = profile.sources.flatMap((s) => (s.kind === 'sqlite' ? [path.posix.dirname(s.path)] : []));
    const postgres = profile.sources.filter((s): s is PostgresSource => s.kind === 'postgres');
    const mysql = profile.sources.filter((s): s is MysqlSource => s.kind === 'mysql');
    const databases = await recoverDbRestores(runner, { besideDirs: sqliteDirs, postgres, mysql, kept });
    for (const { plan, outcome } of databases) if (outcome === 'kept') kept.add(plan.restoreId);
    for (const { plan, outcome } of report ? databases : []) {
      const which = `the ${plan.kind === 'sqlite' ? 'SQLite' : plan.kind === 'mysql' ? 'MySQL' : 'PostgreSQL'} restore of ${plan.target} (${plan.restoreId})`;
      if (outcome === 'kept') report!.push(`Finished keeping ${which}.`);
      else if (outcome === 'rolled-back') report!.push(`Rolled back ${which}, cut off before it was kept: ${plan.inPlace ? `${plan.target} is as it was before the restore` : 'what it had made is removed'}.`);
    }
    for (const { staging, state } of roots) {
      if (state !== 'swapped') continue;
      const restoreId = idOf(staging);
      const target = (await runToString(runner, sh`cat -- ${path.posix.join(staging, 'target')}`)).trim();
      const root = { snapshotPath: '', target, staging, targetExists: true, add: [], replace: [], remove: [], unchanged: 0, bytesToSend: 0 };
      if (kept.has(restoreId)) {
        await confirmRoots(runner, [root]);
        continue;
      }
      const pending = entry(restoreId, '');
      pending.files.push({ restoreId, snapshotId: '', roots: [root], bytesToSend: 0, patchableBytes: 0, freeBytes: 0, spaceNeeded: 0 });
      pending.targets.push(target);
    }
    for (const { plan, outcome } of databases) {
      if (outcome !== 'swapped') continue;
      const pending = entry(plan.restoreId, plan.snapshotId);
      pending.databases.push(plan);
      pending.targets.push(plan.target);
    }
    const added: PendingRestore[] = [];
    const known = new Set(this.pending().map((p) => p.restoreId));
    for (const pending of found.values()) {
      if (known.has(pending.restoreId)) continue;
      this.#remember(pending);
      added.push(pending);
    }
    if (places.length > 0) {
      // A place is kept while it holds a restore's staging (waiting for keep or rollback) or what a cut one kept.
      const held = await runToString(runner, sh`for d in ${places}; do for x in "$d"/${raw(`${RESTORE_PREFIX}*`)} "$d"/${raw(`${RESUME_PREFIX}*`)}; do [ -d "$x" ] && { printf '%s\\0' "$d"; break; }; done; done; true`);
      const still = new Set(held.split('\0'));
      for (const dir of places) if (!still.has(dir)) this.history.sql.restorePlaceDelete.run(device.id, dir);
    }
    // Services a console killed or cut off mid-restore left stopped are started again (on the
    // restored state when its swap had completed: it waits for keep or rollback all the same).
    if ((await runToString(runner, sh`[ ! -e ${SERVICES_STOPPED} ] || echo stopped`)).trim() === 'stopped') {
      await runDeviceCommands(runner, profile.services?.start ?? [], 'Start');
      await runToString(runner, sh`rm -f -- ${SERVICES_STOPPED}`);
      report?.push("Started the device's services again: a restore cut off had left them stopped.");
    }
    return added;
  }

  /**
   * Looks on the device for restores an interrupted console left behind: unfinished ones are
   * rolled back, completed ones wait for the technician's decision (listed as pending).
   */
  async recover(name: string): Promise<PendingRestore[]> {
    return (await this.recoverReport(name)).pending;
  }

  /**
   * recover, and what it settled in sentences (`settled`): restores rolled back or kept, services
   * started again, and the large files kept for a rerun beside their folders — how many, how large,
   * until when. Empty when there was nothing to settle.
   */
  recoverReport(name: string): Promise<{ pending: PendingRestore[]; settled: string[] }> {
    const device = this.devices.get(name);
    return this.connector.withDevice(name, async (connection) => {
      // Recovery, keep and rollback act on the device outside a job: not while another process's
      // restore stages or swaps there (its staging would be rolled back under it). This process's
      // own jobs on the device are no concern: the connector runs one at a time.
      this.jobs.refuseIfBusyElsewhere(device.id);
      const settled: string[] = [];
      const dirs = this.#sourceDirs(name);
      await this.#settle(connection, name, dirs, settled);
      settled.push(...(await this.#resumeKept(connection, [...dirs, ...this.history.sql.restorePlacesOf.all(device.id).map((row) => row.dir)])));
      return { pending: this.pending().filter((p) => p.device === name), settled };
    });
  }

  /** What resume folders beside `dirs` hold for a rerun (files-restore.ts, RESUME_PREFIX), in sentences. */
  async #resumeKept(runner: CommandRunner, dirs: string[]): Promise<string[]> {
    if (dirs.length === 0) return [];
    const out = await runToString(
      runner,
      sh`for d in ${[...new Set(dirs)]}; do for r in "$d"/${raw(`${RESUME_PREFIX}*`)}; do [ -d "$r" ] && [ ! -L "$r" ] && printf '%s\\t%s\\t%s\\0' "$r" "$(stat -c %Y -- "$r")" "$(find "$r" -type f -printf '%s\\n' | awk '{ n++; s += $1 } END { print n + 0 "\\t" s + 0 }')"; done; done; true`,
    );
    return out
      .split('\0')
      .filter(Boolean)
      .flatMap((line) => {
        // The folder's name may hold a tab: the three numbers are the last fields.
        const fields = line.split('\t');
        const [mtime, files, bytes] = fields.splice(-3);
        const folder = fields.join('\t');
        if (!folder || Number(files) === 0) return [];
        const until = new Date((Number(mtime) + RESUME_HOURS * 3600) * 1000).toISOString().slice(0, 16).replace('T', ' ');
        const target = path.posix.join(path.posix.dirname(folder), path.posix.basename(folder).slice(RESUME_PREFIX.length));
        return [`Kept ${largeFiles({ files: Number(files), size: Number(bytes) })} a restore cut off had staged, in ${folder} until ${until} UTC: a restore of ${target} before then sends only what they still lack.`];
      });
  }

  async #run(request: RestoreRequest, restoreId: string, connection: CommandRunner, ctx: JobContext, choosing: Promise<Choice>): Promise<RestorePlanSummary> {
    const device = this.devices.get(request.device);
    const services = device.profile.services;
    let current = 0;
    // Phases only move forward: every source passes through each one in turn.
    const phase = (name: (typeof RESTORE_PHASES)[number]) => {
      ctx.throwIfCancelled();
      const index = RESTORE_PHASES.indexOf(name);
      if (index < current) return;
      current = index;
      ctx.phase(name);
    };
    const timings: { step: string; ms: number }[] = [];
    const notes: string[] = [];
    const began = performance.now();
    let mark = began;
    /** Records the time since the previous mark under `step`. */
    const lap = (step: string, since?: number) => {
      const now = performance.now();
      timings.push({ step, ms: Math.round(now - (since ?? mark)) });
      if (since === undefined) mark = now;
    };
    phase('preflight');
    const choice = await choosing;
    await this.#recover(connection, request.device, request, choice.chosen);
    lap('recover');
    // Planned after the recovery: it may have put files back. The first command also stops what
    // a backup or drill of this console cut off by a dead link left running there (leftovers.ts;
    // the restore's own commands are never marked: its swap is not stopped from outside).
    const [{ parts, warnings }, { text, probe }] = await Promise.all([this.#parts(request, connection, restoreId, choice), probeDevice(connection, device.profile.sysroot, undefined, stopLeftovers(this.devices.marksScope(request.device)))]);
    const stopped = leftoversOf(text);
    if (stopped.length > 0) notes.push(`First stopped what an earlier backup or drill had left running on the device (${stopped.join(', ')}).`);
    const summary = this.#summary(request, parts, warnings, text ? parsePlatform(text) : null);
    // Over a slow link the files go gzip'ed, as backups do (decision 019).
    const compress = await chooseCompression(connection, device.profile.wireCompression, probe);
    lap('plan');
    ctx.setTotals({ bytes: summary.bytesToSend });
    const inPlace = parts.some((p) => this.#inPlace(request, p));
    const staged: Part[] = [];
    // Sources are independent until the swap: two files sources at a time (one streams while the
    // other is copied or hashed on the device), each database beside them (it spends most of its
    // time loading on the device). At most 2 × 2 channels for files plus one per database, well
    // under sshd's 10 sessions per connection.
    const filesQueue = parts.filter((p): p is Extract<Part, { kind: 'files' }> => p.kind === 'files');
    this.#rememberPlaces(request.device, filesQueue.flatMap((p) => p.plan.roots.map((r) => path.posix.dirname(r.staging))));
    const patched = { files: 0, size: 0, sent: 0 };
    const copied = { files: 0, size: 0, sent: 0 };
    const resumed = { files: 0, size: 0, sent: 0 };
    const unpatched = { files: 0, size: 0, reasons: new Set<string>() };
    const stageFiles = async () => {
      for (let part = filesQueue.shift(); part; part = filesQueue.shift()) {
        staged.push(part);
        let started = performance.now();
        await stageFilesRestore({ ...part.options, compress }, part.plan, {
          phase: (name) => {
            if (name === 'verify') {
              lap(`stage:${part.source}`, started);
              started = performance.now();
            }
            phase(name);
          },
          advance: (d) => ctx.advance(d),
          patched: (size, sent, from) => {
            const counted = from === 'resumed' ? resumed : from === 'elsewhere' ? copied : patched;
            counted.files++;
            counted.size += size;
            counted.sent += sent;
          },
          unpatched: (size, reason) => {
            unpatched.files++;
            unpatched.size += size;
            unpatched.reasons.add(reason);
          },
        });
        lap(`verify:${part.source}`, started);
      }
    };
    const stageDb = async (part: Extract<Part, { kind: 'db' }>) => {
      staged.push(part);
      phase('stage');
      let step = 'prepare';
      let started = performance.now();
      await stageDbRestore({ ...part.options, signal: ctx.signal, compress }, part.plan, {
        advance: (d) => ctx.advance(d),
        note: (text) => notes.push(text),
        step: (s) => {
          lap(`${step}:${part.source}`, started);
          step = s;
          started = performance.now();
          if (s === 'verify') phase('verify');
        },
      });
      lap(`${step}:${part.source}`, started);
    };
    // The files sources share the repository's blob workers (started once, not per source).
    const releaseWorkers = filesQueue.length > 0 ? holdBlobWorkers(filesQueue[0]!.options.repo) : () => Promise.resolve();
    const outcomes = await Promise.allSettled([stageFiles(), stageFiles(), ...parts.flatMap((p) => (p.kind === 'db' ? [stageDb(p)] : []))]);
    void releaseWorkers().catch(() => undefined);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) {
      // Nothing live changed yet: the staged data goes — or, the link gone, stays until the
      // device's next recovery, and the error says the link went, not that a command failed.
      if (linkLost(connection) && !ctx.signal.aborted) {
        const doing = current >= RESTORE_PHASES.indexOf('verify') ? 'verified' : 'staged';
        throw new AppError(
          'UNAVAILABLE',
          `The link to ${request.device} was lost while the restore was being ${doing} beside the live data (${lostReason(failed.reason)}). Nothing was swapped: ${request.device} holds its previous state. Once the device can be reached, its next restore (or Look for interrupted restores on the Restore page, or jetvault rollback --device ${request.device}) removes what was staged — except the large files: they are kept beside their folder for ${RESUME_HOURS} hours, and a restore of that folder meanwhile sends only what they still lack.`,
        );
      }
      for (const part of staged.reverse()) await this.#rollbackPart(connection, part).catch(() => undefined);
      throw failed.reason;
    }
    lap('stage+verify');
    if (patched.files > 0) {
      notes.push(`${largeFiles(patched)} sent as the ${formatBytes(patched.sent)} of blocks that differed from the device's copy.`);
    }
    if (copied.files > 0) {
      const files = largeFiles(copied);
      notes.push(
        copied.sent === 0
          ? `${files} staged from ${copied.files === 1 ? 'a copy' : 'copies'} the device holds at another path: none of ${copied.files === 1 ? 'it' : 'them'} crossed the link.`
          : `${files} staged from ${copied.files === 1 ? 'a copy' : 'copies'} the device holds at another path, sent as the ${formatBytes(copied.sent)} of blocks that differed.`,
      );
    }
    if (resumed.files > 0) {
      notes.push(
        `${largeFiles(resumed)} taken up from what an earlier restore had staged before its link was cut: ${resumed.sent === 0 ? 'none of it crossed the link again' : `only the ${formatBytes(resumed.sent)} it still lacked crossed the link`}.`,
      );
    }
    if (unpatched.files > 0) {
      notes.push(`${largeFiles(unpatched)} sent whole, not as the blocks that differed: ${[...unpatched.reasons].join('; ')}.`);
    }

    phase('swap');
    // From the swap on a cancel is refused: the services are stopped and the renames run on the
    // device whatever happens here, so the job sees the restore through — validated (or rolled
    // back), the services started again, recorded as waiting for keep or rollback.
    ctx.commit();
    const stop = inPlace && services ? services : null;
    // Set once a rollback after the swap ran to its end (the device is as it was again).
    let undone = false;
    // Where the restore is, for what a lost link leaves on the device.
    let step: SwapStep = 'stop';
    const rollBack = async (): Promise<string> => {
      step = 'rollback';
      const note = await this.#rollBack(connection, parts, stop);
      undone = true;
      return note;
    };
    /** Recorded as waiting for keep or rollback (a restore that changed something in place). */
    const remember = () => {
      const files = parts.flatMap((p) => (p.kind === 'files' ? [p.plan] : []));
      const databases = parts.flatMap((p) => (p.kind === 'db' ? [p.plan] : []));
      if (files.length === 0 && !databases.some((d) => d.inPlace)) return;
      this.#remember({
        restoreId,
        device: request.device,
        snapshotId: parts[0]!.snapshot.id,
        files,
        databases: databases.filter((d) => d.inPlace),
        finishedAt: new Date().toISOString(),
        targets: [...files.flatMap((f) => f.roots.map((r) => r.target)), ...databases.map((d) => d.target)],
        pointInTime: parts[0]!.snapshot.time,
        seconds: Math.round((performance.now() - began) / 100) / 10,
        wireCompression: compress,
      });
    };
    try {
      try {
        if (stop) await stopServices(connection, stop.stop);
        step = 'swap';
        // Every folder and file of every source, outer first (one command); then the databases (a
        // database file inside a restored folder is replaced after the folder's swap carried it).
        await swapRoots(connection, parts.flatMap((p) => (p.kind === 'files' ? activeRoots(p.plan) : [])));
        for (const part of parts) if (part.kind === 'db') await swapDbRestore(connection, part.plan);
      } catch (error) {
        // Nothing can be rolled back over a dead link: the error says what the device holds.
        if (linkLost(connection)) throw error;
        const failedAt = step;
        const note = await rollBack();
        // A stop command that failed: nothing was swapped, the staged copy is gone, the start commands ran.
        const stateNote = failedAt === 'stop' ? `. Nothing was swapped: ${request.device} was left as it was (the staged copy removed, its start commands run)` : '';
        if (note || stateNote) throw new AppError(error instanceof AppError ? error.code : 'REMOTE_COMMAND_FAILED', `${(error as Error).message.replace(/\.$/, '')}${stateNote}${note}`);
        throw error;
      }

      lap('swap');
      step = 'check';
      phase('validate');
      // Databases are checked while the app is still stopped: an app that writes as it starts (a
      // heartbeat row) would otherwise make the row counts differ from the snapshot's every time.
      // The restored files' presence is checked beside them (reads only).
      const problems: string[] = [];
      await Promise.all([
        ...parts.map(async (part) => {
          if (part.kind !== 'db') return;
          const v = await validateDbRestore(connection, part.plan);
          if (!v.ok) problems.push(`"${part.source}": ${v.problems.slice(0, 5).join('; ')}`);
        }),
        validateRoots(
          connection,
          parts.flatMap((p) => (p.kind === 'files' ? activeRoots(p.plan) : [])),
        ).catch((error: unknown) => problems.push((error as Error).message)),
      ]);
      // A check the link cut off found nothing wrong with the restored state.
      if (linkLost(connection)) throw new AppError('UNAVAILABLE', problems.join('; '));
      if (problems.length > 0) throw validationFailed(problems, await rollBack());
      step = 'start';
      if (stop) await startServices(connection, stop.start);
      step = 'health';
      if (inPlace && device.profile.healthCommand) {
        const unhealthy = await runToString(connection, raw(device.profile.healthCommand)).then(
          () => null,
          (error: unknown) => (error as Error).message,
        );
        if (linkLost(connection)) throw new AppError('UNAVAILABLE', unhealthy ?? 'the link was lost');
        if (unhealthy !== null) problems.push(`health check: ${unhealthy}`);
      }
      lap('validate');
      if (problems.length > 0) {
        if (stop) await stopServices(connection, stop.stop).catch(() => undefined);
        throw validationFailed(problems, await rollBack());
      }
      remember();
      return { ...summary, timings, wireCompression: compress, notes };
    } catch (error) {
      // Swapped and checked, but a start command failed (the link is there): the restore is done and
      // waits for keep or rollback like any other; the services are the operator's to start.
      if (step === 'start' && !linkLost(connection)) {
        remember();
        const message = (error as Error).message.replace(/\.$/, '');
        throw new AppError(
          error instanceof AppError ? error.code : 'REMOTE_COMMAND_FAILED',
          `${message}. The restore itself is done: ${request.device} holds the restored state (checked), its previous state kept beside it, but its services did not start again. Start them by hand (or correct the start command), then keep the restore or roll it back: it waits on the Restore page (jetvault keep or rollback --device ${request.device}).`,
        );
      }
      // Neither finished nor rolled back (the link dropped, a start command failed): the swap may
      // have completed, and recovery settles it — the operator must not read "failed" as "as it was".
      if (undone) throw error;
      if (linkLost(connection)) throw linkLostError(request.device, step, error, stop !== null && stop.stop.length > 0);
      const message = (error as Error).message.replace(/\.$/, '');
      throw new AppError(error instanceof AppError ? error.code : 'REMOTE_COMMAND_FAILED', `${message}. This happened once the swap had begun: ${request.device} may hold the restored state, with its previous state kept beside it. Keep it or roll it back (jetvault keep or rollback --device ${request.device}; on the Restore page, Look for interrupted restores) once the device can be reached.`);
    }
  }

  async #rollbackPart(runner: CommandRunner, part: Part): Promise<void> {
    if (part.kind === 'files') await rollbackRestore(runner, part.plan);
    else await rollbackDbRestore(runner, part.plan);
  }

  /**
   * A restore's own rollback after its swap (the services stopped, when it stopped them): databases
   * first, then files inner first (the reverse of the swap order), then the services started again.
   * Returns what the error adds about staging folders that could not be removed entirely (files
   * another account left in the restored state meanwhile — its services ran for the health check):
   * leftNote, '' when none.
   */
  async #rollBack(runner: CommandRunner, parts: Part[], stop: { start: string[] } | null): Promise<string> {
    for (const part of [...parts].reverse()) if (part.kind === 'db') await this.#rollbackPart(runner, part);
    const left = await rollbackRoots(runner, parts.flatMap((p) => (p.kind === 'files' ? p.plan.roots : [])));
    if (stop) await startServices(runner, stop.start).catch(() => undefined);
    return leftNote(left);
  }

  pending(): PendingRestore[] {
    return this.history.sql.pendingRestoresAll.all().map((row) => {
      // Rows written before a restore recorded its time and transfer have neither (null, false).
      const details = { pointInTime: null, seconds: null, wireCompression: false, ...(JSON.parse(row.plans) as Partial<PendingDetails>) } as PendingDetails;
      // The device may have been renamed since: its id is the stable key.
      const device = this.history.sql.deviceById.get(row.device_id)?.name ?? row.device_name;
      return { restoreId: row.restore_id, device, snapshotId: row.snapshot_id, finishedAt: row.finished_at, ...details };
    });
  }

  /**
   * Keeps the restored state. `leftovers`: staging folders on the device that could not be removed
   * entirely (files of another account, the device's login not being root), for the operator to
   * remove as root; the restore is kept all the same.
   */
  async confirm(restoreId: string): Promise<{ leftovers: string[] }> {
    const pending = this.#get(restoreId);
    const device = this.devices.get(pending.device);
    const leftovers = await this.connector.withDevice(pending.device, async (connection) => {
      this.jobs.refuseIfBusyElsewhere(device.id);
      // Every part is marked kept before anything is removed — the databases' journals, then every
      // files source's roots (one command that marks them all, then removes) — and the databases'
      // previous copies go last: from the first removal on, a rollback is refused and recovery
      // finishes the keep, whichever part a cut link left.
      for (const plan of pending.databases) await markDbKept(connection, plan);
      const left = await confirmRoots(connection, pending.files.flatMap((plan) => plan.roots));
      for (const plan of pending.databases) await confirmDbRestore(connection, plan);
      return left;
    });
    this.#forget(restoreId);
    return { leftovers };
  }

  /** Puts the previous state back; `leftovers` as for `confirm`. */
  async rollback(restoreId: string): Promise<{ leftovers: string[] }> {
    const pending = this.#get(restoreId);
    const device = this.devices.get(pending.device);
    const services = device.profile.services;
    const leftovers = await this.connector.withDevice(pending.device, async (connection) => {
      this.jobs.refuseIfBusyElsewhere(device.id);
      const roots = pending.files.flatMap((plan) => plan.roots);
      let left = await refuseIfKept(connection, roots);
      for (const plan of pending.databases) {
        const journal = await dbJournal(connection, plan);
        if (journal === 'kept') throw keptError(plan.target);
        left ||= journal !== null;
      }
      if (!left) {
        // A keep that finished without this console hearing of it (the link dropped at the end).
        this.#forget(restoreId);
        throw new AppError('CONFLICT', `The restore of ${pending.targets.join(', ')} was kept already: none of its previous state is left on the device to roll back to.`);
      }
      if (services) await stopServices(connection, services.stop);
      let removed: string[];
      try {
        for (const plan of [...pending.databases].reverse()) await rollbackDbRestore(connection, plan);
        removed = await rollbackRoots(connection, roots);
      } catch (error) {
        if (services) await startServices(connection, services.start);
        throw error;
      }
      // Rolled back: whatever the start commands do now, nothing of the restore waits any more.
      this.#forget(restoreId);
      if (services) {
        await startServices(connection, services.start).catch((error: unknown) => {
          if (linkLost(connection)) throw error;
          throw new AppError(
            error instanceof AppError ? error.code : 'REMOTE_COMMAND_FAILED',
            `${(error as Error).message.replace(/\.$/, '')}. The rollback itself is done: ${pending.device} holds its previous state again, but its services did not start. Start them by hand (or correct the start command); the next restore, keep or rollback of ${pending.device} runs the start commands again.`,
          );
        });
      }
      return removed;
    });
    this.#forget(restoreId);
    return { leftovers };
  }

  #get(restoreId: string): PendingRestore {
    const pending = this.pending().find((p) => p.restoreId === restoreId);
    if (!pending) throw new AppError('NOT_FOUND', `No restore ${restoreId} is waiting for confirmation`);
    return pending;
  }
}

/**
 * What a restore whose process stopped (killed, the laptop's power) adds to its "interrupted" error:
 * what its device holds, as far as the phase it was in says. Phases move forward and are stored as
 * they begin, and 'swap' begins before anything live is touched.
 */
export function restoreInterruptedNote(row: { kind: string; phase: string | null; title: string }): string {
  if (row.kind !== 'restore') return '';
  const device = row.title.replace(/^Restore /, '');
  const look = 'Look for interrupted restores on the Restore page';
  if (row.phase === null || RESTORE_PHASES.indexOf(row.phase as (typeof RESTORE_PHASES)[number]) < RESTORE_PHASES.indexOf('swap')) {
    return `. Nothing was swapped: ${device} holds its previous state; what was staged beside it is removed by its next restore, or by ${look} (or jetvault rollback --device ${device}).`;
  }
  return `, once its swap had begun: ${device} may hold the restored state, its previous state kept beside it, and its services may be stopped. ${look} (or run jetvault keep or rollback --device ${device}): that puts back what was not swapped completely, starts the services and offers a completed swap to keep or roll back.`;
}

/** A restore whose validation or health check failed, rolled back (`note`: leftNote). */
function validationFailed(problems: string[], note: string): AppError {
  return new AppError('REMOTE_COMMAND_FAILED', `Validation failed after the restore (${problems.join(' | ')}); the device was rolled back to its previous state${note}`);
}

/** What an automatic rollback could not remove, as the error says it (the console's Restore page says the same after a keep or rollback). */
function leftNote(left: string[]): string {
  if (left.length === 0) return '';
  return `. ${left.length === 1 ? 'A folder' : `${left.length} folders`} of the restore could not be removed from the device — ${left.length === 1 ? 'it holds' : 'they hold'} files of another account, and the device's login is not root. Remove ${left.length === 1 ? 'it' : 'them'} as root: ${left.join(', ')}`;
}
