/**
 * A device key (or the SFTP repository's) that other users of the laptop can read is refused, as
 * OpenSSH refuses it ("UNPROTECTED PRIVATE KEY FILE"), with what to run; 0600 is used as before.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HistoryStore } from '../history/history-store';
import { sftpOptionsFromEnv } from '../repository/backend/sftp-backend';
import { SecretStore } from '../secrets/secret-store';
import { tempDir } from '../testing/temp-dir';
import { DeviceService } from './device-service';

function keyFile(): string {
  const key = path.join(tempDir(), 'id_ed25519');
  expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]).status).toBe(0);
  return key;
}

describe('a private key file other users can read', () => {
  it('is refused for a device, saying how to fix it, and used once it is 0600', async () => {
    const key = keyFile();
    const store = new HistoryStore(tempDir());
    try {
      const devices = new DeviceService(store, new SecretStore(store, SecretStore.passphraseCipher(store, 'correct horse battery staple')));
      devices.add({ name: 'rvm-017', host: '127.0.0.2', port: 2222, user: 'jetson', identityFile: key, hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: [] }, {}, 'test');
      for (const mode of [0o644, 0o640, 0o604]) {
        chmodSync(key, mode);
        await expect(devices.connectOptions('rvm-017')).rejects.toThrow(`rvm-017: the key file ${key} can be read by other users of this computer (mode 0${mode.toString(8)}); ssh refuses such a key: run chmod 600 ${key}`);
      }
      chmodSync(key, 0o600);
      expect((await devices.connectOptions('rvm-017')).auth).toMatchObject({ kind: 'key' });
    } finally {
      store.close();
    }
  });

  it('is refused for an SFTP repository', () => {
    const key = keyFile();
    chmodSync(key, 0o644);
    const options = sftpOptionsFromEnv('sftp:backup@127.0.0.1:/srv/jetvault', { JETVAULT_SFTP_IDENTITY: key, HOME: tempDir() });
    expect(() => options.auth()).toThrow(/can be read by other users of this computer \(mode 0644\); ssh refuses such a key: run chmod 600/);
    chmodSync(key, 0o600);
    expect(options.auth()).toMatchObject({ kind: 'key' });
  });
});
