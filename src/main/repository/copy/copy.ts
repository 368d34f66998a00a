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
import { isDamage, RepositoryError, throwIfAborted } from '../errors';
import type { IndexedPack } from '../index/index-file';
import type { Lease } from '../lock/lock';
import { readLease, releasing, RepositoryLock } from '../lock/lock';
import type { Repository } from '../repo/repository';
import { listSnapshots, saveSnapshot, sourceOf } from '../snapshot/snapshot';
import type { Snapshot, SnapshotWithId } from '../snapshot/snapshot';
import { Copier } from './copier';
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

/** A source snapshot whose data could not be read (damaged, missing): not copied, the others were. */
export interface UncopiedSnapshot {
  id: string;
  time: string;
  device: string;
  source: string;
  why: string;
}

export interface CopyResult {
  mode: CopyMode;
  copied: CopiedSnapshot[];
  /** Snapshots left out because their data in the source is damaged (`check --read-data` there names it). */
  damaged: UncopiedSnapshot[];
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
  /** False when a snapshot was left out as damaged, or reading back what was written found damage (listed in verification.errors). */
  ok: boolean;
}

/** The id a snapshot was first made under, whichever repository holds this copy of it. */
export const originOf = (s: SnapshotWithId): string => s.copiedFrom ?? s.id;



export function matchesFilter(s: Snapshot, filter: CopyFilter): boolean {
  if (filter.device !== undefined && s.device !== filter.device) return false;
  if (filter.source !== undefined && s.source !== filter.source && !s.tags.includes(`source:${filter.source}`)) return false;
  if (filter.since !== undefined && Date.parse(s.time) < filter.since.getTime()) return false;
  return true;
}

/** A shared lease whose refusal names the repository it is about (`the destination: repository is locked …`). */
export function sharedLease(repo: Repository, role: string): Promise<RepositoryLock> {
  return RepositoryLock.acquire(repo, false).catch((error: unknown) => {
    throw error instanceof RepositoryError ? new RepositoryError(error.failure, `${role}: ${error.message}`) : error;
  });
}

/** Copies under shared leases on both repositories (released at the end, whatever happens). */
export async function copyBetween(
  source: Repository,
  destination: Repository,
  options: Omit<CopyOptions, 'sourceLease' | 'destinationLease'> & { /** The source is read-only to us: no lease on it could be taken. */ onReadOnlySource?: () => void } = {},
): Promise<CopyResult> {
  if (source.config.id === destination.config.id) throw new RepositoryError('exists', 'the source and the destination are the same repository');
  // The source is only read: an offsite disk mounted write-protected can be copied back from.
  const sourceLease = await readLease(source).catch((error: unknown) => {
    throw error instanceof RepositoryError ? new RepositoryError(error.failure, `the source: ${error.message}`) : error;
  });
  if (!sourceLease) options.onReadOnlySource?.();
  return releasing(sourceLease ?? { release: () => Promise.resolve() }, async () => {
    const destinationLease = await sharedLease(destination, 'the destination');
    return releasing(destinationLease, () => copySnapshots(source, destination, { ...options, ...(sourceLease ? { sourceLease } : {}), destinationLease }));
  });
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

  let copier = new Copier(source, destination, mode, progress, report, options);
  const copied: CopiedSnapshot[] = [];
  const damaged: UncopiedSnapshot[] = [];
  try {
    for (const snap of todo) {
      throwIfAborted(options.signal);
      const bytesBefore = progress.bytesDone;
      if (snap !== todo[0]) await copiedMeanwhile();
      const done = (): void => {
        progress.snapshotsDone++;
        progress.bytesDone = bytesBefore + snap.summary.bytes;
        report();
      };
      if (copies.has(originOf(snap))) {
        skippedMeanwhile++;
        done();
        continue;
      }
      if (mode === 're-chunk') {
        // Like a backup's parent: what an earlier copy of this device re-chunked is looked up, not redone.
        const earlier = [snap.parent ? byId.get(snap.parent) : undefined, all.filter((s) => s.device === snap.device && s.time < snap.time && copies.has(originOf(s))).at(-1)];
        for (const e of earlier) if (e && copies.has(originOf(e))) await copier.seed(e.tree, copies.get(originOf(e))!.tree);
      }
      let tree: string;
      try {
        tree = await copier.tree(snap.tree);
        await copier.settle();
      } catch (error) {
        // One damaged snapshot (bit rot in an old pack) must not keep every later one from the offsite
        // copy: it is left out and named; what its blobs already stored stays for the others (a pack
        // still being written is indexed by the next flush, as for a failed backup).
        if (!isDamage(error) || options.signal?.aborted) throw error;
        damaged.push({ id: snap.id, time: snap.time, device: snap.device, source: sourceOf(snap), why: error.message });
        await copier.abandon();
        await copier.close();
        copier = new Copier(source, destination, mode, progress, report, options);
        done();
        continue;
      }
      await options.destinationLease?.assertHeld();
      for (const pack of await copier.flush()) written.set(pack.id, pack);
      await options.destinationLease?.assertHeld();
      await copiedMeanwhile();
      if (copies.has(originOf(snap))) {
        // Another copy finished this snapshot first: what was stored here is shared with it, not a second copy.
        skippedMeanwhile++;
        done();
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
        done();
        continue;
      }
      copies.set(originOf(snap), { id, tree });
      copied.push({ from: snap.id, to: id, time: snap.time, device: snap.device, source: sourceOf(snap) });
      done();
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
    damaged,
    skipped: selected.length - todo.length + skippedMeanwhile,
    blobsUploaded: progress.blobsUploaded,
    bytesUploaded: progress.bytesUploaded,
    blobsSkipped: progress.blobsSkipped,
    bytesRead: progress.bytesRead,
    packsRecovered,
    durationMs: Date.now() - started,
    verification,
    ok: damaged.length === 0 && (verification === null || verification.errors.length === 0),
  };
}
