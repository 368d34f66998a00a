/**
 * Backup: consumes a Source depth first, stores file content through the chunk pool and the pack
 * uploader, writes one tree blob per directory as it is left, then flushes packs, writes the index,
 * and only then writes the snapshot. Files whose size, mtime, ctime and inode match the parent
 * snapshot reuse its chunk list without being read.
 */
import { AbortFlag } from '../errors';
import type { ProgressFn } from '../errors';
import type { Lease } from '../lock/lock';
import type { Repository } from '../repo/repository';
import type { ChunkPool } from '../pipeline/chunk-pool';
import type { UploadSession } from '../pack/pack-uploader';
import { loadTree, newSnapshot, saveSnapshot } from '../snapshot/snapshot';
import type { Snapshot, SnapshotSummary, SnapshotWithId } from '../snapshot/snapshot';
import { encodeTree } from '../snapshot/tree';
import type { NodeMeta, Tree, TreeNode } from '../snapshot/tree';
import type { Source, SourceEntry, SourceWarning } from './source';
import { FileSaver, SkippedFile } from './file-saver';

export interface BackupOptions {
  parent?: SnapshotWithId | null;
  tags?: string[];
  device?: string;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Worker threads for hashing/compression (default: up to 4, one per core). */
  workers?: number;
  /** The run's lock: checked before the index and the snapshot are written. */
  lease?: Lease;
  /**
   * The caller already brought the index up to date and indexed leftover packs for this write
   * (`prepareWrite`): a device run does it once for all its sources, while the device connects.
   */
  prepared?: boolean;
  /** Reads the parent's trees (`treeLoader`, shared with whoever read them before); loadTree otherwise. */
  loadTree?: (id: string) => Promise<Tree>;
  /**
   * Filled as the backup goes: each file whose content is known (saved or reused) by its path, so a
   * backup that fails part-way leaves what it stored for the next one to take up (a resumed run).
   */
  checkpoint?: Map<string, TreeNode>;
}

/** How long a failed backup with a checkpoint waits for the files it read whole to be stored. */
const CHECKPOINT_DRAIN_MS = 30_000;

/** What every write starts with: the index as other processes left it, and leftover packs indexed. */
export async function prepareWrite(repo: Repository): Promise<void> {
  await repo.refreshIndex();
  await repo.recoverUnindexedPacks();
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
  /** Its tree blob id in the parent snapshot. */
  previousTree?: string;
}

const DIR_META: NodeMeta = { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 };

/** A file whose size, mtime, ctime and inode match its node in the parent: its chunk list is reused. */
export function unchangedFile(meta: NodeMeta, old: TreeNode | undefined): old is TreeNode & { content: string[] } {
  return (
    old !== undefined && old.type === 'file' && old.content !== undefined && old.size === meta.size &&
    old.mtime === meta.mtime && old.ctime === meta.ctime && old.inode === meta.inode
  );
}

/** Field-by-field equality of two nodes (content lists element-wise): equal nodes encode alike. */
function sameNode(a: TreeNode, b: TreeNode | undefined): boolean {
  if (b === undefined) return false;
  const keys = Object.keys(a) as (keyof TreeNode)[];
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    const x = a[key];
    const y = b[key];
    if (x === y) continue;
    if (Array.isArray(x) && Array.isArray(y) && x.length === y.length && x.every((v, i) => v === y[i])) continue;
    return false;
  }
  return true;
}

/**
 * A directory whose every entry equals the parent snapshot's keeps the parent's tree id: it is
 * neither encoded nor hashed again (an unchanged re-backup of 1,000 directories saves ~0.1 s).
 */
function unchangedTree(frame: Frame, children: TreeNode[]): string | null {
  const previous = frame.previous;
  if (frame.previousTree === undefined || previous === null || previous.size !== children.length) return null;
  return children.every((child) => sameNode(child, previous.get(child.name))) ? frame.previousTree : null;
}

/**
 * The snapshot's tree as a source's entries arrive, depth first: one frame per open directory, its
 * tree saved when the walk leaves it. Each kind of entry has a small method of its own, and the loop
 * (`take`) only hands entries over. V8 compiles the hot code of a console's first run, and throws the
 * compiled code away when a branch it had not seen taken is reached: as one function with every
 * branch and the run's ending, this was compiled three times in a first run, 45–70 ms each
 * (decision 005, thirtieth pass).
 */
