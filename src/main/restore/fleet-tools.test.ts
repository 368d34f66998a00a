/**
 * Config versions, downloads to the laptop and restore drills against a real device of the test
 * fleet (sshd, PostgreSQL, SQLite), including a drill whose link is cut.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport, startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { runCli } from '../../cli/main';
import { startDeviceBackup } from '../devices/device-backup';
import type { Services } from '../services/index';
import { marked } from '../devices/leftovers';
import { sh } from '../devices/shell-quote';
import { DeviceConnection } from '../devices/ssh-connection';
import { waitFor } from '../testing/wait';
import { DRILL_PREFIX } from './drill';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const NETNS = netnsSupport();
let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
let before: string;
let configFile: string;
let firstConfig: string;
let secondConfig: string;

async function settled(jobId: string, ms = 120_000) {
  const deadline = Date.now() + ms;
  while (services.jobs.get(jobId)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return services.jobs.get(jobId)!;
}

/** Drill scratch left on the device: folders, database work folders, scratch databases. */
const scratchLeft = async () => {
  const dir = path.join(device.root, 'var/tmp');
  const work = path.join(device.account.home, '.jetvault-restore');
  const databases = (await device.mutate.sql("SELECT datname FROM pg_database WHERE datname LIKE '%\\_jv\\_drill\\_%';")).split('\n').filter(Boolean);
  return [
    ...(existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(DRILL_PREFIX)) : []),
    ...(existsSync(work) ? readdirSync(work).filter((n) => n.startsWith('drill')) : []),
    ...databases,
  ];
};

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, netns: NETNS.ok, proxy: true, sharedModelMB: 6, uniqueModelMB: 2 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('tools', 'restore tools test repository password'));
  // A cut link is given up after 10 s of silence, not the default 20: these tests wait for it.
  services.settings.update({ silentLinkSeconds: 10 }, 'test');
  services.devices.import(device.profile(), 'test');
  configFile = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
  firstConfig = readFileSync(configFile, 'utf8');
  writeFileSync(binaryFile(), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]));
  const first = (await startDeviceBackup(services, device.name).done).value!;
  before = first.snapshots.find((s) => s.source === 'config')!.snapshotId;
  // A technician's change between two backups: one value edited, one line added.
  secondConfig = `${firstConfig.replace('threshold: 0.85', 'threshold: 0.6  # changed-in-the-field')}extra_setting: true\n`;
  expect(secondConfig).not.toBe(firstConfig);
  writeFileSync(configFile, secondConfig);
  writeFileSync(binaryFile(), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 3]));
  await startDeviceBackup(services, device.name).done;
}, 300_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

const relConfig = () => path.relative(device.root, configFile);
function binaryFile() {
  return path.join(device.root, 'etc', device.app, 'calibration.bin');
}

