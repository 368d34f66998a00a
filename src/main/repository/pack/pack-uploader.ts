/**
 * Fills packs (one open pack per blob type, so metadata stays together and check/prune can read
 * trees without touching data), uploads full ones (two at a time, or as many as the backend asks
 * for: bounded, so memory is) and has the packs indexed once they are durable. One uploader serves
 * every backup running on an open Repository: they share open packs and deduplicate against each
 * other.
 *
 * A blob is *pending* from the moment it enters an open pack until an index object naming its pack
 * is durable; duplicates arriving meanwhile are dropped, and the backup that dropped one records the
 * pack it waits on. Each backup owns an UploadSession: the set of packs holding blobs it referenced
 * while they were pending. `flush(session)` closes those packs, waits until each is stored and
 * indexed, and only then returns — so a snapshot never names a blob whose pack or index entry is
 * not yet durable, whichever backup stored it.
 */
import { setImmediate } from 'node:timers/promises';
import type { Backend, StagedObject } from '../backend/backend';
import { asError } from '../errors';
import { NAMES } from '../backend/backend';
import { compress } from '../compress/codec';
import type { IndexedPack } from '../index/index-file';
import { MemorySink, PackBuilder } from './pack-format';
import type { BlobType } from './pack-format';

/** Packs being written at once: enough to overlap fsync with filling the next pack (a backend may ask for more). */
const MAX_UPLOADS = 2;
/** A producer waits while more than this is queued for a staged pack's file (the disk is behind). */
const MAX_UNWRITTEN = 8 * 1024 * 1024;
/**
 * Bytes sealed (AES-GCM, ~0.7 ms per MiB here; until decision 020 also the pack's SHA-256) between
 * two turns of the event loop. A stream piece's chunks are stored one after another through promises
 * that resolve as microtasks, so without a turn its 8 MiB were sealed in one ~15–20 ms stretch during
 * which no socket was read: the SSH window ran dry and the device side stalled. Decision 005, tenth pass.
 */
export const SEALED_PER_TURN = 512 * 1024;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // observed by the sessions that wait on it
  return { promise, resolve, reject };
}

/** One pack from the moment it opens until it is indexed (or failed). */
interface PackSlot {
  builder: PackBuilder | null;
  ids: string[];
  pack: IndexedPack | null;
  uploaded: Deferred<IndexedPack>;
  indexed: Deferred<void>;
  sessions: Set<UploadSession>;
}

/** What one backup wrote or referenced through the uploader. */
export class UploadSession {
  /** Packs holding blobs this session referenced while they were pending. */
  readonly slots = new Set<PackSlot>();
  /** Bytes of blobs this session added (after compression and encryption). */
  storedBytes = 0;
  /** A pack holding one of this session's blobs failed to upload. */
  failure: Error | null = null;
}

