/**
 * Where on a device a restore may find a copy of a large file it would otherwise send whole
 * (decision 025, "Copies at other paths"): the large files the device held at its last backup of
 * each files source, by size. A restore into another folder, a model an update moved or renamed, a
 * release folder beside the app: the device stages the file from that copy plus the blocks that
 * differ (block-patch.ts), and the staged copy is proved equal to the snapshot before it counts.
 *
 * What a backup saw may have changed since: each copy is hashed on the device before it is used.
 */
import path from 'node:path';
import type { Repository } from '../repository/repo/repository';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import { loadTree, sourceOf, tagValue } from '../repository/snapshot/snapshot';
import type { TreeNode } from '../repository/snapshot/tree';
import { largeFilesBelow } from '../devices/large-files';
import { contentKey } from '../devices/sources/files-source';

/** A large file on the device as its last backup saw it: where (absolute), and its content then. */
export interface DeviceCopy {
  path: string;
  /** The chunk ids it was stored as (`contentKey`): equal to a restored file's means no block should differ. */
  content: string;
}

/** Copies of one size kept: each one tried costs a read of the file on the device. */
const PER_SIZE = 8;

/**
 * The large files (DELTA_MIN_BYTES and more) of the latest snapshot of each files source of
 * `device`, by size, as absolute paths below `sysroot`. Walks trees (remembered per tree id, shared
 * with backups: large-files.ts) and yields every 1,000 nodes, as a backup's walks do.
 */
export async function largeFilesOnDevice(repo: Repository, snapshots: readonly SnapshotWithId[], device: string, sysroot = '/'): Promise<Map<number, DeviceCopy[]>> {
  const latest = new Map<string, SnapshotWithId>();
  for (const s of snapshots) {
    if (s.device !== device || (tagValue(s.tags, 'kind') ?? 'files') !== 'files') continue;
    latest.set(sourceOf(s), s);
  }
  const bySize = new Map<number, DeviceCopy[]>();
  const seen = new Set<string>();
  let n = 0;
  const turn = () => (++n % 1000 === 0 ? new Promise<void>((resolve) => setImmediate(resolve)) : Promise.resolve());
  const add = (at: string, node: TreeNode) => {
    const absolute = path.posix.join(sysroot || '/', at);
    if (seen.has(absolute)) return; // two sources that hold the same folder
    seen.add(absolute);
    const list = bySize.get(node.size) ?? [];
    if (list.length >= PER_SIZE) return;
    list.push({ path: absolute, content: contentKey(node.content ?? []) });
    bySize.set(node.size, list);
  };
  const load = (id: string) => loadTree(repo, id);
  for (const snapshot of latest.values()) {
    // A name that is not one path component (a snapshot from a compromised device) names nothing here.
    for (const { path: below, node, plain } of await largeFilesBelow(load, repo.config.id, snapshot.tree, turn)) if (plain) add(below, node);
  }
  return bySize;
}
