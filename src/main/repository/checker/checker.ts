/**
 * check: structure (every indexed pack exists with a matching header, every snapshot and tree
 * decrypts and verifies, every referenced blob is indexed) and, with readData, the data itself
 * (whole packs read, their SHA-256 name verified, every blob decrypted and its keyed id recomputed).
 * Damage is reported with every snapshot and file it affects.
 */
import { NAMES } from '../backend/backend';
import { isStoreUnreachable, RepositoryError, throwIfAborted } from '../errors';
import type { ProgressFn } from '../errors';
import { openBlob, packProblem } from '../pack/pack-format';
import type { Repository } from '../repo/repository';
import { loadTree } from '../snapshot/snapshot';
import type { Snapshot, SnapshotWithId } from '../snapshot/snapshot';
import { counted, verb } from '../../../shared/plural';

export interface CheckOptions {
  readData?: boolean;
  /** Fraction (0..1] of packs to read when readData is set; 1 reads all. */
  subset?: number;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

export interface AffectedFile {
  snapshot: string;
  time: string;
  path: string;
}

export interface CheckReport {
  ok: boolean;
  errors: string[];
  warnings: string[];
  snapshots: number;
  packs: number;
  packsRead: number;
  blobsRead: number;
  damagedPacks: string[];
  damagedBlobs: string[];
  affected: AffectedFile[];
}

const message = (error: unknown): string => (error as Error).message ?? String(error);

/**
 * A store that stopped answering (or refuses this key) says nothing about the data: the check stops
 * there instead of reporting every pack it could not reach as damage and the snapshots as affected.
 */
function unlessStoreGone(error: unknown): void {
  if (isStoreUnreachable(error)) {
    throw new RepositoryError(error.failure, `check could not finish: the repository stopped answering (what it could not read is not reported as damage): ${error.message}`);
  }
}

/** Every file (and tree) path in `snapshots` that needs one of `blobs`. */
export async function findAffected(repo: Repository, snapshots: SnapshotWithId[], blobs: Set<string>): Promise<AffectedFile[]> {
  const out: AffectedFile[] = [];
  const visit = async (snap: SnapshotWithId, treeId: string, prefix: string): Promise<void> => {
    if (blobs.has(treeId)) {
      out.push({ snapshot: snap.id, time: snap.time, path: `${prefix || '/'} (directory listing)` });
      return;
    }
    let tree;
    try {
      tree = await loadTree(repo, treeId);
    } catch (error) {
      unlessStoreGone(error);
      out.push({ snapshot: snap.id, time: snap.time, path: `${prefix || '/'} (directory listing)` });
      return;
    }
    for (const node of tree.nodes) {
      const path = prefix === '' ? node.name : `${prefix}/${node.name}`;
      if (node.content?.some((id) => blobs.has(id))) out.push({ snapshot: snap.id, time: snap.time, path });
      if (node.subtree) await visit(snap, node.subtree, path);
    }
  };
  for (const snap of snapshots) await visit(snap, snap.tree, '');
  return out;
}

export async function check(repo: Repository, options: CheckOptions = {}): Promise<CheckReport> {
  const { signal, onProgress } = options;
  const report: CheckReport = { ok: true, errors: [], warnings: [], snapshots: 0, packs: 0, packsRead: 0, blobsRead: 0, damagedPacks: [], damagedBlobs: [], affected: [] };
  const damaged = new Set<string>();
  const damagePack = (packId: string, blobs: Iterable<string>): void => {
    if (!report.damagedPacks.includes(packId)) report.damagedPacks.push(packId);
    for (const b of blobs) damaged.add(b);
  };

  await repo.refreshIndex();
  // What this process saved or read is also in memory: the check is of the store.
  repo.dropReadCaches();
  // 1. Packs on disk against the index, headers against the index.
  const onDisk = new Map((await repo.backend.list(NAMES.data)).map((o) => [NAMES.packId(o.name), o.size]));
  report.packs = repo.index.packs.size;
  for (const [id, pack] of repo.index.packs) {
    throwIfAborted(signal);
    const size = onDisk.get(id);
    if (size === undefined) {
      report.errors.push(`pack ${id} is in the index but missing`);
      damagePack(id, pack.entries.map((e) => e.id));
      continue;
    }
    try {
      const header = await repo.readPackHeader(id, size);
      if (size !== pack.size || header.entries.length !== pack.entries.length || header.entries.some((e, i) => e.id !== pack.entries[i]!.id || e.offset !== pack.entries[i]!.offset)) {
        report.errors.push(`pack ${id}: header does not match the index (run \`jetvault rebuild-index\`)`);
      }
    } catch (error) {
      unlessStoreGone(error);
      report.errors.push(`pack ${id}: ${message(error)}`);
      damagePack(id, pack.entries.map((e) => e.id));
    }
  }
  for (const [id, size] of onDisk) {
    if (repo.index.packs.has(id)) continue;
    // A leftover of an interrupted run is reused or removed; a damaged one (rebuild-index left it
    // out) is neither, and its blobs are lost: say so rather than promise what will not happen.
    const damage = await repo.readPackHeader(id, size).then(
      () => null,
      (error: unknown) => (unlessStoreGone(error), message(error)),
    );
    if (damage === null) report.warnings.push(`pack ${id} is not indexed (left by an interrupted run; the next backup reuses it, prune removes it if unused)`);
    else report.warnings.push(`pack ${id} is not indexed and is damaged (${damage}): its blobs cannot be read; a backup of the same files stores them again, and the pack is never reused or pruned (remove it by hand once check is clean)`);
  }

  // 2. Snapshots and trees: decrypt, verify, and check every referenced blob is indexed.
  // One damaged snapshot object must not hide the others: read them one by one.
  const snapshots: SnapshotWithId[] = [];
  for (const object of await repo.backend.list(NAMES.snapshots)) {
    const id = object.name.slice(NAMES.snapshots.length);
    try {
      snapshots.push({ ...(await repo.getObject<Snapshot>(NAMES.snapshots, 'snapshot', id)), id });
    } catch (error) {
      unlessStoreGone(error);
      report.errors.push(`${message(error)} (it cannot be read; \`jetvault forget --damaged\` removes it, and prune is blocked until then)`);
    }
  }
  snapshots.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  report.snapshots = snapshots.length;
  const seenTrees = new Set<string>();
  const missing = new Set<string>();
  const walk = async (treeId: string, where: string): Promise<void> => {
    if (seenTrees.has(treeId)) return;
    seenTrees.add(treeId);
    throwIfAborted(signal);
    if (!repo.index.has(treeId)) {
      missing.add(treeId);
      return;
    }
    try {
      const tree = await loadTree(repo, treeId);
      for (const node of tree.nodes) {
        for (const id of node.content ?? []) if (!repo.index.has(id)) missing.add(id);
        if (node.subtree) await walk(node.subtree, `${where}/${node.name}`);
      }
    } catch (error) {
      unlessStoreGone(error);
      report.errors.push(`tree ${treeId.slice(0, 12)} (${where || '/'}): ${message(error)}`);
      damaged.add(treeId);
    }
  };
  for (const snap of snapshots) await walk(snap.tree, '');
  if (missing.size > 0) report.errors.push(`${counted(missing.size, 'blob')} referenced by snapshots ${verb(missing.size, 'is', 'are')} not in the index`);
  for (const id of missing) damaged.add(id);

  // 3. Data: read whole packs, verify names and every blob.
  if (options.readData) {
    const all = [...repo.index.packs.values()];
    const fraction = Math.min(1, Math.max(0, options.subset ?? 1));
    const chosen = fraction >= 1 ? all : all.filter(() => Math.random() < fraction);
    if (fraction < 1 && chosen.length === 0 && all.length > 0) chosen.push(all[Math.floor(Math.random() * all.length)]!);
    for (const pack of chosen) {
      throwIfAborted(signal);
      if (!onDisk.has(pack.id)) continue;
      report.packsRead++;
      let bytes: Buffer;
      try {
        bytes = await repo.backend.get(NAMES.pack(pack.id));
      } catch (error) {
        unlessStoreGone(error);
        report.errors.push(`pack ${pack.id}: ${message(error)}`);
        damagePack(pack.id, pack.entries.map((e) => e.id));
        continue;
      }
      const problem = packProblem(repo.keys.enc, bytes, pack.id);
      if (problem) report.errors.push(`pack ${pack.id}: ${problem} (damaged on disk)`);
      const salt = Buffer.from(pack.salt, 'hex');
      const bad: string[] = [];
      for (const entry of pack.entries) {
        try {
          openBlob(repo.keys.enc, repo.keys.mac, salt, entry, bytes.subarray(entry.offset, entry.offset + entry.length), pack.id);
          report.blobsRead++;
        } catch (error) {
          report.errors.push(message(error));
          bad.push(entry.id);
        }
      }
      if (bad.length > 0) damagePack(pack.id, bad);
      onProgress?.({ bytes: bytes.length, items: 1 });
    }
  }

  report.damagedBlobs = [...damaged];
  if (damaged.size > 0) report.affected = await findAffected(repo, snapshots, damaged);
  report.ok = report.errors.length === 0;
  return report;
}