export class PackUploader {
  private readonly open = new Map<BlobType, PackSlot>();
  private readonly pending = new Map<string, PackSlot>();
  /** Ids of packs stored or being stored by this uploader and not yet indexed. */
  private readonly packIds = new Set<string>();
  private unindexed: PackSlot[] = [];
  /** Packs closed and not yet stored (waiting for a slot or being written). */
  private closed = 0;
  private active = 0;
  private readonly uploadWaiters: (() => void)[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private indexing: Promise<void> = Promise.resolve();
  /** Bytes sealed since the event loop last had a turn (SEALED_PER_TURN). */
  private sealedSinceTurn = 0;

  private get maxUploads(): number {
    return this.backend.uploadConcurrency ?? MAX_UPLOADS;
  }

  constructor(
    private readonly backend: Backend,
    private readonly enc: Buffer,
    private readonly packSize: number,
    /** Makes packs durable in an index (and visible to `known`); called one batch at a time. */
    private readonly writeIndex: (packs: IndexedPack[]) => Promise<void>,
    private readonly known: (id: string) => boolean,
  ) {}

  session(): UploadSession {
    return new UploadSession();
  }

  has(id: string): boolean {
    return this.pending.has(id) || this.known(id);
  }

  /** Whether this uploader stored (or is storing) a pack not yet indexed. */
  ownsPack(packId: string): boolean {
    return this.packIds.has(packId);
  }

  /**
   * Records that `session` uses blob `id`: waits on its pack if pending. False when the blob is
   * neither pending nor indexed.
   */
  reference(session: UploadSession, id: string): boolean {
    const slot = this.pending.get(id);
    if (slot) {
      this.track(session, slot);
      return true;
    }
    return this.known(id);
  }

  private track(session: UploadSession, slot: PackSlot): void {
    session.slots.add(slot);
    slot.sessions.add(session);
  }

  /** Compresses and adds a blob unless already present. */
  async add(session: UploadSession, type: BlobType, id: Buffer, data: Buffer): Promise<boolean> {
    if (this.reference(session, id.toString('hex'))) return false;
    const { codec, data: payload } = compress(data, type === 'tree' ? 'tree' : 'data');
    return this.addCompressed(session, type, id, codec, payload, data.length);
  }

  /** Adds a blob that a worker already compressed, unless present. Returns whether it was new. */
  async addCompressed(session: UploadSession, type: BlobType, id: Buffer, codec: number, payload: Buffer, rawLength: number): Promise<boolean> {
    // Backpressure: a producer waits while the packs queued for writing are at their bound.
    while (this.closed > this.maxUploads && !session.failure) await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    if (session.failure) throw session.failure;
    // Checked after the wait: another backup may have stored the same blob meanwhile.
    const hex = id.toString('hex');
    if (this.reference(session, hex)) return false;
    let slot = this.open.get(type);
    if (!slot) {
      // Packs go to a staged file as they fill (when the backend can stage), not to memory.
      const builder = new PackBuilder(this.enc, this.backend.stage?.() ?? new MemorySink());
      slot = { builder, ids: [], pack: null, uploaded: deferred(), indexed: deferred(), sessions: new Set() };
      this.open.set(type, slot);
    }
    const builder = slot.builder!;
    builder.add(type, id, codec, payload, rawLength);
    slot.ids.push(hex);
    this.pending.set(hex, slot);
    this.track(session, slot);
    session.storedBytes += payload.length + 17;
    if (builder.size >= this.packSize) this.close(type, slot);
    else if (builder.sink.pending > MAX_UNWRITTEN) await builder.sink.drained().catch(() => undefined); // a failed write surfaces at commit
    this.sealedSinceTurn += payload.length;
    if (this.sealedSinceTurn >= SEALED_PER_TURN) {
      this.sealedSinceTurn = 0;
      await setImmediate();
    }
    return true;
  }

  /** Takes a pack out of `open`; from here its `uploaded` promise settles on its own. */
  private close(type: BlobType, slot: PackSlot): void {
    this.open.delete(type);
    this.closed++;
    void this.upload(slot);
  }

  private async upload(slot: PackSlot): Promise<void> {
    try {
      while (this.active >= this.maxUploads) await new Promise<void>((resolve) => this.uploadWaiters.push(resolve));
      this.active++;
      try {
        const builder = slot.builder!;
        const { id, size } = builder.finish();
        const pack: IndexedPack = { id, salt: builder.salt.toString('hex'), size, entries: builder.entries };
        slot.builder = null;
        this.packIds.add(id);
        try {
          const sink = builder.sink;
          if (sink instanceof MemorySink) await this.backend.put(NAMES.pack(id), sink.parts);
          else await (sink as StagedObject).commit(NAMES.pack(id));
        } catch (error) {
          this.packIds.delete(id);
          throw error;
        }
        slot.pack = pack;
        this.unindexed.push(slot);
        slot.uploaded.resolve(pack);
      } finally {
        this.active--;
        this.uploadWaiters.shift()?.();
      }
    } catch (error) {
      this.fail(slot, asError(error));
    } finally {
      this.closed--;
      for (const wake of this.roomWaiters.splice(0)) wake();
    }
  }

  /** A pack that will never be indexed: its blobs stop being pending (a later add stores them again). */
  private fail(slot: PackSlot, error: Error): void {
    const sink = slot.builder?.sink;
    if (sink && !(sink instanceof MemorySink)) void (sink as StagedObject).discard();
    slot.builder = null;
    for (const id of slot.ids) if (this.pending.get(id) === slot) this.pending.delete(id);
    for (const session of slot.sessions) session.failure ??= error;
    slot.uploaded.reject(error);
    slot.indexed.reject(error);
  }

  /** Writes one index object for every pack stored and not yet indexed; one batch at a time. */
  private indexStored(): Promise<void> {
    const run = this.indexing.then(async () => {
      const slots = this.unindexed;
      this.unindexed = [];
      if (slots.length === 0) return;
      try {
        await this.writeIndex(slots.map((s) => s.pack!));
      } catch (error) {
        // The packs stay in the store; the next backup finds and indexes them (recoverUnindexedPacks).
        for (const slot of slots) {
          this.packIds.delete(slot.pack!.id);
          this.fail(slot, asError(error));
        }
        return;
      }
      for (const slot of slots) {
        for (const id of slot.ids) if (this.pending.get(id) === slot) this.pending.delete(id);
        this.packIds.delete(slot.pack!.id);
        slot.indexed.resolve();
      }
    });
    this.indexing = run;
    return run;
  }

  /**
   * For a backup that failed: closes the open packs holding its blobs and waits until they are
   * stored or dropped, so no staged file stays open, without indexing anything (its lease may be
   * gone). Stored packs are indexed by a later flush or found by the next backup.
   */
  async abandon(session: UploadSession): Promise<void> {
    // Stores still running for this backup (results arriving late) add nothing from now on.
    session.failure ??= new Error('the backup ended');
    for (const [type, slot] of this.open) if (session.slots.has(slot)) this.close(type, slot);
    await Promise.allSettled([...session.slots].map((s) => s.uploaded.promise));
    for (const slot of session.slots) slot.sessions.delete(session);
    session.slots.clear();
  }

  /**
   * Closes the open packs holding this session's blobs, waits until every pack it references is
   * stored and indexed, and returns those packs. Other sessions keep running meanwhile.
   */
  async flush(session: UploadSession): Promise<IndexedPack[]> {
    for (const [type, slot] of this.open) if (session.slots.has(slot)) this.close(type, slot);
    const slots = [...session.slots];
    const packs = await Promise.all(slots.map((s) => s.uploaded.promise));
    await this.indexStored();
    await Promise.all(slots.map((s) => s.indexed.promise));
    if (session.failure) throw session.failure;
    for (const slot of slots) slot.sessions.delete(session);
    session.slots.clear();
    return packs;
  }
}