class TreeWalk {
  private readonly stack: Frame[];
  /** Files being stored (for a checkpoint: those read whole are stored before a failure gives up). */
  readonly saving: Promise<unknown>[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly session: UploadSession,
    private readonly saver: FileSaver,
    private readonly summary: SnapshotSummary,
    private readonly options: BackupOptions,
    private readonly load: (id: string) => Promise<Tree>,
    rootPrevious: Map<string, TreeNode> | null,
  ) {
    this.stack = [frame('', '', DIR_META, rootPrevious, undefined)];
  }

  /** Every entry of the source, each handed over as it arrives. */
  async take(entries: AsyncIterable<SourceEntry>, aborted: AbortFlag): Promise<void> {
    for await (const entry of entries) {
      aborted.throwIfAborted();
      const waiting = this.add(entry);
      if (waiting !== undefined) await waiting;
    }
  }

  /** One entry; a promise when it waits (a parent tree to read, its turn to be stored). */
  add(entry: SourceEntry): Promise<void> | undefined {
    const stack = this.stack;
    while (stack.length > 1 && !entry.path.startsWith(`${stack[stack.length - 1]!.path}/`)) this.closeFrame();
    const top = stack[stack.length - 1]!;
    const rest = top.path === '' ? entry.path : entry.path.slice(top.path.length + 1);
    // A source that skipped an ancestor directory still yields a well-formed tree.
    if (rest.includes('/')) return this.addBelowMissing(top, rest, entry);
    return this.addTo(top, rest, entry);
  }

  private async addBelowMissing(top: Frame, rest: string, entry: SourceEntry): Promise<void> {
    const parts = rest.split('/');
    for (const missing of parts.slice(0, -1)) {
      const old = top.previous?.get(missing);
      top = frame(top.path === '' ? missing : `${top.path}/${missing}`, missing, DIR_META, await this.previousOf(old), old?.subtree);
      this.stack.push(top);
    }
    await this.addTo(top, parts[parts.length - 1]!, entry);
  }

  private addTo(top: Frame, name: string, entry: SourceEntry): Promise<void> | undefined {
    const old = top.previous?.get(name);
    const meta = entry.meta;
    if (meta.type === 'dir') {
      if (old?.type === 'dir' && old.subtree) return this.enterKnownDir(entry, name, old);
      this.stack.push(frame(entry.path, name, meta, null, undefined));
      return undefined;
    }
    if (meta.type !== 'file') {
      top.children.push(Promise.resolve({ name, ...meta }));
      return undefined;
    }
    // Items are regular files, as in the summary (so a parent's count serves as the expected total).
    this.options.onProgress?.({ items: 1 });
    this.summary.files++;
    // Unchanged since the parent, or stored by an interrupted run of this source (its `content`);
    // reused only while the repository still holds every chunk of it (a damaged pack that
    // rebuild-index left out, or a lost one, would otherwise be carried into every later snapshot).
    const known = unchangedFile(meta, old) ? old.content : entry.content;
    if (known && this.held(known)) {
      this.reuse(top, name, entry, known);
      return undefined;
    }
    return this.store(top, name, entry);
  }

  /** Whether every blob is indexed or on its way (the session then waits for its pack). */
  private held(ids: readonly string[]): boolean {
    for (const id of ids) if (!this.repo.uploader.reference(this.session, id)) return false;
    return true;
  }

  private async enterKnownDir(entry: SourceEntry, name: string, old: TreeNode): Promise<void> {
    this.stack.push(frame(entry.path, name, entry.meta, await this.previousOf(old), old.subtree));
  }

  private reuse(top: Frame, name: string, entry: SourceEntry, content: string[]): void {
    this.summary.bytes += entry.meta.size;
    const node: TreeNode = { name, ...entry.meta, content };
    this.options.checkpoint?.set(entry.path, node);
    top.children.push(Promise.resolve(node));
    this.options.onProgress?.({ bytes: entry.meta.size, reused: true });
  }

  private async store(top: Frame, name: string, entry: SourceEntry): Promise<void> {
    this.summary.filesRead++;
    const { content } = await this.saver.save(entry);
    const node = content.then(
      ({ ids, size }): TreeNode | null => {
        // Counted as read: a streamed dump's size is only known once it has been read.
        this.summary.bytes += size;
        const saved: TreeNode = { name, ...entry.meta, size, content: ids };
        this.options.checkpoint?.set(entry.path, saved);
        return saved;
      },
      (error: unknown) => {
        if (error instanceof SkippedFile) return null;
        throw error;
      },
    );
    node.catch(() => undefined); // observed later by closeFrame; this stops an early "unhandled rejection"
    if (this.options.checkpoint) this.saving.push(node);
    top.children.push(node);
  }

