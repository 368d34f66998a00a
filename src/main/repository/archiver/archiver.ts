/**
 * Backup: consumes a Source depth first, stores file content through the chunk pool and the pack
 * uploader, writes one tree blob per directory as it is left, then flushes packs, writes the index,
 * and only then writes the snapshot. Files whose size, mtime, ctime and inode match the parent
 * snapshot reuse its chunk list without being read.
 */
import { RepositoryError, throwIfAborted } from '../errors';
import type { ProgressFn } from '../errors';
import { Chunker, gearTable, splitAll } from '../chunker/chunker';
import { ChunkPool } from '../pipeline/chunk-pool';
import type { HashedChunk } from '../pipeline/chunk-pool';
import type { Repository } from '../repo/repository';
import { loadTree, newSnapshot, saveSnapshot } from '../snapshot/snapshot';
import type { Snapshot, SnapshotSummary, SnapshotWithId } from '../snapshot/snapshot';
import { encodeTree } from '../snapshot/tree';
import type { NodeMeta, TreeNode } from '../snapshot/tree';
import type { Source, SourceEntry, SourceWarning } from './source';

export interface BackupOptions {
  parent?: SnapshotWithId | null;
  tags?: string[];
  device?: string;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Worker threads for hashing/compression (default: up to 4, one per core). */
  workers?: number;
}

export interface BackupResult {
  id: string;
  snapshot: Snapshot;
  warnings: SourceWarning[];
}

interface Frame {
  path: string;
  name: string;
  meta: NodeMeta;
  /** null: a file that could not be read (counted in the summary, left out of the tree). */
  children: Promise<TreeNode | null>[];
  /** The same directory in the parent snapshot, by child name. */
  previous: Map<string, TreeNode> | null;
}

const SMALL_FILE_READS = 16;

/** A file that failed to read: already counted as a warning; its node is left out. */
class SkippedFile extends Error {}

const DIR_META: NodeMeta = { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 };

function unchanged(meta: NodeMeta, old: TreeNode | undefined): old is TreeNode & { content: string[] } {
  return (
    old !== undefined && old.type === 'file' && old.content !== undefined && old.size === meta.size &&
    old.mtime === meta.mtime && old.ctime === meta.ctime && old.inode === meta.inode
  );
}

