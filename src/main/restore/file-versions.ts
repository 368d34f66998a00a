/**
 * Config versions: one file's distinct contents across a device's snapshots of one source, a line
 * diff between two of them (computed here, in main), and the restore request that puts one version
 * back onto the device through the ordinary files restore (plan → confirm).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import type { FileDiff, FileVersion, FileVersions } from '../../shared/schemas/files';
import type { RestoreRequest } from '../../shared/schemas/restore';
import { literalPattern } from '../devices/sources/glob';
import type { Repository } from '../repository/repo/repository';
import { findSnapshot, tagValue } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { TreeNode } from '../repository/snapshot/tree';
import type { CatalogService } from '../services/catalog-service';
import type { RepositoryService } from '../services/repository-service';
import { diffLines, splitLines, toHunks } from './line-diff';
import { nodeAt } from './snapshot-files';

/** Larger files are not diffed in the console (a config file is far smaller). */
export const MAX_DIFF_BYTES = 2 * 1024 * 1024;

const relative = (p: string) => p.replace(/^\/+/, '').replace(/\/+$/, '');

export function contentId(node: TreeNode): string {
  return createHash('sha256')
    .update((node.content ?? []).join(','))
    .digest('hex')
    .slice(0, 16);
}

async function readContent(repo: Repository, node: TreeNode): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const id of node.content ?? []) parts.push(await repo.loadBlob(id));
  return Buffer.concat(parts);
}

/** NUL bytes or bytes that are not UTF-8 make a file binary for the diff. */
export function isBinary(data: Buffer): boolean {
  if (data.subarray(0, 64 * 1024).includes(0)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(data);
    return false;
  } catch {
    return true;
  }
}

/**
 * What tells apart two texts whose lines are the same: their line endings (CRLF and LF, maybe the
 * final newline too), or only whether the last line ends with a newline.
 */
export function invisibleDifference(a: string, b: string): 'line-endings' | 'final-newline' {
  const lf = (text: string) => text.replaceAll('\r\n', '\n');
  return a.includes('\r\n') !== b.includes('\r\n') || lf(a) === lf(b) ? 'line-endings' : 'final-newline';
}

export class FileVersionsService {
  readonly #repository: RepositoryService;
  readonly #catalog: CatalogService;

  constructor(repository: RepositoryService, catalog: CatalogService) {
    this.#repository = repository;
    this.#catalog = catalog;
  }

  async #fileNode(repo: Repository, snapshot: SnapshotWithId, filePath: string): Promise<TreeNode> {
    const node = await nodeAt(repo, snapshot.tree, filePath);
    if (!node) throw new AppError('NOT_FOUND', `${filePath} is not in snapshot ${snapshot.id.slice(0, 12)}`);
    if (node.type !== 'file') throw new AppError('VALIDATION', `${filePath} is a ${node.type === 'dir' ? 'folder' : node.type}: versions and diffs are for files`);
    return node;
  }

  /** Distinct contents of the file, newest first; consecutive snapshots with the same content are one version. */
  async versions(snapshotId: string, filePath: string): Promise<FileVersions> {
    const repo = await this.#repository.fresh();
    const snapshot = await findSnapshot(repo, snapshotId);
    await this.#fileNode(repo, snapshot, filePath);
    const source = tagValue(snapshot.tags, 'source');
    const sameSource = (await this.#catalog.complete(snapshot.device)).filter((s) =>
      source !== null ? tagValue(s.tags, 'source') === source : s.paths.join('\0') === snapshot.paths.join('\0'),
    );
    const versions: FileVersion[] = [];
    let missingIn = 0;
    // Oldest first, so a run of equal contents grows forward in time.
    const ordered = [...sameSource].reverse();
    let current: FileVersion | null = null;
    for (const s of ordered) {
      const node = await nodeAt(repo, s.tree, filePath);
      if (!node || node.type !== 'file') {
        missingIn++;
        current = null;
        continue;
      }
      const id = contentId(node);
      if (current && current.contentId === id) {
        current.snapshotId = s.id;
        current.lastSeen = s.time;
        current.snapshots++;
        continue;
      }
      current = { snapshotId: s.id, firstSeen: s.time, lastSeen: s.time, snapshots: 1, size: node.size, mode: node.mode, mtime: node.mtime, contentId: id };
      versions.push(current);
    }
    return { device: snapshot.device, source, path: relative(filePath), versions: versions.reverse(), missingIn };
  }

  /** A line diff of the file between two snapshots (`from` is the older side as shown). */
  async diff(from: string, to: string, filePath: string): Promise<FileDiff> {
    const repo = await this.#repository.open();
    const [a, b] = await Promise.all([findSnapshot(repo, from), findSnapshot(repo, to)]);
    const [na, nb] = [await this.#fileNode(repo, a, filePath), await this.#fileNode(repo, b, filePath)];
    const base = { path: relative(filePath), from: a.id, to: b.id, added: 0, removed: 0, hunks: [] };
    if (contentId(na) === contentId(nb)) return { ...base, notText: null, identical: true };
    if (na.size > MAX_DIFF_BYTES || nb.size > MAX_DIFF_BYTES) return { ...base, notText: 'too-large', identical: false };
    const [da, db] = [await readContent(repo, na), await readContent(repo, nb)];
    if (isBinary(da) || isBinary(db)) return { ...base, notText: 'binary', identical: da.equals(db) };
    const [ta, tb] = [da.toString('utf8'), db.toString('utf8')];
    const diff = toHunks(diffLines(splitLines(ta), splitLines(tb)));
    // The same lines from different bytes: what differs is what a line diff leaves out, and it says which.
    if (diff.hunks.length === 0 && !da.equals(db)) return { ...base, notText: invisibleDifference(ta, tb), identical: false };
    return { ...base, notText: null, identical: diff.hunks.length === 0 && da.equals(db), ...diff };
  }

  /**
   * The restore request that puts this one file of this snapshot back onto its device: the ordinary
   * files restore with an include matching exactly that path below the snapshot folder holding it.
   */
  async restoreRequest(snapshotId: string, filePath: string): Promise<RestoreRequest> {
    const repo = await this.#repository.open();
    const snapshot = await findSnapshot(repo, snapshotId);
    await this.#fileNode(repo, snapshot, filePath);
    if (!snapshot.tags.includes('kind:files')) throw new AppError('VALIDATION', 'Only files of a files source can be restored one by one');
    const rel = relative(filePath);
    const root = snapshot.paths.map(relative).find((p) => rel.startsWith(`${p}/`));
    // A file that is itself one of the source's paths (an .env) is selected by its name.
    const pattern = root ? literalPattern(path.posix.relative(root, rel)) : literalPattern(path.posix.basename(rel));
    return { device: snapshot.device, snapshotId: snapshot.id, include: [pattern] };
  }
}
