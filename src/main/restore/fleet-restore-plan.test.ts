/**
 * The restore planner and whole-device restores through the restore service, on a real fleet
 * device: the run in force at a point in time, databases in the plan, compatibility warnings,
 * services around the swap, and a failed health check rolling everything back.
 */
import { chownSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import type { RestoreRequest } from '../../shared/schemas/restore';
import { startDeviceBackup } from '../devices/device-backup';
import type { BackupRunResult } from '../devices/device-backup';
import { confirmDbRestore, markDbKept } from './db-restore';
import type { Services } from '../services/index';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
let runA: BackupRunResult;
let runB: BackupRunResult;
let betweenRuns: string;
const stateA: { version: string; deposits: number; scans: number } = { version: '', deposits: 0, scans: 0 };
const stateB: { version: string; deposits: number; scans: number } = { version: '', deposits: 0, scans: 0 };

const versionFile = () => path.join(device.root, 'opt', device.app, 'VERSION');
const servicesLog = () => path.join(device.root, 'home', device.user, 'services.log');
const state = async () => ({ version: readFileSync(versionFile(), 'utf8'), deposits: await device.mutate.pgCount('deposits'), scans: await device.mutate.sqliteCount('scans') });

async function finish(jobId: string) {
  const deadline = Date.now() + 150_000;
  while (services.jobs.get(jobId)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return services.jobs.get(jobId)!;
}

function setProfile(extra: Record<string, unknown>) {
  services.devices.import({ ...device.profile(), ...extra }, 'test', { replace: true });
}

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('restore-plan', 'restore plan test repository password'));
  const log = servicesLog();
  setProfile({ services: { stop: [`echo stop >> '${log}'`], start: [`echo start >> '${log}'`] } });
  Object.assign(stateA, await state());
  runA = (await startDeviceBackup(services, device.name).done).value!;
  await new Promise((r) => setTimeout(r, 1100));
  betweenRuns = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 1100));
  writeFileSync(versionFile(), 'run-b\n');
  await device.mutate.pgDeleteRows(900);
  await device.mutate.sqliteInsertRows(250);
  Object.assign(stateB, await state());
  runB = (await startDeviceBackup(services, device.name).done).value!;
}, 300_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

