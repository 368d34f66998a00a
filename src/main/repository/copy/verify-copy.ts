/**
 * Reads back what a copy wrote: every pack it stored (whole, SHA-256 against its name, header,
 * every blob decrypted, decompressed and its keyed id recomputed), every snapshot object it wrote
 * (against its name), and every tree of those snapshots, with each blob they name present in the
 * destination's index. The `check --read-data` of the copy's own writes, not of the repository.
 */
import { NAMES } from '../backend/backend';
import { isStoreUnreachable, RepositoryError, throwIfAborted } from '../errors';
import type { IndexedPack } from '../index/index-file';
import { openBlob, packProblem } from '../pack/pack-format';
import type { Repository } from '../repo/repository';
import { loadTree } from '../snapshot/snapshot';
import type { Snapshot } from '../snapshot/snapshot';
import { counted, verb } from '../../../shared/plural';

export interface CopyVerification {
  packs: number;
  blobs: number;
  bytes: number;
  snapshots: number;
  errors: string[];
}

const message = (error: unknown): string => (error as Error)?.message ?? String(error);

/** A destination that stopped answering is not one whose copy is damaged: reading back stops there. */
function unlessStoreGone(error: unknown): void {
  if (isStoreUnreachable(error)) {
    throw new RepositoryError(error.failure, `reading back the copy could not finish, the destination stopped answering (nothing is reported as damaged; run \`jetvault check --read-data\` on it later): ${error.message}`);
  }
}

export async function verifyCopy(
  repo: Repository,
  packs: Iterable<IndexedPack>,
  snapshotIds: string[],
  options: { signal?: AbortSignal; onPack?: (bytes: number) => void } = {},
): Promise<CopyVerification> {
  const out: CopyVerification = { packs: 0, blobs: 0, bytes: 0, snapshots: 0, errors: [] };
  for (const pack of packs) {
    throwIfAborted(options.signal);
    let bytes: Buffer;
    try {
      bytes = await repo.backend.get(NAMES.pack(pack.id));
    } catch (error) {
      unlessStoreGone(error);
      out.errors.push(`pack ${pack.id}: ${message(error)}`);
      continue;
    }
    out.packs++;
    out.bytes += bytes.length;
    if (bytes.length !== pack.size) out.errors.push(`pack ${pack.id}: ${bytes.length} bytes stored, ${pack.size} written`);
    const problem = packProblem(repo.keys.enc, bytes, pack.id);
    if (problem) out.errors.push(`pack ${pack.id}: ${problem} (damaged in transit or at rest)`);
    const salt = Buffer.from(pack.salt, 'hex');
    for (const entry of pack.entries) {
      try {
        openBlob(repo.keys.enc, repo.keys.mac, salt, entry, bytes.subarray(entry.offset, entry.offset + entry.length), pack.id);
        out.blobs++;
      } catch (error) {
        out.errors.push(message(error));
      }
    }
    options.onPack?.(bytes.length);
  }

  const seen = new Set<string>();
  const missing = new Set<string>();
  const walk = async (treeId: string): Promise<void> => {
    if (seen.has(treeId)) return;
    seen.add(treeId);
    throwIfAborted(options.signal);
    if (!repo.index.has(treeId)) {
      missing.add(treeId);
      return;
    }
    const tree = await loadTree(repo, treeId);
    for (const node of tree.nodes) {
      for (const id of node.content ?? []) if (!repo.index.has(id)) missing.add(id);
      if (node.subtree) await walk(node.subtree);
    }
  };
  for (const id of snapshotIds) {
    try {
      const snapshot = await repo.getObject<Snapshot>(NAMES.snapshots, 'snapshot', id);
      await walk(snapshot.tree);
      out.snapshots++;
    } catch (error) {
      unlessStoreGone(error);
      out.errors.push(`snapshot ${id.slice(0, 12)}: ${message(error)}`);
    }
  }
  if (missing.size > 0) out.errors.push(`${counted(missing.size, 'blob')} named by the copied snapshots ${verb(missing.size, 'is', 'are')} not in the destination's index`);
  return out;
}
