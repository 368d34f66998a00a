/**
 * Settings → Repositories against real repositories on disk and the real services: a secondary is
 * added (password into the secret store), tested (wrong password, not initialised, unreachable,
 * then good), counted as a copy of a device's latest run once it holds it, made primary; the
 * offsite rule is raised and cleared.
 */
import { cpSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKUP_PHASES, runSources } from '../devices/device-backup';
import { LocalRunner } from '../devices/local-runner';
import { HISTORY_FILE } from '../history/database';
import { silentLogger } from '../log';
import { LocalBackend } from '../repository/backend/local-backend';
import { Repository } from '../repository/repo/repository';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import { createServices } from './index';
import type { Services } from './index';
import { holdingsOf, holdsAtLeast } from './repositories-service';
import { cliServices } from '../testing/test-console';

const open: Services[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.dispose();
});

const SECOND_PASSWORD = 'a different password for the copy';
const DAY = 86_400_000;

async function setup() {
  const dataDir = tempDir();
  const services = createServices({
    dataDir,
    log: silentLogger,
    platform: { transport: 'cli', openExternal: () => Promise.resolve() },
    env: { JETVAULT_PASSWORD: PASSWORD, JETVAULT_SECRETS_PASSPHRASE: 'secrets passphrase for the test' },
  });
  open.push(services);
  await services.repository.init(PASSWORD, FAST);
  const root = tempDir();
  await mkdir(path.join(root, 'etc/myrvm'), { recursive: true });
  await writeFile(path.join(root, 'etc/myrvm/config.yaml'), 'fps: 30\n');
  const sources = [{ name: 'config', kind: 'files' as const, paths: [path.join(root, 'etc/myrvm')] }];
  const device = services.devices.add({ name: 'rvm-050', host: '127.0.0.1', user: 'jetson', sources }, {}, 'test');
  let n = 0;
  /** One backup run of the device as a job, as the console records it. */
  const backUp = async () => {
    await writeFile(path.join(root, 'etc/myrvm/config.yaml'), `fps: ${30 + ++n}\n`);
    const done = await services.jobs.start({ kind: 'backup', title: 'Back up rvm-050', phases: [...BACKUP_PHASES], deviceId: device.id }, async (ctx) =>
      runSources(await services.repository.open(), new LocalRunner(), { name: 'rvm-050', sysroot: root }, sources, ctx),
    ).done;
    expect(done.record.error).toBeNull();
    return (done.value as { runId: string }).runId;
  };
  return { services, dataDir, backUp };
}

const rowOf = (s: Services) => s.overview.overview().devices.find((d) => d.name === 'rvm-050')!;

