/**
 * Reading a snapshot for a restore: the nodes below one of its paths, and a tar stream of chosen
 * files built straight from repository blobs, with each file's SHA-256 computed on the way so the
 * device can prove what it received.
 */
import { createHash } from 'node:crypto';
import { pack } from 'tar-stream';
import type { Pack } from 'tar-stream';
import type { Writable } from 'node:stream';
import type { Repository } from '../repository/repo/repository';
import { loadTree, walkTree } from '../repository/snapshot/snapshot';
import type { TreeNode } from '../repository/snapshot/tree';

export interface SnapshotFile {
  /** Path below the restored root, '/'-separated. */
  path: string;
  node: TreeNode;
}

/** Every node below `root` (a snapshot path such as `opt/myrvm`), with paths relative to it. */
export async function nodesBelow(repo: Repository, tree: string, root: string): Promise<SnapshotFile[]> {
  const out: SnapshotFile[] = [];
  const prefix = `${root}/`;
  for await (const { path, node } of walkTree(repo, tree)) {
    if (path.startsWith(prefix)) out.push({ path: path.slice(prefix.length), node });
  }
  return out;
}

/** The node at `filePath` (a snapshot path such as `opt/myrvm/.env`), or null when it is not there. */
export async function nodeAt(repo: Repository, treeId: string, filePath: string): Promise<TreeNode | null> {
  const parts = filePath.split('/').filter(Boolean);
  let tree = await loadTree(repo, treeId);
  for (const [i, part] of parts.entries()) {
    const node = tree.nodes.find((n) => n.name === part);
    if (!node) return null;
    if (i === parts.length - 1) return node;
    if (node.type !== 'dir' || !node.subtree) return null;
    tree = await loadTree(repo, node.subtree);
  }
  return null;
}

/** Entry streams error when the destination dies; that failure reaches the caller through `hashes`. */
function quiet<T>(entry: T): T {
  (entry as unknown as Writable).on('error', () => undefined);
  return entry;
}

const TYPE: Partial<Record<TreeNode['type'], 'file' | 'directory' | 'symlink'>> = { file: 'file', dir: 'directory', symlink: 'symlink' };

/**
 * A tar stream (GNU tar reads it with -x -p) of `entries`, in order; resolves `hashes` (path →
 * sha256 hex of regular files) once the stream has been fully produced.
 */
export function tarFromSnapshot(repo: Repository, entries: SnapshotFile[], signal?: AbortSignal): { stream: Pack; hashes: Promise<Map<string, string>> } {
  const stream = pack();
  const hashes = (async () => {
    const out = new Map<string, string>();
    // Hard links come back as links: the second path of an inode points to the first one written.
    const firstOfInode = new Map<string, string>();
    for (const { path, node } of entries) {
      if (signal?.aborted) throw new Error('cancelled');
      const type = TYPE[node.type];
      if (!type) continue; // fifos, sockets and devices are not restored onto a device
      const ns = BigInt(node.mtime);
      const header = {
        // The pax mtime carries nanoseconds (the ustar field holds whole seconds only).
        pax: { mtime: `${ns / 1_000_000_000n}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}` },
        name: path,
        type,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        mtime: new Date(Number(ns / 1_000_000n)),
        size: type === 'file' ? node.size : 0,
        ...(type === 'symlink' ? { linkname: node.target ?? '' } : {}),
      };
      const linkTo = type === 'file' && node.inode && (node.links ?? 1) > 1 ? firstOfInode.get(node.inode) : undefined;
      if (linkTo !== undefined) {
        const link = { ...header, type: 'link' as const, size: 0, linkname: linkTo };
        await new Promise<void>((resolve, reject) => quiet(stream.entry(link, (error) => (error ? reject(error) : resolve()))));
        continue;
      }
      if (type === 'file' && node.inode && (node.links ?? 1) > 1) firstOfInode.set(node.inode, path);
      if (type !== 'file') {
        await new Promise<void>((resolve, reject) => quiet(stream.entry(header, (error) => (error ? reject(error) : resolve()))));
        continue;
      }
      const hash = createHash('sha256');
      // tar-stream's entry is a streamx Writable; used here through Node's Writable surface.
      const entry = quiet(stream.entry(header)) as unknown as Writable;
      const done = new Promise<void>((resolve, reject) => {
        entry.once('finish', resolve);
        entry.once('error', reject);
      });
      done.catch(() => undefined); // awaited below; may fail while the producer waits for 'drain'
      for (const id of node.content ?? []) {
        const data = await repo.loadBlob(id);
        hash.update(data);
        if (!entry.write(data)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
      }
      entry.end();
      await done;
      out.set(path, hash.digest('hex'));
    }
    stream.finalize();
    return out;
  })();
  hashes.catch((error: unknown) => stream.destroy(error as Error));
  return { stream, hashes };
}
