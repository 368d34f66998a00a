/**
 * MySQL/MariaDB restores onto a real fleet device (sshd + MariaDB over its unix socket): in place
 * through a new database and one atomic RENAME TABLE, kept until confirmed or rolled back, rolled
 * back when validation fails, into another database name, in a drill, and after a console killed
 * (kill -9) or a link cut while the dump loads — the live database is never left mixed.
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlMissing, netnsSupport, startFleet } from '../../../fleet/index';
import type { Device, Fleet, MysqlServer } from '../../../fleet/index';
import type { Source } from '../../shared/schemas/devices';
import { startDeviceBackup } from '../devices/device-backup';
import { silentLogger } from '../log';
import { FAST } from '../repository/testing/fixtures';
import { createServices } from '../services/index';
import type { Services } from '../services/index';
import { recordedRowCounts, recoverDbRestores, rollbackDbRestore } from './db-restore';
import type { MysqlSource } from './db-restore';
import { findSnapshot } from '../repository/snapshot/snapshot';
import { jobEnded, waitFor } from '../testing/wait';

const CHILD = fileURLToPath(new URL('./testing/db-restore-child.ts', import.meta.url));
const PASSWORD = 'mysql restore test repository password';
const why = process.getuid?.() !== 0 ? 'the fleet needs root (device accounts, sshd); CI runs as root' : mysqlMissing();
if (why) console.log(`mysql restore tests skipped: ${why}`);
const NETNS = netnsSupport();
const ROWS = 120_000;

let fleet: Fleet;
let device: Device;
let mysql: MysqlServer;
let services: Services;
let dataDir: string;
let source: MysqlSource;
let snapshotId: string;
let atBackup: string;

/** Every row of both tables, and which tables and views there are: equal prints, equal data. */
const print = async (db = mysql.database) =>
  (await mysql.query(`CHECKSUM TABLE \`${db}\`.deposits, \`${db}\`.machines EXTENDED;`)).replace(new RegExp(`${db}\\.`, 'g'), '') + (await tables(db));