describe('repositories', () => {
  it('adds a secondary, tests it (wrong password, then good), counts it as a copy while it holds the latest run, and makes it primary', async () => {
    const { services: s, dataDir, backUp } = await setup();
    const primaryLocation = s.repository.location();
    await backUp();
    expect(rowOf(s)).toMatchObject({ copies: 1, offsiteCopy: false });

    // A copy of the whole repository on another disk (same password, same runs).
    const copyDir = path.join(tempDir(), 'usb-copy');
    cpSync(primaryLocation, copyDir, { recursive: true });
    const added = s.repositories.add({ location: copyDir, password: 'not the password', name: 'USB disk' }, 'test');
    expect(added).toMatchObject({ name: 'USB disk', kind: 'local', primary: false, offsite: false, hasPassword: true, lastTest: null });
    expect(s.repositories.list().map((r) => [r.name, r.primary])).toEqual([
      ['Primary', true],
      ['USB disk', false],
    ]);

    const wrong = await s.repositories.test(added.id, 'test');
    expect(wrong).toMatchObject({ reachable: true, initialised: true, snapshots: null, error: `Wrong password for ${copyDir}` });
    expect(rowOf(s).copies).toBe(1);
    s.repositories.update({ id: added.id, password: PASSWORD }, 'test');
    const good = await s.repositories.test(added.id, 'test');
    expect(good).toMatchObject({ reachable: true, initialised: true, snapshots: 1, devices: 1, error: null });
    expect(s.repositories.get(added.id).lastTest).toEqual(good);
    expect(rowOf(s)).toMatchObject({ copies: 2, offsiteCopy: false });

    // A newer run in the primary only: the copy no longer holds the latest run.
    await backUp();
    expect(rowOf(s).copies).toBe(1);
    cpSync(primaryLocation, copyDir, { recursive: true });
    expect(rowOf(s).copies).toBe(1); // cached: nothing is opened until it is tested again
    await s.repositories.test(added.id, 'test');
    expect(rowOf(s).copies).toBe(2);

    // The password is in the secret store only: not in the history's plain tables or the file.
    const history = readFileSync(path.join(dataDir, HISTORY_FILE));
    expect(history.includes(Buffer.from(PASSWORD))).toBe(false);
    expect(JSON.stringify(s.history.db.prepare('SELECT * FROM repositories').all())).not.toContain(PASSWORD);

    expect(() => s.repositories.remove(s.repositories.primary().id, 'test')).toThrow(/is the primary repository/);
    const primaryEntry = await s.repositories.setPrimary(added.id, 'test');
    expect(primaryEntry).toMatchObject({ primary: true, location: copyDir });
    expect(s.settings.get().repositoryPath).toBe(copyDir);
    expect(await s.repository.status()).toMatchObject({ location: copyDir, unlocked: true });
    expect(s.audit.list({ action: 'repository.set-primary' })).toMatchObject([{ target: 'USB disk', result: 'ok' }]);
  });

  it('reports unreachable, uninitialised and unsupported locations clearly, and refuses bad input', async () => {
    const { services: s } = await setup();
    const missing = s.repositories.add({ location: path.join(tempDir(), 'not-there'), password: 'pw-12345678' }, 'test');
    expect(await s.repositories.test(missing.id, 'test')).toMatchObject({ reachable: false, initialised: false, snapshots: null, error: expect.stringMatching(/^Nothing at .*not-there: the folder or bucket does not exist/) as unknown });
    const empty = s.repositories.add({ location: tempDir(), password: 'pw-12345678' }, 'test');
    expect(await s.repositories.test(empty.id, 'test')).toMatchObject({ reachable: true, initialised: false, error: expect.stringMatching(/holds no Jetvault repository/) as unknown });
    const sftp = s.repositories.add({ location: 'sftp:backup@127.0.0.1:2222:/srv/jetvault', password: 'pw-12345678', sftpPassword: 'login secret' }, 'test');
    expect(sftp).toMatchObject({ kind: 'sftp', hasCredentials: true });
    const sftpTest = await s.repositories.test(sftp.id, 'test');
    expect(sftpTest.reachable).toBe(false);
    expect(sftpTest.error).toMatch(/sftp:backup@127\.0\.0\.1:2222:\/srv\/jetvault/);
    expect(s.audit.list({ action: 'repository.test', result: 'failed' })).toHaveLength(3);

    expect(() => s.repositories.add({ location: 's3:no-bucket', password: 'pw-12345678' }, 'test')).toThrow(/Invalid repository/);
    expect(() => s.repositories.add({ location: 'relative/dir', password: 'pw-12345678' }, 'test')).toThrow(/Invalid repository/);
    expect(() => s.repositories.add({ location: 'sftp:host:/x', password: 'pw-12345678' }, 'test')).toThrow(/Invalid repository/);
    expect(() => s.repositories.add({ location: s.repository.location(), password: 'pw-12345678' }, 'test')).toThrow(/already in the list as "Primary"/);
    expect(() => s.repositories.add({ location: tempDir(), password: 'pw-12345678', accessKeyId: 'AKIA' }, 'test')).toThrow(/Invalid repository/);
    expect(() => s.repositories.update({ id: empty.id, copyWhenReachable: true }, 'test')).toThrow(/policy of offsite repositories: mark it offsite first/);
    expect(() => s.repositories.get('repo_000000')).toThrow(/No repository repo_000000/);
    s.repositories.remove(empty.id, 'test');
    expect(s.repositories.list().map((r) => r.id)).not.toContain(empty.id);
  });

  it('raises "no recent offsite copy" once a repository is offsite, and clears it when a recent copy is there', async () => {
    const { services: s, backUp } = await setup();
    await backUp();
    expect(s.alerts.evaluate().raised.map((a) => a.rule)).not.toContain('offsiteCopyMissing'); // no repository is offsite yet

    const offsiteDir = path.join(tempDir(), 'vault');
    await Repository.init(new LocalBackend(offsiteDir), SECOND_PASSWORD, FAST);
    const vault = s.repositories.add({ location: offsiteDir, password: SECOND_PASSWORD, name: 'Vault', offsite: true }, 'test');
    const raised = s.alerts.evaluate().raised.filter((a) => a.rule === 'offsiteCopyMissing');
    expect(raised.map((a) => [a.device, a.severity, a.message])).toEqual([['rvm-050', 'warning', 'rvm-050: no copy in an offsite repository yet']]);

    // The whole primary copied to the vault (same runs): tested, it holds the latest run.
    cpSync(s.repository.location(), offsiteDir, { recursive: true });
    s.repositories.update({ id: vault.id, password: PASSWORD }, 'test');
    expect(await s.repositories.test(vault.id, 'test')).toMatchObject({ snapshots: 1, error: null });
    expect(rowOf(s)).toMatchObject({ copies: 2, offsiteCopy: true });
    expect(s.alerts.evaluate().resolved.map((a) => a.rule)).toEqual(['offsiteCopyMissing']);

    // Eight days on with no newer offsite copy, over the threshold of 7: raised again; 10 days allowed: clear.
    const later = { ...s.alerts.input(), now: new Date(Date.now() + 8 * DAY) };
    expect(s.alerts.evaluate(later).raised.find((a) => a.rule === 'offsiteCopyMissing')?.message).toMatch(/^rvm-050: the newest offsite copy is 8 days old \(over 7 days\)$/);
    s.settings.update({ monitoringRules: { ...s.settings.get().monitoringRules, offsiteCopyMissing: { enabled: true, threshold: 10 } } }, 'test');
    expect(s.alerts.evaluate({ ...s.alerts.input(), now: later.now }).resolved.map((a) => a.rule)).toEqual(['offsiteCopyMissing']);
  });

  it('settings written before the offsite rule existed keep their thresholds and get its default', () => {
    const dataDir = tempDir();
    const s = cliServices(dataDir);
    open.push(s);
    const old = { ...s.settings.get().monitoringRules, rpoBreached: { enabled: true, threshold: 2 } } as Record<string, unknown>;
    delete old.offsiteCopyMissing;
    s.history.sql.settingUpsert.run('monitoringRules', JSON.stringify(old), new Date().toISOString());
    expect(s.settings.get().monitoringRules).toMatchObject({ rpoBreached: { threshold: 2 }, offsiteCopyMissing: { enabled: true, threshold: 7 } });
  });
});

