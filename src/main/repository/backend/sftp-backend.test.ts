/**
 * The SFTP backend against a real OpenSSH server (Debian's sshd, internal-sftp, on 127.0.0.x behind
 * a proxy that can cut the link): object semantics, ranges, listing past one page and nested
 * folders, pinned host keys, credentials, a whole repository, and a link dropped mid-upload.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { check } from '../checker/checker';
import { RepositoryError } from '../errors';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { findSnapshot } from '../snapshot/snapshot';
import { describeTree, FAST, makeAwkwardTree, PASSWORD, tempDir } from '../testing/fixtures';
import { useSftpServer } from '../testing/servers';
import { LocalSource } from '../walker/local-walker';
import { RetryBackend } from './retry-backend';
import { hostKeyFor, knownHostKeys, parseSftpLocation, SftpBackend, sftpOptionsFromEnv } from './sftp-backend';
import type { SftpOptions } from './sftp-backend';

const { why, server } = useSftpServer({ password: true });
if (why) console.log(`SFTP backend tests skipped: ${why}`);

const keyAuth = (): SftpOptions => ({ hostKey: server.hostKeyFingerprint, auth: () => ({ kind: 'key', privateKey: readFileSync(server.identityFile) }) });

async function backend(options: Partial<SftpOptions> = {}): Promise<SftpBackend> {
  const b = new SftpBackend(server.location(`r-${randomBytes(4).toString('hex')}`), { ...keyAuth(), ...options });
  await b.ensureRoot();
  return b;
}

/** Logins sshd accepted or refused so far (a refused host key must reach neither). */
function logins(): number {
  return readFileSync(join(server.dir, 'sshd.log'), 'utf8')
    .split('\n')
    .filter((l) => /Accepted |Failed |Invalid user/.test(l)).length;
}

