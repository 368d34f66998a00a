/**
 * The large files (DELTA_MIN_BYTES and more) below each folder of the snapshots this console has
 * walked, by repository and tree id, with their paths below it. A tree is content-addressed, so a
 * folder unchanged since another snapshot has the same id and is not read again: a device's next
 * snapshot costs the walk of what changed in it. Asked where a large file may be held already: a
 * backup's copies in other devices' snapshots (decision 024), a restore's copies on the device
 * (decision 025). Without it a backup with one new large file read the whole trees of up to 16 other
 * devices (a root file system each).
 */
import { isPlainName } from '../repository/snapshot/tree';
import type { Tree, TreeNode } from '../repository/snapshot/tree';
import { DELTA_MIN_BYTES } from './sources/block-delta';

export interface LargeFile {
  /** Below the walked folder, '/'-separated. */
  path: string;
  node: TreeNode;
  /** Every name on the way is one path component (not `..`, no `/`: a snapshot from a compromised device may hold others). */
  plain: boolean;
}

/** Folders whose large files are remembered; past this the memory starts over. */
const REMEMBERED_MAX = 200_000;
const remembered = new Map<string, readonly LargeFile[]>();

/** The large files below tree `treeId` of repository `repoId`; `turn` is awaited after every node (a caller's yield). */
export async function largeFilesBelow(load: (id: string) => Promise<Tree>, repoId: string, treeId: string, turn: () => Promise<void>): Promise<readonly LargeFile[]> {
  const key = `${repoId}:${treeId}`;
  const known = remembered.get(key);
  if (known) return known;
  const found: LargeFile[] = [];
  for (const node of (await load(treeId)).nodes) {
    const plain = isPlainName(node.name);
    if (node.type === 'file' && node.size >= DELTA_MIN_BYTES && (node.content?.length ?? 0) > 0) found.push({ path: node.name, node, plain });
    else if (node.type === 'dir' && node.subtree) for (const f of await largeFilesBelow(load, repoId, node.subtree, turn)) found.push({ path: `${node.name}/${f.path}`, node: f.node, plain: plain && f.plain });
    await turn();
  }
  if (remembered.size >= REMEMBERED_MAX) remembered.clear();
  remembered.set(key, found);
  return found;
}