describe('holdings', () => {
  it('take the newest run per device from run-tagged snapshots (run ids sort by time)', () => {
    const snap = (device: string, run: string | null, time: string) => ({ id: `${device}${run}${time}`, device, time, tags: run ? [`run:${run}`] : [] }) as never;
    const held = holdingsOf([
      snap('a', '20261130120000-aaaaaa', '2026-11-30T12:00:05Z'),
      snap('a', '20261130120000-aaaaaa', '2026-11-30T12:00:09Z'),
      snap('a', '20261129120000-bbbbbb', '2026-11-29T12:00:05Z'),
      snap('a', '20261130120000-ffffff', '2026-11-30T12:00:01Z'), // same second, an earlier run (by its snapshots)
      snap('b', '20261101000000-cccccc', '2026-11-01T00:00:05Z'),
      snap('laptop', null, '2026-11-30T00:00:00Z'),
    ]);
    expect(Object.fromEntries(held)).toEqual({
      a: { latestRun: '20261130120000-aaaaaa', latestAt: '2026-11-30T12:00:09Z', runs: 3 },
      b: { latestRun: '20261101000000-cccccc', latestAt: '2026-11-01T00:00:05Z', runs: 1 },
    });
  });

  it('leave out a run killed part-way (fewer snapshots than its run-size): it is no copy of the device', () => {
    const snap = (run: string, source: string, time: string) => ({ id: `${run}${source}`, device: 'a', time, tags: [`run:${run}`, 'run-size:2', `source:${source}`] }) as never;
    const held = holdingsOf([
      snap('20261129120000-bbbbbb', 'db', '2026-11-29T12:00:05Z'),
      snap('20261129120000-bbbbbb', 'app', '2026-11-29T12:00:09Z'),
      snap('20261130120000-aaaaaa', 'db', '2026-11-30T12:00:05Z'), // its app snapshot was never written
    ]);
    expect(Object.fromEntries(held)).toEqual({ a: { latestRun: '20261129120000-bbbbbb', latestAt: '2026-11-29T12:00:09Z', runs: 1 } });
  });

  it('count a run as held when it is the same run or begun in a later second, never by the random part', () => {
    expect(holdsAtLeast('20261130120000-aaaaaa', '20261130120000-aaaaaa')).toBe(true);
    expect(holdsAtLeast('20261130120001-000000', '20261130120000-ffffff')).toBe(true);
    expect(holdsAtLeast('20261130120000-ffffff', '20261130120000-000000')).toBe(false); // same second, another run
    expect(holdsAtLeast('20261129120000-ffffff', '20261130120000-000000')).toBe(false);
    expect(holdsAtLeast('', '20261130120000-000000')).toBe(false);
  });
});
