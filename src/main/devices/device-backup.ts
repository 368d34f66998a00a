/**
 * One backup run of one device: every selected source becomes one snapshot, tagged with the
 * device, the source and the run id, so a run is an app-consistent bundle. It runs as a job
 * (connect → list → transfer → commit) over one SSH connection. If any source fails, the
 * snapshots this run already wrote are removed again: a run is complete or absent.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../../shared/errors';
import { applyDeviceRetention } from '../maintenance/device-retention';
import type { DiskUsage, Source as SourceConfig } from '../../shared/schemas/devices';
import type { JobContext, JobManager, StartedJob } from '../jobs/job-manager';
import { NAMES } from '../repository/backend/backend';
import { isRemoteLocation } from '../repository/backend/open-backend';
import { backup, prepareWrite } from '../repository/archiver/archiver';
import type { Source } from '../repository/archiver/source';
import type { Lease } from '../repository/lock/lock';
import type { Repository } from '../repository/repo/repository';
import { listSnapshots, treeLoader } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { Tree, TreeNode } from '../repository/snapshot/tree';
import type { RepositoryService } from '../services/repository-service';
import type { DeviceConnector } from './device-connector';
import type { DeviceService } from './device-service';
import { disksOfProbe, parsePlatform, platformTags } from './facts';
import { largeFilesBelow } from './large-files';
import { leftoversOf, markedRunner, stopLeftovers } from './leftovers';
import { ResumeStore } from './resume-store';
import { forDatabase } from './sources/db-password';
import { DumpSource, previousCopy } from './sources/dump-source';
import { blobStream } from '../repository/pipeline/blob-stream';
import { Chunker, gearTable } from '../repository/chunker/chunker';
import { CHANGED_WHILE_READ, FileShrank, RemoteFilesSource } from './sources/files-source';
import { contentKey } from './sources/files-source';
import type { KnownFile, ParentChunks } from './sources/files-source';
import { DELTA_MIN_BYTES } from './sources/block-delta';
import { rotateLogs } from './sources/log-rotation';
import type { CommandRunner } from './ssh-connection';
import { chooseCompression, probeDevice } from './wire-compression';
import type { WireCompression } from './wire-compression';

export const BACKUP_PHASES = ['connect', 'list', 'transfer', 'commit'] as const;

type FilesConfig = Extract<SourceConfig, { kind: 'files' }>;

export interface SourceResult {
  source: string;
  kind: SourceConfig['kind'];
  snapshotId: string;
  files: number;
  filesRead: number;
  bytes: number;
  /** Bytes of files and dumps read from the device. */
  bytesTransferred: number;
  /** What crossed the link for them: less than bytesTransferred when the run compressed. */
  bytesOnWire: number;
  bytesAdded: number;
  warnings: number;
  /** Of `warnings`, the files that changed while they were read (kept as read, CHANGED_WHILE_READ): not files that could not be read. */
  changedWhileRead?: number;
  /** What was skipped and why (the first SKIPPED_KEPT of `warnings`): files the login cannot read, files that vanished. */
  skipped?: { path: string; message: string }[];
  /** Bytes of files an interrupted run had stored already, not transferred again. */
  bytesResumed?: number;
  /** Large changed files that crossed as their changed blocks (decision 024), and their sizes. */
  deltaFiles?: number;
  deltaBytes?: number;
  /** Of those, how many against a copy found at another path or on another device (a moved model, a device new to the fleet). */
  knownFiles?: number;
  /**
   * Large changed files that were tried as block deltas but crossed whole, and why — the first
   * WHOLE_KEPT of them; `problem`: something to look at (the device cannot hash blocks, a command
   * or the file's previous copy failed), not merely a file that changed too much.
   */
  sentWhole?: { files: number; bytes: number; examples: { path: string; size: number; reason: string; problem: boolean }[] };
  /** A SQLite database not written since the previous run: its copy, integrity check and row counts were carried forward, nothing copied on the device. */
  unchanged?: true;
  /**
   * A SQLite database whose copy did not pass `PRAGMA integrity_check`: what the check said (its
   * first INTEGRITY_LINES lines). The snapshot holds the database as it was, damage and all — the
   * only copy of what is still readable — but a restore or drill of it is refused.
   */
  integrityCheck?: string;
  /**
   * A MySQL dump that held tables of a non-transactional engine (MyISAM, Aria…): which, and that
   * they were read outside the dump's consistent snapshot. The snapshot is kept.
   */
  inconsistentTables?: string;
  /** Live logs truncated on the device after the run committed (rotateAfterBackup). */
  rotated?: string[];
  /** Why rotation did not happen (the link dropped after the commit): the run is kept all the same. */
  rotationError?: string;
}

