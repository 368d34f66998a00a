/**
 * prune (under the exclusive lock): find every blob reachable from a snapshot, delete packs with
 * none, and repack packs that are mostly garbage. Crash-safe order: new packs → one new index
 * covering every pack that stays → delete the old index objects → delete the old packs. At every
 * instant each index object names only packs that exist, so a crash leaves a consistent repository.
 */
import { NAMES } from '../backend/backend';
import { isDamage, RepositoryError, throwIfAborted } from '../errors';
import type { ProgressFn } from '../errors';
import type { IndexedPack } from '../index/index-file';
import type { Lease } from '../lock/lock';
import { PackUploader } from '../pack/pack-uploader';
import type { Repository } from '../repo/repository';
import { listSnapshots, loadTree } from '../snapshot/snapshot';

export interface PruneOptions {
  dryRun?: boolean;
  /** Repack a pack when more than this fraction of its bytes is unused (default 0.2). */
  maxUnused?: number;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /**
   * The exclusive lease prune runs under: checked before the new index is written and every few
   * seconds while packs are deleted, so a prune whose lease was broken ("Break lease", `unlock
   * --remove-all`) — others may be backing up into the repository now — stops deleting.
   */
  lease?: Lease;
}

/** How often the deletions re-check the lease (each check reads and rewrites it). */
const LEASE_CHECK_MS = 2_000;

export interface PruneReport {
  packsBefore: number;
  packsDeleted: number;
  packsRepacked: number;
  packsWritten: number;
  bytesBefore: number;
  bytesFreed: number;
  blobsUsed: number;
  blobsRemoved: number;
  /**
   * Packs that were to be repacked but hold damaged data a snapshot needs: kept as they are (their
   * readable blobs stay where they are), the rest pruned. `check --read-data` names what they affect.
   */
  damagedPacks: string[];
  /**
   * Packs that were to be repacked but are kept as they are because the repository's disk had no
   * room for the rewritten ones (ENOSPC): the rest is pruned, and a re-run, with the room freed, repacks them.
   */
  packsNotRepacked: number;
}

export async function usedBlobs(repo: Repository, signal?: AbortSignal): Promise<Set<string>> {
  const used = new Set<string>();
  const walk = async (treeId: string): Promise<void> => {
    if (used.has(treeId)) return;
    throwIfAborted(signal);
    used.add(treeId);
    for (const node of (await loadTree(repo, treeId)).nodes) {
      for (const id of node.content ?? []) used.add(id);
      if (node.subtree) await walk(node.subtree);
    }
  };
  // Strict: a damaged snapshot's data cannot be told apart from garbage, so prune stops.
  for (const snap of await listSnapshots(repo, { strict: true })) await walk(snap.tree);
  return used;
}