describe('SFTP locations', () => {
  it('parse user, host, port and path, and refuse anything else', () => {
    expect(parseSftpLocation('sftp:backup@vault.depot:/srv/jetvault/north/')).toEqual({ user: 'backup', host: 'vault.depot', port: 22, path: '/srv/jetvault/north' });
    expect(parseSftpLocation('sftp:ops@10.0.0.5:2222:/data')).toEqual({ user: 'ops', host: '10.0.0.5', port: 2222, path: '/data' });
    expect(parseSftpLocation('sftp:ops@[fd00::5]:2222:repo')).toEqual({ user: 'ops', host: 'fd00::5', port: 2222, path: 'repo' });
    expect(() => parseSftpLocation('sftp:vault.depot:/srv')).toThrow(/expected sftp:USER@HOST\[:PORT\]:\/PATH/);
    expect(() => parseSftpLocation('sftp:ops@host:99999:/x')).toThrow(/not an SFTP location/);
    // The path left out: the port must not become a folder named after it on port 22.
    expect(() => parseSftpLocation('sftp:ops@host:2222')).toThrow(/no path \(2222 looks like a port\)/);
    expect(parseSftpLocation('sftp:ops@host:2222:2022')).toMatchObject({ port: 2222, path: '2022' });
  });

  it('pick the pinned host key for the host from JETVAULT_SFTP_HOST_KEY', () => {
    const where = { host: '10.0.0.5', port: 2222 };
    expect(hostKeyFor('SHA256:any', where)).toBe('SHA256:any');
    expect(hostKeyFor('SHA256:any, 10.0.0.5=SHA256:host, 10.0.0.5:2222=SHA256:port', where)).toBe('SHA256:port');
    expect(hostKeyFor('10.0.0.6=SHA256:other,10.0.0.5=SHA256:host', where)).toBe('SHA256:host');
    expect(hostKeyFor('10.0.0.6=SHA256:other', where)).toBeUndefined();
    expect(hostKeyFor(undefined, where)).toBeUndefined();
  });

  it('read the keys known_hosts lists for a host and port', () => {
    const key = Buffer.from('key blob').toString('base64');
    const text = [`vault.depot,10.0.0.5 ssh-ed25519 ${key}`, `[vault.depot]:2222 ssh-rsa ${key}`, `@revoked vault.depot ssh-ed25519 ${key}`, '# vault.depot ssh-ed25519 x', `other ssh-ed25519 ${key}`].join('\n');
    expect(knownHostKeys(text, 'vault.depot', 22).map((k) => k.type)).toEqual(['ssh-ed25519']);
    expect(knownHostKeys(text, '10.0.0.5', 22)).toHaveLength(1);
    expect(knownHostKeys(text, 'vault.depot', 2222).map((k) => k.type)).toEqual(['ssh-rsa']);
    expect(knownHostKeys(text, 'vault.depot', 2200)).toEqual([]);
    expect(knownHostKeys(text, 'vault.depot', 22)[0]!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('say which credentials are missing', () => {
    const options = sftpOptionsFromEnv('sftp:ops@host:/x', { HOME: '/nonexistent-home' });
    expect(() => options.auth()).toThrow(/JETVAULT_SFTP_IDENTITY .*JETVAULT_SFTP_PASSWORD/);
    expect(() => sftpOptionsFromEnv('sftp:ops@host:/x', { JETVAULT_SFTP_IDENTITY: '/nonexistent/key' }).auth()).toThrow(/Cannot read the SSH key \/nonexistent\/key/);
    expect(sftpOptionsFromEnv('sftp:ops@host:/x', { JETVAULT_SFTP_PASSWORD: 'pw', SSH_AUTH_SOCK: '/run/agent' }).auth()).toEqual({ kind: 'password', password: 'pw' });
  });
});

describe.skipIf(why)('the SFTP backend on a real OpenSSH server', () => {
  it('stores, replaces, reads (whole and ranges), lists past one page and nested, stats and deletes objects', async () => {
    const b = await backend();
    expect(await b.exists()).toBe(false);
    await b.put('keys/one', [Buffer.from('hello '), Buffer.from('world')]);
    expect((await b.get('keys/one')).toString()).toBe('hello world');
    expect((await b.get('keys/one', { offset: 6, length: 5 })).toString()).toBe('world');
    expect(await b.get('keys/one', { offset: 3, length: 0 })).toHaveLength(0);
    await b.put('keys/one', Buffer.from('replaced')); // an existing object is replaced (posix-rename)
    expect((await b.get('keys/one')).toString()).toBe('replaced');
    expect(await b.stat('keys/one')).toBe(8);
    expect(await b.stat('keys/none')).toBeNull();
    await expect(b.get('keys/none')).rejects.toMatchObject({ failure: 'not-found' });
    await expect(b.get('keys/one', { offset: 4, length: 10 })).rejects.toMatchObject({ failure: 'corrupt' });
    await b.delete('keys/none'); // absent: not an error
    for (const size of [0, 128 * 1024, 128 * 1024 + 1]) {
      const bytes = randomBytes(size);
      await b.put(`keys/s${size}`, bytes);
      expect((await b.get(`keys/s${size}`)).equals(bytes)).toBe(true);
      await b.delete(`keys/s${size}`);
    }

    // Larger than one request window, from many small pieces: ranges across request borders read right.
    const big = randomBytes(5 * 1024 * 1024 + 12345);
    const pieces = Array.from({ length: Math.ceil(big.length / 1000) }, (_, i) => big.subarray(i * 1000, (i + 1) * 1000));
    await b.put('data/ab/big', pieces);
    expect(await b.stat('data/ab/big')).toBe(big.length);
    const at = 128 * 1024 - 100;
    expect((await b.get('data/ab/big', { offset: at, length: 300 })).equals(big.subarray(at, at + 300))).toBe(true);
    expect((await b.get('data/ab/big', { offset: 1_000_000, length: 2_500_000 })).equals(big.subarray(1_000_000, 3_500_000))).toBe(true);
    expect((await b.get('data/ab/big')).equals(big)).toBe(true);

    await Promise.all(Array.from({ length: 1005 }, (_, i) => b.put(`index/${String(i).padStart(5, '0')}`, Buffer.from([i & 0xff]))));
    await Promise.all(['data/00/p1', 'data/ff/p2', 'data/ab/p3'].map((n) => b.put(n, Buffer.from(n))));
    const listed = await b.list('index/');
    expect(listed).toHaveLength(1005);
    expect(listed[1004]).toEqual({ name: 'index/01004', size: 1 });
    expect((await b.list('data/')).map((o) => o.name)).toEqual(['data/00/p1', 'data/ab/big', 'data/ab/p3', 'data/ff/p2']);
    expect((await b.list('data/ab/p')).map((o) => o.name)).toEqual(['data/ab/p3']);
    expect(await b.list('snapshots/')).toEqual([]); // no folder yet
    await b.delete('keys/one');
    expect(await b.stat('keys/one')).toBeNull();

    // Create-only puts (leases): of racing writers exactly one wins; a retry of our own write counts as created.
    const racers = await Promise.all(Array.from({ length: 6 }, (_, i) => b.putIfAbsent(`locks/exclusive-1`, Buffer.from(`writer ${i}`))));
    expect(racers.filter(Boolean)).toHaveLength(1);
    const winner = racers.indexOf(true);
    expect((await b.get('locks/exclusive-1')).toString()).toBe(`writer ${winner}`);
    expect(await new RetryBackend(b).putIfAbsent!('locks/exclusive-1', Buffer.from('late'))).toBe(false);
    // The store took the first attempt but its answer was lost (the link dropped): the retry finds our own bytes.
    let answers = 0;
    const lossy = {
      location: b.location,
      put: (name: string, data: Buffer) => b.put(name, data),
      get: (name: string) => b.get(name),
      stat: (name: string) => b.stat(name),
      list: (prefix: string) => b.list(prefix),
      delete: (name: string) => b.delete(name),
      exists: () => b.exists(),
      putIfAbsent: async (name: string, data: Buffer) => {
        const created = await b.putIfAbsent(name, data);
        if (answers++ === 0) throw new RepositoryError('unavailable', 'the SFTP connection was lost');
        return created;
      },
    };
    expect(await new RetryBackend(lossy, { baseDelayMs: 10 }).putIfAbsent!('locks/exclusive-2', Buffer.from('mine'))).toBe(true);
    expect(await new RetryBackend(lossy, { baseDelayMs: 10 }).putIfAbsent!('locks/exclusive-2', Buffer.from('theirs'))).toBe(false);
    expect(readdirSync(parseSftpLocation(b.location).path).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    b.close();
  }, 120_000);

  it('stages an object piece by piece, visible only on commit; removeStaged clears leftovers', async () => {
    const b = await backend();
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const staged = b.stage();
    for (let i = 0; i < data.length; i += 4096) staged.write(data.subarray(i, i + 4096));
    await staged.drained();
    expect(await b.list('data/')).toEqual([]);
    await staged.commit('data/cd/packed');
    expect((await b.get('data/cd/packed')).equals(data)).toBe(true);

    const dropped = b.stage();
    dropped.write(randomBytes(300_000));
    await dropped.drained();
    await dropped.discard();
    const left = b.stage(); // an interrupted writer's leftover
    left.write(randomBytes(1000));
    await left.drained();
    const root = parseSftpLocation(b.location).path;
    expect(readdirSync(root).filter((n) => n.startsWith('.tmp-'))).toHaveLength(1);
    expect(await b.removeStaged()).toBe(1);
    expect(readdirSync(root).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect((await b.list('')).map((o) => o.name)).toEqual(['data/cd/packed']);
    b.close();
  }, 60_000);

  it('refuses a changed host key before logging in, and writes nothing', async () => {
    const before = logins();
    const location = server.location('never-written');
    const wrong = new RetryBackend(new SftpBackend(location, { ...keyAuth(), hostKey: 'SHA256:q3kzBVc1Wo1Kj3Ry9EJ8gTtbQ1PqL6Jx2v3s7V3yX0Y' }), { baseDelayMs: 10 });
    const error = await wrong.put('config', Buffer.from('x')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'HOST_KEY_MISMATCH' });
    expect((error as Error).message).toMatch(/host key of repository server .* has CHANGED: expected SHA256:q3kz.*got SHA256:.*Nothing was sent/);
    expect(wrong.retries).toBe(0); // never retried
    const unknown = await new SftpBackend(location, { auth: keyAuth().auth }).stat('config').catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'HOST_KEY_UNKNOWN' });
    expect((unknown as Error).message).toContain(`JETVAULT_SFTP_HOST_KEY=${server.hostKeyFingerprint}`);
    expect(existsSync(parseSftpLocation(location).path)).toBe(false);
    expect(logins()).toBe(before); // no authentication was even attempted
  });

  it('trusts the key known_hosts lists for the server (hashed, as ssh-keyscan -H writes it) and refuses another', async () => {
    const location = `sftp:${server.user}@${server.direct.host}:${server.direct.port}:${server.storage}/kh-${randomBytes(3).toString('hex')}`;
    const known = join(await tempDir(), 'known_hosts');
    const scan = spawnSync('ssh-keyscan', ['-H', '-t', 'ed25519', '-p', String(server.direct.port), server.direct.host]);
    expect(scan.stdout.toString()).toMatch(/^\|1\|\S+ ssh-ed25519 /m);
    writeFileSync(known, `# scanned\n${scan.stdout.toString()}`);
    const env = { JETVAULT_SFTP_KNOWN_HOSTS: known, JETVAULT_SFTP_IDENTITY: server.identityFile };
    expect(sftpOptionsFromEnv(location, env).knownHosts!()).toEqual([{ type: 'ssh-ed25519', fingerprint: server.hostKeyFingerprint }]);
    const trusted = new SftpBackend(location, sftpOptionsFromEnv(location, env));
    await trusted.ensureRoot();
    await trusted.put('keys/k', Buffer.from('trusted through known_hosts'));
    trusted.close();

    const other = join(await tempDir(), 'id_other');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    writeFileSync(known, `[${server.direct.host}]:${server.direct.port} ${readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const before = logins();
    const refused = await new SftpBackend(location, sftpOptionsFromEnv(location, env)).stat('config').catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'HOST_KEY_MISMATCH' });
    expect((refused as Error).message).toMatch(/has CHANGED: known_hosts lists SHA256:.*the server presented SHA256:.*Nothing was sent/);
    expect(logins()).toBe(before);
  });

  it('says clearly when the password or the key is wrong, without retrying', async () => {
    const location = server.location(`pw-${randomBytes(3).toString('hex')}`);
    const wrongPassword = new RetryBackend(new SftpBackend(location, { hostKey: server.hostKeyFingerprint, auth: () => ({ kind: 'password', password: 'not-the-password' }) }), { baseDelayMs: 10 });
    await expect(wrongPassword.stat('config')).rejects.toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(/refused the credentials/) as unknown });
    expect(wrongPassword.retries).toBe(0);
    const otherKey = join(await tempDir(), 'id_other');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const wrongKey = new SftpBackend(location, { hostKey: server.hostKeyFingerprint, auth: () => ({ kind: 'key', privateKey: readFileSync(otherKey) }) });
    await expect(wrongKey.stat('config')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    const right = new SftpBackend(location, { hostKey: server.hostKeyFingerprint, auth: () => ({ kind: 'password', password: server.password }) });
    await right.ensureRoot();
    await right.put('keys/k', Buffer.from('by password'));
    expect(readFileSync(join(parseSftpLocation(location).path, 'keys', 'k'), 'utf8')).toBe('by password');
    right.close();
  });

  it('logs in through an ssh-agent when neither a key file nor a password is set', async () => {
    const socket = join(await tempDir(), 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(spawnSync('ssh-add', [server.identityFile], { env: { SSH_AUTH_SOCK: socket }, stdio: 'ignore' }).status).toBe(0);
      const location = server.location(`agent-${randomBytes(3).toString('hex')}`);
      const options = sftpOptionsFromEnv(location, { SSH_AUTH_SOCK: socket, JETVAULT_SFTP_HOST_KEY: `${server.host}=${server.hostKeyFingerprint}`, HOME: '/nonexistent-home' });
      expect(options.auth()).toEqual({ kind: 'agent', agentSocket: socket });
      const b = new SftpBackend(location, options);
      await b.ensureRoot();
      await b.put('keys/agent', Buffer.from('through the agent'));
      expect(readFileSync(join(parseSftpLocation(location).path, 'keys', 'agent'), 'utf8')).toBe('through the agent');
      b.close();
    } finally {
      agent.kill();
    }
  });

  it('says that a full disk on the server is the likely cause when a write fails without a reason', async () => {
    const name = `full-${randomBytes(4).toString('hex')}`;
    const mountPoint = join(server.storage, name);
    spawnSync('mkdir', [mountPoint]);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint]).status).toBe(0);
    try {
      spawnSync('chown', [server.user, mountPoint]);
      const b = new SftpBackend(server.location(`${name}/repo`), keyAuth());
      await b.ensureRoot();
      const failed = await b.put('data/ab/big', randomBytes(1024 * 1024)).then(() => null, (error: unknown) => error);
      b.close();
      expect(failed).toBeInstanceOf(RepositoryError);
      expect((failed as Error).message).toMatch(/failed: Failure \(the server gives no reason; for a write, a full disk or a quota on the server is the usual cause\)/);
    } finally {
      spawnSync('umount', [mountPoint]);
    }
  });

  it('holds a whole repository: backup, byte-exact restore, check reading all data', async () => {
    const b = await backend();
    const repo = await Repository.init(b, PASSWORD, FAST);
    const src = await tempDir();
    await makeAwkwardTree(src);
    writeFileSync(join(src, 'model.onnx'), randomBytes(4 * 1024 * 1024));
    const made = await backup(repo, new LocalSource([src]));
    const reopened = await Repository.open(new SftpBackend(b.location, keyAuth()), PASSWORD);
    const out = join(await tempDir(), 'out');
    await restore(reopened, await findSnapshot(reopened, made.id), out);
    expect(await describeTree(join(out, src))).toEqual(await describeTree(src));
    const report = await check(reopened, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.packsRead).toBeGreaterThan(1);
    await expect(Repository.open(new SftpBackend(b.location, keyAuth()), 'wrong password')).rejects.toMatchObject({ failure: 'wrong-password' });
    b.close();
    reopened.backend.close?.();
  }, 120_000);

  it('fails instead of hanging when the link goes silent (nothing heard for the allowed time), and reconnects once it is back', async () => {
    const b = await backend({ silentMs: 900 });
    await b.put('keys/a', Buffer.from('before the silence'));
    server.proxy.stall();
    try {
      const started = Date.now();
      await expect(b.get('keys/a')).rejects.toMatchObject({ failure: 'unavailable', message: expect.stringMatching(/connection .* was lost/) as unknown });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      server.proxy.restore();
    }
    expect((await b.get('keys/a')).toString()).toBe('before the silence');
    expect(b.connections).toBe(2);
    b.close();
  }, 30_000);

  it('retries an upload after the server dropped the session, on a new connection', async () => {
    const inner = await backend();
    const b = new RetryBackend(inner, { baseDelayMs: 200 });
    const big = randomBytes(48 * 1024 * 1024);
    const upload = b.put('data/ee/big', big);
    const root = parseSftpLocation(inner.location).path;
    // Kill the session once the temp file is growing: the server side of the connection is gone.
    for (let i = 0; i < 400; i++) {
      const temp = readdirSync(root).find((n) => n.startsWith('.tmp-'));
      if (temp && statSync(join(root, temp)).size > 1024 * 1024) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(await server.killSessions()).toBeGreaterThan(0);
    await upload;
    expect(b.retries).toBeGreaterThan(0);
    expect(inner.connections).toBeGreaterThanOrEqual(2);
    expect((await b.get('data/ee/big')).equals(big)).toBe(true);
    b.close();
  }, 120_000);

  it('a backup survives a link cut mid-upload; one that outlasts the retries fails cleanly and the next completes', async () => {
    const location = server.location(`cut-${randomBytes(3).toString('hex')}`);
    const init = new SftpBackend(location, keyAuth());
    await init.ensureRoot();
    await Repository.init(init, PASSWORD, FAST);
    init.close();
    const src = await tempDir();
    await makeAwkwardTree(src);
    writeFileSync(join(src, 'model.onnx'), randomBytes(24 * 1024 * 1024));
    const root = parseSftpLocation(location).path;
    const packs = (): number => (existsSync(join(root, 'data')) ? readdirSync(join(root, 'data')).reduce((n, d) => n + readdirSync(join(root, 'data', d)).length, 0) : 0);
    const cutWhenUploading = async (restoreAfterMs: number | null): Promise<void> => {
      const before = packs();
      for (let i = 0; i < 1000 && packs() < before + 4; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(packs()).toBeGreaterThanOrEqual(before + 4); // the backup is uploading now
      server.proxy.cut();
      if (restoreAfterMs !== null) setTimeout(() => server.proxy.restore(), restoreAfterMs);
    };

    // Cut for 1.5 s: the retries (0.2 s, 0.4 s, 0.8 s, ...) reconnect once the link is back.
    const sturdy = new RetryBackend(new SftpBackend(location, keyAuth()), { baseDelayMs: 200 });
    const repo = await Repository.open(sturdy, PASSWORD);
    const [made] = await Promise.all([backup(repo, new LocalSource([src])), cutWhenUploading(1500)]);
    expect(sturdy.retries).toBeGreaterThan(0);
    expect(made.warnings).toEqual([]);

    // Cut for good: the retries run out and the backup fails with a clear, retryable error.
    const brief = new RetryBackend(new SftpBackend(location, keyAuth()), { attempts: 3, baseDelayMs: 100 });
    const repo2 = await Repository.open(brief, PASSWORD);
    writeFileSync(join(src, 'model.onnx'), randomBytes(24 * 1024 * 1024));
    const [failed] = await Promise.all([backup(repo2, new LocalSource([src])).catch((e: unknown) => e), cutWhenUploading(null)]);
    expect(failed).toMatchObject({ code: 'UNAVAILABLE' });
    server.proxy.restore();
    sturdy.close();
    brief.close();

    // The next backup completes and the repository checks clean.
    const after = new RetryBackend(new SftpBackend(location, keyAuth()));
    const repo3 = await Repository.open(after, PASSWORD);
    const next = await backup(repo3, new LocalSource([src]));
    const out = join(await tempDir(), 'out');
    await restore(repo3, await findSnapshot(repo3, next.id), out);
    expect(await describeTree(join(out, src))).toEqual(await describeTree(src));
    const report = await check(repo3, { readData: true });
    expect(report.errors).toEqual([]);
    after.close();
  }, 180_000);
});
