/**
 * Copy snapshots from one open repository to another without reading any device again, storing
 * only the blobs the destination lacks. Both repositories have their own encryption keys, so every
 * blob is decrypted from the source and encrypted anew into the destination's packs.
 *
 * Two ways, chosen by the repositories' id keys:
 * - **same ids** (the destination was made with `init --copy-chunker-params-from` the source, or
 *   the other way round): a blob keeps its id, so a blob the destination holds is skipped by id;
 *   trees are copied as they are; blobs are moved as stored (compressed), never re-compressed.
 * - **re-chunk** (independent repositories): each file's content is read from the source and cut,
 *   hashed and compressed again with the destination's chunker and id key (the chunk workers), so
 *   the destination's later backups deduplicate against the copies. Trees are rebuilt with the new
 *   ids. Correct but slower: every byte of a copied snapshot is read and chunked.
 *
 * Each snapshot is finished like a backup (packs, then the index naming them, then the snapshot,
 * the destination's lease checked between): a copy interrupted at any point leaves at worst packs
 * that no index names, which the next copy indexes and reuses. A copied snapshot records its
 * original's id (`copiedFrom`), so the next copy skips it: copies are idempotent and resume.
 */
import { NAMES } from '../backend/backend';
import { asError, RepositoryError, throwIfAborted } from '../errors';
import { Chunker, gearTable } from '../chunker/chunker';
import type { IndexedPack } from '../index/index-file';
import type { Lease } from '../lock/lock';
import { RepositoryLock } from '../lock/lock';
import type { UploadSession } from '../pack/pack-uploader';
import type { ChunkPool, HashedChunk } from '../pipeline/chunk-pool';
import { KNOWN_CHUNK } from '../pipeline/chunk-pool';
import { Slots } from '../pipeline/slots';
import type { Repository } from '../repo/repository';
import { listSnapshots, loadTree, saveSnapshot } from '../snapshot/snapshot';
import type { Snapshot, SnapshotWithId } from '../snapshot/snapshot';
import { decodeTree, encodeTree } from '../snapshot/tree';
import type { TreeNode } from '../snapshot/tree';
import { verifyCopy } from './verify-copy';
import type { CopyVerification } from './verify-copy';

export interface CopyFilter {
  /** Only snapshots of this device (the snapshot's `device`). */
  device?: string;
  /** Only this source: a device source's name (tag `source:NAME`) or the snapshot's kind (`local`, …). */
  source?: string;
  /** Only snapshots taken at or after this time. */
  since?: Date;
}

export type CopyMode = 'same-ids' | 're-chunk';

export interface CopyProgress {
  phase: 'prepare' | 'copy' | 'verify';
  mode: CopyMode;
  snapshotsTotal: number;
  snapshotsDone: number;
  /** File content of the snapshots to copy (their summaries' bytes), and how much was gone through. */
  bytesTotal: number;
  bytesDone: number;
  /** Blobs stored in the destination and their stored size; blobs it already had. */
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
  /** Content read from the source to be stored (as stored; re-chunk: the file bytes chunked again). */
  bytesRead: number;
  /** Packs of this copy read back so far in the verify phase, of how many. */
  packsVerified: number;
  packsToVerify: number;
}

export interface CopyOptions extends CopyFilter {
  signal?: AbortSignal;
  /** Called as work is done (often: throttle before drawing). Receives the whole state. */
  onProgress?: (progress: CopyProgress) => void;
  /** Leases held on the source and destination (`copyBetween` takes them itself). */
  sourceLease?: Lease;
  destinationLease?: Lease;
  /** Read back what was written (default true). */
  verify?: boolean;
  /** Chunk workers for re-chunking (default: up to 4). */
  workers?: number;
}

export interface CopiedSnapshot {
  /** Id in the source, id of the copy in the destination. */
  from: string;
  to: string;
  time: string;
  device: string;
  source: string;
}

export interface CopyResult {
  mode: CopyMode;
  copied: CopiedSnapshot[];
  /** Snapshots matching the filter that the destination already held. */
  skipped: number;
  blobsUploaded: number;
  bytesUploaded: number;
  blobsSkipped: number;
  bytesRead: number;
  /** Packs an interrupted earlier copy had stored, indexed now and reused. */
  packsRecovered: number;
  durationMs: number;
  verification: CopyVerification | null;
  /** False when reading back what was written found damage (listed in verification.errors). */
  ok: boolean;
}

