/**
 * The blob-moving half of a copy (see copy.ts): turns source trees into destination trees, storing
 * through the destination's uploader the blobs it lacks — moved as stored when the repositories
 * share ids, re-chunked by the destination's chunk workers otherwise. One per copy run, shared by
 * its snapshots, so a tree or a file content met twice in a run is done once.
 */
import { asError, RepositoryError, throwIfAborted } from '../errors';
import type { IndexedPack } from '../index/index-file';
import type { UploadSession } from '../pack/pack-uploader';
import type { ChunkPool, HashedChunk } from '../pipeline/chunk-pool';
import { KNOWN_CHUNK } from '../pipeline/chunk-pool';
import { Slots } from '../pipeline/slots';
import { StreamPieces } from '../pipeline/stream-pieces';
import type { Repository } from '../repo/repository';
import { loadTree } from '../snapshot/snapshot';
import { decodeTree, encodeTree } from '../snapshot/tree';
import type { TreeNode } from '../snapshot/tree';
import type { CopyMode, CopyProgress } from './copy';

/** Blob reads from the source in flight, and files being re-chunked at once. */
const READS_IN_FLIGHT = 8;
const FILES_IN_FLIGHT = 3;

export class Copier {
  private readonly session: UploadSession;
  /** Source tree id → destination tree id, for trees done (or being done) in this run. */
  private readonly trees = new Map<string, Promise<string>>();
  /** Re-chunk: a file's source chunk list → its destination chunk list. */
  private readonly contents = new Map<string, Promise<string[]>>();
  /** Same ids: data blobs being moved now. */
  private readonly moving = new Map<string, Promise<void>>();
  private readonly reads = new Slots(READS_IN_FLIGHT);
  private readonly files = new Slots(FILES_IN_FLIGHT);
  /** Work started and not yet settled (blob moves, trees, files), and the first failure among it. */
  private running = 0;
  private failure: Error | null = null;
  private readonly idle: (() => void)[] = [];
  private pool: ChunkPool | null = null;

  constructor(
    private readonly src: Repository,
    private readonly dst: Repository,
    private readonly mode: CopyMode,
    private readonly progress: CopyProgress,
    private readonly report: () => void,
    private readonly options: { signal?: AbortSignal; workers?: number },
  ) {
    this.session = dst.uploader.session();
  }

  /** The destination id of a source tree, with everything below it stored or scheduled. */
  tree(id: string): Promise<string> {
    let done = this.trees.get(id);
    if (!done) {
      done = this.mode === 'same-ids' ? this.sameIdsTree(id) : this.rechunkTree(id);
      this.track(done);
      this.trees.set(id, done);
    }
    return done;
  }

  /**
   * Re-chunk: records what an earlier copy made of a source tree (its destination tree, and each
   * file's destination chunk list), walking both trees side by side, so unchanged directories and
   * files are not re-chunked again. Both belong to complete snapshots: every blob is indexed.
   */
  async seed(srcTree: string, dstTree: string): Promise<void> {
    if (this.trees.has(srcTree)) return;
    this.trees.set(srcTree, Promise.resolve(dstTree));
    const [mine, theirs] = await Promise.all([loadTree(this.src, srcTree), loadTree(this.dst, dstTree)]);
    const twins = new Map(theirs.nodes.map((n) => [n.name, n]));
    for (const node of mine.nodes) {
      const twin = twins.get(node.name);
      if (!twin || twin.type !== node.type) continue;
      if (node.subtree && twin.subtree) await this.seed(node.subtree, twin.subtree);
      else if (node.content && node.content.length > 0 && twin.content && node.size === twin.size) {
        const key = node.content.join('');
        if (!this.contents.has(key)) this.contents.set(key, Promise.resolve(twin.content));
      }
    }
  }

