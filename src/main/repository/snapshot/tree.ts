/**
 * Trees: one tree blob per directory, JSON `{ "nodes": [...] }` sorted by name (UTF-16 code unit
 * order), content-addressed like data, so an unchanged directory is stored once across snapshots.
 */
export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface NodeMeta {
  type: NodeType;
  /** Permission bits including setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in nanoseconds since the epoch, as a decimal string (exact). */
  mtime: string;
  /** Change time (ns, decimal string): part of the "unchanged since parent" test, not restored. */
  ctime?: string;
  size: number;
  /** Symlink target. */
  target?: string;
  /** "dev:ino" — hard-link identity (with links > 1) and change detection. */
  inode?: string;
  links?: number;
}

export interface TreeNode extends NodeMeta {
  name: string;
  /** Data blob ids of a file, in order. */
  content?: string[];
  /** Tree blob id of a directory. */
  subtree?: string;
}

export interface Tree {
  nodes: TreeNode[];
}

export const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function encodeTree(nodes: TreeNode[]): Buffer {
  return Buffer.from(JSON.stringify({ nodes: [...nodes].sort(byName) } satisfies Tree), 'utf8');
}

export function decodeTree(data: Buffer): Tree {
  const tree = JSON.parse(data.toString('utf8')) as Tree;
  if (!Array.isArray(tree.nodes)) throw new Error('not a tree');
  return tree;
}
