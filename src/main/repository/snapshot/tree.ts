/**
 * Trees: one tree blob per directory, JSON `{ "nodes": [...] }` sorted by name (UTF-16 code unit
 * order), content-addressed like data, so an unchanged directory is stored once across snapshots.
 * A name or symlink target that is not valid UTF-8 is held in memory with its stray bytes as lone
 * surrogates (names.ts) and stored with its exact bytes beside it (`rawName`, `rawTarget`).
 */
import { decodeName, encodeName, isRawName } from './names';

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

/**
 * Whether a node's name is one path component, as every file system gives them. A snapshot from a
 * compromised device (its listing made up `..` components, before listings were checked) or a
 * damaged tree could hold others, which would name paths outside the folder a restore writes.
 */
export function isPlainName(name: unknown): name is string {
  return typeof name === 'string' && name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

export const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** How a node is stored: plus the exact bytes of a name or target that is not valid UTF-8 (base64). */
type StoredNode = TreeNode & { rawName?: string; rawTarget?: string };

function toStored(node: TreeNode): StoredNode {
  const rawName = isRawName(node.name);
  const rawTarget = node.target !== undefined && isRawName(node.target);
  if (!rawName && !rawTarget) return node;
  return {
    ...node,
    ...(rawName ? { rawName: encodeName(node.name).toString('base64') } : {}),
    ...(rawTarget ? { rawTarget: encodeName(node.target!).toString('base64') } : {}),
  };
}

function fromStored(node: StoredNode): TreeNode {
  if (node.rawName === undefined && node.rawTarget === undefined) return node;
  const { rawName, rawTarget, ...rest } = node;
  return {
    ...rest,
    ...(rawName !== undefined ? { name: decodeName(Buffer.from(rawName, 'base64')) } : {}),
    ...(rawTarget !== undefined ? { target: decodeName(Buffer.from(rawTarget, 'base64')) } : {}),
  };
}

export function encodeTree(nodes: TreeNode[]): Buffer {
  return Buffer.from(JSON.stringify({ nodes: [...nodes].sort(byName).map(toStored) }), 'utf8');
}

export function decodeTree(data: Buffer): Tree {
  const tree = JSON.parse(data.toString('utf8')) as { nodes: StoredNode[] };
  if (!Array.isArray(tree.nodes)) throw new Error('not a tree');
  return { nodes: tree.nodes.map(fromStored) };
}