describe('config versions on a real device', () => {
  it('lists two versions, diffs them, and restores the old one onto the device', async () => {
    const latest = (await services.catalog.list(device.name)).find((s) => s.source === 'config')!;
    const { versions, missingIn } = await services.versions.versions(latest.id, relConfig());
    expect(missingIn).toBe(0);
    expect(versions).toHaveLength(2);
    expect(versions[1]!.snapshotId).toBe(before);
    expect(versions[0]!.size).toBe(Buffer.byteLength(secondConfig));
    expect(versions[1]!.size).toBe(Buffer.byteLength(firstConfig));

    const diff = await services.versions.diff(before, latest.id, relConfig());
    expect(diff).toMatchObject({ notText: null, identical: false, added: 2, removed: 1 });
    const changed = diff.hunks.flatMap((h) => h.lines).filter((l) => l.op !== ' ');
    expect(changed.map((l) => l.op)).toEqual(['-', '+', '+']);
    expect(changed[1]!.text).toContain('changed-in-the-field');
    expect(changed[2]!.text).toBe('extra_setting: true');
    // An unchanged file is identical; a binary file says so instead of a diff.
    expect((await services.versions.diff(before, latest.id, path.relative(device.root, path.join(device.root, 'etc', device.app, 'logging.yaml')))).identical).toBe(true);
    expect(await services.versions.diff(before, latest.id, path.relative(device.root, binaryFile()))).toMatchObject({ notText: 'binary', identical: false, hunks: [] });

    // Two clicks: "Restore this version" (the plan), then confirm (the restore job).
    const request = await services.versions.restoreRequest(before, relConfig());
    const plan = await services.restores.plan(request);
    expect(plan.roots.map((r) => [r.replace, r.add, r.remove])).toContainEqual([1, 0, 0]);
    expect(plan.roots.reduce((n, r) => n + r.replace + r.add + r.remove, 0)).toBe(1);
    const other = path.join(device.root, 'etc', device.app, 'logging.yaml');
    const otherBefore = readFileSync(other, 'utf8');
    writeFileSync(other, `${otherBefore}# a local edit that the one-file restore must keep\n`);
    const { jobId } = services.restores.start(request);
    const record = await settled(jobId);
    expect(record.error).toBeNull();
    expect(readFileSync(configFile, 'utf8')).toBe(firstConfig);
    expect(readFileSync(other, 'utf8')).toBe(`${otherBefore}# a local edit that the one-file restore must keep\n`);
    const pending = services.restores.pending().find((p) => p.snapshotId === before)!;
    await services.restores.confirm(pending.restoreId);
    expect(readFileSync(configFile, 'utf8')).toBe(firstConfig);
    writeFileSync(other, otherBefore);
  }, 120_000);

  it('restores a source path that is a single file (.env) on its own', async () => {
    const envFile = path.join(device.root, 'opt', device.app, '.env');
    const original = readFileSync(envFile, 'utf8');
    writeFileSync(envFile, 'BROKEN=1\n');
    const request = await services.versions.restoreRequest(before, path.relative(device.root, envFile));
    expect(request.include).toEqual(['/.env']);
    const plan = await services.restores.plan(request);
    expect(plan.roots.flatMap((r) => r.samples)).toEqual(['~ .env']);
    const { jobId } = services.restores.start(request);
    expect((await settled(jobId)).error).toBeNull();
    expect(readFileSync(envFile, 'utf8')).toBe(original);
    await services.restores.confirm(services.restores.pending().find((p) => p.snapshotId === before)!.restoreId);
  }, 60_000);

  it('refuses versions of a folder with a clear error', async () => {
    await expect(services.versions.versions(before, path.dirname(relConfig()))).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(services.versions.versions(before, 'etc/nope.yaml')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('downloads to the laptop', () => {
  it('downloads one file and a whole source into new sub-folders, never over what is there', async () => {
    const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-download-'));
    try {
      const one = await services.downloads.start({ snapshotId: before, paths: [relConfig()], folder });
      expect((await settled(one.jobId)).status).toBe('succeeded');
      expect(readFileSync(path.join(one.target, relConfig()), 'utf8')).toBe(firstConfig);
      expect(readdirSync(path.join(one.target, path.dirname(relConfig())))).toEqual([path.basename(configFile)]);

      const whole = await services.downloads.start({ snapshotId: before, folder });
      expect(whole.target).toBe(`${one.target}-2`);
      const record = await settled(whole.jobId);
      expect(record.status).toBe('succeeded');
      expect(record.kind).toBe('download');
      expect(readFileSync(path.join(whole.target, path.relative(device.root, path.join(device.root, 'opt', device.app, '.env'))), 'utf8')).toBe(
        readFileSync(path.join(device.root, 'opt', device.app, '.env'), 'utf8'),
      );
      await expect(services.downloads.start({ snapshotId: before, folder: path.join(folder, 'missing') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('restore drills on a real device', () => {
  let fastDrillBytes = 0;
  it('drills the latest run into scratch (files, a scratch database, a scratch SQLite file), records durations per source, and leaves no scratch', async () => {
    const carried = device.proxy!.carried.toDevice;
    const started = services.drills.start(device.name);
    const record = await settled(started.id);
    expect(record.error).toBeNull();
    expect(record.status).toBe('succeeded');
    const drill = services.drills.get(started.drillId)!;
    expect(drill.cleanup).toBe('done');
    expect(drill.sources.map((s) => s.source)).toEqual(['db', 'local', 'config', 'logs', 'app']);
    for (const s of drill.sources) {
      expect(s.error, s.source).toBeNull();
      expect(s.result, s.source).toBe('passed');
      expect(s.durationMs).toBeGreaterThan(0);
      expect(s.files).toBeGreaterThan(0);
    }
    const [db, local] = drill.sources;
    expect(db!.detail).toMatch(/tables, \d+ rows match the snapshot; opened as database myrvm_jv_drill_/);
    expect(local!.detail).toMatch(/rows match the snapshot; integrity_check ok/);
    for (const s of drill.sources) expect(s.detail, s.source).not.toMatch(/gzip/); // a fast link: sent as it is
    fastDrillBytes = device.proxy!.carried.toDevice - carried;
    expect(drill.sources.find((s) => s.source === 'app')!.bytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(drill.result).toBe('passed');
    expect(drill.totalMs).toBeGreaterThanOrEqual(drill.sources.reduce((n, s) => n + s.durationMs, 0));
    expect(await scratchLeft()).toEqual([]);
    expect(await device.mutate.pgCount('deposits')).toBeGreaterThan(0); // the live database is untouched

    const rto = services.drills.rto(device.name);
    expect(rto).toMatchObject({ objectiveMinutes: 60, objectiveFrom: 'default', estimateMs: drill.totalMs, complete: true, status: 'ok' });
    // The device's own objective wins over the default; a measured time beyond it is "over".
    services.devices.update(device.name, { ...device.profile(), rtoMinutes: 1 }, {}, 'test');
    expect(services.drills.rto(device.name)).toMatchObject({ objectiveMinutes: 1, objectiveFrom: 'device', status: drill.totalMs! > 60_000 ? 'over' : 'ok' });
    services.devices.update(device.name, device.profile(), {}, 'test');
    expect(services.drills.list(device.name)[0]!.id).toBe(drill.id);
  }, 180_000);

  it('runs from the CLI: jetvault drill --device NAME --json', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const env = { JETVAULT_HOME: dataDir, JETVAULT_PASSWORD: 'restore tools test repository password' };
    const code = await runCli(['drill', '--device', device.name, '--json'], { out: (l) => out.push(l), err: (l) => err.push(l), env });
    expect(err).toEqual([]);
    const printed = JSON.parse(out.join('\n')) as { result: string; totalMs: number; sources: { source: string; result: string }[]; rto: { status: string } };
    expect(code).toBe(0);
    expect(printed.result).toBe('passed');
    expect(printed.sources.map((s) => `${s.source}:${s.result}`)).toEqual(['db:passed', 'local:passed', 'config:passed', 'logs:passed', 'app:passed']);
    expect(printed.totalMs).toBeGreaterThan(0);
    expect(printed.rto.status).toBe('ok');
    expect(services.drills.list(device.name)[0]!.result).toBe(printed.result);
    expect(await runCli(['drill'], { out: () => undefined, err: (l) => err.push(l), env })).toBe(2);
    expect(err.join('\n')).toMatch(/--device NAME is required/);
  }, 180_000);

  it("over a slow link a drill sends gzip'ed, as a restore over it would, and every source still verifies", async () => {
    device.proxy!.delayMs = 40; // 80 ms round trips, bandwidth untouched
    const carried = device.proxy!.carried.toDevice;
    const started = services.drills.start(device.name);
    let record;
    try {
      record = await settled(started.id, 240_000);
    } finally {
      device.proxy!.delayMs = 0;
    }
    expect(record.error).toBeNull();
    const drill = services.drills.get(started.drillId)!;
    expect(drill.sources.map((s) => `${s.source}:${s.result}`)).toEqual(['db:passed', 'local:passed', 'config:passed', 'logs:passed', 'app:passed']);
    for (const s of drill.sources) expect(s.detail, s.source).toMatch(/sent gzip'ed \(slow link\)$/);
    expect(drill.sources[0]!.detail).toMatch(/rows match the snapshot/);
    // The dumps, configuration and logs shrink on the way (the random model files do not).
    const slowDrillBytes = device.proxy!.carried.toDevice - carried;
    expect(fastDrillBytes).toBeGreaterThan(0);
    expect(slowDrillBytes).toBeLessThan(fastDrillBytes * 0.8);
    expect(await scratchLeft()).toEqual([]);
  }, 300_000);

  it('a cancelled drill stops, is recorded as cancelled, and still removes its scratch', async () => {
    const started = services.drills.start(device.name);
    const deadline = Date.now() + 60_000;
    while (!services.jobs.active().some((p) => p.jobId === started.id && p.phase === 'stage' && p.bytesDone > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(services.jobs.cancel(started.id)).toBe(true);
    expect((await settled(started.id)).status).toBe('cancelled');
    const drill = services.drills.get(started.drillId)!;
    expect(drill).toMatchObject({ result: 'cancelled', totalMs: null, cleanup: 'done' });
    expect(await scratchLeft()).toEqual([]);
    expect(services.drills.rto(device.name).status).toBe('ok'); // a cancelled drill says nothing about the RTO
  }, 120_000);

  it('a drill first stops what an earlier drill cut off by a dead link left on the device (a pg_restore holding its scratch database), then removes that scratch too', async () => {
    const db = device.profile().sources.find((s) => s.kind === 'postgres')!;
    // An earlier drill's database step as a dead link leaves it: marked by this console, connected
    // to its scratch database, waiting for input that never comes. DROP DATABASE refuses while it is.
    const scratch = `${db.database}_jv_drill_leftover`;
    const connection = await DeviceConnection.open(await services.devices.connectOptions(device.name));
    const held = await connection.exec(marked(sh`PGHOST=${db.host} PGPORT=${db.port} psql -X -q -d postgres -c ${`CREATE DATABASE "${scratch}"`} && PGHOST=${db.host} PGPORT=${db.port} exec psql -X -q -d ${scratch}`, services.devices.marksScope(device.name)));
    held.stdout.resume();
    const connected = async () => (await device.mutate.sql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${scratch}';`)).trim() === '1';
    await waitFor('the leftover session on its scratch database', connected, 10_000, 100);
    device.proxy!.stall({ deviceHearsNothing: true });
    connection.close();
    device.proxy!.restore();
    try {
      expect(device.sessionProcesses('psql')).toHaveLength(1);
      const next = services.drills.start(device.name);
      expect((await settled(next.id)).status).toBe('succeeded');
      expect(services.drills.get(next.drillId)!.cleanup).toBe('done');
      // Said with the drill, as a backup says it: the session it stopped.
      expect(services.drills.get(next.drillId)!.leftoversStopped).toEqual([expect.stringMatching(/^psql\b/)]);
      expect(await scratchLeft()).toEqual([]);
      expect(device.sessionProcesses('psql')).toEqual([]);
    } finally {
      device.proxy!.releaseDead();
    }
  }, 120_000);

  it("a scratch database another console's drill still uses is left to it: this drill passes and drops its own; the next one drops that too once it is free", async () => {
    const db = device.profile().sources.find((s) => s.kind === 'postgres')!;
    // Another laptop's drill under way (its sessions are not this console's to stop): connected to its
    // scratch database. Created first, so the sweeps meet it before this drill's own scratch.
    const scratch = `${db.database}_jv_drill_otherconsole`;
    const pg = sh`PGHOST=${db.host} PGPORT=${db.port}`;
    const connection = await DeviceConnection.open(await services.devices.connectOptions(device.name));
    try {
      const held = await connection.exec(sh`${pg} psql -X -q -d postgres -c ${`CREATE DATABASE "${scratch}"`} && ${pg} exec psql -X -q -d ${scratch} -c 'SELECT pg_sleep(600)'`);
      held.stdout.resume();
      const connected = async () => (await device.mutate.sql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${scratch}';`)).trim() === '1';
      await waitFor('the other console on its scratch database', connected, 10_000, 100);
      const drill = services.drills.start(device.name);
      expect((await settled(drill.id)).status).toBe('succeeded');
      const record = services.drills.get(drill.drillId)!;
      expect(record.result).toBe('passed');
      expect(record.cleanup).toBe('done');
      expect(await scratchLeft()).toEqual([scratch]);
      expect(await connected()).toBe(true);
      // That drill ends (its own login may end its session).
      await connection.run(sh`${pg} psql -X -q -d postgres -c ${`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${scratch}'`}`);
      await waitFor('the other console gone from its scratch database', async () => !(await connected()), 10_000, 100);
    } finally {
      connection.close();
    }
    const next = services.drills.start(device.name);
    expect((await settled(next.id)).status).toBe('succeeded');
    expect(await scratchLeft()).toEqual([]);
  }, 120_000);

  it("another console's drill of the same device keeps its scratch while it may be under way; one begun over a day ago is swept", async () => {
    const db = device.profile().sources.find((s) => s.kind === 'postgres')!;
    const pg = sh`PGHOST=${db.host} PGPORT=${db.port}`;
    // Drill ids as DrillService makes them: the start time in base 36, then 6 hex digits.
    const young = `${(Date.now() - 60_000).toString(36)}abcdef`;
    const old = `${(Date.now() - 25 * 3_600_000).toString(36)}012345`;
    const left = (id: string): [string, string, string] => [`${DRILL_PREFIX}${id}`, `drill${id}-db`, `${db.database}_jv_drill_drill${id}`];
    const connection = await DeviceConnection.open(await services.devices.connectOptions(device.name));
    try {
      // What the other laptop's drills leave (as the same device login): a scratch folder, a database
      // restore's work folder, a scratch database.
      for (const id of [young, old]) {
        const [folder, work, database] = left(id);
        await connection.run(sh`mkdir -p -- ${path.join(device.root, 'var/tmp', folder, 'app')} "$HOME"/.jetvault-restore/${work} && ${pg} psql -X -q -d postgres -c ${`CREATE DATABASE "${database}"`}`);
      }
      expect((await scratchLeft()).sort()).toEqual([...left(young), ...left(old)].sort());
      const drill = services.drills.start(device.name);
      expect((await settled(drill.id)).status).toBe('succeeded');
      expect(services.drills.get(drill.drillId)!.cleanup).toBe('done');
      expect((await scratchLeft()).sort()).toEqual(left(young).sort());
    } finally {
      const [folder, work, database] = left(young);
      await connection.run(sh`rm -rf -- ${path.join(device.root, 'var/tmp', folder)} "$HOME"/.jetvault-restore/${work}; ${pg} psql -X -q -d postgres -c ${`DROP DATABASE IF EXISTS "${database}"`}`);
      connection.close();
    }
    expect(await scratchLeft()).toEqual([]);
  }, 120_000);

  it.skipIf(!NETNS.ok)(`a drill on a cut link fails cleanly; the next drill removes what it left${NETNS.ok ? '' : ` (skipped: ${NETNS.reason})`}`, async () => {
    await device.link!.rate(2000);
    const started = services.drills.start(device.name);
    try {
      const deadline = Date.now() + 60_000;
      while (!services.jobs.active().some((p) => p.jobId === started.id && p.phase === 'stage' && p.bytesDone > 1024 * 1024) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await device.link!.cut();
      const record = await settled(started.id, 120_000);
      expect(record.status).toBe('failed');
    } finally {
      await device.link!.clear();
    }
    const failed = services.drills.get(started.drillId)!;
    expect(failed.result).toBe('failed');
    expect(failed.totalMs).toBeNull();
    expect(failed.error).toMatch(/lost|cut|timed out|did not answer|unreachable/i);
    // The source the cut hit says the link went, not that the backup is bad.
    const hit = failed.sources.find((s) => s.result === 'failed' && !s.error!.startsWith('not run:'))!;
    expect(hit.error).toMatch(/the connection to .* was lost/);
    expect(hit.error).not.toMatch(/^The restored copy of .* is not valid/);
    // Once the link is gone the remaining sources are not attempted one by one.
    expect(failed.sources.at(-1)).toMatchObject({ source: 'app', result: 'failed' });
    expect(failed.sources.at(-1)!.error).toMatch(/^not run: the connection to .* was lost/);
    expect(failed.cleanup).toMatch(/not removed .*the next drill/);
    expect((await scratchLeft()).length).toBeGreaterThanOrEqual(1);
    const rto = services.drills.rto(device.name);
    expect(rto.status).toBe('failed');

    const again = services.drills.start(device.name);
    expect((await settled(again.id)).status).toBe('succeeded');
    expect(services.drills.get(again.drillId)!.cleanup).toBe('done');
    expect(await scratchLeft()).toEqual([]);
  }, 300_000);
});
