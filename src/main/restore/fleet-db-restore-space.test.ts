/**
 * A PostgreSQL restore where the database keeps its data on a disk of its own (a tablespace on a
 * small file system of the device): the restored copy stays on that disk, the plan measures the
 * space there, no room is refused before anything changes, and that disk filling up while
 * pg_restore loads ends in a clear error with the live database as it was.
 */
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statfsSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import { psql as psqlAs } from '../../../fleet/postgres';
import type { Device, Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import type { DeviceConnection } from '../devices/ssh-connection';
import { findSnapshot } from '../repository/snapshot/snapshot';
import type { Services } from '../services/index';
import { cliRunner } from '../../cli/testing';
import { confirmDbRestore, executeDbRestore, planDbRestore } from './db-restore';
import type { DbRestoreOptions, PostgresSource } from './db-restore';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const PASSWORD = 'db restore space test repository password';
const SPACE = 'var/lib/pgspace';
const MiB = 2 ** 20;

let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
let snapshotId = '';
let mount = '';
let tsDir = '';
let liveBytes = 0;

const superSql = (sql: string) => psqlAs(device.pg.socketDir, 'postgres', sql);
const pgPrint = () => device.mutate.sql(`SELECT md5(string_agg(x, '|')) FROM (SELECT (SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM deposits d) x UNION ALL SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM transactions t)) s;`);
const jvDatabases = () => superSql(`SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE '%\\_jv\\_%';`);
const tablespaceOf = (db: string) => superSql(`SELECT t.spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = '${db.replace(/'/g, "''")}';`);
const freeAt = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};
const workFolders = () => {
  const dir = path.join(device.root, 'home', device.user, '.jetvault-restore');
  return existsSync(dir) ? readdirSync(dir) : [];
};
const withDevice = <T>(work: (c: DeviceConnection) => Promise<T>) => services.connector.withDevice(device.name, work);
const dbSource = () => services.devices.get(device.name).profile.sources.find((s) => s.name === 'db') as PostgresSource;

async function options(c: DeviceConnection, restoreId: string, source: PostgresSource = dbSource()): Promise<DbRestoreOptions> {
  const repo = await services.repository.fresh();
  return { repo, runner: c, snapshot: await findSnapshot(repo, snapshotId), source, restoreId };
}