/**
 * Sources of one device backed up at the same time (separate exec channels on one connection): a
 * run is mostly waiting on the device (find, pg_dump, sqlite3, tar), so its length is that of its
 * slowest source when they overlap.
 */
export const SOURCES_AT_ONCE = 4;

/**
 * Sources at the same time while some source was never backed up: it has no duration to be ordered
 * by, so the largest may be the one left waiting for a slot — on the benchmark's first backup the
 * app folder (the run's longest source) waited ~70 ms behind four others. Up to this many start
 * together instead (below OpenSSH's default of 10 sessions per connection).
 */
export const FIRST_RUN_AT_ONCE = 6;

/** Skipped files named in a source's result (the job history keeps it; the count is always whole). */
export const SKIPPED_KEPT = 50;

/** Files that crossed whole instead of as block deltas, named in a source's result (the count is always whole). */
export const WHOLE_KEPT = 10;

/** Lines of a failed SQLite integrity check kept in a source's result (the snapshot keeps them all). */
export const INTEGRITY_LINES = 5;

/** A failed integrity check's report as a source's result names it: its first lines, and how many more. */
export function integrityProblem(check: string | null): string | undefined {
  if (check === null || check === 'ok') return undefined;
  const lines = check.split('\n');
  const more = lines.length - INTEGRITY_LINES;
  return `${lines.slice(0, INTEGRITY_LINES).join('\n')}${more > 0 ? `\n… ${more} more line${more === 1 ? '' : 's'}` : ''}`;
}

/**
 * The order sources start in: the slowest last time first (a source never backed up counts as
 * slowest), so the run's longest source is not the one left waiting for a free slot.
 */
export function startOrder(sources: SourceConfig[], parentOf: (name: string) => SnapshotWithId | null): number[] {
  const cost = (i: number) => parentOf(sources[i]!.name)?.summary.durationMs ?? Number.POSITIVE_INFINITY;
  return sources.map((_, i) => i).sort((a, b) => cost(b) - cost(a) || a - b);
}

/** How many sources run at once: SOURCES_AT_ONCE, or FIRST_RUN_AT_ONCE while one was never backed up. */
export function sourcesAtOnce(sources: SourceConfig[], parentOf: (name: string) => SnapshotWithId | null): number {
  const unknown = sources.some((s) => parentOf(s.name) === null);
  return Math.min(unknown ? FIRST_RUN_AT_ONCE : SOURCES_AT_ONCE, sources.length);
}

export interface BackupRunResult {
  runId: string;
  device: string;
  snapshots: SourceResult[];
  bytesTransferred: number;
  bytesOnWire: number;
  /** Whether the run compressed its transfers (a slow link, or the profile says so: wire-compression.ts). */
  wireCompression: boolean;
  bytesAdded: number;
  durationMs: number;
  /**
   * Programs a cut run of this console had left running on the device (blocked on the dead link,
   * e.g. `pg_dump`, `tar`), stopped before this run started its own (leftovers.ts).
   */
  leftoversStopped?: string[];
  /** What the device's retention policy forgot after this run (absent without a policy). */
  retention?: { runsForgotten: number; snapshotsForgotten: number } | { error: string };
}

