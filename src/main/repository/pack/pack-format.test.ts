/**
 * Pack naming (decision 020): a JVP2 pack is named by the SHA-256 of its prefix, every blob's GCM
 * tag, its header and the header's length, so the writer does not hash every byte again; each tag
 * stands for its blob's bytes. JVP1 packs (named by the SHA-256 of all their bytes) still read and
 * check.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobId, hkdf, open, seal } from '../crypto/aead';
import { compress } from '../compress/codec';
import { MemorySink, openBlob, PACK_PREFIX, PackBuilder, packProblem } from './pack-format';
import type { BlobType, PackEntry } from './pack-format';

const enc = randomBytes(32);
const mac = randomBytes(32);

function build(blobs: { type: BlobType; data: Buffer }[]): { bytes: Buffer; id: string; salt: Buffer; entries: PackEntry[] } {
  const sink = new MemorySink();
  const builder = new PackBuilder(enc, sink);
  for (const { type, data } of blobs) {
    const { codec, data: payload } = compress(data, type === 'tree' ? 'tree' : 'data');
    builder.add(type, blobId(mac, data), codec, payload, data.length);
  }
  const { id, size } = builder.finish();
  const bytes = Buffer.concat(sink.parts);
  expect(bytes.length).toBe(size);
  return { bytes, id, salt: builder.salt, entries: builder.entries };
}

const BLOBS = [
  { type: 'data' as const, data: Buffer.from('a small file\n') },
  { type: 'tree' as const, data: Buffer.from(JSON.stringify({ nodes: [{ name: 'a', type: 'file' }] })) },
  { type: 'data' as const, data: randomBytes(300) },
];

describe('pack format', () => {
  it('names a pack by its prefix, its blobs\u2019 tags in order, its header and length; every blob reads back', () => {
    const { bytes, id, salt, entries } = build(BLOBS);
    expect(bytes.subarray(0, 4).toString()).toBe('JVP2');
    // The name, computed from the layout the format document gives.
    const headerStart = bytes.length - 4 - bytes.readUInt32LE(bytes.length - 4);
    const expected = createHash('sha256').update(bytes.subarray(0, PACK_PREFIX));
    let at = PACK_PREFIX;
    for (const entry of entries) {
      expect(entry.offset).toBe(at);
      at += entry.length;
      expect(entry.length).toBeGreaterThan(16);
      expected.update(bytes.subarray(at - 16, at));
    }
    expect(at).toBe(headerStart);
    expected.update(bytes.subarray(headerStart));
    expect(id).toBe(expected.digest('hex'));
    expect(id).not.toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(packProblem(enc, bytes, id)).toBeNull();
    entries.forEach((entry, i) => {
      expect(openBlob(enc, mac, salt, entry, bytes.subarray(entry.offset, entry.offset + entry.length), id)).toEqual(BLOBS[i]!.data);
    });
  });

  it('catches every flipped byte of a pack, by its name or header or by opening a blob', () => {
    const { bytes, id, salt, entries } = build(BLOBS);
    const caught = (damaged: Buffer): boolean => {
      if (packProblem(enc, damaged, id) !== null) return true;
      return entries.some((entry) => {
        try {
          openBlob(enc, mac, salt, entry, damaged.subarray(entry.offset, entry.offset + entry.length), id);
          return false;
        } catch {
          return true;
        }
      });
    };
    const missed: number[] = [];
    for (let at = 0; at < bytes.length; at++) {
      const damaged = Buffer.from(bytes);
      damaged[at] = damaged[at]! ^ 0x01;
      if (!caught(damaged)) missed.push(at);
    }
    expect(missed).toEqual([]);
    expect(packProblem(enc, bytes.subarray(0, bytes.length - 1), id)).not.toBeNull();
    expect(packProblem(enc, bytes, 'f'.repeat(64))).toBe('content does not match its name');
  });

  it('reports a pack whose blobs do not fill it from the prefix to the header', () => {
    const { bytes, salt, entries } = build(BLOBS);
    // Headers sealed with the pack's own key, as a faulty writer would: one with 5 stray bytes
    // before it, one whose first blob is said to start a byte late.
    const key = hkdf(enc, salt, 'jetvault/v1/pack');
    const headerStart = bytes.length - 4 - bytes.readUInt32LE(bytes.length - 4);
    const nonce = Buffer.alloc(12, 0xff);
    const table = open(key, nonce, bytes.subarray(headerStart, bytes.length - 4), Buffer.from('JVP2'), 'header');
    const reseal = (newTable: Buffer, gap: number): { pack: Buffer; name: string } => {
      const header = seal(key, nonce, newTable, Buffer.from('JVP2'));
      const length = Buffer.alloc(4);
      length.writeUInt32LE(header.length);
      const pack = Buffer.concat([bytes.subarray(0, headerStart), Buffer.alloc(gap), header, length]);
      // The name over the tags where the blobs' lengths put them, so only the layout is wrong.
      const name = createHash('sha256').update(pack.subarray(0, PACK_PREFIX));
      let at = PACK_PREFIX;
      for (const e of entries) name.update(pack.subarray((at += e.length) - 16, at));
      return { pack, name: name.update(pack.subarray(headerStart + gap)).digest('hex') };
    };
    const gapped = reseal(table, 5);
    expect(packProblem(enc, gapped.pack, gapped.name)).toBe('blobs do not fill the pack');
    const shifted = Buffer.from(table);
    shifted.writeUInt32LE(PACK_PREFIX + 1, 4 + 33); // the first entry's offset
    const late = reseal(shifted, 0);
    expect(packProblem(enc, late.pack, late.name)).toBe('blobs do not fill the pack');
  });

  it('reads and checks a pack written as JVP1, named by the SHA-256 of all its bytes', () => {
    const fixture = JSON.parse(readFileSync(join(__dirname, 'fixtures/jvp1-pack.json'), 'utf8')) as {
      enc: string;
      mac: string;
      id: string;
      salt: string;
      pack: string;
      entries: PackEntry[];
      blobs: { type: BlobType; id: string; text: string }[];
    };
    const key = Buffer.from(fixture.enc, 'hex');
    const bytes = Buffer.from(fixture.pack, 'base64');
    expect(bytes.subarray(0, 4).toString()).toBe('JVP1');
    expect(packProblem(key, bytes, fixture.id)).toBeNull();
    fixture.entries.forEach((entry, i) => {
      const data = openBlob(key, Buffer.from(fixture.mac, 'hex'), Buffer.from(fixture.salt, 'hex'), entry, bytes.subarray(entry.offset, entry.offset + entry.length), fixture.id);
      expect(data.toString()).toBe(fixture.blobs[i]!.text);
    });
    expect(fixture.entries.some((e) => e.type === 'data' && e.rawLength > e.length)).toBe(true); // a compressed blob among them
    // In a JVP1 pack any byte is covered by the name itself.
    const damaged = Buffer.from(bytes);
    damaged[fixture.entries[0]!.offset + 2]! ^= 0x01;
    expect(packProblem(key, damaged, fixture.id)).toBe('content does not match its name');
  });
});