export async function prune(repo: Repository, options: PruneOptions = {}): Promise<PruneReport> {
  const { signal, onProgress } = options;
  const maxUnused = options.maxUnused ?? 0.2;
  await repo.refreshIndex();
  await repo.recoverUnindexedPacks();
  // Prune runs alone (exclusive lease): staged packs of interrupted backups are garbage now.
  if (!options.dryRun) await repo.backend.removeStaged?.();
  const used = await usedBlobs(repo, signal);
  const keep: IndexedPack[] = [];
  const repack: IndexedPack[] = [];
  const drop: IndexedPack[] = [];
  let bytesBefore = 0;
  let blobsRemoved = 0;
  for (const pack of repo.index.packs.values()) {
    bytesBefore += pack.size;
    // A blob counts as used only in the pack the index resolves it to; other copies are garbage.
    const live = pack.entries.filter((e) => used.has(e.id) && repo.index.get(e.id)?.pack === pack.id);
    // Unused is what the blobs no one needs take: the pack's header and prefix are no garbage (a
    // small tree pack is mostly header, and was rewritten by every prune, freeing nothing).
    const unusedBytes = pack.entries.reduce((n, e) => n + e.length, 0) - live.reduce((n, e) => n + e.length, 0);
    blobsRemoved += pack.entries.length - live.length;
    if (live.length === 0) drop.push(pack);
    else if (unusedBytes > 0 && unusedBytes / pack.size > maxUnused) repack.push(pack);
    else keep.push(pack);
  }
  const report: PruneReport = {
    packsBefore: repo.index.packs.size,
    packsDeleted: drop.length + repack.length,
    packsRepacked: repack.length,
    packsWritten: 0,
    bytesBefore,
    bytesFreed: 0,
    blobsUsed: used.size,
    blobsRemoved,
    damagedPacks: [],
    packsNotRepacked: 0,
  };
  if (options.dryRun) {
    report.bytesFreed = drop.reduce((n, p) => n + p.size, 0);
    return report;
  }
  // The repacker knows only what it wrote itself: the blobs it copies are still indexed in old packs.
  // Its packs are indexed below, in the one index that replaces all others.
  const uploader = new PackUploader(repo.backend, repo.keys.enc, repo.config.packSize, () => Promise.resolve(), () => false);
  const session = uploader.session();
  const repacked: IndexedPack[] = [];
  let written: IndexedPack[];
  try {
    for (const pack of repack) {
      // A pack's used blobs are all read before any is copied: one that is damaged keeps the whole
      // pack as it is (a copy without that blob would lose it silently, and failing here stopped every
      // prune, on every re-run, at the same blob). Its other used blobs stay readable where they are.
      const blobs: { entry: IndexedPack['entries'][number]; data: Buffer }[] = [];
      let damaged = false;
      for (const entry of pack.entries) {
        throwIfAborted(signal);
        if (!used.has(entry.id) || repo.index.get(entry.id)?.pack !== pack.id) continue;
        try {
          blobs.push({ entry, data: await repo.loadBlob(entry.id) });
        } catch (error) {
          if (!isDamage(error)) throw error;
          damaged = true;
          break;
        }
      }
      if (damaged) {
        report.damagedPacks.push(pack.id);
        report.blobsRemoved -= pack.entries.filter((e) => !used.has(e.id) || repo.index.get(e.id)?.pack !== pack.id).length;
        keep.push(pack);
        continue;
      }
      for (const { entry, data } of blobs) {
        await uploader.add(session, entry.type, Buffer.from(entry.id, 'hex'), data);
        onProgress?.({ bytes: data.length });
      }
      repacked.push(pack);
    }
    written = await uploader.flush(session);
  } catch (error) {
    // A disk too full for the rewritten packs: what needs no room (packs no snapshot needs) is still
    // freed, and the packs to repack stay as they are — failing here freed nothing, on every re-run.
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
    await uploader.abandon(session);
    // What the repacker stored before the disk filled up is no pack the index names (prune runs alone).
    for (const object of await repo.backend.list(NAMES.data)) if (!repo.index.packs.has(NAMES.packId(object.name))) await repo.backend.delete(object.name);
    // Every pack that was to be repacked stays, those reached and those not yet (damaged ones are kept already).
    const kept = repack.filter((p) => !report.damagedPacks.includes(p.id));
    keep.push(...kept);
    report.packsNotRepacked = kept.length;
    report.blobsRemoved -= kept.reduce((n, p) => n + p.entries.filter((e) => !used.has(e.id) || repo.index.get(e.id)?.pack !== p.id).length, 0);
    repacked.length = 0;
    written = [];
  }
  report.packsRepacked = repacked.length;
  report.packsDeleted = drop.length + repacked.length;
  report.packsWritten = written.length;
  let checkedAt = 0;
  const stillHeld = async (phase: 'before' | 'during'): Promise<void> => {
    if (!options.lease || (phase === 'during' && Date.now() - checkedAt < LEASE_CHECK_MS)) return;
    try {
      await options.lease.assertHeld();
    } catch (error) {
      if (!(error instanceof RepositoryError) || error.failure !== 'locked') throw error;
      const why = 'its exclusive lease was removed (a "Break lease" in a console, or `jetvault unlock --remove-all`), so another console may be backing up into the repository now';
      throw new RepositoryError(
        'locked',
        phase === 'before'
          ? `prune stopped before deleting anything: ${why}. Nothing was deleted; run prune again once that is done`
          : `prune stopped deleting packs: ${why}. Run prune again once that is done, and \`jetvault check\` after it`,
      );
    }
    checkedAt = Date.now();
  };
  await stillHeld('before');
  const oldIndexes = [...repo.indexIds];
  await repo.writeIndex([...keep, ...written], oldIndexes);
  for (const id of oldIndexes) await repo.backend.delete(`${NAMES.index}${id}`);
  repo.indexIds = repo.indexIds.filter((id) => !oldIndexes.includes(id));
  repo.index.replace([...keep, ...written]);
  for (const pack of [...drop, ...repacked]) {
    await stillHeld('during');
    await repo.backend.delete(NAMES.pack(pack.id));
    report.bytesFreed += pack.size;
    onProgress?.({ items: 1 });
  }
  report.bytesFreed -= written.reduce((n, p) => n + p.size, 0);
  return report;
}