export const tagOf = {
  device: (name: string) => `device:${name}`,
  source: (name: string) => `source:${name}`,
  run: (id: string) => `run:${id}`,
  runSize: (n: number) => `run-size:${n}`,
  /** A SQLite snapshot whose copy failed PRAGMA integrity_check (SourceResult.integrityCheck). */
  damaged: 'integrity:damaged',
};

/** The latest snapshot of a device's source: the parent of the next one. */
export function latestOf(snapshots: SnapshotWithId[], device: string, source: string): SnapshotWithId | null {
  const mine = snapshots.filter((s) => s.device === device && s.tags.includes(tagOf.source(source)));
  return mine.at(-1) ?? null;
}

/**
 * The parent snapshot's files by path. Its trees are mostly cached, so the walk is CPU only: it
 * starts after the other sources' commands went out and yields every 1,000 nodes, or a 25k-file
 * walk would hold back the dump's first exec and the device's output meanwhile. `load` is shared
 * with the archiver, which compares the same trees again.
 */
async function filesOf(load: (id: string) => Promise<Tree>, parent: SnapshotWithId | null): Promise<Map<string, TreeNode>> {
  const map = new Map<string, TreeNode>();
  if (!parent) return map;
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  await turn();
  let n = 0;
  const visit = async (id: string, prefix: string): Promise<void> => {
    for (const node of (await load(id)).nodes) {
      const path = prefix === '' ? node.name : `${prefix}/${node.name}`;
      if (node.type === 'file') map.set(path, node);
      else if (node.type === 'dir' && node.subtree) await visit(node.subtree, path);
      if (++n % 1000 === 0) await turn();
    }
  };
  await visit(parent.tree, '');
  return map;
}

/** Other devices whose latest copy of a source is searched for large files a run may already hold. */
export const KNOWN_DEVICES = 16;
/** Copies of one size kept per run (distinct contents): more would each cost a hash pass of the repository. */
const KNOWN_PER_SIZE = 4;
/**
 * Large files (DELTA_MIN_BYTES and more) the repository holds for a source, by size: the parent's
 * files at any path, then the latest copy of a source of the same name on up to KNOWN_DEVICES other
 * devices (most recently backed up first). A moved or copied model, a new release folder, a model
 * another device sent already, a device new to the fleet: each then crosses as the blocks that differ
 * from such a copy (files-source.ts, decision 024). Asked once per run, and only when needed.
 */
export async function knownLargeFiles(
  load: (id: string) => Promise<Tree>,
  repoId: string,
  snapshots: SnapshotWithId[],
  device: string,
  source: string,
  parentFiles: Promise<Map<string, TreeNode>>,
): Promise<Map<number, KnownFile[]>> {
  const bySize = new Map<number, KnownFile[]>();
  const seen = new Set<string>();
  const add = (node: TreeNode, foreign: boolean) => {
    if (node.type !== 'file' || node.size < DELTA_MIN_BYTES || !node.content?.length) return;
    const key = contentKey(node.content);
    if (seen.has(key)) return;
    seen.add(key);
    const list = bySize.get(node.size) ?? [];
    if (list.length >= KNOWN_PER_SIZE) return;
    list.push({ node, foreign });
    bySize.set(node.size, list);
  };
  for (const node of (await parentFiles).values()) add(node, false);
  const latest = new Map<string, SnapshotWithId>();
  for (const s of snapshots) if (s.device && s.device !== device && s.tags.includes(tagOf.source(source))) latest.set(s.device, s);
  const others = [...latest.values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : 0)).slice(0, KNOWN_DEVICES);
  // Yields every 1,000 nodes read, as filesOf does, so a long walk does not hold the run's streams.
  let n = 0;
  const turn = () => (++n % 1000 === 0 ? new Promise<void>((resolve) => setImmediate(resolve)) : Promise.resolve());
  for (const other of others) for (const { node } of await largeFilesBelow(load, repoId, other.tree, turn)) add(node, true);
  return bySize;
}

