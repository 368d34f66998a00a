/** All index objects merged in memory: blob id → where it is. The one structure that grows with the data. */
import type { PackEntry } from '../pack/pack-format';
import type { IndexedPack } from './index-file';

export interface BlobLocation extends PackEntry {
  pack: string;
}

export class MasterIndex {
  private readonly blobs = new Map<string, BlobLocation>();
  readonly packs = new Map<string, IndexedPack>();
  /**
   * Moves on whenever blobs are forgotten (`replace`). Within one epoch packs and blobs are only
   * added: `blobsAddedSince(n)` after `packs.size` was n yields exactly the blobs indexed since.
   */
  epoch = 0;

  addPack(pack: IndexedPack): void {
    if (this.packs.has(pack.id)) return;
    this.packs.set(pack.id, pack);
    for (const entry of pack.entries) {
      if (this.blobs.has(entry.id)) continue;
      // Entries read from an index name their pack already (decodeIndex) and are kept as they are;
      // others are copied as a literal — V8 lays a `{ ...entry, pack }` copy out far larger: a
      // million blobs read from index objects took ~527 bytes each that way, ~190 now.
      const { type, id, offset, length, rawLength } = entry;
      this.blobs.set(id, (entry as Partial<BlobLocation>).pack === pack.id ? (entry as BlobLocation) : { type, id, offset, length, rawLength, pack: pack.id });
    }
  }

  /** Forgets everything and holds exactly `packs` (after prune rewrote the index). */
  replace(packs: IndexedPack[]): void {
    this.epoch++;
    this.blobs.clear();
    this.packs.clear();
    for (const pack of packs) this.addPack(pack);
  }

  has(id: string): boolean {
    return this.blobs.has(id);
  }

  get(id: string): BlobLocation | undefined {
    return this.blobs.get(id);
  }

  get blobCount(): number {
    return this.blobs.size;
  }

  *allBlobs(): IterableIterator<BlobLocation> {
    yield* this.blobs.values();
  }

  /** The blobs first indexed by the packs added after the first `packCount` (within one epoch). */
  *blobsAddedSince(packCount: number): IterableIterator<BlobLocation> {
    let skip = packCount;
    for (const pack of this.packs.values()) {
      if (skip > 0) {
        skip--;
        continue;
      }
      for (const entry of pack.entries) {
        const blob = this.blobs.get(entry.id);
        if (blob?.pack === pack.id) yield blob;
      }
    }
  }
}
