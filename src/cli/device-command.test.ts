import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, symlinkSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../fleet/index';
import type { Fleet } from '../../fleet/index';
import { psql } from '../../fleet/postgres';
import { tempDir } from '../main/testing/temp-dir';
import { filesHolding } from '../main/testing/plaintext';
import { cliRunner } from './testing';

let fleet: Fleet;
beforeAll(async () => {
  // Password login on as well, as on a stock JetPack image.
  fleet = await startFleet({ devices: 1, sharedModelMB: 2, uniqueModelMB: 1, passwords: true });
}, 240_000);
afterAll(async () => {
  await fleet?.stop();
}, 120_000);

describe('jetvault device', () => {
  it('adds a device whose key is locked only with its passphrase (from a file), kept encrypted for later logins', async () => {
    const device = fleet.devices[0]!;
    const dir = tempDir();
    const locked = path.join(dir, 'id_locked');
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'key passphrase', '-C', 'cli locked key', '-f', locked]).status).toBe(0);
    appendFileSync(path.join(device.dir, 'authorized_keys'), readFileSync(`${locked}.pub`));
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_SECRETS_PASSPHRASE: 'cli secrets passphrase' });
    const base = ['device', 'add', 'rvm-locked', '--host', device.host, '--port', String(device.port), '--user', device.user, '--identity', locked, '--host-key', device.hostKeyFingerprint];

    const without = await run(...base);
    expect(without.code).toBe(1);
    expect(without.err).toMatch(/cannot be used.*passphrase/i);
    expect((await run('device', 'list', '--json')).out).toBe('[]');

    const passphraseFile = path.join(dir, 'passphrase');
    writeFileSync(passphraseFile, 'key passphrase\n', { mode: 0o600 });
    expect((await run(...base, '--passphrase-file', path.join(dir, 'missing'))).err).toMatch(/Cannot read/);
    // Behind a jump host that takes the same key (here the device itself, forwarding to its own
    // address): the passphrase opens the key for the jump host's login too, when the device's key
    // is fetched through it.
    const jump = ['--jump', `${device.user}@${device.host}:${device.port}`, '--jump-host-key', device.hostKeyFingerprint];
    const throughJump = await run('device', 'add', 'rvm-locked-far', '--host', device.host, '--port', String(device.port), '--user', device.user, '--identity', locked, '--passphrase-file', passphraseFile, ...jump);
    expect(throughJump.err).toMatch(/has the fingerprint/);
    expect(throughJump).toMatchObject({ code: 3, out: device.hostKeyFingerprint });

    const added = await run(...base, '--passphrase-file', passphraseFile);
    expect(added.code).toBe(0);
    // The stored passphrase opens the key again for the next login.
    const facts = await run('device', 'facts', 'rvm-locked', '--json');
    expect(facts.code).toBe(0);
    expect(JSON.parse(facts.out)).toMatchObject({ facts: { kernel: expect.any(String) as unknown } });
    expect(JSON.stringify(JSON.parse((await run('device', 'export', 'rvm-locked')).out))).not.toContain('key passphrase');
    // Nowhere in the data folder in plain text (the history, its WAL, logs), only in the file given.
    expect(filesHolding(dir, 'key passphrase')).toEqual(['passphrase']);
    expect(filesHolding(home, 'key passphrase')).toEqual([]);
  }, 60_000);

  it('adds a device that logs in with a password (from a file), refusing a wrong one, and backs it up with the stored password', async () => {
    const device = fleet.devices[0]!;
    const dir = tempDir();
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_SECRETS_PASSPHRASE: 'cli secrets passphrase', JETVAULT_PASSWORD: 'cli test repository password' };
    const run = cliRunner(env);
    const base = ['device', 'add', 'rvm-pw', '--host', device.host, '--port', String(device.port), '--user', device.user, '--host-key', device.hostKeyFingerprint];
    const passwordFile = path.join(dir, 'password');
    writeFileSync(passwordFile, 'not the password\n', { mode: 0o600 });

    const wrong = await run(...base, '--password-file', passwordFile);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/refused/i);
    expect(wrong.err).not.toContain('not the password');
    expect((await run('device', 'list', '--json')).out).toBe('[]');
    expect((await run(...base, '--password-file', passwordFile, '--identity', device.identityFile)).code).toBe(2);

    writeFileSync(passwordFile, `${device.password!}\n`, { mode: 0o600 });
    const added = await run(...base, '--password-file', passwordFile);
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    // Stored encrypted with the device, never in its profile; later logins use it.
    const exported = (await run('device', 'export', 'rvm-pw')).out;
    expect(JSON.parse(exported)).toMatchObject({ devices: [{ auth: 'password' }] });
    expect(exported).not.toContain(device.password!);
    const file = path.join(dir, 'profile.json');
    writeFileSync(file, JSON.stringify({ ...device.profile(), identityFile: undefined, auth: 'password', name: 'rvm-pw' }));
    expect((await run('device', 'import', file, '--replace')).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    const backedUp = await run('backup', '--device', 'rvm-pw', '--source', 'config', '--json');
    expect(backedUp.err).toBe('');
    expect((JSON.parse(backedUp.out) as { snapshots: unknown[] }).snapshots).toHaveLength(1);
    expect(filesHolding(dir, device.password!)).toEqual(['password']);
    expect(filesHolding(env.JETVAULT_HOME, device.password!)).toEqual([]);
  }, 60_000);

  it('backs up and drills a PostgreSQL source whose login needs a password (device db-password)', async () => {
    const device = fleet.devices[0]!;
    const dir = tempDir();
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_SECRETS_PASSPHRASE: 'cli secrets passphrase', JETVAULT_PASSWORD: 'cli test repository password' };
    const run = cliRunner(env);
    // A role that logs in with a password (scram-sha-256), as an app's own database user does.
    const secret = `db pa'ss"w$rd #${randomBytes(6).toString('hex')}`;
    await psql(device.pg.socketDir, 'postgres', `CREATE ROLE jv_secret LOGIN SUPERUSER PASSWORD $jvpw$${secret}$jvpw$;`);
    const hba = path.join(device.pg.dataDir, 'pg_hba.conf');
    writeFileSync(hba, `local all jv_secret scram-sha-256\n${readFileSync(hba, 'utf8')}`);
    await psql(device.pg.socketDir, 'postgres', 'SELECT pg_reload_conf();');
    const profile = device.profile();
    const db = profile.sources.find((s) => s.name === 'db')!;
    const file = path.join(dir, 'profile.json');
    writeFileSync(file, JSON.stringify({ ...profile, name: 'rvm-dbpw', sources: [{ ...db, name: 'dbpw', user: 'jv_secret' }, profile.sources.find((s) => s.name === 'config')] }));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);

    const refused = await run('backup', '--device', 'rvm-dbpw', '--source', 'dbpw', '--json');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/no password supplied.*No snapshot was written.*db-password/s);

    const passwordFile = path.join(dir, 'db-password');
    writeFileSync(passwordFile, `${secret}\n`, { mode: 0o600 });
    const notDb = await run('device', 'db-password', 'rvm-dbpw', 'config', '--password-file', passwordFile);
    expect(notDb.code).not.toBe(0);
    expect(notDb.err).toMatch(/no PostgreSQL or MySQL source named "config"/);
    expect((await run('device', 'db-password', 'rvm-dbpw', 'dbpw')).code).toBe(2);
    const stored = await run('device', 'db-password', 'rvm-dbpw', 'dbpw', '--password-file', passwordFile);
    expect(stored.code).toBe(0);
    expect(stored.out).toMatch(/stored the database password of rvm-dbpw\/dbpw/);
    expect((await run('device', 'export', 'rvm-dbpw')).out).not.toContain(secret);

    const backedUp = await run('backup', '--device', 'rvm-dbpw', '--source', 'dbpw', '--json');
    expect(backedUp.err).toBe('');
    expect((JSON.parse(backedUp.out) as { snapshots: unknown[] }).snapshots).toHaveLength(1);
    // The drill restores the dump into a scratch database as that role (pg_restore, row counts, drop).
    const drill = await run('drill', '--device', 'rvm-dbpw', '--json');
    expect(drill.err).toBe('');
    expect(drill.code).toBe(0);
    expect(JSON.stringify(JSON.parse(drill.out))).toMatch(/"source":"dbpw".*"result":"passed"/);
    // The scratch database is gone again.
    expect((await psql(device.pg.socketDir, 'postgres', "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_jv\\_%';"))).toBe('0');
    // The password was in plain text only in the file given: not in the history, its WAL or a log.
    expect(filesHolding(dir, secret)).toEqual(['db-password']);
    expect(filesHolding(env.JETVAULT_HOME, secret)).toEqual([]);
    expect(filesHolding(env.JETVAULT_HOME, env.JETVAULT_PASSWORD)).toEqual([]);
    expect(filesHolding(env.JETVAULT_HOME, env.JETVAULT_SECRETS_PASSPHRASE)).toEqual([]);

    expect((await run('device', 'db-password', 'rvm-dbpw', 'dbpw', '--clear')).code).toBe(0);
    expect((await run('backup', '--device', 'rvm-dbpw', '--source', 'dbpw')).code).toBe(1);
  }, 120_000);

  it('adds a device only with a confirmed host key, then lists, inspects, exports and removes it', async () => {
    const device = fleet.devices[0]!;
    const env = { JETVAULT_HOME: tempDir() };
    const run = cliRunner(env);
    const base = ['device', 'add', 'rvm-017', '--host', device.host, '--port', String(device.port), '--user', device.user, '--identity', device.identityFile];

    const first = await run(...base);
    expect(first.code).toBe(3);
    expect(first.out).toBe(device.hostKeyFingerprint);
    expect(first.err).toMatch(/Compare it with the device/);
    expect((await run('device', 'list', '--json')).out).toBe('[]');

    // A fingerprint mistyped or pasted wrongly: said as such, not as a key that CHANGED (nothing was
    // pinned yet) with advice to re-pin a device that was never added.
    const wrongKey = await run(...base, '--host-key', 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8');
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toBe(
      `jetvault device: ${device.host}:${device.port} presents the host key ${device.hostKeyFingerprint}, not the SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8 given with --host-key. ` +
        'Nothing was sent and rvm-017 was not added: compare the key with the one shown on the device (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run the command again with it.',
    );
    expect((await run('device', 'list', '--json')).out).toBe('[]');
    // An address in brackets (as an IPv6 one is written beside a port): the address inside them is
    // contacted, and kept without them.
    const inBrackets = await run('device', 'add', 'rvm-017', '--host', `[${device.host}]`, '--port', String(device.port));
    expect(inBrackets).toMatchObject({ code: 3, out: device.hostKeyFingerprint });
    // A jump host's address in brackets, as ssh -J takes an IPv6 one: the address inside them is
    // contacted (here the device itself, as its own jump host).
    const bracketed = await run(...base, '--jump', `${device.user}@[${device.host}]:${device.port}`);
    expect(bracketed.err).toContain(`The host key of the jump host ${device.host}:${device.port} has the fingerprint`);
    expect(bracketed).toMatchObject({ code: 3, out: device.hostKeyFingerprint });
    // The same for a jump host (here the device itself, forwarding to its own address).
    const jump = ['--jump', `${device.user}@${device.host}:${device.port}`, '--jump-identity', device.identityFile];
    const wrongJumpKey = await run(...base, ...jump, '--jump-host-key', 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8');
    expect(wrongJumpKey.code).toBe(1);
    expect(wrongJumpKey.err).toMatch(/^jetvault device: The jump host \S+ presents the host key SHA256:\S+, not the SHA256:nThbg6kX\S+ given with --jump-host-key\. Nothing was sent and rvm-017 was not added/);
    const wrongBehindJump = await run(...base, ...jump, '--jump-host-key', device.hostKeyFingerprint, '--host-key', 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8');
    expect(wrongBehindJump.code).toBe(1);
    expect(wrongBehindJump.err).toMatch(/^jetvault device: \S+ presents the host key SHA256:\S+, not the SHA256:nThbg6kX\S+ given with --host-key\. Nothing was sent and rvm-017 was not added/);
    expect((await run('device', 'list', '--json')).out).toBe('[]');

    const added = await run(...base, '--host-key', device.hostKeyFingerprint, '--site', 'Depot North', '--tag', 'critical', '--rpo', '15', '--rto', '30');
    expect(added.code).toBe(0);
    // A key file named relative to the folder the command runs in is kept as its full path: the
    // scheduler and the console, started elsewhere, find it too.
    const relativeKey = path.relative(process.cwd(), device.identityFile);
    expect(path.isAbsolute(relativeKey)).toBe(false);
    const jumpless = ['device', 'add', 'rvm-rel', '--host', device.host, '--port', String(device.port), '--user', device.user, '--identity', relativeKey, '--host-key', device.hostKeyFingerprint, '--offline'];
    expect((await run(...jumpless)).code).toBe(0);
    expect(JSON.parse((await run('device', 'export', 'rvm-rel')).out)).toMatchObject({ devices: [{ identityFile: device.identityFile }] });
    expect((await run('device', 'remove', 'rvm-rel')).code).toBe(0);
    expect(JSON.parse((await run('device', 'export', 'rvm-017')).out)).toMatchObject({ devices: [{ rpoMinutes: 15, rtoMinutes: 30 }] });
    const list = JSON.parse((await run('device', 'list', '--json')).out) as { name: string; site: string; rpoMinutes: number }[];
    expect(list).toMatchObject([{ name: 'rvm-017', site: 'Depot North', rpoMinutes: 15 }]);

    // Facts need the device's root for a stand-in: import its full profile over the added one.
    const profileFile = path.join(tempDir(), 'fleet.json');
    writeFileSync(profileFile, JSON.stringify({ ...device.profile(), name: 'rvm-017' }));
    expect((await run('device', 'import', profileFile)).code).toBe(1); // exists: nothing imported
    expect((await run('device', 'import', profileFile, '--replace')).code).toBe(0);
    const facts = await run('device', 'facts', 'rvm-017', '--json');
    expect(facts.code).toBe(0);
    expect(JSON.parse(facts.out)).toMatchObject({ facts: { l4t: { release: expect.stringMatching(/^R3/) as unknown } } });

    // The same device without sources: facts propose them, --accept adds them (as the device page's Accept).
    const bare = path.join(tempDir(), 'bare.json');
    writeFileSync(bare, JSON.stringify({ ...device.profile(), name: 'rvm-018', sources: [] }));
    expect((await run('device', 'import', bare)).code).toBe(0);
    const proposed = await run('device', 'facts', 'rvm-018');
    expect(proposed.out).toMatch(/^ {2}\/\S* +[\d.]+ (B|KiB|MiB|GiB|TiB) free of [\d.]+ (B|KiB|MiB|GiB|TiB)$/m); // each disk's room
    expect(proposed.out).toMatch(/^ {2}proposed source db-myrvm \(postgres\)$/m);
    expect(proposed.out).toContain('Add them with: jetvault device facts rvm-018 --accept');
    expect(JSON.parse((await run('device', 'export', 'rvm-018')).out)).toMatchObject({ devices: [{ sources: [] }] }); // proposing changes nothing
    const accepted = await run('device', 'facts', 'rvm-018', '--accept');
    expect(accepted.out).toMatch(/^ {2}added source db-myrvm \(postgres\)$/m);
    const sources = (JSON.parse((await run('device', 'export', 'rvm-018')).out) as { devices: { sources: { name: string; kind: string }[] }[] }).devices[0]!.sources;
    expect(sources.map((s) => s.kind)).toEqual(expect.arrayContaining(['files', 'postgres', 'sqlite']));
    expect(JSON.parse((await run('device', 'facts', 'rvm-018', '--json')).out)).toMatchObject({ proposals: [] }); // nothing left to propose
    expect((await run('device', 'remove', 'rvm-018')).code).toBe(0);

    // Back up the device from the CLI into a new repository, then list its snapshots.
    const withPassword = cliRunner({ ...env, JETVAULT_PASSWORD: 'cli test repository password' });
    expect((await withPassword('init')).code).toBe(0);
    // The SQLite database last written a minute ago (a settled database: its fingerprint is kept).
    const aMinuteAgo = new Date(Date.now() - 60_000);
    for (const file of [device.sqlitePath, `${device.sqlitePath}-wal`]) if (existsSync(file)) utimesSync(file, aMinuteAgo, aMinuteAgo);
    const backedUp = await withPassword('backup', '--device', 'rvm-017', '--source', 'config', '--source', 'local', '--json');
    expect(backedUp.err).toBe('');
    expect(backedUp.code).toBe(0);
    const made = JSON.parse(backedUp.out) as { snapshots: { source: string; snapshotId: string }[] };
    expect(made.snapshots.map((s) => s.source)).toEqual(['local', 'config']); // in the profile's order
    const listed = JSON.parse((await withPassword('snapshots', '--device', 'rvm-017', '--json')).out) as { id: string }[];
    expect(listed.map((s) => s.id).sort()).toEqual(made.snapshots.map((s) => s.snapshotId).sort());
    expect((await withPassword('backup', '--device', 'rvm-017', '--source', 'nope')).err).toMatch(/no source named "nope"/);
    // Not written since: the run says the copy and its check were kept, nothing was copied on the device.
    const again = await withPassword('backup', '--device', 'rvm-017', '--source', 'local');
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/^snapshot \S+ local \(sqlite\): .*sent 0 B.* \(not written since the last run: its copy and check kept\)/m);
    // A large model retuned in place: the run says it crossed as the blocks that changed.
    const model = path.join(device.root, 'opt', device.app, 'models', 'retuned.onnx');
    writeFileSync(model, randomBytes(5 * 1024 * 1024));
    chownSync(model, device.account.uid, device.account.gid);
    expect((await withPassword('backup', '--device', 'rvm-017', '--source', 'app')).code).toBe(0);
    const handle = openSync(model, 'r+');
    writeSync(handle, randomBytes(4096), 0, 4096, 1_000_000);
    closeSync(handle);
    const patched = await withPassword('backup', '--device', 'rvm-017', '--source', 'app');
    expect(patched.code).toBe(0);
    expect(patched.out).toMatch(/^snapshot \S+ app \(files\): .* \(1 large file of 5(\.0)? MiB sent as the blocks that changed\)/m);
    // Rewritten all over: it crosses whole, and the run says why (no warning: nothing to fix).
    writeFileSync(model, randomBytes(5 * 1024 * 1024));
    const rewritten = await withPassword('backup', '--device', 'rvm-017', '--source', 'app');
    expect(rewritten.code).toBe(0);
    expect(rewritten.err).toBe('');
    expect(rewritten.out).toMatch(/^snapshot \S+ app \(files\): .* \(1 large file of 5\.0 MiB sent whole: 5\.0 MiB of its 5\.0 MiB changed\)/m);
    // A copy of it in another file: the stored copy is found, the run says so.
    const copy = path.join(device.root, 'opt', device.app, 'models', 'retuned-copy.onnx');
    copyFileSync(model, copy);
    chownSync(copy, device.account.uid, device.account.gid);
    const copied = await withPassword('backup', '--device', 'rvm-017', '--source', 'app');
    expect(copied.code).toBe(0);
    expect(copied.out).toMatch(/^snapshot \S+ app \(files\): .*; sent \d+(\.\d)? KiB \(1 large file of 5\.0 MiB sent as the blocks that changed, 1 against a copy from another path or device\)/m);
    // A file the device's login cannot read (root's, mode 600): the run is kept, the file is named
    // on stderr and the exit code says the run is partial.
    const key = path.join(device.root, 'etc', device.app, 'tls.key');
    writeFileSync(key, 'private\n', { mode: 0o600 });
    try {
      const partial = await withPassword('backup', '--device', 'rvm-017', '--source', 'config');
      expect(partial.code).toBe(3);
      expect(partial.err).toContain(`warning: config: etc/${device.app}/tls.key: Cannot open: Permission denied (the device's login cannot read it)`);
      expect(partial.err).toContain('1 file or folder could not be read; the run holds everything else');
      expect(partial.out).toMatch(/^snapshot \S+ config \(files\)/m);
    } finally {
      rmSync(key);
    }
    // Ctrl-C while a run is under way cancels it, as the console's Cancel does: nothing of it is kept.
    const snapshotIds = async () => (JSON.parse((await withPassword('snapshots', '--device', 'rvm-017', '--json')).out) as { id: string }[]).map((s) => s.id).sort();
    const kept = await snapshotIds();
    const listening = process.rawListeners('SIGINT');
    const interrupted = withPassword('backup', '--device', 'rvm-017');
    // The CLI listens for SIGINT only while its job runs: its handler is called as the signal would
    // (only it: the test runner's own SIGINT handlers are left alone).
    const ours = () => process.rawListeners('SIGINT').filter((l) => !listening.includes(l));
    for (let i = 0; i < 2000 && ours().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(ours()).toHaveLength(1);
    (ours()[0] as (signal: string) => void)('SIGINT');
    const cancelled = await interrupted;
    expect(cancelled.code).toBe(1);
    expect(cancelled.err).toContain('jetvault backup: cancelling rvm-017…');
    expect(cancelled.err).toMatch(/rvm-017: Back up rvm-017 was cancelled/);
    expect(ours()).toEqual([]);
    expect(await snapshotIds()).toEqual(kept);

    const exported = JSON.parse((await run('device', 'export', 'rvm-017')).out) as { devices: { name: string; hostKey: string }[] };
    expect(exported.devices[0]).toMatchObject({ name: 'rvm-017', hostKey: device.hostKeyFingerprint });

    expect((await run('device', 'remove', 'rvm-017')).code).toBe(0);
    expect((await run('device', 'facts', 'rvm-017')).err).toMatch(/No device named "rvm-017"/);
  });

  it('cancels a device backup on SIGTERM and SIGHUP as on Ctrl-C: no snapshot of the run is left, and the next run completes', async () => {
    const device = fleet.devices[0]!;
    const run = cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli test repository password' });
    const file = path.join(tempDir(), 'profile.json');
    writeFileSync(file, JSON.stringify({ ...device.profile(), name: 'rvm-term' }));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    const snapshotIds = async () => (JSON.parse((await run('snapshots', '--device', 'rvm-term', '--json')).out) as { id: string }[]).map((s) => s.id).sort();
    for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
      const listening = process.rawListeners(signal);
      const ours = () => process.rawListeners(signal).filter((l) => !listening.includes(l));
      const interrupted = run('backup', '--device', 'rvm-term');
      // Without a listener of its own, the signal would end the process between two snapshots.
      for (let i = 0; i < 2000 && ours().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 2));
      expect(ours()).toHaveLength(1);
      (ours()[0] as (name: string) => void)(signal);
      const cancelled = await interrupted;
      expect(cancelled.code).toBe(1);
      expect(cancelled.err).toMatch(/rvm-term: Back up rvm-term was cancelled/);
      expect(ours()).toEqual([]);
      expect(await snapshotIds()).toEqual([]);
    }
    const completed = await run('backup', '--device', 'rvm-term', '--json');
    expect(completed.code).toBe(0);
    expect(await snapshotIds()).toHaveLength(device.profile().sources.length);
  }, 120_000);

  it('backs up several devices side by side: each reported as it ends, one JSON list, the worst exit code; Ctrl-C cancels them all', async () => {
    const device = fleet.devices[0]!;
    const run = cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli test repository password' });
    const file = path.join(tempDir(), 'profiles.json');
    // Two inventory devices on the one test device: two runs at once, each with its own snapshots.
    writeFileSync(file, JSON.stringify([{ ...device.profile(), name: 'rvm-a' }, { ...device.profile(), name: 'rvm-b' }, { name: 'rvm-bare', host: '127.0.0.99', user: 'jetson' }]));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    const snapshots = async () => (JSON.parse((await run('snapshots', '--json')).out) as { tags: string[] }[]).map((s) => s.tags.find((t) => t.startsWith('device:'))).sort();

    // A name not in the inventory is said before anything starts.
    const misspelt = await run('backup', '--device', 'rvm-a', '--device', 'rvm-c');
    expect(misspelt).toMatchObject({ code: 1, out: '' });
    expect(misspelt.err).toMatch(/No device named "rvm-c"/);
    expect(await snapshots()).toEqual([]);

    // Cancelled (SIGTERM, as Ctrl-C): every run of the command, none kept.
    const listening = process.rawListeners('SIGTERM');
    const ours = () => process.rawListeners('SIGTERM').filter((l) => !listening.includes(l));
    const interrupted = run('backup', '--device', 'rvm-a', '--device', 'rvm-b');
    for (let i = 0; i < 2000 && ours().length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(ours()).toHaveLength(1);
    (ours()[0] as (name: string) => void)('SIGTERM');
    const cancelled = await interrupted;
    expect(cancelled.code).toBe(1);
    expect(cancelled.err).toMatch(/rvm-a: Back up rvm-a was cancelled/);
    expect(cancelled.err).toMatch(/rvm-b: Back up rvm-b was cancelled/);
    expect(await snapshots()).toEqual([]);

    // One refused (no sources), two backed up: a list in the order named, exit 1 for the refusal.
    const three = await run('backup', '--device', 'rvm-a', '--device', 'rvm-bare', '--device', 'rvm-b', '--json');
    expect(three.code, three.err).toBe(1);
    expect(three.err).toMatch(/^jetvault backup: rvm-bare has no sources to back up yet/m);
    const documents = JSON.parse(three.out) as { device: string; status?: string; snapshots?: unknown[] }[];
    expect(documents.map((d) => d.device)).toEqual(['rvm-a', 'rvm-bare', 'rvm-b']);
    expect(documents[0]!.snapshots).toHaveLength(device.profile().sources.length);
    expect(documents[1]).toMatchObject({ status: 'refused', jobId: null });
    expect(documents[2]!.snapshots).toHaveLength(device.profile().sources.length);
    const sources = device.profile().sources.length;
    expect(await snapshots()).toEqual([...Array<string>(sources).fill('device:rvm-a'), ...Array<string>(sources).fill('device:rvm-b')]);

    // Without --json each run's lines, and 0 when every run is kept.
    const text = await run('backup', '--device', 'rvm-b', '--device', 'rvm-a', '--device', 'rvm-b');
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/^rvm-a: run \S+ done in/m);
    expect(text.out).toMatch(/^rvm-b: run \S+ done in/m);
    expect(text.out.match(/ done in /g)).toHaveLength(2); // named twice, backed up once
    // A backup of local paths is of one device.
    expect((await run('backup', tempDir(), '--device', 'rvm-a', '--device', 'rvm-b')).code).toBe(2);
  }, 180_000);

  it('leaves a backup that another process runs alone — other commands neither fail it nor start a second on its device nor remove it — and marks a killed one interrupted', async () => {
    const device = fleet.devices[0]!;
    const cli = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/jetvault.js');
    const setUp = async (home: string) => {
      const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'cli test repository password' };
      const run = cliRunner(env);
      const file = path.join(tempDir(), 'profile.json');
      writeFileSync(file, JSON.stringify({ ...device.profile(), name: 'rvm-busy' }));
      expect((await run('device', 'import', file)).code).toBe(0);
      expect((await run('init')).code).toBe(0);
      // Slow enough (the whole device at 1 MiB/s) to be caught running.
      expect((await run('settings', 'set', 'bandwidthLimitKiBps', '1024')).code).toBe(0);
      const history = () => new Database(path.join(home, 'history.sqlite3'), { readonly: true });
      const backups = () => {
        const db = history();
        try {
          return db.prepare("SELECT status, error FROM jobs WHERE kind = 'backup' ORDER BY started_at").all() as { status: string; error: string | null }[];
        } finally {
          db.close();
        }
      };
      // Another process: the CLI itself, as a technician's second terminal (or the app) would run it.
      const child = spawn(process.execPath, [cli, 'backup', '--device', 'rvm-busy', '--json'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      for (let i = 0; i < 600 && !backups().some((b) => b.status === 'running'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(backups()).toEqual([{ status: 'running', error: null }]);
      return { run, child, exited, backups, out: () => out };
    };

    const busy = await setUp(tempDir());
    expect((await busy.run('device', 'list')).code).toBe(0);
    const second = await busy.run('backup', '--device', 'rvm-busy', '--json');
    expect(second.code).toBe(1);
    expect(JSON.parse(second.out)).toMatchObject({ device: 'rvm-busy', jobId: null, status: 'refused', error: { code: 'CONFLICT' } });
    expect(second.err).toMatch(new RegExp(`"Back up rvm-busy" is running in another Jetvault process \\(pid ${busy.child.pid}, since .*\\): wait for it to finish, or cancel it there`));
    const removal = await busy.run('device', 'remove', 'rvm-busy');
    expect(removal.code).toBe(1);
    expect(removal.err).toMatch(/rvm-busy has a backup, restore or drill running \(here or in another Jetvault process\)/);
    expect(busy.backups()).toEqual([{ status: 'running', error: null }]);
    expect(await busy.exited).toBe(0);
    expect((JSON.parse(busy.out()) as { snapshots: unknown[] }).snapshots).toHaveLength(device.profile().sources.length);
    expect(busy.backups()).toEqual([{ status: 'succeeded', error: null }]);

    // Killed once it has written part of its run (the smaller sources finish first).
    const killed = await setUp(tempDir());
    const snapshots = async () => JSON.parse((await killed.run('snapshots', '--device', 'rvm-busy', '--json')).out) as { id: string; incompleteRun?: true }[];
    for (let i = 0; i < 600 && (await snapshots()).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    killed.child.kill('SIGKILL');
    await killed.exited;
    const partial = await snapshots();
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(device.profile().sources.length);
    expect(partial.every((s) => s.incompleteRun === true)).toBe(true);
    expect((await killed.run('snapshots', '--device', 'rvm-busy')).out).toMatch(new RegExp(`\\(incomplete run\\)\n[\\s\\S]*${partial.length} snapshots?, ${partial.length} of runs cut off part-way`));
    expect((await killed.run('device', 'list')).code).toBe(0);
    expect(killed.backups()).toEqual([
      { status: 'failed', error: JSON.stringify({ code: 'INTERRUPTED', message: `The Jetvault process running this job (pid ${killed.child.pid}) stopped before it finished` }) },
    ]);
    expect((await killed.run('settings', 'set', 'bandwidthLimitKiBps', '0')).code).toBe(0);
    expect((await killed.run('backup', '--device', 'rvm-busy')).code).toBe(0);
    const after = await snapshots();
    expect(after.filter((s) => s.incompleteRun !== true)).toHaveLength(device.profile().sources.length);
  }, 180_000);

  it('proposes a database once when its server is reached by several socket paths (/run and /var/run, the stock place on a Jetson)', async () => {
    const device = fleet.devices[0]!;
    const run = cliRunner({ JETVAULT_HOME: tempDir() });
    const file = path.join(tempDir(), 'bare.json');
    writeFileSync(file, JSON.stringify({ ...device.profile(), name: 'rvm-sockets', sources: [] }));
    expect((await run('device', 'import', file)).code).toBe(0);
    // The device's server also answers in /run/postgresql, which /var/run/postgresql is on Debian and
    // Ubuntu (a link to /run), as a stock Jetson's does.
    expect(readlinkSync('/var/run')).toMatch(/^(\/|\.\.\/)?run$/);
    mkdirSync('/run/postgresql', { recursive: true });
    const socket = `/run/postgresql/.s.PGSQL.${40_000 + Math.floor(Math.random() * 20_000)}`;
    symlinkSync(path.join(device.root, 'run/postgresql', `.s.PGSQL.${device.profile().sources.find((s) => s.kind === 'postgres')!.port}`), socket);
    try {
      const facts = await run('device', 'facts', 'rvm-sockets', '--json');
      expect(facts.code).toBe(0);
      const { proposals } = JSON.parse(facts.out) as { proposals: { name: string; kind: string; database?: string }[] };
      expect(proposals.filter((p) => p.kind === 'postgres')).toEqual([expect.objectContaining({ name: 'db-myrvm', database: 'myrvm' })]);
      // Listed once per server socket, not again through the link.
      const { facts: read } = JSON.parse(facts.out) as { facts: { postgresDatabases: string[] } };
      expect(read.postgresDatabases.filter((line) => line.startsWith('/var/run/'))).toEqual([]);
      expect(read.postgresDatabases.filter((line) => line.startsWith('/run/postgresql\t'))).toHaveLength(1);
    } finally {
      rmSync(socket, { force: true });
    }
  }, 60_000);

  it('reads facts of a device whose PostgreSQL server hangs: the server is named as not listed, and discovery ends', async () => {
    const device = fleet.devices[0]!;
    const run = cliRunner({ JETVAULT_HOME: tempDir() });
    const file = path.join(tempDir(), 'bare.json');
    writeFileSync(file, JSON.stringify({ ...device.profile(), name: 'rvm-wedged', sources: [] }));
    expect((await run('device', 'import', file)).code).toBe(0);
    // A server that accepts connections and never answers them (stopped, as a wedged one is).
    process.kill(device.pg.pid, 'SIGSTOP');
    try {
      const started = Date.now();
      const facts = await Promise.race([run('device', 'facts', 'rvm-wedged', '--json'), new Promise<null>((resolve) => setTimeout(() => resolve(null), 40_000))]);
      expect(facts).not.toBeNull();
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(facts!.code).toBe(0);
      const { facts: read, proposals } = JSON.parse(facts!.out) as { facts: { databaseErrors: { engine: string; message: string }[] }; proposals: { kind: string }[] };
      expect(read.databaseErrors).toEqual([expect.objectContaining({ engine: 'postgres', message: expect.stringMatching(/did not answer within \d+ s|timeout/i) as string })]);
      expect(proposals.map((p) => p.kind)).toContain('sqlite'); // the rest is still discovered
    } finally {
      process.kill(device.pg.pid, 'SIGCONT');
    }
  }, 60_000);

  it('run-scheduler stopped (systemctl stop: SIGTERM) while it backs a device up cancels the run cleanly: recorded cancelled, no snapshot kept, exit 0', async () => {
    const device = fleet.devices[0]!;
    const cli = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/jetvault.js');
    const home = tempDir();
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'cli test repository password' };
    const run = cliRunner(env);
    const file = path.join(tempDir(), 'profile.json');
    writeFileSync(file, JSON.stringify({ ...device.profile(), name: 'rvm-sched' }));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    // Slow enough (the whole device at 1 MiB/s) to be stopped mid-run.
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '1024')).code).toBe(0);
    const backups = () => {
      const db = new Database(path.join(home, 'history.sqlite3'), { readonly: true });
      try {
        return db.prepare("SELECT status, error FROM jobs WHERE kind = 'backup' ORDER BY started_at").all() as { status: string; error: string | null }[];
      } finally {
        db.close();
      }
    };
    const child = spawn(process.execPath, [cli, 'run-scheduler'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      for (let i = 0; i < 600 && !backups().some((b) => b.status === 'running'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(backups()).toEqual([{ status: 'running', error: null }]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).not.toMatch(/database connection is not open|TypeError/);
      expect(backups()).toEqual([{ status: 'cancelled', error: JSON.stringify({ code: 'CANCELLED', message: 'Back up rvm-sched was cancelled: Jetvault stopped while it ran' }) }]);
      expect(JSON.parse((await run('snapshots', '--device', 'rvm-sched', '--json')).out)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);

  it('re-pins a host key only after it is compared with the device, and only the key the device presents (device trust)', async () => {
    const device = fleet.devices[0]!;
    const run = cliRunner({ JETVAULT_HOME: tempDir() });
    const other = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const file = path.join(tempDir(), 'profiles.json');
    const { hostKey: _pinned, ...unpinned } = device.profile();
    writeFileSync(file, JSON.stringify({ devices: [{ ...unpinned, name: 'rvm-new' }, { ...device.profile(), name: 'rvm-reinstalled', hostKey: other }] }));
    expect((await run('device', 'import', file)).code).toBe(0);

    // Imported without a key: nothing connects until one is confirmed.
    expect((await run('device', 'facts', 'rvm-new')).err).toMatch(/confirm its host key fingerprint/);
    const fresh = await run('device', 'trust', 'rvm-new');
    expect(fresh.code).toBe(3);
    expect(fresh.out).toBe(device.hostKeyFingerprint);
    expect(fresh.err).toMatch(/No host key is pinned for rvm-new yet/);

    // A pinned key the device no longer presents: refused, shown beside the new one.
    expect((await run('device', 'facts', 'rvm-reinstalled')).err).toMatch(/has CHANGED/);
    const changed = await run('device', 'trust', 'rvm-reinstalled');
    expect(changed.code).toBe(3);
    expect(changed.out).toBe(device.hostKeyFingerprint);
    expect(changed.err).toContain(`pinned ${other}, presented ${device.hostKeyFingerprint}`);
    expect(changed.err).toMatch(/someone may be between you and the device/);

    // Only the presented key is pinned: a fingerprint read wrongly, or a malformed one, pins nothing.
    const wrong = await run('device', 'trust', 'rvm-reinstalled', '--host-key', 'SHA256:AAAAg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/Nothing was pinned/);
    expect((await run('device', 'trust', 'rvm-reinstalled', '--host-key', 'MD5:00')).err).toMatch(/Not a SHA256 fingerprint/);
    expect(JSON.parse((await run('device', 'export', 'rvm-reinstalled')).out)).toMatchObject({ devices: [{ hostKey: other }] });

    const pinned = await run('device', 'trust', 'rvm-reinstalled', '--host-key', device.hostKeyFingerprint);
    expect(pinned.code).toBe(0);
    expect(pinned.out).toBe(`pinned ${device.hostKeyFingerprint} for rvm-reinstalled (was ${other})`);
    expect((await run('device', 'facts', 'rvm-reinstalled')).code).toBe(0);
    const same = await run('device', 'trust', 'rvm-reinstalled');
    expect(same.code).toBe(0);
    expect(same.err).toMatch(/presents its pinned host key/);
    expect((await run('device', 'trust', 'rvm-new', '--host-key', device.hostKeyFingerprint)).code).toBe(0);
    expect((await run('device', 'facts', 'rvm-new')).code).toBe(0);
  }, 60_000);

  it('exits 11 as every repository command while a prune holds the repository, saying who holds it, with no snapshot', async () => {
    const device = fleet.devices[0]!;
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'cli test repository password' });
    const file = path.join(tempDir(), 'profile.json');
    writeFileSync(file, JSON.stringify({ ...device.profile(), name: 'rvm-held' }));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    const { Repository } = await import('../main/repository/repo/repository');
    const { LocalBackend } = await import('../main/repository/backend/local-backend');
    const { withLock } = await import('../main/repository/lock/lock');
    const repo = await Repository.open(new LocalBackend(path.join(home, 'repository')), 'cli test repository password');
    // A prune of another console holds the exclusive lease while the device's backup starts.
    const held = await withLock(repo, true, () => run('backup', '--device', 'rvm-held', '--source', 'config', '--json'));
    expect(held.err).toMatch(/rvm-held: repository is locked exclusively by pid \d+/);
    expect(held.code).toBe(11);
    expect(JSON.parse(held.out)).toMatchObject({ device: 'rvm-held', status: 'failed', error: { code: 'CONFLICT', message: expect.stringMatching(/locked exclusively/) as unknown } });
    expect(JSON.parse((await run('snapshots', '--device', 'rvm-held', '--json')).out)).toEqual([]);
    expect((await run('backup', '--device', 'rvm-held', '--source', 'config')).code).toBe(0);
  }, 60_000);

  it('explains an unreachable host and bad arguments', async () => {
    const run = cliRunner({ JETVAULT_HOME: tempDir() });
    const unreachable = await run('device', 'add', 'x', '--host', '127.0.0.1', '--port', '1');
    expect(unreachable.code).toBe(1);
    expect(unreachable.err).toMatch(/unreachable/);
    // A name that is taken or not a name is said before the device is contacted, not after its
    // fingerprint was compared.
    const device = fleet.devices[0]!;
    const taken = path.join(tempDir(), 'taken.json');
    writeFileSync(taken, JSON.stringify({ ...device.profile(), name: 'rvm-taken' }));
    expect((await run('device', 'import', taken)).code).toBe(0);
    const again = await run('device', 'add', 'rvm-taken', '--host', device.host, '--port', String(device.port), '--user', device.user, '--identity', device.identityFile);
    expect(again).toMatchObject({ code: 1, out: '', err: 'jetvault device: A device named "rvm-taken" already exists' });
    // A port, host or account that cannot be is said as such (at its option), before anything is contacted.
    for (const [flags, said] of [
      [['--port', '0'], /device: --port: At least 1$/m],
      [['--port', '70000'], /device: --port: At most 65535$/m],
      [['--host', 'bad host'], /device: --host: Not a host name or address$/m],
      [['--user', 'ro ot'], /device: --user: Not a user name$/m],
      [['--rpo', '0'], /device: --rpo: At least 1$/m],
      [['--jump', 'ops@127.0.0.11:99999'], /--jump must be USER@HOST\[:PORT\]/],
    ] as const) {
      const refused = await run('device', 'add', 'x', ...(flags[0] === '--host' ? [] : ['--host', '127.0.0.1']), ...flags);
      expect(refused.code, flags.join(' ')).toBe(2);
      expect(refused.out).toBe('');
      expect(refused.err).toMatch(said);
      expect(refused.err).not.toMatch(/unreachable|Received type/);
    }
    const badName = await run('device', 'add', 'rvm 017!', '--host', device.host, '--port', String(device.port));
    expect(badName.code).toBe(2);
    expect(badName.out).toBe('');
    expect(badName.err).toMatch(/Use 1–64 letters/);
    expect((await run('device', 'add', 'x')).code).toBe(2);
    expect((await run('device', 'add', 'x', '--host', 'h', '--port', 'ssh')).code).toBe(2);
    expect((await run('device', 'import', '/nonexistent.json')).err).toMatch(/Cannot read/);
    // A profiles file too large to read whole is refused by its size, before it is read.
    const huge = path.join(tempDir(), 'huge.json');
    writeFileSync(huge, '');
    truncateSync(huge, 5 * 1024 * 1024);
    const tooLarge = await run('device', 'import', huge);
    expect(tooLarge.code).toBe(1);
    expect(tooLarge.err).toMatch(/huge\.json is 5\.0 MiB, and a profiles file holds at most 4\.0 MiB/);
    // A failure whose message names the device already is printed with the name once.
    const file = path.join(tempDir(), 'profile.json');
    writeFileSync(file, JSON.stringify({ ...fleet.devices[0]!.profile(), name: 'nokey', identityFile: '/nonexistent/id_ed25519' }));
    const home = tempDir();
    const withRepo = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'cli test repository password' });
    // Imported (the key may be put in place later), with a warning that it is not there now.
    const imported = await withRepo('device', 'import', file);
    expect(imported.code).toBe(0);
    expect(imported.err).toBe('warning: nokey: its key file /nonexistent/id_ed25519 cannot be read on this machine (ENOENT): put it there, or import a profile naming where it is, before its first backup');
    expect((await withRepo('init')).code).toBe(0);
    const noKey = await withRepo('backup', '--device', 'nokey');
    expect(noKey.code).toBe(1);
    expect(noKey.err).toMatch(/^jetvault backup: nokey: [^\n]*key file/m);
    expect(noKey.err).not.toMatch(/nokey: nokey:/);
    // --json: stdout is one JSON document however the run ended, for a script to read.
    const noKeyJson = await withRepo('backup', '--device', 'nokey', '--json');
    expect(noKeyJson.code).toBe(1);
    expect(JSON.parse(noKeyJson.out)).toMatchObject({ device: 'nokey', status: 'failed', phase: 'connect', bytesTransferred: 0, error: { message: expect.stringMatching(/key file/) as unknown } });
    // Exit codes as for every repository command: 12 a wrong password, 10 no repository there.
    const wrongPassword = await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'not the password' })('backup', '--device', 'nokey');
    expect(wrongPassword).toMatchObject({ code: 12, err: expect.stringMatching(/password/) as unknown });
    const missing = await withRepo('backup', '--device', 'nokey', '--repo', path.join(tempDir(), 'none'));
    expect(missing).toMatchObject({ code: 10, err: expect.stringMatching(/no repository|not found|does not exist/i) as unknown });
  });
});