/** Runs given no store of their own (tests, the local backup) keep checkpoints in memory only. */
const inMemory = new ResumeStore(null);

/**
 * The stored files whose every chunk the repository holds now — indexed, or in a pack stored and
 * waiting for its index, as deduplication counts them (a prune, or a pack lost with the link,
 * drops the rest).
 */
function stillStored(repo: Repository, files: Map<string, TreeNode> | undefined): Map<string, TreeNode> | undefined {
  if (!files) return undefined;
  const kept = new Map([...files].filter(([, node]) => (node.content ?? []).every((id) => repo.uploader.has(id))));
  return kept.size > 0 ? kept : undefined;
}

export interface DeviceBackupDeps {
  devices: DeviceService;
  connector: DeviceConnector;
  repository: RepositoryService;
  jobs: JobManager;
}

/** A parent file's chunks as block deltas read them (files-source.ts). */
function parentChunks(repo: Repository): ParentChunks {
  return {
    sizes: (ids) => ids.map((id) => repo.locateBlob(id).rawLength),
    // A few chunks around each change: read on this thread, a few ahead (no workers started for it).
    read: async function* (ids) {
      const stream = blobStream(repo, [...ids], { workers: 0 });
      try {
        for (let i = 0; i < ids.length; i++) yield await stream.next();
      } finally {
        await stream.close();
      }
    },
    hashes: (ids, blockSize) => repo.blockHashes(ids, blockSize),
    chunker: () => new Chunker(gearTable(repo.keys.chunker), repo.config.chunker),
  };
}

