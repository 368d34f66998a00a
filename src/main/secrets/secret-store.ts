import { randomBytes } from 'node:crypto';
import { AppError } from '../../shared/errors';
import type { HistoryStore } from '../history/history-store';
import { PassphraseCipher, UnavailableCipher } from './secret-cipher';
import type { SecretCipher } from './secret-cipher';

/** Secrets by reference (e.g. `device:rvm-017:password`), encrypted by the cipher in force. */
export class SecretStore {
  readonly #store: HistoryStore;
  readonly #cipher: SecretCipher;

  constructor(store: HistoryStore, cipher: SecretCipher) {
    this.#store = store;
    this.#cipher = cipher;
  }

  /** The passphrase cipher for this history (its salt is created once and kept in the store). */
  static passphraseCipher(store: HistoryStore, passphrase: string | undefined): SecretCipher {
    if (!passphrase) return new UnavailableCipher();
    let salt = store.sql.metaGet.get('secrets.salt')?.value;
    if (!salt) {
      salt = randomBytes(16).toString('base64');
      store.sql.metaSet.run('secrets.salt', salt);
    }
    return new PassphraseCipher(passphrase, Buffer.from(salt, 'base64'));
  }

  set(ref: string, value: string): void {
    this.#store.sql.secretUpsert.run(ref, this.#cipher.scheme, this.#cipher.encrypt(value), new Date().toISOString());
  }

  get(ref: string): string | null {
    const row = this.#store.sql.secretGet.get(ref);
    if (!row) return null;
    // Without any cipher, decrypt() explains what to set up; with another one, the secret is unreadable here.
    if (row.scheme !== this.#cipher.scheme && this.#cipher.scheme !== 'none') {
      throw new AppError('UNAVAILABLE', `The secret ${ref} was stored by ${row.scheme} and cannot be read with ${this.#cipher.scheme}; enter it again`);
    }
    return this.#cipher.decrypt(row.blob);
  }

  has(ref: string): boolean {
    return this.#store.sql.secretGet.get(ref) !== undefined;
  }

  delete(ref: string): void {
    this.#store.sql.secretDelete.run(ref);
  }

  deletePrefix(prefix: string): void {
    this.#store.sql.secretDeletePrefix.run(like(prefix));
  }

  /** The references that start with `prefix`, without it. */
  refs(prefix: string): string[] {
    return this.#store.sql.secretRefsPrefix.all(like(prefix)).map((row) => row.ref.slice(prefix.length));
  }
}

/** A LIKE pattern for everything that starts with `prefix`. */
function like(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}
