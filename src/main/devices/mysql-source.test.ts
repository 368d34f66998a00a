/**
 * The `mysql` source against a real MariaDB server on a fleet device, reached over SSH: discovery
 * proposes it, mysqldump --single-transaction streams into the repository, the dump loads back into
 * a new database with the same rows, a second dump deduplicates, and a failing dump writes nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../../fleet/exec';
import { mysqlMissing, startFleet } from '../../../fleet/index';
import type { Device, Fleet, MysqlServer } from '../../../fleet/index';
import type { Source } from '../../shared/schemas/devices';
import { restore } from '../repository/restorer/restorer';
import { findSnapshot, listSnapshots } from '../repository/snapshot/snapshot';
import type { Services } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { backup } from '../repository/archiver/archiver';
import { startDeviceBackup } from './device-backup';
import { DumpSource } from './sources/dump-source';
import { proposeSources } from './facts';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const why = process.getuid?.() !== 0 ? 'the fleet needs root (device accounts, sshd); CI runs as root' : mysqlMissing();
if (why) console.log(`mysql source tests skipped: ${why}`);

let fleet: Fleet;
let device: Device;
let mysql: MysqlServer;
let services: Services;
let dataDir: string;

beforeAll(async () => {
  if (why) return;
  fleet = await startFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  mysql = await device.mysql(30_000);
  ({ services, dataDir } = await openTestConsole('mysql', 'mysql test repository password'));
  services.devices.import({ ...device.profile(), sources: [] }, 'test');
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

const totals = (db: string) => mysql.query(`SELECT COUNT(*), SUM(grams), MAX(id) FROM \`${db}\`.deposits`);

describe.skipIf(why)('mysql sources over SSH', () => {
  it('are discovered, dumped consistently, load back with the same rows, and deduplicate', async () => {
    const facts = await services.connector.refreshFacts(device.name);
    expect(facts.mysqlDatabases).toEqual([`${mysql.socket}\t${mysql.database}`]);
    const proposal = proposeSources(facts).find((s) => s.kind === 'mysql');
    expect(proposal).toEqual({ name: `mysql-${mysql.database}`, kind: 'mysql', database: mysql.database, socket: mysql.socket });
    services.devices.update(device.name, { ...device.profile(), sources: [proposal as Source] }, {}, 'test');

    const first = await startDeviceBackup(services, device.name).done;
    expect(first.record.error).toBeNull();
    const dumped = first.value!.snapshots[0]!;
    expect(dumped.bytes).toBeGreaterThan(500_000);
    // Every table is InnoDB: the dump is one consistent view, nothing to warn of.
    expect(dumped.inconsistentTables).toBeUndefined();

    // The dump, restored from the repository, loads into a new database with exactly the same rows.
    const repo = await services.repository.open();
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, dumped.snapshotId), out);
    // The dump, and the row counts read from it as it streamed past.
    expect(readdirSync(out).sort()).toEqual([`${proposal!.name}.rowcounts.json`, `${proposal!.name}.sql`]);
    expect(JSON.parse(readFileSync(path.join(out, `${proposal!.name}.rowcounts.json`), 'utf8'))).toEqual({ deposits: 30_000, machines: 20 });
    const sql = readFileSync(path.join(out, `${proposal!.name}.sql`), 'utf8');
    expect(sql).toMatch(/CREATE TABLE `deposits`/);
    expect(sql).toMatch(/Dump completed/);
    await mysql.query('CREATE DATABASE restored_check');
    await run('/usr/bin/mariadb', [`--socket=${mysql.socket}`, 'restored_check'], { input: sql, uid: device.account.uid, gid: device.account.gid, timeoutMs: 120_000 });
    expect(await totals('restored_check')).toBe(await totals(mysql.database));
    expect((await totals(mysql.database)).split('\t')[0]).toBe('30000');

    // A few changed rows: the next dump crosses the link whole but adds little to the repository.
    await mysql.query(`UPDATE \`${mysql.database}\`.deposits SET grams = grams + 1 WHERE id % 1000 = 0`);
    // With a retention policy of one run, the committed second run replaces the first.
    services.devices.update(device.name, { ...device.profile(), sources: [proposal as Source], retention: { last: 1 } }, {}, 'test');
    const secondRun = (await startDeviceBackup(services, device.name).done).value!;
    expect(secondRun.retention).toEqual({ runsForgotten: 1, snapshotsForgotten: 1 });
    expect((await listSnapshots(repo)).map((s) => s.id)).toEqual([secondRun.snapshots[0]!.snapshotId]);
    const second = secondRun.snapshots[0]!;
    expect(second.bytesTransferred).toBeGreaterThan(500_000);
    expect(second.bytesAdded).toBeLessThan(second.bytes * 0.5);
  });

  it('a dump with MyISAM and Aria tables says which tables it read outside its consistent view, and keeps the snapshot', async () => {
    const db = 'legacy_app';
    await mysql.query(`CREATE DATABASE ${db}; CREATE TABLE ${db}.orders (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE ${db}.sensor_log (id INT PRIMARY KEY, v INT) ENGINE=MyISAM; CREATE TABLE ${db}.cache (k INT PRIMARY KEY) ENGINE=Aria; INSERT INTO ${db}.orders VALUES (1),(2); INSERT INTO ${db}.sensor_log VALUES (1,1),(2,2),(3,3); CREATE VIEW ${db}.recent AS SELECT id FROM ${db}.orders;`);
    try {
      services.devices.update(device.name, { ...device.profile(), sources: [{ name: 'legacy', kind: 'mysql', database: db, socket: mysql.socket }] }, {}, 'test');
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      const result = value!.snapshots[0]!;
      expect(result.inconsistentTables).toBe(
        `2 tables of "${db}" were dumped without a consistent view (Aria: \`cache\`; MyISAM: \`sensor_log\`): only transactional (InnoDB) tables are read in the dump's one snapshot, so what the app wrote to these during the dump may not match the other tables. Convert them to InnoDB (ALTER TABLE … ENGINE=InnoDB), or back up while the app is stopped.`,
      );
      // The snapshot is kept, with every table's rows.
      const repo = await services.repository.open();
      const out = tempDir();
      await restore(repo, await findSnapshot(repo, result.snapshotId), out);
      expect(JSON.parse(readFileSync(path.join(out, 'legacy.rowcounts.json'), 'utf8'))).toEqual({ cache: 0, orders: 2, sensor_log: 3 });
      // Converted to InnoDB, the next run has nothing to say.
      await mysql.query(`ALTER TABLE ${db}.sensor_log ENGINE=InnoDB; ALTER TABLE ${db}.cache ENGINE=InnoDB;`);
      const again = (await startDeviceBackup(services, device.name).done).value!.snapshots[0]!;
      expect(again.inconsistentTables).toBeUndefined();
    } finally {
      await mysql.query(`DROP DATABASE ${db}`);
    }
  }, 120_000);

  it('a dump held up by a table another session has locked fails once it has sent nothing for a while, saying why, with no snapshot', async () => {
    const repo = await services.repository.open();
    const before = (await listSnapshots(repo)).length;
    const config = { name: 'locked', kind: 'mysql' as const, database: mysql.database, socket: mysql.socket };
    // A migration's lock, held 8 s; the dump may stay silent for 1.5 s.
    const holder = mysql.query(`LOCK TABLES \`${mysql.database}\`.deposits WRITE; SELECT SLEEP(8); UNLOCK TABLES;`);
    const held = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(8)%'";
    for (let i = 0; i < 100 && (await mysql.query(held)).trim() !== '1'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await mysql.query(held)).trim()).toBe('1');
    const started = performance.now();
    try {
      const dumping = services.connector.withDevice(device.name, (connection) => backup(repo, new DumpSource(connection, config, null, { silenceMs: 1500 }), { device: device.name }));
      await expect(dumping).rejects.toThrow(new RegExp(`sent nothing for 1\\.5 s: another session holds a table of "${mysql.database}" locked .*No snapshot was written`, 's'));
      // Well before the lock is released.
      expect(performance.now() - started).toBeLessThan(7_000);
    } finally {
      await holder;
    }
    expect(await listSnapshots(await services.repository.fresh())).toHaveLength(before);
  }, 60_000);

  it('a dump that fails (no such database) ends the job with its error and writes no snapshot', async () => {
    const repo = await services.repository.open();
    const before = (await listSnapshots(repo)).length;
    services.devices.update(device.name, { ...device.profile(), sources: [{ name: 'gone', kind: 'mysql', database: 'no_such_db', socket: mysql.socket }] }, {}, 'test');
    const failed = await startDeviceBackup(services, device.name).done;
    expect(failed.record.status).toBe('failed');
    expect(failed.record.error?.message).toMatch(/no_such_db/);
    expect(failed.record.error?.message).toMatch(/Was "no_such_db" dropped or renamed\? Correct the database in the device's sources, or remove the source if it is gone for good \(its snapshots are kept\)\.$/);
    expect((await listSnapshots(repo)).length).toBe(before);
  });
});
