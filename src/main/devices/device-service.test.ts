import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HistoryStore } from '../history/history-store';
import { SecretStore } from '../secrets/secret-store';
import { tempDir } from '../testing/temp-dir';
import { DeviceService } from './device-service';

const PASSPHRASE = 'correct horse battery staple';
const profile = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  host: '127.0.0.2',
  port: 2222,
  user: 'jetson',
  site: 'Depot North',
  tags: ['critical'],
  sources: [{ name: 'db', kind: 'postgres', database: 'myrvm', host: '/run/postgresql' }],
  ...extra,
});

/** A real key pair made by ssh-keygen: the private key's path (the public one beside it, .pub). */
function keygen(dir: string, name: string, passphrase = ''): string {
  const file = path.join(dir, name);
  expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', file]).status).toBe(0);
  return file;
}

function open(dir: string, passphrase: string | null = PASSPHRASE) {
  const store = new HistoryStore(dir);
  const secrets = new SecretStore(store, SecretStore.passphraseCipher(store, passphrase ?? undefined));
  return { store, secrets, devices: new DeviceService(store, secrets) };
}

describe('DeviceService', () => {
  it('adds, lists, renames and removes devices, with an audit trail', () => {
    const { store, devices } = open(tempDir());
    devices.add(profile('rvm-017'), {}, 'test');
    devices.add(profile('rvm-002'), {}, 'test');
    expect(devices.list().map((d) => d.profile.name)).toEqual(['rvm-002', 'rvm-017']);
    expect(() => devices.add(profile('rvm-017'), {}, 'test')).toThrow(/already exists/);
    devices.update('rvm-017', profile('rvm-018'), {}, 'test');
    expect(() => devices.get('rvm-017')).toThrow(/No device named/);
    devices.remove('rvm-018', 'test');
    expect(devices.list().map((d) => d.profile.name)).toEqual(['rvm-002']);
    expect(store.sql.auditRecent.all(10).map((r) => r.action)).toEqual(['device.remove', 'device.update', 'device.add', 'device.add']);
    store.close();
  });

  it('records what an edit changed in the audit log: fields before and after, sources by name, which secrets — never their values', () => {
    const { store, devices } = open(tempDir());
    devices.add(profile('rvm-017'), {}, 'test');
    const logs = { name: 'logs', kind: 'files', paths: ['/var/log/myrvm'] };
    devices.update(
      'rvm-017',
      profile('rvm-017', { rpoMinutes: 60, site: 'Depot South', sources: [{ name: 'db', kind: 'postgres', database: 'other', host: '/run/postgresql' }, logs] }),
      { password: 'a device password', databasePasswords: { db: 'a database password' } },
      'test',
    );
    const detail = () => JSON.parse(store.sql.auditRecent.all(1)[0]!.detail!) as Record<string, unknown>;
    expect(detail()).toEqual({
      rpoMinutes: { from: null, to: 60 },
      site: { from: 'Depot North', to: 'Depot South' },
      sources: { added: ['logs'], edited: ['db'] },
      secrets: ['password set', 'database password of db set'],
    });
    expect(store.sql.auditRecent.all(1)[0]!.detail).not.toMatch(/a (device|database) password/);
    devices.update('rvm-017', profile('rvm-018', { rpoMinutes: 60, site: 'Depot South', sources: [logs] }), { password: '' }, 'test');
    expect(detail()).toEqual({ renamedFrom: 'rvm-017', name: { from: 'rvm-017', to: 'rvm-018' }, sources: { removed: ['db'] }, secrets: ['password forgotten'] });
    // Saved as it was: nothing to say.
    devices.update('rvm-018', devices.get('rvm-018').profile, {}, 'test');
    expect(store.sql.auditRecent.all(1)[0]).toMatchObject({ action: 'device.update', detail: null });
    store.close();
  });

  it('keeps passwords encrypted at rest, out of exports and readable only with the passphrase', () => {
    const dir = tempDir();
    const first = open(dir);
    const secret = 'pa$$w0rd-never-in-plain';
    const device = first.devices.add(profile('rvm-017', { auth: 'password' }), { password: secret }, 'test');
    expect(device.hasPassword).toBe(true);
    expect(JSON.stringify(first.devices.export())).not.toContain(secret);
    first.store.db.pragma('wal_checkpoint(TRUNCATE)');
    first.store.close();
    for (const file of readdirSync(dir)) expect(readFileSync(path.join(dir, file)).includes(secret), file).toBe(false);

    return (async () => {
      const again = open(dir);
      expect((await again.devices.connectOptions('rvm-017')).auth).toEqual({ kind: 'password', password: secret });
      again.store.close();
      const wrong = open(dir, 'not the passphrase');
      await expect(wrong.devices.connectOptions('rvm-017')).rejects.toThrow(/wrong JETVAULT_SECRETS_PASSPHRASE/);
      wrong.store.close();
      const none = open(dir, null);
      await expect(none.devices.connectOptions('rvm-017')).rejects.toThrow(/set JETVAULT_SECRETS_PASSPHRASE/);
      expect(() => none.devices.add(profile('rvm-9', { auth: 'password' }), { password: 'x' }, 'test')).toThrow(/Cannot store a password/);
      expect(() => none.devices.get('rvm-9')).toThrow(/No device/); // nothing half-added
      none.store.close();
    })();
  });

  it('refuses to store a secret under a passphrase that does not open those already stored, so one passphrase always reads them all', async () => {
    const dir = tempDir();
    const first = open(dir);
    first.devices.add(profile('rvm-017', { auth: 'password' }), { password: 'first password' }, 'test');
    first.store.close();

    // A mistyped JETVAULT_SECRETS_PASSPHRASE in another shell: the next password is refused, not
    // encrypted under a key that the right passphrase can never open.
    const typo = open(dir, 'correct horse battery stapel');
    expect(() => typo.devices.add(profile('rvm-018', { auth: 'password' }), { password: 'second password' }, 'test')).toThrow(
      expect.objectContaining({ code: 'AUTH_FAILED', message: expect.stringMatching(/JETVAULT_SECRETS_PASSPHRASE does not open the 1 secret already stored.*nothing was stored/) as string }),
    );
    expect(() => typo.devices.get('rvm-018')).toThrow(/No device/); // nothing half-added
    typo.store.close();

    const right = open(dir);
    right.devices.add(profile('rvm-018', { auth: 'password' }), { password: 'second password' }, 'test');
    expect((await right.devices.connectOptions('rvm-017')).auth).toEqual({ kind: 'password', password: 'first password' });
    expect((await right.devices.connectOptions('rvm-018')).auth).toEqual({ kind: 'password', password: 'second password' });
    // With every secret gone (the old passphrase lost, its devices removed), a new passphrase may start afresh.
    right.devices.remove('rvm-017', 'test');
    right.devices.remove('rvm-018', 'test');
    right.store.close();
    const fresh = open(dir, 'a new secrets passphrase');
    fresh.devices.add(profile('rvm-019', { auth: 'password' }), { password: 'third password' }, 'test');
    expect((await fresh.devices.connectOptions('rvm-019')).auth).toEqual({ kind: 'password', password: 'third password' });
    fresh.store.close();
  });

  it('tells a damaged secret from a wrong passphrase: the passphrase that opens the others is not blamed, and entering the secret again mends it', async () => {
    const dir = tempDir();
    const { store, devices } = open(dir);
    devices.add(profile('rvm-017', { auth: 'password' }), { password: 'first password' }, 'test');
    const damaged = devices.add(profile('rvm-018', { auth: 'password' }), { password: 'second password' }, 'test');
    // One bit of its row flipped on disk (bit rot, a bad sector under the history).
    const ref = `device:${damaged.id}:password`;
    const blob = (store.db.prepare('SELECT blob FROM secrets WHERE ref = ?').get(ref) as { blob: Buffer }).blob;
    blob[blob.length - 1]! ^= 0x01;
    store.db.prepare('UPDATE secrets SET blob = ? WHERE ref = ?').run(blob, ref);

    await expect(devices.connectOptions('rvm-018')).rejects.toMatchObject({ message: expect.stringMatching(/rvm-018's password is damaged.*enter it again/) as string });
    expect((await devices.connectOptions('rvm-017')).auth).toEqual({ kind: 'password', password: 'first password' });
    devices.update('rvm-018', profile('rvm-018', { auth: 'password' }), { password: 'second password' }, 'test');
    expect((await devices.connectOptions('rvm-018')).auth).toEqual({ kind: 'password', password: 'second password' });
    store.close();
    // With the wrong passphrase, that is what is said.
    const wrong = open(dir, 'not the passphrase');
    await expect(wrong.devices.connectOptions('rvm-018')).rejects.toThrow(/wrong JETVAULT_SECRETS_PASSPHRASE/);
    wrong.store.close();
  });

  it('a secrets passphrase too short to use stops only what needs a secret, saying why', async () => {
    const dir = tempDir();
    const { store, devices } = open(dir, 'short');
    // A device that logs in with its key needs no secret: added and connected as ever.
    const keyFile = keygen(dir, 'id_ed25519');
    devices.add(profile('rvm-017', { identityFile: keyFile }), {}, 'test');
    expect((await devices.connectOptions('rvm-017')).auth).toMatchObject({ kind: 'key' });
    expect(() => devices.add(profile('rvm-018', { auth: 'password' }), { password: 'pw' }, 'test')).toThrow(/secrets passphrase must have at least 8 characters/);
    expect(devices.list().map((d) => d.profile.name)).toEqual(['rvm-017']);
    store.close();
  });

  it('keeps database passwords per source: encrypted, out of exports, checked, forgotten with their source', async () => {
    const dir = tempDir();
    const { store, devices } = open(dir);
    const secret = 'db-pa$$-never-in-plain';
    const sources = [
      { name: 'db', kind: 'postgres', database: 'myrvm', host: '/run/postgresql', user: 'app' },
      { name: 'shop', kind: 'mysql', database: 'shop' },
      { name: 'local', kind: 'sqlite', path: '/opt/myrvm/data/local.db' },
    ];
    const device = devices.add(profile('rvm-017', { sources, auth: 'password' }), { password: 'login', databasePasswords: { db: secret, shop: 'other' } }, 'test');
    expect(device.databasePasswords).toEqual(['db', 'shop']);
    expect(devices.detail(device).databasePasswords).toEqual(['db', 'shop']);
    const options = await devices.connectOptions('rvm-017');
    expect(options.databasePassword?.('db')).toBe(secret);
    expect(options.databasePassword?.('local')).toBeUndefined();
    expect(JSON.stringify(devices.export())).not.toContain(secret);
    // Only a PostgreSQL or MySQL source of the profile takes one, and never with a line break.
    expect(() => devices.update('rvm-017', profile('rvm-017', { sources, auth: 'password' }), { databasePasswords: { local: 'x' } }, 'test')).toThrow(/no PostgreSQL or MySQL source named "local"/);
    expect(() => devices.update('rvm-017', profile('rvm-017', { sources, auth: 'password' }), { databasePasswords: { db: 'a\nb' } }, 'test')).toThrow(/line break/);
    expect((await devices.connectOptions('rvm-017')).databasePassword?.('db')).toBe(secret); // a refused update changed nothing
    // "" forgets one; a source removed from the profile takes its password with it.
    devices.update('rvm-017', profile('rvm-017', { sources, auth: 'password' }), { databasePasswords: { shop: '' } }, 'test');
    expect(devices.get('rvm-017').databasePasswords).toEqual(['db']);
    devices.update('rvm-017', profile('rvm-017', { sources: sources.slice(1), auth: 'password' }), {}, 'test');
    devices.update('rvm-017', profile('rvm-017', { sources, auth: 'password' }), {}, 'test');
    expect(devices.get('rvm-017').databasePasswords).toEqual([]);
    devices.update('rvm-017', profile('rvm-017', { sources, auth: 'password' }), { databasePasswords: { db: secret } }, 'test');
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    store.close();
    for (const file of readdirSync(dir)) expect(readFileSync(path.join(dir, file)).includes(secret), file).toBe(false);
  });

  it('exports and re-imports a fleet, and rejects a bad import as a whole', () => {
    const a = open(tempDir());
    a.devices.add(profile('rvm-001', { hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8' }), {}, 'test');
    a.devices.add(profile('rvm-002'), {}, 'test');
    const exported = JSON.parse(JSON.stringify(a.devices.export())) as unknown;
    const b = open(tempDir());
    expect(b.devices.import(exported, 'test').map((d) => d.profile.name)).toEqual(['rvm-001', 'rvm-002']);
    expect(b.devices.get('rvm-001').profile.hostKey).toBe('SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8');

    const c = open(tempDir());
    let error: unknown;
    try {
      c.devices.import([profile('good'), profile('bad', { host: 'a b' }), profile('good')], 'test');
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'VALIDATION' });
    expect((error as { issues: { path: string }[] }).issues.map((i) => i.path)).toEqual(['bad.host', 'good.name']);
    expect(c.devices.list()).toEqual([]);
    expect(() => b.devices.import(exported, 'test')).toThrow(/Nothing was imported/);
    expect(b.devices.import(exported, 'test', { replace: true })).toHaveLength(2);
    for (const s of [a, b, c]) s.store.close();
  });

  it('refuses an import with fields no profile has — a misspelt setting, a password — at their paths, rather than dropping them', () => {
    const { store, devices } = open(tempDir());
    const hostKey = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    let error: unknown;
    try {
      devices.import(
        {
          devices: [
            profile('rvm-017', { hostkey: hostKey, identity_file: '/keys/rvm', rpo: 15, password: 'pa55word' }),
            profile('rvm-018', { jump: { user: 'ops', host: '127.0.0.3', identity: '/keys/jump' }, sources: [{ name: 'app', kind: 'files', paths: ['/opt/app'], excludes: ['*.tmp'] }], services: { stop: [], start: [], restart: ['x'] } }),
          ],
        },
        'test',
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/Nothing was imported: 7 problem/) as string });
    const issues = (error as { issues: { path: string; message: string }[] }).issues;
    expect(issues.map((i) => i.path)).toEqual(['rvm-017.hostkey', 'rvm-017.identity_file', 'rvm-017.rpo', 'rvm-017.password', 'rvm-018.jump.identity', 'rvm-018.sources.0.excludes', 'rvm-018.services.restart']);
    expect(issues[0]!.message).toMatch(/not a profile setting.*hostKey\?/);
    expect(issues[1]!.message).toMatch(/identityFile\?/);
    expect(issues[3]!.message).toMatch(/never imported/);
    expect(issues[5]!.message).toMatch(/exclude\?/);
    expect(JSON.stringify(error)).not.toContain('pa55word');
    expect(devices.list()).toEqual([]);
    store.close();
  });

  it('says what is missing in plain words ("Required (text)"), at the profile it names (its place when it has no usable name)', () => {
    const { store, devices } = open(tempDir());
    const { user: _user, ...withoutUser } = profile('rvm-017');
    const { name: _name, ...nameless } = profile('');
    let error: unknown;
    try {
      devices.import([withoutUser, profile('rvm-018', { sources: [{ name: 'config', kind: 'files' }] }), nameless, profile('rvm 019')], 'test');
    } catch (caught) {
      error = caught;
    }
    expect((error as { issues: { path: string; message: string }[] }).issues).toEqual([
      { path: 'rvm-017.user', message: 'Required (text)' },
      { path: 'rvm-018.sources.0.paths', message: 'Required (a list)' },
      { path: '#3.name', message: 'Required (text)' },
      { path: '#4.name', message: expect.stringMatching(/^Use 1–64 letters/) as string },
    ]);
    expect(devices.list()).toEqual([]);
    store.close();
  });

  it('keeps pinned host keys through an import --replace of profiles written without them', () => {
    const { store, devices } = open(tempDir());
    const pinned = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const jumpKey = 'SHA256:AAAAg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const jump = { user: 'ops', host: '127.0.0.3', port: 22 };
    devices.import([profile('rvm-017', { hostKey: pinned, jump: { ...jump, hostKey: jumpKey } })], 'test');

    // The fleet's profiles file, edited for new tags, as written before any key was confirmed.
    devices.import([profile('rvm-017', { jump, tags: ['critical', 'retuned'] })], 'test', { replace: true });
    expect(devices.get('rvm-017').profile).toMatchObject({ hostKey: pinned, jump: { hostKey: jumpKey }, tags: ['critical', 'retuned'] });
    // Through another jump host: that host's key is not the old one's.
    devices.import([profile('rvm-017', { jump: { ...jump, host: '127.0.0.4' } })], 'test', { replace: true });
    expect(devices.get('rvm-017').profile).toMatchObject({ hostKey: pinned, jump: { ...jump, host: '127.0.0.4' } });
    expect(devices.get('rvm-017').profile.jump?.hostKey).toBeUndefined();
    // A key the file names is taken, as for a device imported anew.
    const other = 'SHA256:BBBBg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    devices.import([profile('rvm-017', { hostKey: other })], 'test', { replace: true });
    expect(devices.get('rvm-017').profile.hostKey).toBe(other);
    store.close();
  });

  it('refuses an edit made on a profile saved since (the CLI, another window) rather than undoing that save, at once within one millisecond too', () => {
    const dir = tempDir();
    const page = open(dir);
    const cli = open(dir);
    page.devices.add(profile('rvm-017'), {}, 'test');
    // The device page reads the profile; meanwhile `device import --replace` adds a source.
    const opened = page.devices.detail(page.devices.get('rvm-017'));
    const logs = { name: 'logs', kind: 'files', paths: ['/var/log/rvm'] };
    cli.devices.import([profile('rvm-017', { sources: [...profile('rvm-017').sources, logs] })], 'cli', { replace: true });
    // The page saves its site edit on the whole profile it read: refused, the CLI's source kept.
    const stale = { ...opened.profile, site: 'Depot South' };
    expect(() => page.devices.update('rvm-017', stale, {}, 'test', { ifUpdatedAt: opened.updatedAt })).toThrow(/changed since it was opened here.*nothing was saved/);
    const now = page.devices.get('rvm-017');
    expect(now.profile.sources.map((s) => s.name)).toEqual(['db', 'logs']);
    expect(now.profile.site).toBe('Depot North');
    // Made again on the profile as it is now, the edit saves and keeps the other change.
    page.devices.update('rvm-017', { ...now.profile, site: 'Depot South' }, {}, 'test', { ifUpdatedAt: now.updatedAt });
    expect(page.devices.get('rvm-017').profile).toMatchObject({ site: 'Depot South', sources: [{ name: 'db' }, { name: 'logs' }] });
    // Saves close together each leave a new stamp: the earlier one's edit is refused after the later.
    for (let i = 0; i < 20; i++) {
      const before = page.devices.get('rvm-017').updatedAt;
      cli.devices.update('rvm-017', { ...page.devices.get('rvm-017').profile, tags: [`t${i}`] }, {}, 'cli');
      expect(page.devices.get('rvm-017').updatedAt).not.toBe(before);
      expect(() => page.devices.update('rvm-017', profile('rvm-017'), {}, 'test', { ifUpdatedAt: before })).toThrow(/changed since/);
    }
    page.store.close();
    cli.store.close();
  });

  it('refuses a site or tag with control characters, which would rewrite the terminal of whoever lists the fleet', () => {
    const { store, devices } = open(tempDir());
    let error: unknown;
    try {
      devices.import([profile('rvm-9', { site: 'North\u001b[2J\u001b[31mDepot\nrvm-fake             root@10.0.0.1:22', tags: ['ok', 'a\rb'] })], 'test');
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'VALIDATION', issues: [{ path: 'rvm-9.site', message: expect.stringMatching(/control character/) as string }, { path: 'rvm-9.tags.1' }] });
    devices.add(profile('rvm-017', { site: 'Depot Nörth — bay 2', tags: ['critical', 'été'] }), {}, 'test');
    expect(() => devices.update('rvm-017', profile('rvm-017', { site: 'Depot\tNorth' }), {}, 'test')).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'site' })] }));
    expect(devices.list().map((d) => d.profile.site)).toEqual(['Depot Nörth — bay 2']);
    store.close();
  });

  it('never changes a pinned host key through a profile edit: a page opened before a re-pin saves its settings without bringing the old key back', () => {
    const { store, devices } = open(tempDir());
    const old = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const reinstalled = 'SHA256:AAAAg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const jumpKey = 'SHA256:BBBBg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const jump = { user: 'ops', host: '127.0.0.3', port: 22 };
    devices.add(profile('rvm-017', { hostKey: old, jump: { ...jump, hostKey: jumpKey } }), {}, 'test');
    const openPage = devices.get('rvm-017').profile; // the device page, as loaded
    devices.pinHostKey('rvm-017', reinstalled, 'test'); // `jetvault device trust` after a reflash, meanwhile

    devices.update('rvm-017', { ...openPage, site: 'Depot East' }, {}, 'test');
    expect(devices.get('rvm-017').profile).toMatchObject({ site: 'Depot East', hostKey: reinstalled, jump: { hostKey: jumpKey } });
    // Nor set or dropped by an edit: pins change only through the key check (decision 021).
    devices.update('rvm-017', { ...openPage, hostKey: undefined, jump: { ...jump, hostKey: undefined } }, {}, 'test');
    expect(devices.get('rvm-017').profile).toMatchObject({ hostKey: reinstalled, jump: { hostKey: jumpKey } });
    // Another jump host is another host: its key is confirmed anew.
    devices.update('rvm-017', { ...openPage, jump: { ...jump, host: '127.0.0.4', hostKey: jumpKey } }, {}, 'test');
    expect(devices.get('rvm-017').profile.jump).toEqual({ ...jump, host: '127.0.0.4' });
    store.close();
  });

  it('refuses an include or exclude pattern no backup could use, at its field, on save and import', () => {
    const { store, devices } = open(tempDir());
    const files = (exclude: string[]) => ({ sources: [{ name: 'db', kind: 'postgres', database: 'myrvm' }, { name: 'app', kind: 'files', paths: ['/opt/myrvm'], include: ['*.py'], exclude }] });
    let error: unknown;
    try {
      devices.add(profile('rvm-017', files(['*.tmp', '[z-a]'])), {}, 'test');
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'VALIDATION', issues: [{ path: 'sources.1.exclude.1', message: expect.stringMatching(/"\[z-a\]" is not a valid pattern \(range out of order/) as string }] });
    expect(devices.list()).toEqual([]);
    devices.add(profile('rvm-017', files(['*.tmp', '[a-z]'])), {}, 'test');
    expect(() => devices.update('rvm-017', profile('rvm-017', files(['[9-0]*'])), {}, 'test')).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'sources.1.exclude.0' })] }));
    expect(() => devices.import([profile('rvm-018', files(['[z-a]']))], 'test')).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'rvm-018.sources.1.exclude.0' })] }));
    expect(devices.get('rvm-017').profile.sources[1]).toMatchObject({ exclude: ['*.tmp', '[a-z]'] });
    store.close();
  });

  it("refuses a files source path inside Jetvault's own working folders on the device (backups leave them out), on save and import", () => {
    const { store, devices } = open(tempDir());
    const files = (paths: string[]) => ({ sources: [{ name: 'app', kind: 'files', paths }] });
    expect(() => devices.add(profile('rvm-017', files(['/opt/myrvm', '/opt/.jetvault-resume-myrvm/models'])), {}, 'test')).toThrow(
      expect.objectContaining({ code: 'VALIDATION', issues: [{ path: 'sources.0.paths.1', message: expect.stringMatching(/^\/opt\/\.jetvault-resume-myrvm\/models is inside one of Jetvault's own working folders on the device/) as string }] }),
    );
    expect(devices.list()).toEqual([]);
    expect(() => devices.import([profile('rvm-018', files(['/home/jetson/.jetvault-restore']))], 'test')).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'rvm-018.sources.0.paths.0' })] }));
    devices.add(profile('rvm-017', files(['/opt/myrvm/.jetvault', '/opt/x.jetvault-y'])), {}, 'test');
    expect(devices.get('rvm-017').profile.sources[0]).toMatchObject({ paths: ['/opt/myrvm/.jetvault', '/opt/x.jetvault-y'] });
    store.close();
  });

  it('pins a confirmed host key and reads key files for connections', async () => {
    const dir = tempDir();
    const { store, devices } = open(dir);
    const keyFile = keygen(dir, 'id_ed25519', 'key passphrase');
    devices.add(profile('rvm-017', { identityFile: keyFile }), { passphrase: 'key passphrase' }, 'test');
    expect(() => devices.pinHostKey('rvm-017', 'MD5:00', 'test')).toThrow(/fingerprint/);
    devices.pinHostKey('rvm-017', 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', 'test');
    const options = await devices.connectOptions('rvm-017');
    expect(options).toMatchObject({ host: '127.0.0.2', port: 2222, user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8' });
    expect(options.auth).toEqual({ kind: 'key', privateKey: readFileSync(keyFile), passphrase: 'key passphrase' });
    devices.add(profile('rvm-404', { identityFile: path.join(dir, 'missing') }), {}, 'test');
    await expect(devices.connectOptions('rvm-404')).rejects.toThrow(/cannot read the key file/);
    store.close();
  });

  it('reads a key file named from the home folder (~/…), and refuses a relative one that would depend on where Jetvault was started', async () => {
    const { store, devices } = open(tempDir());
    const home = tempDir();
    mkdirSync(path.join(home, '.ssh'));
    const fleetKey = readFileSync(keygen(path.join(home, '.ssh'), 'fleet_key'));
    const before = process.env.HOME;
    process.env.HOME = home;
    try {
      // One shared profile for every technician's laptop: the key in each one's home folder.
      devices.import({ devices: [profile('rvm-017', { identityFile: '~/.ssh/fleet_key', jump: { user: 'ops', host: '127.0.0.3', identityFile: '~/.ssh/fleet_key' } })] }, 'test');
      const options = await devices.connectOptions('rvm-017');
      expect(options.auth).toEqual({ kind: 'key', privateKey: fleetKey });
      expect(options.jump?.auth).toEqual({ kind: 'key', privateKey: fleetKey });
      expect(devices.export().devices[0]).toMatchObject({ identityFile: '~/.ssh/fleet_key' }); // kept as written
    } finally {
      process.env.HOME = before;
    }
    const relative = (extra: Record<string, unknown>) => {
      try {
        devices.import([profile('rvm-018', extra)], 'test');
      } catch (error) {
        return error;
      }
      return null;
    };
    expect(relative({ identityFile: 'keys/rvm.key' })).toMatchObject({ code: 'VALIDATION', issues: [{ path: 'rvm-018.identityFile', message: expect.stringMatching(/full path/) as string }] });
    expect(relative({ jump: { user: 'ops', host: '127.0.0.3', identityFile: 'id_jump' } })).toMatchObject({ issues: [{ path: 'rvm-018.jump.identityFile' }] });
    expect(() => devices.add(profile('rvm-018', { identityFile: './id_ed25519' }), {}, 'test')).toThrow(expect.objectContaining({ issues: [expect.objectContaining({ path: 'identityFile' })] }));
    expect(() => devices.update('rvm-017', profile('rvm-017', { identityFile: 'id_ed25519' }), {}, 'test')).toThrow(/Invalid device profile/);
    // Key login without a key file: refused on save, not found out at the next backup.
    expect(() => devices.update('rvm-017', profile('rvm-017', { auth: 'key' }), {}, 'test')).toThrow(expect.objectContaining({ issues: [{ path: 'identityFile', message: 'Signing in with a key needs its key file' }] }));
    expect(relative({ auth: 'key' })).toMatchObject({ issues: [{ path: 'rvm-018.identityFile' }] });
    expect(devices.list().map((d) => d.profile.name)).toEqual(['rvm-017']);
    store.close();
  });

  it("says what is wrong with a key file before any login: a public key, not a key at all, a passphrase missing or wrong — at the field to fix", async () => {
    const dir = tempDir();
    const { store, devices } = open(dir);
    const hostKey = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    const plain = keygen(dir, 'id_plain');
    const locked = keygen(dir, 'id_locked', 'key passphrase');
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'ssh rvm-017 and run the backup\n');
    const draft = (identityFile: string, passphrase?: string) => devices.draftConnectOptions(profile('rvm-017', { hostKey, identityFile }), passphrase ? { passphrase } : {});

    // The .pub beside the key, picked by mistake: not the device's fault, nor a passphrase's.
    await expect(draft(`${plain}.pub`)).rejects.toMatchObject({ code: 'VALIDATION', message: `rvm-017: ${plain}.pub is a public key: name its private key (${plain})`, issues: [{ path: 'identityFile' }] });
    await expect(draft(text)).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining(`${text} is not an SSH private key`) as string, issues: [{ path: 'identityFile' }] });
    await expect(draft(locked)).rejects.toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(/cannot be used: it is locked with a passphrase/) as string, issues: [{ path: 'passphrase' }] });
    await expect(draft(locked, 'not it')).rejects.toMatchObject({ code: 'AUTH_FAILED', message: expect.stringMatching(/cannot be used: the passphrase given does not open it/) as string, issues: [{ path: 'passphrase' }] });
    expect((await draft(locked, 'key passphrase')).options.auth).toMatchObject({ kind: 'key', passphrase: 'key passphrase' });
    // A jump host's key file alike, at its own field.
    devices.add(profile('rvm-far', { hostKey, identityFile: plain, jump: { user: 'ops', host: '127.0.0.3', hostKey, identityFile: `${plain}.pub` } }), {}, 'test');
    await expect(devices.connectOptions('rvm-far')).rejects.toMatchObject({ code: 'VALIDATION', issues: [{ path: 'jump.identityFile' }] });
    store.close();
  });

  it('builds connection options for a profile not added yet from the secrets as typed, storing nothing', async () => {
    const dir = tempDir();
    const { store, devices } = open(dir);
    const hostKey = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    await expect(devices.draftConnectOptions(profile('rvm-017', { auth: 'password' }), { password: 'typed' })).rejects.toMatchObject({ code: 'VALIDATION', issues: [{ path: 'hostKey' }] });
    await expect(devices.draftConnectOptions(profile('rvm 017', { hostKey }), {})).rejects.toMatchObject({ code: 'VALIDATION', issues: [{ path: 'name' }] });
    await expect(devices.draftConnectOptions(profile('rvm-017', { hostKey, auth: 'password' }), {})).rejects.toMatchObject({ issues: [{ path: 'password' }] });
    const draft = await devices.draftConnectOptions(profile('rvm-017', { hostKey, auth: 'password' }), { password: 'typed' });
    expect(draft.options).toMatchObject({ host: '127.0.0.2', port: 2222, user: 'jetson', hostKey, auth: { kind: 'password', password: 'typed' } });
    expect(draft.profile.name).toBe('rvm-017');
    const keyFile = keygen(dir, 'id_ed25519', 'typed passphrase');
    const keyed = await devices.draftConnectOptions(profile('rvm-017', { hostKey, identityFile: keyFile }), { passphrase: 'typed passphrase' });
    expect(keyed.options.auth).toEqual({ kind: 'key', privateKey: readFileSync(keyFile), passphrase: 'typed passphrase' });
    expect(devices.list()).toEqual([]);
    store.close();
  });
});
