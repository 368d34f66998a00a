import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeIndex, encodeIndex } from './index-file';
import type { IndexedPack } from './index-file';
import { MasterIndex } from './master-index';

const id = () => randomBytes(32).toString('hex');
const pack = (ids: string[]): IndexedPack => ({ id: id(), salt: randomBytes(16).toString('hex'), size: 1000, entries: ids.map((blob, i) => ({ type: i % 2 ? 'tree' : 'data', id: blob, offset: i * 100, length: 100, rawLength: 150 })) });

describe('master index', () => {
  it('keeps the entries read from index objects as they are (one object per blob), and copies what an uploader hands it', () => {
    const shared = id();
    const [a, b] = [pack([id(), shared, id()]), pack([shared, id()])];
    const read = decodeIndex(JSON.parse(JSON.stringify(encodeIndex([a, b])))).packs;
    const index = new MasterIndex();
    for (const p of read) index.addPack(p);
    for (const entry of read[0]!.entries) expect(index.get(entry.id)).toBe(entry);
    // A blob in two packs is found in the first; the second's entry is not kept.
    expect(index.get(shared)!.pack).toBe(a.id);
    expect(index.get(b.entries[1]!.id)).toBe(read[1]!.entries[1]);

    // A pack as the uploader or a pack header gives it: entries without their pack.
    const fresh = pack([id(), id()]);
    index.addPack(fresh);
    for (const entry of fresh.entries) expect(index.get(entry.id)).toEqual({ ...entry, pack: fresh.id });
    expect(index.blobCount).toBe(6);
    // The index object written for it holds exactly the pack's own fields, never the location.
    expect(encodeIndex([fresh]).packs[0]!.blobs).toEqual(fresh.entries.map((e) => [e.type === 'data' ? 0 : 1, e.id, e.offset, e.length, e.rawLength]));
  });

  it('yields the blobs the packs added since brought, and moves its epoch when it forgets', () => {
    const index = new MasterIndex();
    const first = pack([id(), id()]);
    index.addPack(first);
    const since = index.packs.size;
    const known = first.entries[0]!.id;
    const later = [pack([known, id()]), pack([id()])];
    for (const p of later) index.addPack(p);
    // The blob the first pack already held is not new.
    expect([...index.blobsAddedSince(since)].map((b) => b.id)).toEqual([later[0]!.entries[1]!.id, later[1]!.entries[0]!.id]);
    expect([...index.blobsAddedSince(index.packs.size)]).toEqual([]);
    const epoch = index.epoch;
    index.addPack(pack([id()]));
    expect(index.epoch).toBe(epoch);
    index.replace([first]);
    expect(index.epoch).toBe(epoch + 1);
    expect(index.blobCount).toBe(2);
  });
});