/** Blob reads from the source in flight, and files being re-chunked at once. */
const READS_IN_FLIGHT = 8;
const FILES_IN_FLIGHT = 3;

/** The id a snapshot was first made under, whichever repository holds this copy of it. */
export const originOf = (s: SnapshotWithId): string => s.copiedFrom ?? s.id;

export function matchesFilter(s: Snapshot, filter: CopyFilter): boolean {
  if (filter.device !== undefined && s.device !== filter.device) return false;
  if (filter.source !== undefined && s.source !== filter.source && !s.tags.includes(`source:${filter.source}`)) return false;
  if (filter.since !== undefined && Date.parse(s.time) < filter.since.getTime()) return false;
  return true;
}

/** Copies under shared leases on both repositories (released at the end, whatever happens). */
export async function copyBetween(source: Repository, destination: Repository, options: Omit<CopyOptions, 'sourceLease' | 'destinationLease'> = {}): Promise<CopyResult> {
  if (source.config.id === destination.config.id) throw new RepositoryError('exists', 'the source and the destination are the same repository');
  const lease = (repo: Repository, role: string): Promise<RepositoryLock> =>
    RepositoryLock.acquire(repo, false).catch((error: unknown) => {
      throw error instanceof RepositoryError ? new RepositoryError(error.failure, `${role}: ${error.message}`) : error;
    });
  const sourceLease = await lease(source, 'the source');
  try {
    const destinationLease = await lease(destination, 'the destination');
    try {
      return await copySnapshots(source, destination, { ...options, sourceLease, destinationLease });
    } finally {
      await destinationLease.release();
    }
  } finally {
    await sourceLease.release();
  }
}

