/**
 * Whole-object encryption for config, index, snapshot and lock objects:
 *   version u8 (=1) | salt[32] | AES-256-GCM(key, nonce=0^12, codec u8 | body, aad=kind) | tag[16]
 * key = HKDF-SHA-256(enc, salt, "jetvault/v1/object/" + kind). The kind in the AAD and the key
 * stops an index from being passed off as a snapshot.
 */
import { createHmac } from 'node:crypto';
import { RepositoryError } from '../errors';
import { decompress, compress } from '../compress/codec';
import { hkdf, open, randomSalt, seal, NONCE_BYTES, SALT_BYTES } from './aead';

/** `checkpoint`: what a backup run cut off part-way stored, kept on this computer only (devices/resume-store.ts). */
export type ObjectKind = 'config' | 'index' | 'snapshot' | 'lock' | 'checkpoint';
const VERSION = 1;
const ZERO_NONCE = Buffer.alloc(NONCE_BYTES);

/**
 * With `derived`, the salt is a keyed hash of the plaintext instead of random (as in SIV): equal
 * objects get equal bytes, hence one name, and different plaintexts still get different keys, so
 * the zero nonce is never reused under one key. Used for copied snapshots (two copies of one
 * snapshot are one object); it reveals only that two such objects are equal.
 */
export function sealObject(enc: Buffer, kind: ObjectKind, body: Buffer, tryCompress = true, derived = false): Buffer {
  const { codec, data } = tryCompress ? compress(body) : { codec: 0, data: body };
  const plaintext = Buffer.concat([Buffer.from([codec]), data]);
  const salt = derived ? createHmac('sha256', hkdf(enc, Buffer.alloc(0), 'jetvault/v1/object-salt')).update(`${kind}\0`).update(plaintext).digest() : randomSalt();
  const key = hkdf(enc, salt, `jetvault/v1/object/${kind}`);
  return Buffer.concat([Buffer.from([VERSION]), salt, seal(key, ZERO_NONCE, plaintext, Buffer.from(kind))]);
}

export function openObject(enc: Buffer, kind: ObjectKind, stored: Buffer, name: string): Buffer {
  if (stored.length < 1 + SALT_BYTES + 17 || stored[0] !== VERSION) {
    throw new RepositoryError('corrupt', `${kind} ${name}: unknown object version or truncated`);
  }
  const salt = stored.subarray(1, 1 + SALT_BYTES);
  const key = hkdf(enc, salt, `jetvault/v1/object/${kind}`);
  const plaintext = open(key, ZERO_NONCE, stored.subarray(1 + SALT_BYTES), Buffer.from(kind), `${kind} ${name}`);
  return decompress(plaintext[0] ?? -1, plaintext.subarray(1), `${kind} ${name}`);
}

export function sealJson(enc: Buffer, kind: ObjectKind, value: unknown, options: { derivedSalt?: boolean } = {}): Buffer {
  return sealObject(enc, kind, Buffer.from(JSON.stringify(value), 'utf8'), true, options.derivedSalt === true);
}

export function openJson<T>(enc: Buffer, kind: ObjectKind, stored: Buffer, name: string): T {
  return JSON.parse(openObject(enc, kind, stored, name).toString('utf8')) as T;
}
