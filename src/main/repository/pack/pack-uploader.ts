/**
 * Fills packs (one open pack per blob type, so metadata stays together and check/prune can read
 * trees without touching data) and uploads full ones, at most two at a time, so memory stays bounded.
 * A blob counts as stored once it is in an open pack: duplicates arriving meanwhile are dropped.
 */
import type { Backend } from '../backend/backend';
import { asError } from '../errors';
import { NAMES } from '../backend/backend';
import { compress } from '../compress/codec';
import type { IndexedPack } from '../index/index-file';
import { PackBuilder } from './pack-format';
import type { BlobType } from './pack-format';

/** Packs being written at once: enough to overlap fsync with filling the next pack. */
const MAX_UPLOADS = 2;

export class PackUploader {
  private readonly open = new Map<BlobType, PackBuilder>();
  private readonly pendingIds = new Set<string>();
  private readonly uploads = new Set<Promise<void>>();
  private finished: IndexedPack[] = [];
  private failure: Error | null = null;
  /** Bytes of blobs accepted (after compression and encryption). */
  storedBytes = 0;

  constructor(
    private readonly backend: Backend,
    private readonly enc: Buffer,
    private readonly packSize: number,
    private readonly onUploaded: (pack: IndexedPack) => void,
    private readonly known: (id: string) => boolean,
  ) {}

  has(id: string): boolean {
    return this.pendingIds.has(id) || this.known(id);
  }

  /** Compresses and adds a blob unless already present. */
  async add(type: BlobType, id: Buffer, data: Buffer): Promise<boolean> {
    const hex = id.toString('hex');
    if (this.has(hex)) return false;
    const { codec, data: payload } = compress(data);
    return this.addCompressed(type, id, codec, payload, data.length);
  }

  /** Adds a blob that a worker already compressed. */
  async addCompressed(type: BlobType, id: Buffer, codec: number, payload: Buffer, rawLength: number): Promise<boolean> {
    const hex = id.toString('hex');
    if (this.has(hex)) return false;
    if (this.failure) throw this.failure;
    let builder = this.open.get(type);
    if (!builder) {
      builder = new PackBuilder(this.enc);
      this.open.set(type, builder);
    }
    builder.add(type, id, codec, payload, rawLength);
    this.pendingIds.add(hex);
    this.storedBytes += payload.length + 17;
    if (builder.size >= this.packSize) {
      this.open.delete(type);
      await this.upload(builder);
    }
    return true;
  }

  private async upload(builder: PackBuilder): Promise<void> {
    while (this.uploads.size >= MAX_UPLOADS) await Promise.race(this.uploads);
    const { id, parts, size } = builder.finish();
    const pack: IndexedPack = { id, salt: builder.salt.toString('hex'), size, entries: builder.entries };
    const task = this.backend.put(NAMES.pack(id), parts).then(
      () => {
        this.finished.push(pack);
        this.onUploaded(pack);
        for (const e of pack.entries) this.pendingIds.delete(e.id);
      },
      (error: unknown) => {
        this.failure = asError(error);
      },
    );
    const tracked: Promise<void> = task.finally(() => this.uploads.delete(tracked));
    this.uploads.add(tracked);
  }

  /** Closes open packs, waits for every upload, and returns the packs uploaded since the last flush. */
  async flush(): Promise<IndexedPack[]> {
    for (const [type, builder] of this.open) {
      this.open.delete(type);
      await this.upload(builder);
    }
    await Promise.all(this.uploads);
    if (this.failure) throw this.failure;
    const done = this.finished;
    this.finished = [];
    return done;
  }
}