const jvDatabases = async () => (await mysql.query(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%\\_jv\\_%' ORDER BY 1`)).trim();
const tables = async (db = mysql.database) => (await mysql.query(`SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${db}' ORDER BY 1`)).trim();
const workDirs = () => {
  const home = path.join(device.root, 'home', device.user, '.jetvault-restore');
  return existsSync(home) ? readdirSync(home) : [];
};

/** Damage of every kind: rows deleted and changed, a table added, the view dropped. */
async function damage(n: number) {
  await mysql.query(`USE \`${mysql.database}\`; DELETE FROM deposits WHERE id % 97 = ${n % 97}; UPDATE deposits SET grams = grams + 1 WHERE id % 1000 = 1; CREATE TABLE IF NOT EXISTS stray (x INT); INSERT INTO stray VALUES (${n}); DROP VIEW IF EXISTS daily;`);
}

beforeAll(async () => {
  if (why) return;
  fleet = await startFleet({ devices: 1, netns: NETNS.ok, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  mysql = await device.mysql(ROWS);
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-mysql-restore-test-'));
  // A passphrase for the secret store: one source's database password is kept there.
  const env = { ...process.env, JETVAULT_SECRETS_PASSPHRASE: 'mysql restore test secrets' };
  services = createServices({ dataDir, env, log: silentLogger, platform: { transport: 'cli', openExternal: () => Promise.resolve() } });
  await services.repository.init(PASSWORD, FAST);
  // A cut link is given up after 10 s of silence, not the default 20: these tests wait for it.
  services.settings.update({ silentLinkSeconds: 10 }, 'test');
  source = { name: 'orders', kind: 'mysql', database: mysql.database, socket: mysql.socket };
  services.devices.import({ ...device.profile(), sources: [source as Source] }, 'test');
  atBackup = await print();
  const run = await startDeviceBackup(services, device.name).done;
  expect(run.record.error).toBeNull();
  snapshotId = run.value!.snapshots[0]!.snapshotId;
}, 300_000);

afterAll(async () => {
  services?.dispose();
  await fleet?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}, 120_000);

const finish = (jobId: string) => jobEnded(services.jobs, jobId, 180_000);

describe.skipIf(why)('MySQL restores onto a device', () => {
  it('records the dump\'s row counts with the snapshot', async () => {
    const repo = await services.repository.fresh();
    expect(await recordedRowCounts(repo, await findSnapshot(repo, snapshotId), source.name)).toEqual({ deposits: ROWS, machines: 20 });
  });

  it('in place: new database, one atomic rename, previous tables kept until rolled back on demand, then restored and kept', async () => {
    await damage(1);
    const damaged = await print();
    expect(damaged).not.toBe(atBackup);
    const plan = await services.restores.plan({ device: device.name, scope: 'source', sources: ['orders'] });
    expect(plan.databases).toEqual([expect.objectContaining({ source: 'orders', kind: 'mysql', action: 'replace', tables: 2, rows: ROWS + 20 })]);

    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'] });
    const record = await finish(jobId);
    expect(record.error).toBeNull();
    expect(await print()).toBe(atBackup);
    // The stray table went with the previous state; the view is back and reads the restored rows.
    expect(await tables()).toBe('daily\tVIEW\ndeposits\tBASE TABLE\nmachines\tBASE TABLE');
    expect(await mysql.query(`SELECT SUM(grams) FROM \`${mysql.database}\`.daily`)).toBe(await mysql.query(`SELECT SUM(grams) FROM \`${mysql.database}\`.deposits`));
    expect(await jvDatabases()).toMatch(new RegExp(`^${mysql.database}_jv_prev_${restoreId}$`));
    expect(services.restores.pending().find((p) => p.restoreId === restoreId)?.databases.map((d) => d.target)).toEqual([mysql.database]);

    await services.restores.rollback(restoreId);
    expect(await print()).toBe(damaged);
    expect(await tables()).toBe('deposits\tBASE TABLE\nmachines\tBASE TABLE\nstray\tBASE TABLE');
    expect(await jvDatabases()).toBe('');

    const again = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'] });
    expect((await finish(again.jobId)).error).toBeNull();
    await services.restores.confirm(again.restoreId);
    expect(await print()).toBe(atBackup);
    expect(await jvDatabases()).toBe('');
    expect(workDirs()).toEqual([]);
  }, 240_000);

  it('a failed validation (health command) rolls the database back by itself', async () => {
    await damage(2);
    const damaged = await print();
    services.devices.import({ ...device.profile(), sources: [source as Source], healthCommand: 'echo unhealthy >&2; exit 1' }, 'test', { replace: true });
    try {
      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'] });
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
      expect(record.error?.message).toMatch(/rolled back/);
    } finally {
      services.devices.import({ ...device.profile(), sources: [source as Source] }, 'test', { replace: true });
    }
    expect(await print()).toBe(damaged);
    expect(await jvDatabases()).toBe('');
  }, 240_000);

  it('into another database name: the live database is untouched, an existing name is refused', async () => {
    const live = await print();
    const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'], targetDatabase: 'orders_inspect' });
    expect((await finish(jobId)).error).toBeNull();
    expect(await print('orders_inspect')).toBe(atBackup);
    expect(await tables('orders_inspect')).toBe('daily\tVIEW\ndeposits\tBASE TABLE\nmachines\tBASE TABLE');
    expect(await print()).toBe(live);
    expect(await jvDatabases()).toBe('');
    await expect(services.restores.plan({ device: device.name, scope: 'source', sources: ['orders'], targetDatabase: 'orders_inspect' })).rejects.toThrow(/already exists/);
    await mysql.query('DROP DATABASE orders_inspect');
  }, 240_000);

  it('a drill restores into a scratch database, checks the row counts, drops it and records the time', async () => {
    const { done } = services.drills.start(device.name);
    const result = await done;
    expect(result.record.error).toBeNull();
    const drill = result.value!;
    expect(drill.result).toBe('passed');
    expect(drill.sources).toEqual([expect.objectContaining({ source: 'orders', kind: 'mysql', result: 'passed' })]);
    expect(drill.sources[0]!.detail).toMatch(new RegExp(`2 tables, ${ROWS + 20} rows match the snapshot`));
    expect(drill.sources[0]!.durationMs).toBeGreaterThan(0);
    expect(services.drills.rto(device.name).estimateMs).toBeGreaterThan(0);
    expect(await jvDatabases()).toBe('');
  }, 240_000);

  it("a scratch database another console's drill still holds is left to it, without waiting for its locks; the next drill drops it once free", async () => {
    const held = `${mysql.database}_jv_drill_otherconsole`;
    await mysql.query(`CREATE DATABASE \`${held}\`; CREATE TABLE \`${held}\`.t (x INT); INSERT INTO \`${held}\`.t VALUES (1);`);
    // Another laptop's drill checking its tables: its open transaction holds their metadata locks,
    // which DROP DATABASE waits for (lock_wait_timeout: a year by default).
    const holding = mysql.query(`BEGIN; SELECT x FROM \`${held}\`.t; DO SLEEP(600); COMMIT;`).catch(() => 'ended');
    const sleeper = async () => (await mysql.query("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP(600)%'")).trim();
    await waitFor('the other console holding its scratch tables', async () => (await sleeper()) !== '', 10_000, 100);
    try {
      const drill = await services.drills.start(device.name).done;
      expect(drill.record.error).toBeNull();
      expect(drill.value!.result).toBe('passed');
      expect(drill.value!.cleanup).toBe('done');
      expect(await jvDatabases()).toBe(held);
    } finally {
      const id = await sleeper();
      if (id) await mysql.query(`KILL ${id};`);
      expect(await holding).toBe('ended');
    }
    expect((await services.drills.start(device.name).done).value!.result).toBe('passed');
    expect(await jvDatabases()).toBe('');
  }, 240_000);
});

/** Runs a restore in a child process and SIGKILLs it `delayMs` after it reports `killAt` (a killed console). */
function killedRestore(restoreId: string, killAt: string, delayMs: number): Promise<{ killed: boolean; steps: string[] }> {
  const d = device;
  const args = {
    repo: services.repository.location(),
    password: PASSWORD,
    device: { host: d.host, port: d.port, user: d.user, identityFile: d.identityFile, hostKey: d.hostKeyFingerprint },
    snapshotId,
    source,
    restoreId,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    const steps: string[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      for (const m of b.toString().matchAll(/^STEP (\S+)$/gm)) {
        steps.push(m[1]!);
        if (m[1] === killAt) setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' || code === 0) resolve({ killed: signal === 'SIGKILL', steps });
      else reject(new Error(`the restore child failed (${code}): ${err}`));
    });
  });
}

describe.skipIf(why)('a console killed (kill -9) during a MySQL restore', () => {
  it.each([
    ['send', 0],
    ['load', 0],
    ['load', 500],
    ['check', 0],
    ['swap', 0],
    ['swap', 20],
    ['swapped', 0],
  ] as [string, number][])('killed at %s (+%i ms): the database is original or fully restored, and recovery settles it', async (killAt, delayMs) => {
    await damage(3);
    const original = await print();
    const before = new Set(device.sessionProcesses());
    const { killed, steps } = await killedRestore(`mykill${killAt.replace(/[^a-z]/g, '')}${delayMs}`, killAt, delayMs);
    expect(steps).toContain(killAt);
    // What the killed console left running on the device (a load, a swap script) goes on by itself:
    // the device is judged once it has finished. (Read while the swap script runs, the state is in
    // motion — the tables renamed, the views not yet — with the device's services stopped.)
    await device.sessionsEnded(before);
    expect([original, atBackup]).toContain(await print());
    const found = await services.connector.withDevice(device.name, (c) => recoverDbRestores(c, { mysql: [source] }));
    const swapped = found.find((f) => f.outcome === 'swapped');
    if (swapped) {
      expect(await print()).toBe(atBackup);
      await services.connector.withDevice(device.name, (c) => rollbackDbRestore(c, swapped.plan));
    } else {
      expect(killed).toBe(true); // a restore that ran to its end waits for confirmation
    }
    expect(await print()).toBe(original);
    expect(await jvDatabases()).toBe('');
    expect(workDirs()).toEqual([]);
  }, 180_000);
});

describe.skipIf(why || !NETNS.ok)(`a link cut while a MySQL dump loads${NETNS.ok ? '' : ` (skipped: ${NETNS.reason})`}`, () => {
  it('leaves the live database untouched; the next restore drops the half-loaded one and runs through', async () => {
    await damage(4);
    const damaged = await print();
    const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'] });
    try {
      await waitFor('the new database to fill', async () => /deposits/.test(await mysql.query(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA LIKE '%\\_jv\\_new\\_%'`)));
      await device.link!.cut();
      expect((await finish(jobId)).status).toBe('failed');
    } finally {
      await device.link!.clear();
    }
    expect(await print()).toBe(damaged);
    const again = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'] });
    expect((await finish(again.jobId)).error).toBeNull();
    expect(await print()).toBe(atBackup);
    expect(await jvDatabases()).toMatch(/_jv_prev_/);
    await services.restores.confirm(again.restoreId);
    expect(await jvDatabases()).toBe('');
  }, 240_000);
});

describe.skipIf(why)('a MySQL source whose login needs a password', () => {
  it('is refused without it, then backed up, restored in place and rolled back with the stored password', async () => {
    const secret = `my pa'ss"w\\rd #${Date.now()}`;
    const sqlText = secret.replaceAll('\\', '\\\\').replaceAll("'", "''");
    await mysql.query(`CREATE USER 'jv_secret'@'localhost' IDENTIFIED BY '${sqlText}'; GRANT ALL ON *.* TO 'jv_secret'@'localhost';`);
    const profile = services.devices.get(device.name).profile;
    const guarded = { ...source, name: 'orders_pw', user: 'jv_secret' };
    services.devices.update(device.name, { ...profile, sources: [guarded] }, {}, 'test');
    try {
      const refused = await startDeviceBackup(services, device.name).done;
      expect(refused.record.error?.message).toMatch(/Access denied for user 'jv_secret'.*No snapshot was written.*password of "orders_pw"/s);

      services.devices.update(device.name, { ...profile, sources: [guarded] }, { databasePasswords: { orders_pw: secret } }, 'test');
      const before = await print();
      const run = await startDeviceBackup(services, device.name).done;
      expect(run.record.error).toBeNull();
      await damage(7);
      const damaged = await print();
      // Stage (a new database, loaded by the mysql client), swap (one RENAME), validate: as jv_secret.
      const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['orders_pw'] });
      expect((await finish(jobId)).error).toBeNull();
      expect(await print()).toBe(before);
      await services.restores.rollback(restoreId);
      expect(await print()).toBe(damaged);
      expect(await jvDatabases()).toBe('');
    } finally {
      services.devices.update(device.name, profile, {}, 'test');
      await mysql.query("DROP USER 'jv_secret'@'localhost';");
    }
  }, 240_000);
});

describe.skipIf(why)('the work folder on a small disk of its own', () => {
  it('the new database is counted on the server\'s data disk: room for the dump in the work folder is enough', async () => {
    const rel = path.join('home', device.user, '.jetvault-restore');
    mkdirSync(path.join(device.root, rel), { recursive: true });
    chownSync(path.join(device.root, rel), device.account.uid, device.account.gid);
    await damage(6);
    const before = await services.restores.plan({ device: device.name, scope: 'source', sources: ['orders'] });
    const dump = before.bytesToSend;
    expect(before.spaceNeeded).toBeGreaterThan(2 * dump - 1); // one file system: the dump and the new database
    // Room for the dump and 1 MiB, far less than the dump and a new database.
    await device.mutate.fillDisk(rel, { sizeMB: Math.ceil(dump / 2 ** 20) + 8, leaveBytes: dump + 2 ** 20 });
    try {
      const plan = await services.restores.plan({ device: device.name, scope: 'source', sources: ['orders'] });
      expect(plan.spaceNeeded).toBe(dump);
      expect(plan.freeBytes).toBeGreaterThanOrEqual(dump);
      expect(plan.warnings.filter((w) => /disk holding/.test(w))).toEqual([]);
      const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['orders'] });
      expect((await finish(jobId)).error).toBeNull();
      await services.restores.confirm(restoreId);
      expect(await print()).toBe(atBackup);
      expect(await jvDatabases()).toBe('');
    } finally {
      await device.mutate.releaseDisk(rel);
    }
  }, 240_000);
});
