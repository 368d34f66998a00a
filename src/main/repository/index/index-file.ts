/**
 * Index objects (index/<sha256>): which blobs live in which pack, so a blob is one ranged read.
 * Sealed JSON (kind "index"):
 *   { version: 1, supersedes: [index ids], packs: [{ id, salt, size, blobs: [[type, id, offset, length, rawLength]] }] }
 * type 0 = data, 1 = tree. An index can always be rebuilt from the pack headers (rebuild-index).
 */
import type { BlobType, PackEntry } from '../pack/pack-format';
import type { BlobLocation } from './master-index';

export interface IndexedPack {
  id: string;
  salt: string;
  size: number;
  entries: PackEntry[];
}

interface IndexFileJson {
  version: 1;
  supersedes: string[];
  packs: { id: string; salt: string; size: number; blobs: [number, string, number, number, number][] }[];
}

const TYPES: BlobType[] = ['data', 'tree'];

export function encodeIndex(packs: IndexedPack[], supersedes: string[] = []): IndexFileJson {
  return {
    version: 1,
    supersedes,
    packs: packs.map((p) => ({
      id: p.id,
      salt: p.salt,
      size: p.size,
      blobs: p.entries.map((e) => [TYPES.indexOf(e.type), e.id, e.offset, e.length, e.rawLength]),
    })),
  };
}

export function decodeIndex(json: unknown): { packs: IndexedPack[]; supersedes: string[] } {
  const file = json as IndexFileJson;
  if (file.version !== 1 || !Array.isArray(file.packs)) throw new Error('unsupported index version');
  return {
    supersedes: file.supersedes ?? [],
    packs: file.packs.map((p) => ({
      id: p.id,
      salt: p.salt,
      size: p.size,
      // Each entry names its pack: the master index keeps these very objects (one per blob, not two).
      entries: p.blobs.map(([t, id, offset, length, rawLength]): BlobLocation => ({ type: TYPES[t] ?? 'data', id, offset, length, rawLength, pack: p.id })),
    })),
  };
}