/** Another program on the device filling the disk: a file written until `leave` bytes are free. */
function fillUntil(dir: string, leave: number): string {
  const file = path.join(dir, `other-program-${Date.now()}.bin`);
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(MiB, 0x5a);
  try {
    for (let i = 0; i < 100_000; i++) {
      const free = freeAt(dir);
      if (free <= leave) break;
      writeSync(fd, chunk, 0, Math.min(chunk.length, free - leave));
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('dbspace', PASSWORD));
  services.devices.import(device.profile(), 'test');
  const run = (await startDeviceBackup(services, device.name, ['db']).done).value!;
  snapshotId = run.snapshots[0]!.snapshotId;

  // The database moves to a tablespace on a small file system of its own, room for about three copies.
  const app = dbSource().database;
  liveBytes = Number(await superSql(`SELECT pg_database_size('${app}');`));
  const { uid, gid } = device.account;
  mkdirSync(path.join(device.root, SPACE), { recursive: true });
  chownSync(path.join(device.root, SPACE), uid, gid);
  ({ mount } = await device.mutate.fillDisk(SPACE, { sizeMB: Math.ceil((3 * liveBytes) / MiB) + 8, leaveBytes: Number.MAX_SAFE_INTEGER }));
  tsDir = path.join(mount, 'ts');
  mkdirSync(tsDir, { mode: 0o700 });
  chownSync(tsDir, uid, gid);
  await superSql(`CREATE TABLESPACE jv_space LOCATION '${tsDir}';`);
  await superSql(`ALTER DATABASE "${app}" SET TABLESPACE jv_space;`);
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

describe('a PostgreSQL database in a tablespace on a disk of its own', () => {
  it('is restored into that tablespace, and the plan counts the space on that disk', async () => {
    expect(await tablespaceOf(dbSource().database)).toBe('jv_space');
    const live = await pgPrint();
    await withDevice(async (c) => {
      const o = await options(c, 'ts1');
      const plan = await planDbRestore(o);
      expect(plan.tablespace).toBe('jv_space');
      expect(plan.dbSpace?.location).toBe(tsDir);
      expect(plan.dbSpace!.needed).toBeGreaterThanOrEqual(liveBytes);
      expect(plan.dbSpace!.freeBytes).toBeGreaterThan(plan.dbSpace!.needed);
      expect(plan.dbSpace!.freeBytes).toBeLessThanOrEqual(freeAt(mount) + MiB);
      // The work folder (home, another file system) holds the dump only.
      expect(plan.spaceNeeded).toBe(plan.dumpBytes);
      expect(plan.warnings ?? []).toEqual([]);
      const validation = await executeDbRestore(o, plan);
      expect(validation.ok).toBe(true);
      // Both the restored database and the previous one, kept for confirmation, are on that disk.
      expect(await tablespaceOf(dbSource().database)).toBe('jv_space');
      expect(await tablespaceOf(plan.previous!)).toBe('jv_space');
      await confirmDbRestore(c, plan);
    });
    expect(await pgPrint()).toBe(live);
    expect(await jvDatabases()).toBe('');
  }, 180_000);

  it('no room on that disk: the plan says so and the restore is refused before anything changes', async () => {
    const live = await pgPrint();
    const filler = fillUntil(mount, Math.floor(liveBytes / 2));
    try {
      const summary = await services.restores.plan({ device: device.name, scope: 'source', sources: ['db'] });
      // The plan names the database's own disk, with its need and free space (the work folder's line counts the dump only).
      expect(summary.databases[0]!.space).toMatchObject({ location: tsDir });
      expect(summary.databases[0]!.space!.freeBytes).toBeLessThan(summary.databases[0]!.space!.needed);
      expect(summary.spaceNeeded).toBe(summary.bytesToSend);
      // And the CLI's dry run says the same.
      const dry = await cliRunner({ JETVAULT_HOME: dataDir, JETVAULT_PASSWORD: PASSWORD })('restore', 'latest', '--device', device.name, '--source', 'db', '--dry-run');
      expect(dry.out).toMatch(/written on its own disk \(.*\/ts\): [\d.]+ MiB needed there, [\d.]+ MiB free/);
      expect(dry.out).toMatch(/warning: The disk holding PostgreSQL's data/);
      expect(summary.warnings.join('\n')).toMatch(/The disk holding PostgreSQL's data on .* has .* free; the restored ".*" needs about .* the restore will stop before changing anything/);
      await expect(
        withDevice(async (c) => {
          const o = await options(c, 'ts2');
          await executeDbRestore(o, await planDbRestore(o));
        }),
      ).rejects.toThrow(/Not enough space on .*: the disk holding PostgreSQL's data \(.*\/ts\) has .* free, the restored database needs about .*\. Nothing was changed\./);
      expect(await pgPrint()).toBe(live);
      expect(await jvDatabases()).toBe('');
      expect(workFolders()).toEqual([]);
    } finally {
      rmSync(filler);
    }
  }, 180_000);

  it('that disk filling up while pg_restore loads: a clear error, the half-loaded copy dropped, the live database as it was', async () => {
    const live = await pgPrint();
    const freeBefore = freeAt(mount);
    let filler = '';
    try {
      await expect(
        withDevice(async (c) => {
          const o = await options(c, 'ts3');
          const plan = await planDbRestore(o);
          expect(plan.dbSpace!.freeBytes).toBeGreaterThan(plan.dbSpace!.needed); // the check passes
          // Meanwhile another program fills the disk, leaving room for the new, empty database only.
          await executeDbRestore(o, plan, { step: (name) => void (name === 'load' && (filler = fillUntil(mount, 12 * MiB))) });
        }),
      ).rejects.toThrow(/pg_restore of "db" into a new database on .* failed; the live database was not changed\. The disk holding PostgreSQL's data \(.*\/ts\) filled up while the copy was loaded: free space there and try again; the half-loaded copy is removed\..*(No space left on device|could not extend file)/s);
      expect(filler).not.toBe('');
      expect(await jvDatabases()).toBe('');
      expect(workFolders()).toEqual([]);
    } finally {
      if (filler) rmSync(filler);
    }
    // (Read once there is room again: the print's sort spills to that disk too.)
    expect(await pgPrint()).toBe(live);
    // What the half-loaded copy wrote is gone with it.
    expect(freeAt(mount)).toBeGreaterThan(freeBefore - MiB);
    // And with room again, the next restore runs through, into the same tablespace.
    await withDevice(async (c) => {
      const o = await options(c, 'ts4');
      const plan = await planDbRestore(o);
      expect((await executeDbRestore(o, plan)).ok).toBe(true);
      await confirmDbRestore(c, plan);
    });
    expect(await tablespaceOf(dbSource().database)).toBe('jv_space');
    expect(await pgPrint()).toBe(live);
  }, 240_000);

  it('a login that may not create databases there: the plan says the copy goes to the default tablespace', async () => {
    await superSql(`CREATE ROLE jv_plain LOGIN CREATEDB;`);
    await withDevice(async (c) => {
      const plan = await planDbRestore(await options(c, 'ts5', { ...dbSource(), user: 'jv_plain' }));
      expect(plan.tablespace).toBeNull();
      expect(plan.warnings?.join('\n')).toMatch(/lives in tablespace "jv_space", where the device's database login may not create databases: the restored copy will be created in the cluster's default tablespace instead .* GRANT CREATE ON TABLESPACE/);
      // The default tablespace's folder is not readable to this login: no separate check, the work folder's covers both.
      expect(plan.dbSpace).toBeUndefined();
      const size = Number(await superSql(`SELECT pg_database_size('${dbSource().database}');`));
      expect(plan.spaceNeeded).toBe(plan.dumpBytes + Math.max(size, plan.dumpBytes));
    });
    await superSql(`GRANT CREATE ON TABLESPACE jv_space TO jv_plain;`);
    await withDevice(async (c) => {
      const plan = await planDbRestore(await options(c, 'ts6', { ...dbSource(), user: 'jv_plain' }));
      expect(plan.tablespace).toBe('jv_space');
      expect(plan.warnings ?? []).toEqual([]);
      expect(plan.dbSpace?.location).toBe(tsDir);
    });
  }, 120_000);
});