export async function copySnapshots(source: Repository, destination: Repository, options: CopyOptions = {}): Promise<CopyResult> {
  const started = Date.now();
  const mode: CopyMode = source.keys.mac.equals(destination.keys.mac) ? 'same-ids' : 're-chunk';
  const progress: CopyProgress = {
    phase: 'prepare',
    mode,
    snapshotsTotal: 0,
    snapshotsDone: 0,
    bytesTotal: 0,
    bytesDone: 0,
    blobsUploaded: 0,
    bytesUploaded: 0,
    blobsSkipped: 0,
    bytesRead: 0,
    packsVerified: 0,
    packsToVerify: 0,
  };
  const report = (): void => options.onProgress?.({ ...progress });
  report();

  await source.refreshIndex();
  await destination.refreshIndex();
  // Packs an interrupted copy (or backup) stored without indexing: indexed now, reused, and verified below.
  const before = new Set(destination.index.packs.keys());
  const packsRecovered = await destination.recoverUnindexedPacks();
  const written = new Map<string, IndexedPack>();
  for (const [id, pack] of destination.index.packs) if (!before.has(id)) written.set(id, pack);

  const all = await listSnapshots(source);
  const byId = new Map(all.map((s) => [s.id, s]));
  const held = await listSnapshots(destination);
  const copies = new Map(held.map((s) => [originOf(s), { id: s.id, tree: s.tree }]));
  const known = new Set(held.map((s) => s.id));
  /** Snapshots another copy (another console) wrote meanwhile: checked before each one, so it is not copied twice. */
  const copiedMeanwhile = async (): Promise<void> => {
    for (const object of await destination.backend.list(NAMES.snapshots)) {
      const id = object.name.slice(NAMES.snapshots.length);
      if (known.has(id)) continue;
      known.add(id);
      let other: SnapshotWithId;
      try {
        other = { ...(await destination.getObject<Snapshot>(NAMES.snapshots, 'snapshot', id)), id };
      } catch (error) {
        if (error instanceof RepositoryError && error.failure === 'not-found') continue; // removed meanwhile (a racing copy, forget)
        throw error;
      }
      const held = copies.get(originOf(other));
      if (!held || id < held.id) copies.set(originOf(other), { id, tree: other.tree });
    }
  };
  const selected = all.filter((s) => matchesFilter(s, options));
  const todo = selected.filter((s) => !copies.has(originOf(s)));
  let skippedMeanwhile = 0;
  progress.snapshotsTotal = todo.length;
  progress.bytesTotal = todo.reduce((n, s) => n + s.summary.bytes, 0);
  progress.phase = 'copy';
  report();

  const copier = new Copier(source, destination, mode, progress, report, options);
  const copied: CopiedSnapshot[] = [];
  try {
    for (const snap of todo) {
      throwIfAborted(options.signal);
      const bytesBefore = progress.bytesDone;
      if (snap !== todo[0]) await copiedMeanwhile();
      if (copies.has(originOf(snap))) {
        skippedMeanwhile++;
        progress.snapshotsDone++;
        progress.bytesDone = bytesBefore + snap.summary.bytes;
        report();
        continue;
      }
      if (mode === 're-chunk') {
        // Like a backup's parent: what an earlier copy of this device re-chunked is looked up, not redone.
        const earlier = [snap.parent ? byId.get(snap.parent) : undefined, all.filter((s) => s.device === snap.device && s.time < snap.time && copies.has(originOf(s))).at(-1)];
        for (const e of earlier) if (e && copies.has(originOf(e))) await copier.seed(e.tree, copies.get(originOf(e))!.tree);
      }
      const tree = await copier.tree(snap.tree);
      await copier.settle();
      await options.destinationLease?.assertHeld();
      for (const pack of await copier.flush()) written.set(pack.id, pack);
      await options.destinationLease?.assertHeld();
      await copiedMeanwhile();
      if (copies.has(originOf(snap))) {
        // Another copy finished this snapshot first: what was stored here is shared with it, not a second copy.
        skippedMeanwhile++;
        progress.snapshotsDone++;
        progress.bytesDone = bytesBefore + snap.summary.bytes;
        report();
        continue;
      }
      const parent = snap.parent ? byId.get(snap.parent) : undefined;
      const parentCopy = parent ? copies.get(originOf(parent))?.id : undefined;
      const { id: _id, parent: _parent, copiedFrom: _from, ...body } = snap;
      const copy: Snapshot = { ...body, tree, ...(parentCopy ? { parent: parentCopy } : {}), copiedFrom: originOf(snap) };
      // Two copies racing past the look above write the same bytes (derived salt), hence one object.
      const id = await saveSnapshot(destination, copy, { derivedSalt: true });
      known.add(id);
      // Should they still differ (another version's encoding, another parent), the one with the smaller
      // id stays and a copy that sees it removes its own.
      await copiedMeanwhile();
      const winner = copies.get(originOf(snap));
      if (winner && winner.id < id) {
        await destination.backend.delete(`${NAMES.snapshots}${id}`);
        skippedMeanwhile++;
        progress.snapshotsDone++;
        progress.bytesDone = bytesBefore + snap.summary.bytes;
        report();
        continue;
      }
      copies.set(originOf(snap), { id, tree });
      copied.push({ from: snap.id, to: id, time: snap.time, device: snap.device, source: snap.tags.find((t) => t.startsWith('source:'))?.slice(7) ?? snap.source });
      progress.snapshotsDone++;
      progress.bytesDone = bytesBefore + snap.summary.bytes;
      report();
    }
  } catch (error) {
    // Packs already stored stay usable: the next copy indexes and reuses them.
    await copier.abandon();
    throw error;
  } finally {
    await copier.close();
  }

  let verification: CopyVerification | null = null;
  if (options.verify !== false) {
    progress.phase = 'verify';
    progress.packsToVerify = written.size;
    report();
    verification = await verifyCopy(
      destination,
      written.values(),
      copied.map((c) => c.to),
      {
        ...(options.signal ? { signal: options.signal } : {}),
        onPack: () => {
          progress.packsVerified++;
          report();
        },
      },
    );
  }
  return {
    mode,
    copied,
    skipped: selected.length - todo.length + skippedMeanwhile,
    blobsUploaded: progress.blobsUploaded,
    bytesUploaded: progress.bytesUploaded,
    blobsSkipped: progress.blobsSkipped,
    bytesRead: progress.bytesRead,
    packsRecovered,
    durationMs: Date.now() - started,
    verification,
    ok: verification === null || verification.errors.length === 0,
  };
}

/** The blob-moving half: one per copy run, shared by its snapshots (trees done once per run). */
class Copier {
  private readonly session: UploadSession;
  /** Source tree id → destination tree id, for trees done (or being done) in this run. */
  private readonly trees = new Map<string, Promise<string>>();
  /** Re-chunk: a file's source chunk list → its destination chunk list. */
  private readonly contents = new Map<string, Promise<string[]>>();
  /** Same ids: data blobs being moved now. */
  private readonly moving = new Map<string, Promise<void>>();
  private readonly reads = new Slots(READS_IN_FLIGHT);
  private readonly files = new Slots(FILES_IN_FLIGHT);
  /** Work started and not yet settled (blob moves, trees, files), and the first failure among it. */
  private running = 0;
  private failure: Error | null = null;
  private readonly idle: (() => void)[] = [];
  /** Chunkers free for the next file (each holds 2 × max chunk bytes). */
  private readonly chunkers: Chunker[] = [];
  private pool: ChunkPool | null = null;
  private readonly gear: Int32Array;

