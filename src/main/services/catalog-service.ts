/**
 * What the Catalog page reads: snapshots per device and source, and one directory of a snapshot at
 * a time (so a snapshot of 100k files is browsed without loading all of it).
 */
import { AppError } from '../../shared/errors';
import type { SnapshotEntry, SnapshotInfo } from '../../shared/schemas/catalog';
import { findSnapshot, listSnapshots, loadTree, tagValue } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { RepositoryService } from './repository-service';

/**
 * Whether a snapshot's run has all its members among `all` (a run tags each snapshot with its id and
 * size). A run whose process was killed part-way keeps the snapshots it wrote: the catalog and the
 * restores leave them out, and `jetvault snapshots` marks them.
 */
export function inCompleteRun(all: readonly { tags: string[] }[]): (snapshot: { tags: string[] }) => boolean {
  const members = new Map<string, number>();
  for (const s of all) {
    const run = tagValue(s.tags, 'run');
    if (run) members.set(run, (members.get(run) ?? 0) + 1);
  }
  return (s) => {
    const run = tagValue(s.tags, 'run');
    return run === null || (members.get(run) ?? 0) >= Number(tagValue(s.tags, 'run-size') ?? 1);
  };
}

export function snapshotInfo(s: SnapshotWithId): SnapshotInfo {
  return {
    id: s.id,
    time: s.time,
    device: s.device,
    source: tagValue(s.tags, 'source'),
    kind: tagValue(s.tags, 'kind') ?? s.source,
    runId: tagValue(s.tags, 'run'),
    paths: s.paths,
    tags: s.tags,
    files: s.summary.files,
    bytes: s.summary.bytes,
    bytesAdded: s.summary.bytesAdded,
    filesRead: s.summary.filesRead,
    durationMs: s.summary.durationMs,
  };
}

export class CatalogService {
  readonly #repository: RepositoryService;

  constructor(repository: RepositoryService) {
    this.#repository = repository;
  }

  /** Newest first. Runs that lost a member (interrupted mid-run) are not listed. */
  async list(device?: string): Promise<SnapshotInfo[]> {
    return (await this.complete(device)).map(snapshotInfo);
  }

  /** The snapshots of complete runs (of one device, or all), newest first, with their trees. */
  async complete(device?: string): Promise<SnapshotWithId[]> {
    const repo = await this.#repository.fresh();
    const all = (await listSnapshots(repo)).filter((s) => device === undefined || s.device === device);
    return all.filter(inCompleteRun(all)).reverse();
  }

  async browse(id: string, dirPath: string): Promise<{ path: string; entries: SnapshotEntry[] }> {
    const repo = await this.#repository.open();
    const snapshot = await findSnapshot(repo, id);
    const parts = dirPath.split('/').filter(Boolean);
    let tree = await loadTree(repo, snapshot.tree);
    for (const [i, part] of parts.entries()) {
      const node = tree.nodes.find((n) => n.name === part);
      if (!node || node.type !== 'dir' || !node.subtree) throw new AppError('NOT_FOUND', `No directory ${parts.slice(0, i + 1).join('/')} in snapshot ${id.slice(0, 12)}`);
      tree = await loadTree(repo, node.subtree);
    }
    return {
      path: parts.join('/'),
      entries: tree.nodes.map((n) => ({ name: n.name, type: n.type, size: n.size, mode: n.mode, mtime: n.mtime, ...(n.target !== undefined ? { target: n.target } : {}) })),
    };
  }
}
