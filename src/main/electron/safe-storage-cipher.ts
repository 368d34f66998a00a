import { safeStorage } from 'electron';
import { AppError } from '../../shared/errors';
import type { SecretCipher } from '../secrets/secret-cipher';

/** Secrets encrypted by the OS (Keychain, DPAPI, libsecret/kwallet) through Electron's safeStorage. */
export class SafeStorageCipher implements SecretCipher {
  readonly scheme = 'electron-safestorage-v1';

  static available(): boolean {
    // On Linux without a keyring, safeStorage falls back to a hard-coded key: not acceptable for secrets.
    return safeStorage.isEncryptionAvailable() && !(process.platform === 'linux' && safeStorage.getSelectedStorageBackend() === 'basic_text');
  }

  encrypt(plain: string): Buffer {
    if (!SafeStorageCipher.available()) throw new AppError('UNAVAILABLE', 'No OS keyring is available to protect passwords; use an SSH key or agent');
    return safeStorage.encryptString(plain);
  }

  decrypt(blob: Buffer): string {
    return safeStorage.decryptString(blob);
  }
}