export async function runSources(
  repo: Repository,
  connection: CommandRunner,
  /**
   * `onDisks`: the device's disk usage, as the run's first command read it on its way. `resume`:
   * where what a cut run stored is kept for the next (resume-store.ts); in memory by default.
   * `console`: this console's id — its commands are marked on the device, and what a cut run of
   * this console left running there is stopped first (leftovers.ts).
   */
  device: { name: string; sysroot?: string; wireCompression?: WireCompression; onDisks?: (disks: DiskUsage[]) => void; resume?: ResumeStore; marks?: string },
  sources: SourceConfig[],
  ctx: Pick<JobContext, 'phase' | 'advance' | 'setTotals' | 'signal'> & Partial<Pick<JobContext, 'commit'>>,
  lease?: Lease,
  /** `prepareWrite(repo)` started by the caller (while it connected); done here otherwise. */
  prepared?: Promise<void>,
): Promise<BackupRunResult> {
  const started = Date.now();
  const runner = device.marks ? markedRunner(connection, device.marks) : connection;
  const runId = `${new Date().toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  const written: string[] = [];
  const results: SourceResult[] = [];
  /** Per files source: what this run stored so far, and what it took up from an interrupted one. */
  const checkpoints = new Map<string, { stored: Map<string, TreeNode>; resumed: Map<string, TreeNode> | undefined }>();
  const resumeStore = device.resume ?? inMemory;
  // Sources run SOURCES_AT_ONCE at a time on the one connection (separate exec channels; more while
  // one was never backed up), slowest first: a database dump overlaps the file listings and
  // transfers. The first failure stops the others.
  const stop = new AbortController();
  const onAbort = () => stop.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  // Cancelled while the device was connecting: the listener above will never fire.
  if (ctx.signal.aborted) onAbort();
  try {
    ctx.phase('list');
    // The platform it ran on goes with every snapshot: a restore onto another L4T release or board
    // warns. Asked while the repository lists its snapshots (one round trip less on a slow link).
    // The index refresh and leftover-pack recovery run once for every source of the run (each
    // source's backup would otherwise queue its own, ~70 ms for a repository of ~900 MB).
    // The same command, timed, tells whether the link is slow enough to compress on (and the device has gzip).
    // A cancel closes the probe's command at once: a link gone silent under it would hold the run
    // until keepalives gave up. The repository's side is seen through (it may be writing an index).
    // It also stops what a cut run of this console left running on the device (leftovers.ts).
    const leftovers = device.marks ? stopLeftovers(device.marks) : undefined;
    const [all, { text, probe }] = await Promise.all([listSnapshots(repo), probeDevice(runner, device.sysroot, stop.signal, leftovers), prepared ?? prepareWrite(repo)]);
    const stopped = leftoversOf(text);
    const platform = platformTags(parsePlatform(text));
    const disks = disksOfProbe(text);
    if (disks) device.onDisks?.(disks);
    const compress = await chooseCompression(runner, device.wireCompression, probe, stop.signal);
    if (stop.signal.aborted) throw new AppError('CANCELLED', `The backup of ${device.name} was cancelled`);
    // 'list' goes on while the device lists the files sources (a find over 200k files on an SD card
    // takes a minute), and 'transfer' starts with the first bytes that cross — or once every files
    // source is listed and there is nothing to wait for but transfers. It said 'transfer' at 0 B
    // for as long as the device listed.
    let transferring = false;
    const transfer = () => {
      if (transferring) return;
      transferring = true;
      ctx.phase('transfer');
    };
    let unlisted = sources.filter((s) => s.kind === 'files').length;
    const listedOne = () => {
      if (--unlisted <= 0) transfer();
    };
    // Databases only: their dumps start at once.
    if (unlisted === 0) transfer();
    // What the run will transfer, per source: a files source's listing once it is in; a dump's size
    // once it is read, its previous size until then (none before its first backup). The job's total
    // is set once every source's is known, so the bar and ETA never run ahead of the run.
    const expected = sources.map((config): number | null => {
      if (config.kind === 'files') return null;
      return latestOf(all, device.name, config.name)?.summary.bytes ?? null;
    });
    const expectBytes = (index: number, bytes: number) => {
      expected[index] = bytes;
      if (expected.every((b) => b !== null)) ctx.setTotals({ bytes: expected.reduce((sum, b) => sum + b, 0) });
    };
    const runOne = async (config: SourceConfig, index: number): Promise<void> => {
      const parent = latestOf(all, device.name, config.name);
      const trees = treeLoader(repo);
      let transferred = 0;
      /** Bytes read from the device so far, reported as they are stored (live progress). */
      let read = 0;
      let source: Source;
      let dump: DumpSource | null = null;
      let resumedBytes = 0;
      let deltaFiles = 0;
      let deltaBytes = 0;
      let knownFiles = 0;
      const sentWhole: NonNullable<SourceResult['sentWhole']> = { files: 0, bytes: 0, examples: [] };
      const checkpoint = new Map<string, TreeNode>();
      let parentFiles: Promise<Map<string, TreeNode>> | null = null;
      let known: Promise<Map<number, KnownFile[]>> | null = null;
      const filesSource = (config: FilesConfig, resume: Map<string, TreeNode> | undefined): RemoteFilesSource => {
        checkpoints.set(config.name, { stored: checkpoint, resumed: resume });
        parentFiles ??= filesOf(trees, parent);
        return new RemoteFilesSource({
          runner,
          source: config,
          sysroot: device.sysroot,
          // Read from the repository while the device lists its files.
          parentFiles,
          // Only an economy: a copy elsewhere that cannot be read (a damaged tree of another device's
          // snapshot, which a repository check reports) leaves the files to cross whole, as before.
          known: () => (known ??= knownLargeFiles(trees, repo.config.id, all, device.name, config.name, parentFiles!).catch(() => new Map<number, KnownFile[]>())),
          ...(resume ? { resume } : {}),
          compress,
          // Large changed files cross as their changed blocks, the rest read from the parent: always
          // from a repository on this machine, from a remote one only when the device's link is the
          // slower (a compressing run), since the parent's bytes then cross the repository's link.
          ...(compress || !isRemoteLocation(repo.backend.location) ? { parent: parentChunks(repo) } : {}),
          onListed: ({ transferBytes, resumedBytes: resumed }) => {
            transferred = transferBytes;
            resumedBytes = resumed;
            expectBytes(index, transferBytes);
            listedOne();
          },
          // A large file that crossed as its changed blocks: the run's total shrinks as it is known.
          onDelta: (bytes, size, elsewhere) => {
            transferred += bytes;
            expectBytes(index, transferred);
            if (size === null) return;
            deltaFiles++;
            deltaBytes += size;
            if (elsewhere) knownFiles++;
          },
          // A file that could not be read, or grew or shrank since it was listed: the run says what crossed.
          onResized: (bytes) => {
            transferred += bytes;
            expectBytes(index, transferred);
          },
          onWhole: ({ path, size, reason, why }) => {
            sentWhole.files++;
            sentWhole.bytes += size;
            if (sentWhole.examples.length < WHOLE_KEPT) sentWhole.examples.push({ path, size, reason, problem: why !== 'changed' });
          },
        });
      };
      if (config.kind === 'files') {
        source = filesSource(config, stillStored(repo, await resumeStore.get(repo, device.name, config.name)));
      } else {
        // An unchanged SQLite copy is not sent again: the device compares it with the parent's sum.
        source = dump = new DumpSource(forDatabase(runner, config), config, config.kind === 'sqlite' && parent ? await previousCopy(repo, parent, config) : null, { compress });
      }
      const attempt = (source: Source) => backup(repo, source, {
        device: device.name,
        parent,
        signal: stop.signal,
        prepared: true,
        loadTree: trees,
        // A files source's stored files outlive a failed run (a dump is never taken up half-way).
        ...(config.kind === 'files' ? { checkpoint } : {}),
        ...(lease ? { lease } : {}),
        // Read as the snapshot is written, after the dump: a SQLite database found damaged is marked
        // on its snapshot, for `jetvault snapshots` and the catalog as for the run.
        get tags() {
          const tags = [tagOf.device(device.name), tagOf.source(config.name), `kind:${config.kind}`, tagOf.run(runId), tagOf.runSize(sources.length), ...platform];
          return dump && integrityProblem(dump.integrity) !== undefined ? [...tags, tagOf.damaged] : tags;
        },
        // Progress in bytes read from the device, as they are stored: unchanged files are reused, not read.
        onProgress: ({ items, bytes, reused }) => {
          const delta = reused ? 0 : (bytes ?? 0);
          read += delta;
          // Past what was expected of it (a database that grew since its last run, a file that grew
          // since it was listed): the run's total grows with it, or the tray read "16 MiB of 8 KiB".
          const expect = expected[index];
          if (expect !== null && expect !== undefined && read > expect) expectBytes(index, read);
          ctx.advance({ items: items ?? 0, bytes: delta });
          if (delta > 0) transfer();
        },
      });
      let result: Awaited<ReturnType<typeof attempt>>;
      try {
        result = await attempt(source);
      } catch (error) {
        // A file truncated while tar read it (a log rotated mid-backup) would have been stored
        // padded with zeros: the source is read once more, taking up what this attempt stored, so
        // only the files that changed cross again. A second time fails the run, saying so.
        if (!(error instanceof FileShrank) || config.kind !== 'files' || stop.signal.aborted) throw error;
        source = filesSource(config, stillStored(repo, new Map([...(checkpoints.get(config.name)?.resumed ?? []), ...checkpoint])));
        result = await attempt(source);
      }
      written.push(result.id);
      if (dump) transferred = dump.bytesRead;
      // Settled to what the source transferred: the live count also saw the few bytes a dump source
      // writes itself (row counts, integrity check), and files may have changed size since listed.
      if (transferred !== read) ctx.advance({ bytes: transferred - read });
      expectBytes(index, transferred);
      const damaged = integrityProblem(dump?.integrity ?? null);
      const changedWhileRead = result.warnings.filter((w) => w.message === CHANGED_WHILE_READ).length;
      results[index] = {
        source: config.name,
        kind: config.kind,
        snapshotId: result.id,
        files: result.snapshot.summary.files,
        filesRead: result.snapshot.summary.filesRead,
        bytes: dump ? dump.bytes : result.snapshot.summary.bytes,
        bytesTransferred: transferred,
        bytesOnWire: compress ? (source as DumpSource | RemoteFilesSource).wireBytes : transferred,
        bytesAdded: result.snapshot.summary.bytesAdded,
        warnings: result.warnings.length,
        ...(changedWhileRead > 0 ? { changedWhileRead } : {}),
        ...(resumedBytes > 0 ? { bytesResumed: resumedBytes } : {}),
        ...(deltaFiles > 0 ? { deltaFiles, deltaBytes } : {}),
        ...(knownFiles > 0 ? { knownFiles } : {}),
        ...(sentWhole.files > 0 ? { sentWhole } : {}),
        ...(dump?.unchanged ? { unchanged: true as const } : {}),
        ...(damaged !== undefined ? { integrityCheck: damaged } : {}),
        ...(dump?.inconsistent ? { inconsistentTables: dump.inconsistent } : {}),
        ...(result.warnings.length > 0 ? { skipped: result.warnings.slice(0, SKIPPED_KEPT) } : {}),
      };
    };
    const order = startOrder(sources, (name) => latestOf(all, device.name, name));
    let next = 0;
    const state: { failure: Error | null } = { failure: null };
    const worker = async (): Promise<void> => {
      while (next < sources.length && state.failure === null) {
        const index = order[next++]!;
        try {
          await runOne(sources[index]!, index);
        } catch (error) {
          // The first failure is the one to report; the others are the cancellations it caused.
          state.failure ??= error instanceof Error ? error : new AppError('INTERNAL', `Backing up ${sources[index]!.name} failed`);
          stop.abort(error);
        }
      }
    };
    await Promise.all(Array.from({ length: sourcesAtOnce(sources, (name) => latestOf(all, device.name, name)) }, worker));
    if (state.failure !== null) throw state.failure;
    // Every snapshot of the run exists: the run is kept from here on, whatever follows (a cancel is
    // refused, and a failed rotation must not drop snapshots whose logs another rotation emptied).
    ctx.signal.removeEventListener('abort', onAbort);
    // A cancel that came in before this point wins (its snapshots are dropped below); none after it does.
    if (ctx.signal.aborted) throw new AppError('CANCELLED', `The backup of ${device.name} was cancelled`);
    ctx.commit?.();
    // The snapshots hold it all now.
    for (const source of checkpoints.keys()) await resumeStore.delete(repo, device.name, source).catch(() => undefined);
    ctx.phase('commit');
    for (const [i, config] of sources.entries()) {
      if (config.kind !== 'files' || !config.rotateAfterBackup) continue;
      try {
        const snapshot = (await listSnapshots(repo)).find((s) => s.id === results[i]!.snapshotId);
        if (snapshot) results[i]!.rotated = await rotateLogs(repo, snapshot.tree, runner, device.sysroot);
      } catch (error) {
        results[i]!.rotationError = `Logs not rotated (the next run rotates them): ${error instanceof Error ? error.message : String(error)}`;
      }
    }
    return {
      runId,
      device: device.name,
      snapshots: results,
      bytesTransferred: results.reduce((n, r) => n + r.bytesTransferred, 0),
      bytesOnWire: results.reduce((n, r) => n + r.bytesOnWire, 0),
      wireCompression: compress,
      bytesAdded: results.reduce((n, r) => n + r.bytesAdded, 0),
      durationMs: Date.now() - started,
      ...(stopped.length > 0 ? { leftoversStopped: stopped } : {}),
    };
  } catch (error) {
    // A run is complete or absent: drop this run's snapshots (their data stays for the next run),
    // and remember which files each source stored, so the next run does not transfer them again.
    ctx.signal.removeEventListener('abort', onAbort);
    for (const [source, { stored, resumed }] of checkpoints) {
      const kept = new Map([...(resumed ?? []), ...stored]);
      // Kept in memory at least; a disk too full to keep it on does not hide why the run failed.
      if (kept.size > 0) await resumeStore.set(repo, device.name, source, kept).catch(() => undefined);
    }
    for (const id of written) await repo.backend.delete(`${NAMES.snapshots}${id}`).catch(() => undefined);
    throw diskFull(error, repo.backend.location, device.name);
  }
}

/** ENOSPC from the repository's disk as what it means for the run; any other error as it is. */
function diskFull(error: unknown, location: string, device: string): Error {
  if ((error as NodeJS.ErrnoException | null)?.code !== 'ENOSPC') return error instanceof Error ? error : new AppError('INTERNAL', String(error));
  return new AppError('UNAVAILABLE', `The disk holding the repository (${location}) is full: no snapshot of ${device} was written. Free some space or move the repository, then back up again.`);
}

/** Starts a backup job for a device; `sources` limits it to some of the device's sources. */
export function startDeviceBackup(deps: DeviceBackupDeps, name: string, only: string[] = [], actor?: string): StartedJob<BackupRunResult> {
  const device = deps.devices.get(name);
  const sources = only.length > 0 ? device.profile.sources.filter((s) => only.includes(s.name)) : device.profile.sources;
  const unknown = only.filter((n) => !device.profile.sources.some((s) => s.name === n));
  if (unknown.length > 0) throw new AppError('NOT_FOUND', `${name} has no source named ${unknown.map((n) => `"${n}"`).join(', ')}`);
  if (sources.length === 0) throw new AppError('VALIDATION', `${name} has no sources to back up yet: discover or add some first`);
  // A disk too full for the run's lease fails before the run starts, with the run's own message.
  return deps.jobs.start({ kind: 'backup', title: `Back up ${name}`, phases: [...BACKUP_PHASES], deviceId: device.id, ...(actor ? { actor } : {}) }, (ctx) =>
    deps.repository.write(async (repo, lease) => {
      // A database dump is always read, so the pool's first chunk worker starts (~100 ms of CPU)
      // while the device connects, not when the first bytes arrive; the sources' archivers share
      // this pool, which starts its second worker only if the work asks for it (a first backup's
      // stream, not an incremental's dump). A files-only run starts the pool only if a file changed.
      const pool = sources.some((s) => s.kind !== 'files') ? repo.acquireChunkPool() : null;
      // The repository's side of the run's start overlaps the connection too.
      const prepared = prepareWrite(repo);
      prepared.catch(() => undefined); // awaited in runSources; a failed connection leaves it alone
      let result: BackupRunResult;
      try {
        result = await deps.connector.withDevice(name, (connection) => {
          ctx.phase('connect');
          const onDisks = (disks: DiskUsage[]) => {
            try {
              deps.devices.setDisks(name, disks);
            } catch {
              // Removed while it was backed up: there is nothing left to update.
            }
          };
          return runSources(
            repo,
            connection,
            { name, sysroot: device.profile.sysroot, wireCompression: device.profile.wireCompression, onDisks, resume: deps.repository.resume, marks: deps.devices.marksScope(name) },
            sources,
            ctx,
            lease,
            prepared,
          );
        }, ctx.signal);
      } finally {
        if (pool) await repo.releaseChunkPool(pool);
      }
      // Only after the run is committed: a failed run never costs an older one.
      const policy = device.profile.retention;
      if (policy && Object.keys(policy).length > 0) {
        // The run is kept either way: a retention that fails (the store went away) is said, and the
        // next run applies it.
        result.retention = await applyDeviceRetention(repo, name, policy).then(
          ({ runsForgotten, snapshotsForgotten }) => ({ runsForgotten, snapshotsForgotten }),
          (error: unknown) => ({ error: `Retention not applied (the next run applies it): ${error instanceof Error ? error.message : String(error)}` }),
        );
      }
      return result;
    }, ctx.signal).catch((error: unknown) => Promise.reject(diskFull(error, deps.repository.location(), name))),
  );
}