export async function backup(repo: Repository, source: Source, options: BackupOptions = {}): Promise<BackupResult> {
  const started = Date.now();
  const { signal, onProgress } = options;
  await repo.recoverUnindexedPacks();
  const pool = new ChunkPool(repo.keys.mac, options.workers);
  const gear = gearTable(repo.keys.chunker);
  const chunker = new Chunker(gear, repo.config.chunker);
  const summary: SnapshotSummary = { files: 0, dirs: 0, bytes: 0, filesRead: 0, blobsAdded: 0, bytesAdded: 0, errors: 0, durationMs: 0 };
  const warnings: SourceWarning[] = [];
  const storedBefore = repo.uploader.storedBytes;

  const previousOf = async (node: TreeNode | undefined): Promise<Map<string, TreeNode> | null> => {
    if (!node || node.type !== 'dir' || !node.subtree) return null;
    return new Map((await loadTree(repo, node.subtree)).nodes.map((n) => [n.name, n]));
  };
  const rootPrevious = options.parent ? new Map((await loadTree(repo, options.parent.tree)).nodes.map((n) => [n.name, n])) : null;
  const stack: Frame[] = [{ path: '', name: '', meta: DIR_META, children: [], previous: rootPrevious }];

  const closeFrame = async (): Promise<void> => {
    const frame = stack.pop()!;
    const nodes = (await Promise.all(frame.children)).filter((n) => n !== null);
    const { id } = await repo.saveBlob('tree', encodeTree(nodes));
    summary.dirs++;
    stack.at(-1)!.children.push(Promise.resolve({ name: frame.name, ...frame.meta, subtree: id }));
  };

  const store = async (pending: Promise<HashedChunk>): Promise<string> => {
    const chunk = await pending;
    if (await repo.uploader.addCompressed('data', chunk.id, chunk.codec, chunk.payload, chunk.rawLength)) summary.blobsAdded++;
    return chunk.id.toString('hex');
  };

  /** Reads a file through the chunker; returns once read, with a promise of its chunk ids. */
  const readContent = async (entry: SourceEntry): Promise<{ ids: Promise<string[]> } | null> => {
    const results: Promise<string>[] = [];
    const submitAll = async (chunks: Buffer[]): Promise<void> => {
      for (const chunk of chunks) {
        const { result } = await pool.submit(chunk); // waits while the pool is full: backpressure
        const id = store(result);
        id.catch(() => undefined);
        results.push(id);
      }
    };
    try {
      for await (const data of entry.open!()) {
        throwIfAborted(signal);
        await submitAll(chunker.push(data));
        onProgress?.({ bytes: data.length });
      }
      await submitAll(chunker.finish());
    } catch (error) {
      chunker.finish();
      if (error instanceof RepositoryError) throw error;
      await Promise.allSettled(results);
      warnings.push({ path: entry.path, message: (error as Error).message });
      summary.errors++;
      return null;
    }
    return { ids: Promise.all(results) };
  };

  /**
   * Files below the minimum chunk size are one chunk: they are read whole and several at a time
   * (bounded), since per-file open/read/close latency, not bandwidth, dominates trees of small files.
   */
  const smallReads = new Set<Promise<unknown>>();
  const readSmall = async (entry: SourceEntry): Promise<{ ids: Promise<string[]> } | null> => {
    while (smallReads.size >= SMALL_FILE_READS) await Promise.race(smallReads);
    const ids = (async (): Promise<string[]> => {
      const parts: Buffer[] = [];
      try {
        for await (const data of entry.open!()) parts.push(data);
      } catch (error) {
        warnings.push({ path: entry.path, message: (error as Error).message });
        summary.errors++;
        throw new SkippedFile();
      }
      const data = Buffer.concat(parts);
      onProgress?.({ bytes: data.length });
      const results: Promise<string>[] = [];
      for (const chunk of splitAll(data, gear, repo.config.chunker)) results.push(store((await pool.submit(chunk)).result));
      return Promise.all(results);
    })();
    const tracked = ids.catch(() => undefined).finally(() => smallReads.delete(tracked));
    smallReads.add(tracked);
    return { ids };
  };

  try {
    for await (const entry of source.entries(signal)) {
      throwIfAborted(signal);
      while (stack.length > 1 && !entry.path.startsWith(`${stack.at(-1)!.path}/`)) await closeFrame();
      let top = stack.at(-1)!;
      const rest = top.path === '' ? entry.path : entry.path.slice(top.path.length + 1);
      const parts = rest.split('/');
      // A source that skipped an ancestor directory still yields a well-formed tree.
      for (const missing of parts.slice(0, -1)) {
        const path = top.path === '' ? missing : `${top.path}/${missing}`;
        stack.push({ path, name: missing, meta: DIR_META, children: [], previous: await previousOf(top.previous?.get(missing)) });
        top = stack.at(-1)!;
      }
      const name = parts.at(-1)!;
      const old = top.previous?.get(name);
      if (entry.meta.type === 'dir') {
        stack.push({ path: entry.path, name, meta: entry.meta, children: [], previous: await previousOf(old) });
        continue;
      }
      onProgress?.({ items: 1 });
      if (entry.meta.type !== 'file') {
        top.children.push(Promise.resolve({ name, ...entry.meta }));
        continue;
      }
      summary.files++;
      summary.bytes += entry.meta.size;
      if (unchanged(entry.meta, old)) {
        top.children.push(Promise.resolve({ name, ...entry.meta, content: old.content }));
        onProgress?.({ bytes: entry.meta.size });
        continue;
      }
      summary.filesRead++;
      const content = entry.meta.size < repo.config.chunker.min ? await readSmall(entry) : await readContent(entry);
      if (content === null) continue;
      const node = content.ids.then(
        (ids): TreeNode | null => ({ name, ...entry.meta, content: ids }),
        (error: unknown) => {
          if (error instanceof SkippedFile) return null;
          throw error;
        },
      );
      node.catch(() => undefined); // observed later by closeFrame; this stops an early "unhandled rejection"
      top.children.push(node);
    }
    while (stack.length > 1) await closeFrame();
    const root = stack[0]!;
    const { id: tree } = await repo.saveBlob('tree', encodeTree((await Promise.all(root.children)).filter((n) => n !== null)));
    // Strict order: packs and their index are durable before the snapshot that refers to them.
    await repo.flush();
    warnings.push(...source.warnings);
    summary.errors += source.warnings.length;
    summary.bytesAdded = repo.uploader.storedBytes - storedBefore;
    summary.durationMs = Date.now() - started;
    const snapshot = newSnapshot({
      tree,
      paths: source.paths,
      source: source.kind,
      tags: options.tags ?? [],
      summary,
      ...(options.device ? { device: options.device } : {}),
      ...(options.parent ? { parent: options.parent.id } : {}),
    });
    const id = await saveSnapshot(repo, snapshot);
    return { id, snapshot, warnings };
  } finally {
    await pool.close();
  }
}
