/**
 * The restic-style CLI on a repository on a real OpenSSH server over SFTP: init creates the folder,
 * backup, snapshots, restore and check work through `-r sftp:…` with the host key and the key file
 * from the environment; an unpinned or changed host key is refused with a clear error and nothing
 * is written; snapshots are listed from the local metadata cache the second time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../main/event-bus';
import { HistoryStore } from '../main/history/history-store';
import { silentLogger } from '../main/log';
import { MetadataCache } from '../main/repository/backend/metadata-cache';
import { listSnapshots } from '../main/repository/snapshot/snapshot';
import { useSftpServer } from '../main/repository/testing/servers';
import { RepositoryService } from '../main/services/repository-service';
import { SettingsService } from '../main/services/settings-service';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const { why, server } = useSftpServer();
if (why) console.log(`SFTP CLI tests skipped: ${why}`);

describe.skipIf(why)('jetvault with an SFTP repository', () => {
  it('init, backup, snapshots, restore and check through -r sftp:…', async () => {
    const name = `cli-${randomBytes(3).toString('hex')}`;
    const repo = server.location(name);
    const home = tempDir();
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'sftp cli test repository password', JETVAULT_SFTP_HOST_KEY: server.hostKeyFingerprint, JETVAULT_SFTP_IDENTITY: server.identityFile };
    const run = cliRunner(env);
    const src = tempDir();
    mkdirSync(path.join(src, 'etc'));
    writeFileSync(path.join(src, 'etc', 'config.yaml'), 'fps: 30\n');
    writeFileSync(path.join(src, 'model.onnx'), randomBytes(3 * 1024 * 1024));

    expect(await run('init', '-r', repo)).toMatchObject({ code: 0 });
    expect(existsSync(path.join(server.storage, name, 'config'))).toBe(true);
    expect((await run('init', '-r', repo)).err).toMatch(/already exists/);
    expect((await run('backup', '-r', repo, src, '--json')).code).toBe(0);
    const listed = JSON.parse((await run('snapshots', '-r', repo, '--json')).out) as { id: string }[];
    expect(listed).toHaveLength(1);
    // The snapshot and index objects now have encrypted copies in the cache, none in plain text.
    const cacheDirs = readdirSync(path.join(home, 'cache'));
    expect(cacheDirs).toHaveLength(1);
    expect(readdirSync(path.join(home, 'cache', cacheDirs[0]!, 'snapshots'))).toEqual([expect.stringMatching(new RegExp(`^${listed[0]!.id}$`))]);
    const target = tempDir();
    expect((await run('restore', '-r', repo, 'latest', '--target', target)).code).toBe(0);
    expect(readFileSync(path.join(target, src, 'model.onnx')).equals(readFileSync(path.join(src, 'model.onnx')))).toBe(true);
    expect((await run('check', '-r', repo, '--read-data')).code).toBe(0);
    // prune runs under an exclusive lease: a create-only generation over SFTP (hardlink@openssh.com).
    expect((await run('prune', '-r', repo)).code).toBe(0);
    expect(readdirSync(path.join(server.storage, name, 'locks'))).toEqual([]);
  }, 120_000);

  it('refuses an unpinned or changed host key with a clear error and writes nothing', async () => {
    const name = `refused-${randomBytes(3).toString('hex')}`;
    // No known_hosts either (not this machine's own ~/.ssh/known_hosts).
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'sftp cli test repository password', JETVAULT_SFTP_IDENTITY: server.identityFile, JETVAULT_SFTP_KNOWN_HOSTS: path.join(tempDir(), 'known_hosts') };
    const unpinned = await cliRunner(env)('init', '-r', server.location(name));
    expect(unpinned.code).not.toBe(0);
    expect(unpinned.err).toContain(`not pinned`);
    expect(unpinned.err).toContain(`JETVAULT_SFTP_HOST_KEY=${server.hostKeyFingerprint}`);
    const changed = await cliRunner({ ...env, JETVAULT_SFTP_HOST_KEY: 'SHA256:q3kzBVc1Wo1Kj3Ry9EJ8gTtbQ1PqL6Jx2v3s7V3yX0Y' })('init', '-r', server.location(name));
    expect(changed.code).not.toBe(0);
    expect(changed.err).toMatch(/has CHANGED: expected SHA256:q3kz.* Nothing was sent/);
    expect(existsSync(path.join(server.storage, name))).toBe(false);
  }, 60_000);

  it('the console opens it with JETVAULT_REPOSITORY, through the cache, and drops the connection when locked', async () => {
    const location = server.location(`console-${randomBytes(3).toString('hex')}`);
    const data = tempDir();
    const env = { JETVAULT_REPOSITORY: location, JETVAULT_PASSWORD: 'sftp console test password', JETVAULT_SFTP_HOST_KEY: server.hostKeyFingerprint, JETVAULT_SFTP_IDENTITY: server.identityFile };
    const history = new HistoryStore(data);
    const service = new RepositoryService(data, new SettingsService(history, new EventBus(), silentLogger), env);
    expect(await service.status()).toMatchObject({ location, exists: false, unlocked: false });
    await service.init(env.JETVAULT_PASSWORD);
    service.lock();
    const repo = await service.open();
    expect(await listSnapshots(repo)).toEqual([]);
    expect(repo.backend).toBeInstanceOf(MetadataCache);
    expect((repo.backend as MetadataCache).dir).toBe(path.join(data, 'cache', repo.config.id));
    const sessions = (): number => readFileSync(path.join(server.dir, 'sshd.log'), 'utf8').split('Disconnected from user').length;
    const before = sessions();
    service.lock();
    for (let i = 0; i < 100 && sessions() === before; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(sessions()).toBeGreaterThan(before);
    expect(await service.status()).toMatchObject({ exists: true, unlocked: false });
    history.close();
  }, 60_000);
});
