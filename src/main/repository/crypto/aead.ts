/**
 * AES-256-GCM primitives and key derivation. Every key that encrypts data is derived from the
 * master secret through HKDF with a fresh random salt per object/pack, so nonces never need to be
 * random: a fresh key per object makes a fixed or counter nonce unique by construction.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, createHmac } from 'node:crypto';
import { RepositoryError } from '../errors';

export const KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const NONCE_BYTES = 12;
export const SALT_BYTES = 32;

export function hkdf(ikm: Buffer, salt: Buffer, info: string, length = KEY_BYTES): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from(info, 'utf8'), length));
}

export function randomSalt(): Buffer {
  return randomBytes(SALT_BYTES);
}

/** Returns ciphertext || tag. */
export function seal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([head, tail, cipher.getAuthTag()]);
}

/** Opens ciphertext || tag; throws a `corrupt` RepositoryError naming `what` if authentication fails. */
export function open(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer, what: string): Buffer {
  if (sealed.length < TAG_BYTES) throw new RepositoryError('corrupt', `${what}: truncated ciphertext`);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new RepositoryError('corrupt', `${what}: authentication failed (data damaged or tampered with)`);
  }
}

/** Keyed blob id: HMAC-SHA-256 under the repository's MAC key, so ids do not reveal known plaintexts. */
export function blobId(macKey: Buffer, plaintext: Buffer): Buffer {
  return createHmac('sha256', macKey).update(plaintext).digest();
}
