/**
 * Snapshot objects (snapshots/<sha256>): sealed JSON naming the root tree and describing the run.
 * The snapshot id is the SHA-256 of the stored object; refs are a full id, a unique prefix, or "latest".
 */
import { hostname, userInfo } from 'node:os';
import { NAMES } from '../backend/backend';
import { RepositoryError } from '../errors';
import type { Repository } from '../repo/repository';
import { decodeTree } from './tree';
import type { Tree, TreeNode } from './tree';

export interface SnapshotSummary {
  files: number;
  dirs: number;
  /** Bytes of file content in the snapshot. */
  bytes: number;
  /** Files read this run (the others reused the parent's chunk lists). */
  filesRead: number;
  /** New blobs and their stored size (after compression and encryption). */
  blobsAdded: number;
  bytesAdded: number;
  /** Files that could not be read; the snapshot is still valid for everything else. */
  errors: number;
  durationMs: number;
}

export interface Snapshot {
  version: 1;
  time: string;
  tree: string;
  paths: string[];
  hostname: string;
  username: string;
  /** The device this came from (fleet device name), or the host for local backups. */
  device: string;
  /** What produced it: "local" directory walk, later "ssh-tar", "pg_dump" ... */
  source: string;
  tags: string[];
  parent?: string;
  /**
   * Set on a copy (`jetvault copy`): the id of the original snapshot in the repository where it was
   * first made (a copy of a copy names the same original), so a copy is made once per repository.
   */
  copiedFrom?: string;
  summary: SnapshotSummary;
}

export interface SnapshotWithId extends Snapshot {
  id: string;
}

/** The value of a snapshot's `key:value` tag (a device run tags `device:`, `source:`, `kind:`, `run:`…), or null. */
export const tagValue = (tags: readonly string[], key: string): string | null => tags.find((t) => t.startsWith(`${key}:`))?.slice(key.length + 1) ?? null;

/** The device source a snapshot is of (its `source:` tag), or what made it where it has none (a local backup). */
export const sourceOf = (s: Pick<Snapshot, 'tags' | 'source'>): string => tagValue(s.tags, 'source') ?? s.source;

export function newSnapshot(fields: Partial<Snapshot> & Pick<Snapshot, 'tree' | 'paths' | 'summary'>): Snapshot {
  return {
    version: 1,
    time: new Date().toISOString(),
    hostname: hostname(),
    username: userInfo().username,
    device: hostname(),
    source: 'local',
    tags: [],
    ...fields,
  };
}

/** `derivedSalt`: the object's bytes depend only on its content (copies: one object per copied snapshot). */
export async function saveSnapshot(repo: Repository, snapshot: Snapshot, options: { derivedSalt?: boolean } = {}): Promise<string> {
  return repo.putObject(NAMES.snapshots, 'snapshot', snapshot, options);
}

/**
 * Every snapshot, oldest first. Objects are listed each time (another process may have added or
 * forgotten some); their contents are read once per open Repository, up to 8 at a time, so the
 * console's listing before each backup does not re-read a long history.
 */
/**
 * Every snapshot, oldest first. A damaged snapshot object is left out (and kept in
 * `repo.damagedSnapshots`), so one bad object does not stop backups, restores and copies of the
 * others; with `strict` (prune: it must know everything each snapshot uses) it is an error.
 */
export async function listSnapshots(repo: Repository, options: { strict?: boolean } = {}): Promise<SnapshotWithId[]> {
  let ids = (await repo.backend.list(NAMES.snapshots)).map((object) => object.name.slice(NAMES.snapshots.length));
  const cache = repo.snapshotCache as Map<string, Snapshot>;
  const listed = new Set(ids);
  for (const id of cache.keys()) if (!listed.has(id)) cache.delete(id);
  const missing = ids.filter((id) => !cache.has(id));
  repo.damagedSnapshots.clear();
  let next = 0;
  const reader = async (): Promise<void> => {
    while (next < missing.length) {
      const id = missing[next++]!;
      try {
        cache.set(id, await repo.getObject<Snapshot>(NAMES.snapshots, 'snapshot', id));
      } catch (error) {
        if (!(error instanceof RepositoryError) || error.failure !== 'corrupt') throw error;
        if (options.strict) throw new RepositoryError('corrupt', `${error.message}: what this snapshot uses cannot be known, so nothing is removed; its contents cannot be read anyway — \`jetvault forget --damaged\` removes it`);
        repo.damagedSnapshots.set(id, error.message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, missing.length) }, reader));
  if (repo.damagedSnapshots.size > 0) ids = ids.filter((id) => !repo.damagedSnapshots.has(id));
  const out = ids.map((id) => ({ ...cache.get(id)!, id }));
  return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

export async function findSnapshot(repo: Repository, ref: string, all?: SnapshotWithId[]): Promise<SnapshotWithId> {
  const snapshots = all ?? (await listSnapshots(repo));
  if (ref === 'latest') {
    const last = snapshots.at(-1);
    if (!last) throw new RepositoryError('not-found', 'the repository has no snapshots');
    return last;
  }
  const matches = snapshots.filter((s) => s.id.startsWith(ref.toLowerCase()));
  if (matches.length === 0) throw new RepositoryError('not-found', `no snapshot matches "${ref}"`);
  if (matches.length > 1) throw new RepositoryError('not-found', `"${ref}" matches ${matches.length} snapshots; give more of the id`);
  return matches[0]!;
}

export async function loadTree(repo: Repository, id: string): Promise<Tree> {
  try {
    return decodeTree(await repo.loadBlob(id));
  } catch (error) {
    if (error instanceof RepositoryError) throw error;
    throw new RepositoryError('corrupt', `tree ${id.slice(0, 12)}: ${(error as Error).message}`);
  }
}

/**
 * Loads each tree once: a device backup reads its parent's trees twice — to decide which files
 * cross the link and, in the archiver, to reuse what did not change — and JSON-decoding a 25k-file
 * parent takes ~35 ms of the console's one thread each time. Lives as long as one backup.
 */
export function treeLoader(repo: Repository): (id: string) => Promise<Tree> {
  const loaded = new Map<string, Promise<Tree>>();
  return (id) => {
    let tree = loaded.get(id);
    if (!tree) {
      tree = loadTree(repo, id);
      tree.catch(() => undefined); // observed by whoever asked
      loaded.set(id, tree);
    }
    return tree;
  };
}

/** A node at the top of a snapshot's tree (a database source's dump and its reports live there). */
export async function rootNode(repo: Repository, snapshot: Pick<Snapshot, 'tree'>, name: string): Promise<TreeNode | null> {
  const tree = await loadTree(repo, snapshot.tree);
  return tree.nodes.find((n) => n.name === name) ?? null;
}

/** A small file's content as text (a report or a checksum kept beside a dump). */
export async function readSmallFile(repo: Repository, node: TreeNode): Promise<string> {
  const parts: Buffer[] = [];
  for (const id of node.content ?? []) parts.push(await repo.loadBlob(id));
  return Buffer.concat(parts).toString('utf8');
}

/** Every node of a snapshot, depth first, with its '/'-joined path. */
export async function* walkTree(repo: Repository, treeId: string, prefix = ''): AsyncGenerator<{ path: string; node: TreeNode }> {
  const tree = await loadTree(repo, treeId);
  for (const node of tree.nodes) {
    const path = prefix === '' ? node.name : `${prefix}/${node.name}`;
    yield { path, node };
    if (node.type === 'dir' && node.subtree) yield* walkTree(repo, node.subtree, path);
  }
}