  /** Waits for every blob move and re-chunk started so far; rethrows the first failure. */
  async settle(): Promise<void> {
    while (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    if (this.failure !== null) throw this.failure;
    if (this.session.failure) throw this.session.failure;
  }

  /** Closes the packs holding this run's blobs, waits until they are stored and indexed. */
  async flush(): Promise<IndexedPack[]> {
    const packs = await this.dst.uploader.flush(this.session);
    this.progress.bytesUploaded = this.session.storedBytes;
    return packs;
  }

  async abandon(): Promise<void> {
    this.failure ??= new Error('the copy ended');
    while (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    await this.dst.uploader.abandon(this.session).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.pool) await this.dst.releaseChunkPool(this.pool);
    this.pool = null;
  }

  /** A failure anywhere (or a cancel) stops the walk instead of letting it run to the end of the snapshot. */
  private stopIfFailed(): void {
    throwIfAborted(this.options.signal);
    if (this.failure !== null) throw this.failure;
  }

  /** Counts `task` until it settles (memory stays flat however many blobs a snapshot has). */
  private track<T>(task: Promise<T>): void {
    this.running++;
    task.then(
      () => this.untrack(),
      (error: unknown) => {
        this.failure ??= asError(error);
        this.untrack();
      },
    );
  }

  private untrack(): void {
    if (--this.running === 0) for (const wake of this.idle.splice(0)) wake();
  }

  private rawLength(id: string): number {
    return this.src.index.get(id)?.rawLength ?? 0;
  }

  // ---- same ids ------------------------------------------------------------------------------

  private async sameIdsTree(id: string): Promise<string> {
    this.stopIfFailed();
    const bytes = await this.src.loadBlob(id);
    const tree = decodeTree(bytes);
    for (const node of tree.nodes) {
      for (const blob of node.content ?? []) await this.moveData(blob);
      if (node.subtree) await this.tree(node.subtree);
    }
    const { id: stored, added } = await this.dst.saveBlob(this.session, 'tree', bytes);
    if (stored !== id) throw new RepositoryError('corrupt', `tree ${id.slice(0, 12)}: its id differs in the destination (the repositories do not share ids)`);
    if (added) this.progress.blobsUploaded++;
    return id;
  }

  /** Schedules one data blob's move unless the destination has it; returns once a read slot is taken. */
  private async moveData(id: string): Promise<void> {
    this.progress.bytesDone += this.rawLength(id);
    if (this.moving.has(id) || this.dst.uploader.reference(this.session, id)) {
      this.progress.blobsSkipped++;
      this.report();
      return;
    }
    await this.reads.acquire();
    if (this.failure !== null) {
      this.reads.release();
      throw this.failure;
    }
    const move = (async () => {
      try {
        const blob = await this.src.loadStoredBlob(id);
        this.progress.bytesRead += blob.payload.length;
        if (await this.dst.uploader.addCompressed(this.session, blob.type, Buffer.from(id, 'hex'), blob.codec, blob.payload, blob.rawLength)) this.progress.blobsUploaded++;
        this.progress.bytesUploaded = this.session.storedBytes;
        this.report();
      } finally {
        this.reads.release();
        this.moving.delete(id);
      }
    })();
    this.moving.set(id, move);
    this.track(move);
  }

  // ---- re-chunk ------------------------------------------------------------------------------

  private async rechunkTree(id: string): Promise<string> {
    this.stopIfFailed();
    const tree = await loadTree(this.src, id);
    const nodes: Promise<TreeNode>[] = [];
    const add = (node: Promise<TreeNode>): void => {
      node.catch(() => undefined); // observed below by Promise.all; this stops an early "unhandled rejection"
      nodes.push(node);
    };
    for (const node of tree.nodes) {
      // Subdirectories are walked at once (not awaited): files of several directories re-chunk together.
      if (node.type === 'dir' && node.subtree) add(this.tree(node.subtree).then((subtree) => ({ ...node, subtree })));
      else if (node.content && node.content.length > 0) add((await this.content(node.content)).done.then((ids) => ({ ...node, content: ids })));
      else add(Promise.resolve(node));
    }
    const { id: stored, added } = await this.dst.saveBlob(this.session, 'tree', encodeTree(await Promise.all(nodes)));
    if (added) this.progress.blobsUploaded++;
    return stored;
  }

  /** Starts re-chunking a file's content (once per distinct content in the run); returns once it started. */
  private async content(ids: string[]): Promise<{ done: Promise<string[]> }> {
    const key = ids.join('');
    let done = this.contents.get(key);
    if (done) {
      // The same content again (another snapshot, a copied file): its chunks are in this run's session.
      for (const id of ids) this.progress.bytesDone += this.rawLength(id);
      return { done };
    }
    await this.files.acquire();
    done = this.rechunk(ids).finally(() => this.files.release());
    this.contents.set(key, done);
    this.track(done);
    return { done };
  }

  private async rechunk(ids: string[]): Promise<string[]> {
    this.pool ??= this.dst.acquireChunkPool(this.options.workers);
    const pool = this.pool;
    if (this.failure !== null) throw this.failure;
    // Cut, hashed and compressed under the destination's chunker parameters, in the workers.
    const pieces = new StreamPieces(pool, this.dst.config.chunker, async (chunks) => {
      const stored: string[] = [];
      for (const chunk of chunks) stored.push(await this.storeChunk(chunk));
      return stored;
    });
    // Source blobs are read a few ahead (a remote source answers with latency).
    const ahead: Promise<Buffer>[] = [];
    let next = 0;
    const fill = (): void => {
      while (next < ids.length && ahead.length < 4) {
        const read = this.src.loadBlob(ids[next++]!);
        read.catch(() => undefined);
        ahead.push(read);
      }
    };
    try {
      fill();
      while (ahead.length > 0) {
        throwIfAborted(this.options.signal);
        const data = await ahead.shift()!;
        fill();
        this.progress.bytesDone += data.length;
        this.progress.bytesRead += data.length;
        await pieces.push(data);
      }
      const { done } = await pieces.finish();
      return await done;
    } catch (error) {
      await pieces.abandon();
      throw error;
    }
  }

  private async storeChunk(chunk: HashedChunk): Promise<string> {
    const id = chunk.id.toString('hex');
    if (chunk.codec === KNOWN_CHUNK) {
      if (!this.dst.uploader.reference(this.session, id)) throw new RepositoryError('corrupt', `blob ${id.slice(0, 12)} was reported present in the destination but is not indexed`);
      this.progress.blobsSkipped++;
      return id;
    }
    if (await this.dst.uploader.addCompressed(this.session, 'data', chunk.id, chunk.codec, chunk.payload, chunk.rawLength)) this.progress.blobsUploaded++;
    else this.progress.blobsSkipped++;
    this.progress.bytesUploaded = this.session.storedBytes;
    this.report();
    return id;
  }
}
