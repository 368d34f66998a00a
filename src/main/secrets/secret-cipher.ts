/**
 * How secrets (device passwords, key passphrases) are encrypted at rest in the history store.
 * In the app: Electron's safeStorage (OS keychain / DPAPI / libsecret), passed in by the glue.
 * Elsewhere (CLI, test host, servers): AES-256-GCM under a key derived with scrypt from a
 * passphrase the operator provides (JETVAULT_SECRETS_PASSPHRASE). Without either, storing a
 * secret is refused: nothing is ever written in the clear.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { AppError } from '../../shared/errors';

export interface SecretCipher {
  /** Stored beside each secret so a store can tell which cipher wrote it. */
  readonly scheme: string;
  encrypt(plain: string): Buffer;
  decrypt(blob: Buffer): string;
}

const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

/** AES-256-GCM with a passphrase-derived key; blob = nonce(12) | tag(16) | ciphertext. */
export class PassphraseCipher implements SecretCipher {
  readonly scheme = 'scrypt-aes256gcm-v1';
  static readonly MIN_LENGTH = 8;
  readonly #key: Buffer;

  constructor(passphrase: string, salt: Buffer) {
    if (passphrase.length < PassphraseCipher.MIN_LENGTH) throw new AppError('VALIDATION', 'The secrets passphrase must have at least 8 characters');
    this.#key = scryptSync(passphrase.normalize('NFC'), salt, 32, SCRYPT);
  }

  encrypt(plain: string): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([nonce, cipher.getAuthTag(), body]);
  }

  decrypt(blob: Buffer): string {
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, blob.subarray(0, 12));
      decipher.setAuthTag(blob.subarray(12, 28));
      return Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      throw new AppError('AUTH_FAILED', 'Stored secrets cannot be decrypted: wrong JETVAULT_SECRETS_PASSPHRASE?');
    }
  }
}

/**
 * Used when no cipher is available: reading and writing secrets explain what to set up (`why`: a
 * passphrase given that cannot be used, said instead).
 */
export class UnavailableCipher implements SecretCipher {
  readonly scheme = 'none';
  readonly #why: AppError | null;

  constructor(why: AppError | null = null) {
    this.#why = why;
  }

  encrypt(): Buffer {
    throw this.#why ?? new AppError('UNAVAILABLE', 'Cannot store a password here: set JETVAULT_SECRETS_PASSPHRASE (8+ characters) to encrypt secrets at rest, or use an SSH key or agent instead');
  }

  decrypt(): string {
    throw this.#why ?? new AppError('UNAVAILABLE', 'Stored passwords are encrypted: set JETVAULT_SECRETS_PASSPHRASE to the passphrase used when they were saved');
  }
}