  private async previousOf(node: TreeNode | undefined): Promise<Map<string, TreeNode> | null> {
    if (!node || node.type !== 'dir' || !node.subtree) return null;
    return new Map((await this.load(node.subtree)).nodes.map((n) => [n.name, n]));
  }

  /** Its tree is saved once its children are done; the walk goes on meanwhile (no stall per directory). */
  private closeFrame(): void {
    const done = this.stack.pop()!;
    const node = Promise.all(done.children).then(async (all): Promise<TreeNode> => {
      const children = all.filter((n) => n !== null);
      const kept = unchangedTree(done, children);
      const id = (kept !== null && this.held([kept]) ? kept : null) ?? (await this.repo.saveBlob(this.session, 'tree', encodeTree(children))).id;
      this.summary.dirs++;
      return { name: done.name, ...done.meta, subtree: id };
    });
    node.catch(() => undefined);
    this.stack[this.stack.length - 1]!.children.push(node);
  }

  /** The root's children, every directory closed. */
  async rootChildren(): Promise<TreeNode[]> {
    while (this.stack.length > 1) this.closeFrame();
    await this.saver.flush();
    return (await Promise.all(this.stack[0]!.children)).filter((n) => n !== null);
  }
}

/** Frames share one shape (previousTree always set, maybe undefined), so the walk's code sees one map. */
function frame(path: string, name: string, meta: NodeMeta, previous: Map<string, TreeNode> | null, previousTree: string | undefined): Frame {
  return { path, name, meta, children: [], previous, previousTree };
}

export async function backup(repo: Repository, source: Source, options: BackupOptions = {}): Promise<BackupResult> {
  const started = Date.now();
  const { signal, onProgress } = options;
  if (!options.prepared) await prepareWrite(repo);
  // Backups running at once on this Repository share its workers, packs and index.
  const session = repo.uploader.session();
  let pool: ChunkPool | null = null;
  const workers = (): ChunkPool => (pool ??= repo.acquireChunkPool(options.workers));
  const summary: SnapshotSummary = { files: 0, dirs: 0, bytes: 0, filesRead: 0, blobsAdded: 0, bytesAdded: 0, errors: 0, durationMs: 0 };
  const warnings: SourceWarning[] = [];

  const load = options.loadTree ?? ((id: string) => loadTree(repo, id));
  const rootPrevious = options.parent ? new Map((await load(options.parent.tree)).nodes.map((n) => [n.name, n])) : null;

  // Made just before the `try` whose `finally` disposes of it: a parent tree that fails to load leaves no listener.
  const aborted = new AbortFlag(signal);
  const saver = new FileSaver(workers, repo.uploader, session, repo.config.chunker, repo.largeFiles(options.workers ?? 2), aborted, onProgress);
  const walk = new TreeWalk(repo, session, saver, summary, options, load, rootPrevious);
  try {
    await walk.take(source.entries(signal), aborted);
    const { id: tree } = await repo.saveBlob(session, 'tree', encodeTree(await walk.rootChildren()));
    // Strict order: packs and their index are durable before the snapshot that refers to them.
    await options.lease?.assertHeld();
    await repo.flush(session);
    await options.lease?.assertHeld();
    warnings.push(...saver.warnings, ...source.warnings);
    summary.errors += saver.warnings.length + source.warnings.length;
    summary.blobsAdded = saver.blobsAdded;
    summary.bytesAdded = session.storedBytes;
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
  } catch (error) {
    if (options.checkpoint) {
      // The files read whole (the source failed on a later one: a lost link) are stored before
      // giving up, so the next run need not transfer them again; bounded, as a store may hang too.
      await saver.flush().catch(() => undefined);
      await Promise.race([Promise.allSettled(walk.saving), new Promise((resolve) => setTimeout(resolve, CHECKPOINT_DRAIN_MS).unref())]);
    }
    // Packs this backup filled stay usable (the next backup indexes them); none stays open.
    await repo.uploader.abandon(session).catch(() => undefined);
    throw error;
  } finally {
    aborted.dispose();
    if (pool) await repo.releaseChunkPool(pool);
  }
}