describe('restore planner', () => {
  it('picks the run in force at a point in time, with databases, services and sizes in the plan', async () => {
    expect(stateA.deposits).not.toBe(stateB.deposits);
    const atA = await services.restores.plan({ device: device.name, at: betweenRuns, scope: 'device' });
    expect(new Set(atA.snapshots.map((s) => s.runId))).toEqual(new Set([runA.runId]));
    expect(atA.snapshots.map((s) => s.source).sort()).toEqual(['app', 'config', 'db', 'local', 'logs']);
    expect(atA.snapshots.every((s) => s.l4t && s.board)).toBe(true);
    expect(atA.databases.map((d) => [d.source, d.kind, d.action])).toEqual([
      ['db', 'postgres', 'replace'],
      ['local', 'sqlite', 'replace'],
    ]);
    expect(atA.databases.find((d) => d.source === 'db')!.rows).toBeGreaterThan(200_000);
    expect(atA.roots.find((r) => r.target === path.join(device.root, 'opt', device.app))!.replace).toBeGreaterThanOrEqual(1);
    expect(atA.services.stop).toHaveLength(1);
    expect(atA.spaceNeeded).toBeGreaterThan(0);
    expect(atA.freeBytes).toBeGreaterThan(atA.spaceNeeded);
    expect(atA.warnings.filter((w) => /L4T|board/.test(w))).toEqual([]);
    const now = await services.restores.plan({ device: device.name });
    expect(new Set(now.snapshots.map((s) => s.runId))).toEqual(new Set([runB.runId]));
    // The dry run changed nothing: no work folder, no new database, no staging folder.
    expect(await state()).toEqual(stateB);
    expect(existsSync(path.join(device.root, 'home', device.user, '.jetvault-restore'))).toBe(false);
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'myrvm\\_jv\\_%'`)).toBe('0');
    expect(readdirSync(path.join(device.root, 'opt')).filter((n) => n.startsWith('.jetvault-'))).toEqual([]);
    // One source at that time: its snapshot of run A.
    const dbAtA = await services.restores.plan({ device: device.name, at: betweenRuns, scope: 'source', sources: ['db'] });
    expect(dbAtA.snapshots).toEqual([expect.objectContaining({ source: 'db', runId: runA.runId })]);
    await expect(services.restores.plan({ device: device.name, at: '2001-01-01T00:00:00Z' })).rejects.toThrow(/no snapshot at or before/);
  }, 120_000);

  it('warns when the device now runs another L4T release or board than the snapshot was taken on', async () => {
    const release = path.join(device.root, 'etc', 'nv_tegra_release');
    const original = readFileSync(release, 'utf8');
    const model = path.join(device.root, 'proc', 'device-tree', 'model');
    const originalModel = readFileSync(model);
    try {
      writeFileSync(release, '# R38 (release), REVISION: 2.0, GCID: 1, BOARD: generic, EABI: aarch64, DATE: Mon Nov 30 2026\n');
      writeFileSync(model, 'NVIDIA Jetson AGX Thor Developer Kit\0');
      const plan = await services.restores.plan({ device: device.name, scope: 'source', sources: ['db'] });
      expect(plan.platform).toEqual({ l4t: 'R38.2.0', board: 'NVIDIA Jetson AGX Thor Developer Kit' });
      expect(plan.warnings.join('\n')).toMatch(/runs L4T R38\.2\.0, the snapshot of "db" was taken on L4T R3\d\.\d\.\d/);
      expect(plan.warnings.join('\n')).toMatch(/is a NVIDIA Jetson AGX Thor Developer Kit, the snapshot of "db" was taken on a NVIDIA Jetson/);
    } finally {
      writeFileSync(release, original);
      writeFileSync(model, originalModel);
    }
  }, 60_000);

  it('plans a database into another name as a copy', async () => {
    const plan = await services.restores.plan({ device: device.name, scope: 'source', sources: ['db'], targetDatabase: 'myrvm_look' });
    expect(plan.databases).toEqual([expect.objectContaining({ source: 'db', target: 'myrvm_look', action: 'copy', inPlace: false })]);
  }, 60_000);
});

describe('whole-device restore', () => {
  it('restores every source of the run in force in one job, services stopped once around the swaps', async () => {
    rmSync(servicesLog(), { force: true });
    const request: RestoreRequest = { device: device.name, at: betweenRuns, scope: 'device' };
    const { jobId, restoreId } = services.restores.start(request);
    const record = await finish(jobId);
    expect(record.error).toBeNull();
    expect(record.status).toBe('succeeded');
    expect(await state()).toEqual(stateA);
    expect(readFileSync(servicesLog(), 'utf8')).toBe('stop\nstart\n');
    const pending = services.restores.pending().find((p) => p.restoreId === restoreId)!;
    expect(pending.databases.map((d) => d.target)).toEqual(['myrvm', device.sqlitePath]);
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'myrvm_jv_prev_%'`)).toBe('1');
    await services.restores.confirm(restoreId);
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'myrvm\\_jv\\_%'`)).toBe('0');
    expect(await state()).toEqual(stateA);
  }, 240_000);

  it('a failing health check rolls every source back, databases included', async () => {
    const before = await state();
    expect(before).toEqual(stateA);
    setProfile({ healthCommand: 'exit 3' });
    try {
      const { jobId } = services.restores.start({ device: device.name, scope: 'device' }); // now: run B
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
      expect(record.error?.message).toMatch(/health check.*rolled back/s);
    } finally {
      setProfile({});
    }
    expect(await state()).toEqual(before);
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'myrvm\\_jv\\_%'`)).toBe('0');
    expect(services.restores.pending()).toEqual([]);
  }, 240_000);

  it('an app that writes as it starts does not fail the row-count check (databases are checked before the services start)', async () => {
    const heartbeat = `psql -X -q -h '${device.pg.socketDir}' -p ${device.pg.port} -d ${device.pg.database} -c "INSERT INTO events (machine_id, kind, payload, at) VALUES (1, 'boot', '{}', now())"`;
    setProfile({ services: { stop: ['true'], start: [heartbeat] } });
    try {
      const events = await device.mutate.pgCount('events');
      const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
      const record = await finish(jobId);
      expect(record.error).toBeNull();
      expect(await device.mutate.pgCount('events')).toBe(events + 1); // the snapshot's rows, then the app's heartbeat
      await services.restores.rollback(restoreId);
    } finally {
      setProfile({});
    }
  }, 240_000);

  it('rolls back on demand after the restore: databases and files return to what they were', async () => {
    const before = await state();
    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db', 'local'] });
    expect((await finish(jobId)).status).toBe('succeeded');
    expect((await state()).deposits).toBe(stateB.deposits);
    await services.restores.rollback(restoreId);
    expect(await state()).toEqual(before);
  }, 240_000);

  /** An update broke VERSION and lost `rows` deposits; the database and the app are restored (waiting for keep or rollback). */
  async function restoreDamaged(rows: number) {
    writeFileSync(versionFile(), 'broken-update\n');
    await device.mutate.pgDeleteRows(rows);
    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db', 'app'] });
    expect((await finish(jobId)).status).toBe('succeeded');
    const restored = await state();
    expect([restored.version, restored.deposits]).toEqual([stateB.version, stateB.deposits]);
    return { restoreId, restored, pending: services.restores.pending().find((p) => p.restoreId === restoreId)! };
  }

  /** What a keep cut off after it marked the files' roots leaves behind: their journal says `kept`. */
  function markFilesKept(pending: { files: { roots: { staging: string }[] }[] }) {
    const journal = path.join(pending.files[0]!.roots[0]!.staging, 'journal');
    writeFileSync(journal, 'kept\n');
    chownSync(journal, device.account.uid, device.account.gid);
  }

  it('a keep cut off part-way refuses a rollback before anything rolls back, databases included; kept when asked again', async () => {
    const { restoreId, restored, pending } = await restoreDamaged(50);
    // Its previous state partly removed.
    markFilesKept(pending);
    await expect(services.restores.rollback(restoreId)).rejects.toThrow('is being kept (its previous state is partly removed already), so it cannot be rolled back: keep it to finish.');
    expect(await state()).toEqual(restored);
    expect(await services.restores.confirm(restoreId)).toEqual({ leftovers: [] });
    expect(services.restores.pending()).toEqual([]);
    expect(await state()).toEqual(restored);
  }, 240_000);

  const leftoverDatabases = () => device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE 'myrvm\\_jv\\_%'`);

  it('a keep of databases only, cut off between them, refuses a rollback; the console that finds it finishes the keep', async () => {
    await device.mutate.pgDeleteRows(40);
    await device.mutate.sqliteInsertRows(30);
    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db', 'local'] });
    expect((await finish(jobId)).status).toBe('succeeded');
    const restored = await state();
    expect([restored.deposits, restored.scans]).toEqual([stateB.deposits, stateB.scans]);
    const pending = services.restores.pending().find((p) => p.restoreId === restoreId)!;
    expect(pending.files).toEqual([]);
    const sqlite = pending.databases.find((d) => d.kind === 'sqlite')!;
    const pg = pending.databases.find((d) => d.kind === 'postgres')!;
    // What a keep cut off after its first database leaves: both marked kept, the SQLite file's previous copy gone, PostgreSQL's not yet.
    await services.connector.withDevice(device.name, async (c) => {
      for (const plan of [sqlite, pg]) await markDbKept(c, plan);
      await confirmDbRestore(c, sqlite);
    });
    expect(await leftoverDatabases()).toBe('1');
    await expect(services.restores.rollback(restoreId)).rejects.toThrow(`The restore of ${pg.target} is being kept (its previous state is partly removed already), so it cannot be rolled back: keep it to finish.`);
    expect(await state()).toEqual(restored);

    // A console that looks at the device (after a restart, say) finishes the keep instead of rolling it back.
    await services.restores.recover(device.name);
    expect(await leftoverDatabases()).toBe('0');
    expect([existsSync(pg.workDir), existsSync(sqlite.workDir)]).toEqual([false, false]);
    expect(await state()).toEqual(restored);
    // This console's record of it: nothing is left to roll back to, and it says so.
    await expect(services.restores.rollback(restoreId)).rejects.toThrow('was kept already: none of its previous state is left on the device to roll back to.');
    expect(services.restores.pending()).toEqual([]);
    expect(await state()).toEqual(restored);
  }, 240_000);

  it('a console that finds a restore whose files were being kept keeps its databases too, rather than offer them for a rollback', async () => {
    const { restoreId, restored, pending } = await restoreDamaged(30);
    // The keep was cut off after it marked the files' roots, before the database's previous copy went.
    markFilesKept(pending);
    expect(await leftoverDatabases()).toBe('1');
    await services.restores.recover(device.name);
    expect(await leftoverDatabases()).toBe('0');
    expect(existsSync(pending.files[0]!.roots[0]!.staging)).toBe(false);
    await expect(services.restores.rollback(restoreId)).rejects.toThrow('was kept already');
    expect(await state()).toEqual(restored);
    expect(services.restores.pending()).toEqual([]);
  }, 240_000);
});
