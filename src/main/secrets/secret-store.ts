import { randomBytes } from 'node:crypto';
import { AppError } from '../../shared/errors';
import type { HistoryStore } from '../history/history-store';
import { PassphraseCipher, UnavailableCipher } from './secret-cipher';
import type { SecretCipher } from './secret-cipher';
import { counted } from '../../shared/plural';

/** Secrets by reference (e.g. `device:rvm-017:password`), encrypted by the cipher in force. */
export class SecretStore {
  readonly #store: HistoryStore;
  readonly #cipher: SecretCipher;

  constructor(store: HistoryStore, cipher: SecretCipher) {
    this.#store = store;
    this.#cipher = cipher;
  }

  /** What encrypts secrets here, as the console says it: the OS keychain, the secrets passphrase, or nothing usable. */
  get protection(): 'keychain' | 'passphrase' | 'none' {
    return this.#cipher instanceof UnavailableCipher ? 'none' : this.#cipher instanceof PassphraseCipher ? 'passphrase' : 'keychain';
  }

  /** The passphrase cipher for this history (its salt is created once and kept in the store). */
  static passphraseCipher(store: HistoryStore, passphrase: string | undefined): SecretCipher {
    if (!passphrase) return new UnavailableCipher();
    // Too short to use: only what needs a secret stops, saying why — not every command, key-only devices' backups included.
    if (passphrase.length < PassphraseCipher.MIN_LENGTH) return new UnavailableCipher(new AppError('VALIDATION', `The secrets passphrase must have at least ${PassphraseCipher.MIN_LENGTH} characters (JETVAULT_SECRETS_PASSPHRASE)`));
    let salt = store.sql.metaGet.get('secrets.salt')?.value;
    if (!salt) {
      salt = randomBytes(16).toString('base64');
      store.sql.metaSet.run('secrets.salt', salt);
    }
    return new PassphraseCipher(passphrase, Buffer.from(salt, 'base64'));
  }

  set(ref: string, value: string): void {
    this.#checkPassphrase(ref);
    this.#store.sql.secretUpsert.run(ref, this.#cipher.scheme, this.#cipher.encrypt(value), new Date().toISOString());
  }

  /** `what` names the secret in messages (e.g. "rvm-017's password"); its reference otherwise. */
  get(ref: string, what = `The secret ${ref}`): string | null {
    const row = this.#store.sql.secretGet.get(ref);
    if (!row) return null;
    // Without any cipher, decrypt() explains what to set up; with another one, the secret is unreadable here.
    if (row.scheme !== this.#cipher.scheme && this.#cipher.scheme !== 'none') {
      throw new AppError('UNAVAILABLE', `${what} was stored by ${row.scheme} and cannot be read with ${this.#cipher.scheme}; enter it again`);
    }
    try {
      return this.#cipher.decrypt(row.blob);
    } catch (error) {
      // The passphrase opens the other secrets: this one's bytes are damaged, the passphrase is not wrong.
      if (this.#cipher instanceof PassphraseCipher && this.#opensAny(ref)) {
        throw new AppError('UNAVAILABLE', `${what} is damaged (JETVAULT_SECRETS_PASSPHRASE opens the other stored secrets, not this one): enter it again`);
      }
      throw error;
    }
  }

  /** Whether the cipher opens any stored secret of its scheme other than `except`. */
  #opensAny(except: string): boolean {
    return this.refs('').some((ref) => {
      const row = ref === except ? undefined : this.#store.sql.secretGet.get(ref);
      if (row?.scheme !== this.#cipher.scheme) return false;
      try {
        this.#cipher.decrypt(row.blob);
        return true;
      } catch {
        return false;
      }
    });
  }

  /**
   * A passphrase that opens none of the secrets already stored (a mistyped
   * JETVAULT_SECRETS_PASSPHRASE) stores nothing: secrets under two passphrases could never all be
   * read again. `replacing` is left out: what it holds is overwritten.
   */
  #checkPassphrase(replacing: string): void {
    if (!(this.#cipher instanceof PassphraseCipher)) return;
    const stored = this.refs('').filter((ref) => ref !== replacing && this.#store.sql.secretGet.get(ref)?.scheme === this.#cipher.scheme);
    if (stored.length === 0 || this.#opensAny(replacing)) return;
    throw new AppError(
      'AUTH_FAILED',
      `JETVAULT_SECRETS_PASSPHRASE does not open the ${counted(stored.length, 'secret')} already stored, so nothing was stored: under two passphrases they could never all be read again. ` +
        'Set it to the passphrase they were saved with (if that is lost, so are they: remove the devices and repositories that hold them, then add them again).',
    );
  }

  /** Whether there is a cipher to store secrets with (the keyring, or a usable passphrase). */
  get available(): boolean {
    return this.#cipher.scheme !== 'none';
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