  constructor(
    private readonly src: Repository,
    private readonly dst: Repository,
    private readonly mode: CopyMode,
    private readonly progress: CopyProgress,
    private readonly report: () => void,
    private readonly options: CopyOptions,
  ) {
    this.session = dst.uploader.session();
    this.gear = gearTable(dst.keys.chunker);
  }

  /** The destination id of a source tree, with everything below it stored or scheduled. */
  tree(id: string): Promise<string> {
    let done = this.trees.get(id);
    if (!done) {
      done = this.mode === 'same-ids' ? this.sameIdsTree(id) : this.rechunkTree(id);
      this.track(done);
      this.trees.set(id, done);
    }
    return done;
  }

  /**
   * Re-chunk: records what an earlier copy made of a source tree (its destination tree, and each
   * file's destination chunk list), walking both trees side by side, so unchanged directories and
   * files are not re-chunked again. Both belong to complete snapshots: every blob is indexed.
   */
  async seed(srcTree: string, dstTree: string): Promise<void> {
    if (this.trees.has(srcTree)) return;
    this.trees.set(srcTree, Promise.resolve(dstTree));
    const [mine, theirs] = await Promise.all([loadTree(this.src, srcTree), loadTree(this.dst, dstTree)]);
    const twins = new Map(theirs.nodes.map((n) => [n.name, n]));
    for (const node of mine.nodes) {
      const twin = twins.get(node.name);
      if (!twin || twin.type !== node.type) continue;
      if (node.subtree && twin.subtree) await this.seed(node.subtree, twin.subtree);
      else if (node.content && node.content.length > 0 && twin.content && node.size === twin.size) {
        const key = node.content.join('');
        if (!this.contents.has(key)) this.contents.set(key, Promise.resolve(twin.content));
      }
    }
  }

