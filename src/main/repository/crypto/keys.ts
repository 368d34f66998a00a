/**
 * The master secret and its subkeys. The master secret never changes for the life of a
 * repository; passwords only wrap it (see key-slots.ts), so changing a password rewrites one slot.
 */
import { randomBytes } from 'node:crypto';
import { hkdf } from './aead';

export const MASTER_BYTES = 64;

export interface RepositoryKeys {
  /** Encrypts objects and packs (through per-object HKDF). */
  enc: Buffer;
  /** Keys blob ids. */
  mac: Buffer;
  /** Seeds the chunker's gear table, so chunk boundaries are secret too. */
  chunker: Buffer;
}

export function newMasterSecret(): Buffer {
  return randomBytes(MASTER_BYTES);
}

export function deriveKeys(master: Buffer): RepositoryKeys {
  const none = Buffer.alloc(0);
  return {
    enc: hkdf(master, none, 'jetvault/v1/enc'),
    mac: hkdf(master, none, 'jetvault/v1/mac'),
    chunker: hkdf(master, none, 'jetvault/v1/chunker'),
  };
}
