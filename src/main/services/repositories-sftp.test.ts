/**
 * Settings → Repositories with an SFTP secondary on a real OpenSSH server (through the fleet's
 * proxy, which counts the connections): testing it, over and over, or making it primary leaves no
 * SSH connection behind in the console.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SftpBackend } from '../repository/backend/sftp-backend';
import { Repository } from '../repository/repo/repository';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { useSftpServer } from '../repository/testing/servers';
import { tempDir } from '../testing/temp-dir';
import type { Services } from './index';
import { cliServices } from '../testing/test-console';

const { why, server } = useSftpServer();
if (why) console.log(`SFTP repositories tests skipped: ${why}`);

const open: Services[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.dispose();
});

const OFFSITE_PASSWORD = 'the offsite repository password';

/** Waits (bounded) until the proxy carries no more than `n` connections; returns what it carries. */
async function settleTo(n: number): Promise<number> {
  for (let i = 0; i < 50 && server.proxy.connections > n; i++) await new Promise((r) => setTimeout(r, 100));
  return server.proxy.connections;
}

describe.skipIf(why)('an SFTP repository in Settings → Repositories', () => {
  it('is tested and made primary without leaving SSH connections open', { timeout: 120_000 }, async () => {
    const location = server.location(`offsite-${randomBytes(3).toString('hex')}`);
    const env = { JETVAULT_PASSWORD: PASSWORD, JETVAULT_SECRETS_PASSPHRASE: 'secrets passphrase for the test', JETVAULT_SFTP_HOST_KEY: server.hostKeyFingerprint, JETVAULT_SFTP_IDENTITY: server.identityFile };
    const made = new SftpBackend(location, { hostKey: server.hostKeyFingerprint, auth: () => ({ kind: 'key', privateKey: readFileSync(server.identityFile) }) });
    await made.ensureRoot();
    await Repository.init(made, OFFSITE_PASSWORD, FAST);
    made.close();
    expect(await settleTo(0)).toBe(0);

    const services = cliServices(tempDir(), env);
    open.push(services);
    await services.repository.init(PASSWORD, FAST);
    const entry = services.repositories.add({ location, password: OFFSITE_PASSWORD, offsite: true }, 'test');
    for (let i = 0; i < 3; i++) expect(await services.repositories.test(entry.id, 'test')).toMatchObject({ reachable: true, initialised: true, snapshots: 0, error: null });
    expect(await settleTo(0)).toBe(0);

    // A wrong stored password: the test says so, and closes its connection too.
    services.repositories.update({ id: entry.id, password: 'not the password' }, 'test');
    expect((await services.repositories.test(entry.id, 'test')).error).toMatch(/password/i);
    expect(await settleTo(0)).toBe(0);

    // Made primary: the console keeps the one connection it backs up through, not the proof's too.
    services.repositories.update({ id: entry.id, password: OFFSITE_PASSWORD }, 'test');
    await services.repositories.setPrimary(entry.id, 'test');
    expect(services.repository.location()).toBe(location);
    expect(await settleTo(1)).toBe(1);
    services.repository.lock();
    expect(await settleTo(0)).toBe(0);
  });
});