  /** Waits for every blob move and re-chunk started so far; rethrows the first failure. */
  async settle(): Promise<void> {
    while (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    if (this.failure !== null) throw this.failure;
    if (this.session.failure) throw this.session.failure;
  }

  /** Closes the packs holding this run's blobs, waits until they are stored and indexed. */
  async flush(): Promise<IndexedPack[]> {
    const packs = await this.dst.uploader.flush(this.session);
    this.progress.bytesUploaded = this.session.storedBytes;
    return packs;
  }

  async abandon(): Promise<void> {
    this.failure ??= new Error('the copy ended');
    while (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await this.dst.uploader.abandon(this.session).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.pool) await this.dst.releaseChunkPool(this.pool);
    this.pool = null;
  }

  /** Counts `task` until it settles (memory stays flat however many blobs a snapshot has). */
  private track<T>(task: Promise<T>): void {
    this.running++;
    task.then(
      () => this.untrack(),
      (error: unknown) => {
        this.failure ??= asError(error);
        this.untrack();
      },
    );
  }

  private untrack(): void {
    if (--this.running === 0) for (const wake of this.idle.splice(0)) wake();
  }

  private rawLength(id: string): number {
    return this.src.index.get(id)?.rawLength ?? 0;
  }

  // ---- same ids ------------------------------------------------------------------------------

  private async sameIdsTree(id: string): Promise<string> {
    throwIfAborted(this.options.signal);
    const bytes = await this.src.loadBlob(id);
    const tree = decodeTree(bytes);
    for (const node of tree.nodes) {
      for (const blob of node.content ?? []) await this.moveData(blob);
      if (node.subtree) await this.tree(node.subtree);
    }
    const { id: stored, added } = await this.dst.saveBlob(this.session, 'tree', bytes);
    if (stored !== id) throw new RepositoryError('corrupt', `tree ${id.slice(0, 12)}: its id differs in the destination (the repositories do not share ids)`);
    if (added) this.progress.blobsUploaded++;
    return id;
  }

  /** Schedules one data blob's move unless the destination has it; returns once a read slot is taken. */
  private async moveData(id: string): Promise<void> {
    this.progress.bytesDone += this.rawLength(id);
    if (this.moving.has(id) || this.dst.uploader.reference(this.session, id)) {
      this.progress.blobsSkipped++;
      this.report();
      return;
    }
    await this.reads.acquire();
    const move = (async () => {
      try {
        const blob = await this.src.loadStoredBlob(id);
        this.progress.bytesRead += blob.payload.length;
        if (await this.dst.uploader.addCompressed(this.session, blob.type, Buffer.from(id, 'hex'), blob.codec, blob.payload, blob.rawLength)) this.progress.blobsUploaded++;
        this.progress.bytesUploaded = this.session.storedBytes;
        this.report();
      } finally {
        this.reads.release();
        this.moving.delete(id);
      }
    })();
    this.moving.set(id, move);
    this.track(move);
  }

  // ---- re-chunk ------------------------------------------------------------------------------

  private async rechunkTree(id: string): Promise<string> {
    throwIfAborted(this.options.signal);
    const tree = await loadTree(this.src, id);
    const nodes: Promise<TreeNode>[] = [];
    for (const node of tree.nodes) {
      // Subdirectories are walked at once (not awaited): files of several directories re-chunk together.
      if (node.type === 'dir' && node.subtree) nodes.push(this.tree(node.subtree).then((subtree) => ({ ...node, subtree })));
      else if (node.content && node.content.length > 0) nodes.push((await this.content(node.content)).done.then((ids) => ({ ...node, content: ids })));
      else nodes.push(Promise.resolve(node));
    }
    const { id: stored, added } = await this.dst.saveBlob(this.session, 'tree', encodeTree(await Promise.all(nodes)));
    if (added) this.progress.blobsUploaded++;
    return stored;
  }

  /** Starts re-chunking a file's content (once per distinct content in the run); returns once it started. */
  private async content(ids: string[]): Promise<{ done: Promise<string[]> }> {
    const key = ids.join('');
    let done = this.contents.get(key);
    if (done) {
      // The same content again (another snapshot, a copied file): its chunks are in this run's session.
      for (const id of ids) this.progress.bytesDone += this.rawLength(id);
      return { done };
    }
    await this.files.acquire();
    done = this.rechunk(ids).finally(() => this.files.release());
    this.contents.set(key, done);
    this.track(done);
    return { done };
  }

  private async rechunk(ids: string[]): Promise<string[]> {
    this.pool ??= this.dst.acquireChunkPool(this.options.workers);
    const pool = this.pool;
    if (this.failure !== null) throw this.failure;
    const chunker = this.chunkers.pop() ?? new Chunker(this.gear, this.dst.config.chunker);
    const results: Promise<string>[] = [];
    const submit = async (chunks: Buffer[]): Promise<void> => {
      for (const chunk of chunks) {
        const { result } = await pool.submit(chunk);
        const stored = result.then((c) => this.storeChunk(c));
        stored.catch(() => undefined);
        results.push(stored);
      }
    };
    // Source blobs are read a few ahead of the chunker (a remote source answers with latency).
    const ahead: Promise<Buffer>[] = [];
    let next = 0;
    const fill = (): void => {
      while (next < ids.length && ahead.length < 4) {
        const read = this.src.loadBlob(ids[next++]!);
        read.catch(() => undefined);
        ahead.push(read);
      }
    };
    try {
      fill();
      while (ahead.length > 0) {
        throwIfAborted(this.options.signal);
        const data = await ahead.shift()!;
        fill();
        this.progress.bytesDone += data.length;
        this.progress.bytesRead += data.length;
        await submit(chunker.push(data));
      }
      await submit(chunker.finish());
    } catch (error) {
      chunker.finish();
      this.chunkers.push(chunker);
      await Promise.allSettled(results);
      throw error;
    }
    this.chunkers.push(chunker);
    return Promise.all(results);
  }

  private async storeChunk(chunk: HashedChunk): Promise<string> {
    const id = chunk.id.toString('hex');
    if (chunk.codec === KNOWN_CHUNK) {
      if (!this.dst.uploader.reference(this.session, id)) throw new RepositoryError('corrupt', `blob ${id.slice(0, 12)} was reported present in the destination but is not indexed`);
      this.progress.blobsSkipped++;
      return id;
    }
    if (await this.dst.uploader.addCompressed(this.session, 'data', chunk.id, chunk.codec, chunk.payload, chunk.rawLength)) this.progress.blobsUploaded++;
    else this.progress.blobsSkipped++;
    this.progress.bytesUploaded = this.session.storedBytes;
    this.report();
    return id;
  }
}
