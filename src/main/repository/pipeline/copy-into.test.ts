import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { copyInto } from './copy-into';

describe('copyInto', () => {
  it('copies like set() into shared memory at every alignment of source and target', () => {
    const source = randomBytes(4096 + 16);
    for (let from = 0; from < 8; from++) {
      for (let at = 0; at < 8; at++) {
        const target = Buffer.from(new SharedArrayBuffer(8192));
        const expected = Buffer.alloc(8192);
        const part = source.subarray(from, from + 4096 + (at % 3));
        copyInto(target, part, at + 100);
        expected.set(part, at + 100);
        expect(Buffer.compare(target, expected)).toBe(0);
      }
    }
  });

  it('copies out of shared memory into a plain view (a wasm memory, a tail)', () => {
    const shared = Buffer.from(new SharedArrayBuffer(1000));
    shared.set(randomBytes(1000));
    const plain = new Uint8Array(500);
    copyInto(plain, shared.subarray(3, 403), 7);
    expect(Buffer.from(plain.subarray(7, 407)).equals(shared.subarray(3, 403))).toBe(true);
    expect(plain.subarray(0, 7).every((b) => b === 0) && plain.subarray(407).every((b) => b === 0)).toBe(true);
  });

  it('writes relative to a view that starts inside its buffer', () => {
    const shared = new SharedArrayBuffer(64);
    const view = new Uint8Array(shared, 5, 40);
    copyInto(view, Buffer.from('abc'), 2);
    expect(Buffer.from(shared).subarray(5, 12)).toEqual(Buffer.from([0, 0, 97, 98, 99, 0, 0]));
    expect(() => copyInto(view, Buffer.alloc(4, 1), 38)).toThrow(RangeError);
    expect(Buffer.from(shared).subarray(40).every((b) => b === 0)).toBe(true);
  });

  it('does nothing for an empty source and refuses a range past the end without writing', () => {
    const target = Buffer.from(new SharedArrayBuffer(16));
    copyInto(target, new Uint8Array(0), 16);
    expect(target.every((b) => b === 0)).toBe(true);
    expect(() => copyInto(target, Buffer.alloc(8, 1), 12)).toThrow(RangeError);
    expect(target.every((b) => b === 0)).toBe(true);
  });
});
