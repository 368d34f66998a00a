/**
 * Database sources of a device backup against a real fleet device (sshd, sqlite3), as an operator
 * meets them: a damaged SQLite database, a device whose temp folder cannot hold the copy.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST } from '../repository/testing/fixtures';
import { backup } from '../repository/archiver/archiver';
import { findSnapshot, listSnapshots, readSmallFile, rootNode } from '../repository/snapshot/snapshot';
import { recordedRowCounts, restoreDatabaseScratch } from '../restore/db-restore';
import type { Services } from '../services/index';
import { fleetForFile } from '../testing/fleet-suite';
import { damagedDatabase } from '../testing/damaged-sqlite';
import { tempDir } from '../testing/temp-dir';
import { cliRunner } from '../../cli/testing';
import { INTEGRITY_LINES, startDeviceBackup } from './device-backup';
import { DumpSource } from './sources/dump-source';
import { rotateLogs } from './sources/log-rotation';
import { DeviceConnection } from './ssh-connection';
import { mysqlMissing } from '../../../fleet/index';
import { psql } from '../../../fleet/postgres';
import type { Device } from '../../../fleet/index';
import type { Source } from '../../shared/schemas/devices';
import { cliServices } from '../testing/test-console';

const { skip, fleet } = fleetForFile('database source tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
const PASSWORD = 'database sources test repository password';

async function consoleFor(device: Device, sources: Source[]): Promise<{ services: Services; dataDir: string }> {
  const dataDir = tempDir();
  const services = cliServices(dataDir, { JETVAULT_SECRETS_PASSPHRASE: 'database sources test passphrase' });
  await services.repository.init(PASSWORD, FAST);
  services.devices.import({ ...device.profile(), sources }, 'test');
  return { services, dataDir };
}

/**
 * A 64 MB SQLite database in the device's app folder (WAL or rollback journal) and its app: one small
 * commit every 2 ms for up to a minute (killed by the test), as the device's login, waiting up to 5 s
 * for a lock.
 */
function busySqlite(device: Device, name: string, journal: 'wal' | 'rollback'): { file: string; writer: ChildProcess } {
  const as = { uid: device.account.uid, gid: device.account.gid };
  const file = path.join(device.root, 'opt', device.app, 'data', name);
  const wal = journal === 'wal';
  execFileSync('sqlite3', [file, `${wal ? 'PRAGMA journal_mode = WAL; ' : ''}CREATE TABLE samples (id INTEGER PRIMARY KEY, value BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) INSERT INTO samples (value) SELECT randomblob(1000) FROM n;`], { ...as, stdio: 'ignore' });
  const writer = spawn(
    'python3',
    ['-c', `import sqlite3, time\nc = sqlite3.connect(${JSON.stringify(file)}, isolation_level=None)\nc.execute('PRAGMA busy_timeout = 5000')\n${wal ? "c.execute('PRAGMA synchronous = NORMAL')\n" : ''}end = time.time() + 60\nwhile time.time() < end:\n    c.execute('INSERT INTO samples (value) VALUES (randomblob(100))')\n    time.sleep(0.002)\n`],
    { ...as, stdio: 'ignore' },
  );
  return { file, writer };
}

describe.skipIf(skip)('database sources on a fleet device', () => {
  it('a damaged SQLite database is kept as it is, and the run says so: the job, jetvault backup (exit 3), and a drill of it refused', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const dir = path.join(device.root, 'opt', device.app, 'data', "damaged 'db'");
    mkdirSync(dir, { recursive: true });
    chownSync(dir, device.account.uid, device.account.gid);
    const file = path.join(dir, 'events.db');
    damagedDatabase(file, device);
    const source: Source = { name: 'events', kind: 'sqlite', path: file };
    const { services, dataDir } = await consoleFor(device, [source]);
    const connect = await services.devices.connectOptions(device.name);
    let disposed = false;
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      // Kept: what is still readable is worth having, and it is what the device holds.
      expect(record.status).toBe('succeeded');
      const [result] = value!.snapshots;
      expect(result!.integrityCheck).toMatch(/^\*\*\* in database main \*\*\*\n/);
      expect(result!.integrityCheck!.split('\n')).toHaveLength(INTEGRITY_LINES + 1);
      expect(result!.integrityCheck).toMatch(/\n… \d+ more lines$/);
      // The job history keeps it, for the device page's Recent backups.
      expect(services.jobs.get(record.id)!.result).toMatchObject({ snapshots: [{ integrityCheck: result!.integrityCheck }] });
      // The snapshot holds the check's whole report beside the copy.
      const repo = await services.repository.fresh();
      const snapshot = await findSnapshot(repo, result!.snapshotId);
      const report = await readSmallFile(repo, (await rootNode(repo, snapshot, 'events.integrity-check.txt'))!);
      expect(report.startsWith(result!.integrityCheck!.split('\n').slice(0, INTEGRITY_LINES).join('\n'))).toBe(true);

      // jetvault backup --device warns with the check and exits 3, as for files it could not read.
      services.dispose();
      disposed = true;
      const run = cliRunner({ JETVAULT_HOME: dataDir, JETVAULT_PASSWORD: PASSWORD });
      const cli = await run('backup', '--device', device.name);
      expect(cli.err).toContain('warning: events: the database on the device is damaged: its copy failed PRAGMA integrity_check');
      expect(cli.err).toContain('*** in database main ***');
      expect(cli.code).toBe(3);
      // Both snapshots say so themselves, in `jetvault snapshots --json` and the catalog.
      const listed = JSON.parse((await run('snapshots', '--device', device.name, '--json')).out) as { tags: string[] }[];
      expect(listed).toHaveLength(2);
      expect(listed.every((s) => s.tags.includes('integrity:damaged'))).toBe(true);

      // What the run said of it holds: a drill of the snapshot is refused for the same reason.
      const connection = await DeviceConnection.open(connect);
      try {
        await expect(restoreDatabaseScratch({ repo, runner: connection, snapshot, source })).rejects.toThrow(/failed PRAGMA integrity_check \(\*\*\* in database main \*\*\*/);
      } finally {
        connection.close();
      }
      // The refused drill left nothing on the device: no staged copy beside the database, no work folder.
      expect(readdirSync(dir)).toEqual(['events.db']);
      const work = path.join(device.account.home, '.jetvault-restore');
      expect(existsSync(work) ? readdirSync(work) : []).toEqual([]);
      expect((await listSnapshots(repo)).length).toBeGreaterThan(0);
    } finally {
      if (!disposed) services.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a SQLite database too damaged for integrity_check to finish is kept with what the check said, and the run backs up the other sources', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const file = path.join(device.root, 'opt', device.app, 'data', 'events.db');
    damagedDatabase(file, device, 'page');
    const config = device.profile().sources.find((s) => s.name === 'config')!;
    const { services } = await consoleFor(device, [{ name: 'events', kind: 'sqlite', path: file }, config]);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      // One damaged database used to fail the run, and with it the backup of everything else on the device.
      expect(record.error).toBeNull();
      expect(value!.snapshots.map((s) => s.source)).toEqual(['events', 'config']);
      const [events] = value!.snapshots;
      expect(events!.integrityCheck).toMatch(/database disk image is malformed/);
      expect(events!.integrityCheck).toMatch(/\(integrity_check stopped with exit 11\)/);
      // The tables that could still be counted are; the damaged one is not claimed.
      const repo = await services.repository.fresh();
      expect(await recordedRowCounts(repo, await findSnapshot(repo, events!.snapshotId), 'events')).toEqual({ notes: 1 });
    } finally {
      services.dispose();
      rmSync(file, { force: true });
    }
  });

  it("a device whose temp folder cannot hold the SQLite copy says so, names the folder, and leaves nothing behind", { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    // The login's TMPDIR on a small disk with 256 KiB left, as on a device whose /tmp is a small tmpfs.
    const small = path.join(device.root, 'small-tmp');
    mkdirSync(small);
    chownSync(small, device.account.uid, device.account.gid);
    const { mount } = await device.mutate.fillDisk('small-tmp', { sizeMB: 2, leaveBytes: 256 * 1024 });
    const bashrc = path.join(device.account.home, '.bashrc');
    const before = existsSync(bashrc) ? readFileSync(bashrc, 'utf8') : null;
    const source: Source = { name: 'local', kind: 'sqlite', path: device.sqlitePath };
    const { services } = await consoleFor(device, [source]);
    try {
      appendFileSync(bashrc, `\nexport TMPDIR=${mount}\n`);
      const repo = await services.repository.fresh();
      const { record } = await startDeviceBackup(services, device.name).done;
      expect(record.status).toBe('failed');
      // Not "database or disk is full", which reads as the database's own disk.
      expect(record.error?.message).toMatch(
        new RegExp(`SQLite backup of ${device.sqlitePath} on .* failed: the device's temp folder ${mount} has no room for the copy of the database that is sent \\(the database is [\\d.]+ MiB, [\\d.]+ KiB are free there\\)\\. Free space there, or point TMPDIR of the device's login at a larger disk\\. No snapshot was written`),
      );
      expect(await listSnapshots(repo)).toEqual([]);
      expect(readdirSync(mount).filter((n) => n.startsWith('.jetvault-dump-'))).toEqual([]);

      // A temp folder the login may not write to: the same, by its own cause.
      const locked = path.join(small, 'root-only');
      mkdirSync(locked, { mode: 0o755 });
      writeFileSync(bashrc, `${before ?? ''}\nexport TMPDIR=${locked}\n`);
      const denied = await startDeviceBackup(services, device.name).done;
      expect(denied.record.error?.message).toMatch(/Permission denied\s+no private folder could be made in the device's temp folder .*\/small-tmp\/root-only: free space there, or point TMPDIR of the device's login at a folder it may write to\. No snapshot was written/);
    } finally {
      services.dispose();
      if (before === null) rmSync(bashrc, { force: true });
      else writeFileSync(bashrc, before);
      await device.mutate.releaseDisk('small-tmp');
      rmSync(small, { recursive: true, force: true });
    }
  });

  it('a database removed from the device (a SQLite file, a dropped PostgreSQL database), or a SQLite file its login cannot read, fails the run saying which it is and what to do', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const dir = path.join(device.root, 'opt', device.app, 'data');
    const removed = path.join(dir, 'uninstalled.db');
    const rootOnly = path.join(dir, 'root-only.db');
    execFileSync('sqlite3', [rootOnly, 'CREATE TABLE t (x); INSERT INTO t VALUES (1);']);
    chownSync(rootOnly, 0, 0);
    execFileSync('chmod', ['0600', rootOnly]);
    const { services } = await consoleFor(device, [{ name: 'gone', kind: 'sqlite', path: removed }]);
    try {
      const repo = await services.repository.fresh();
      const gone = await startDeviceBackup(services, device.name).done;
      expect(gone.record.status).toBe('failed');
      expect(gone.record.error?.message).toBe(
        `SQLite backup of ${removed} on ${device.user}@${device.host}:${device.port} failed (exit 66): ${removed} does not exist. No snapshot was written. Was the database removed or moved? If the app keeps it elsewhere now, correct the path in the device's sources; if it is gone for good, remove the source (its snapshots are kept).`,
      );
      services.devices.update(device.name, { ...device.profile(), sources: [{ name: 'locked', kind: 'sqlite', path: rootOnly }] }, {}, 'test');
      const denied = await startDeviceBackup(services, device.name).done;
      expect(denied.record.error?.message).toBe(`SQLite backup of ${rootOnly} on ${device.user}@${device.host}:${device.port} failed (exit 66): the device's login cannot read ${rootOnly}. No snapshot was written.`);
      // A PostgreSQL database dropped since (the app moved to another name): said likewise.
      services.devices.update(device.name, { ...device.profile(), sources: [{ name: 'old', kind: 'postgres', database: 'dropped_app', host: device.pg.socketDir, port: device.pg.port }] }, {}, 'test');
      const dropped = await startDeviceBackup(services, device.name).done;
      expect(dropped.record.error?.message).toMatch(/database "dropped_app" does not exist.*Was "dropped_app" dropped or renamed\? Correct the database in the device's sources, or remove the source if it is gone for good \(its snapshots are kept\)\.$/s);
      expect(await listSnapshots(repo)).toEqual([]);
    } finally {
      services.dispose();
      rmSync(rootOnly, { force: true });
    }
  });

  it("a WAL database its app has closed, in a folder the device's login may not write to, is backed up", { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    // The app's own folder and database (root's, 0755 and 0644), the app stopped: no -wal, no -shm.
    const dir = path.join(device.root, 'var/lib/vendor-app');
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const file = path.join(dir, 'state.db');
    execFileSync('sqlite3', [file, 'PRAGMA journal_mode = WAL; CREATE TABLE jobs (id INTEGER PRIMARY KEY, name TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO jobs (name) SELECT printf(\'job %d\', i) FROM n;'], { stdio: 'ignore' });
    expect(existsSync(`${file}-wal`)).toBe(false);
    const { services } = await consoleFor(device, [{ name: 'vendor', kind: 'sqlite', path: file }]);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      const repo = await services.repository.fresh();
      const snapshot = await findSnapshot(repo, value!.snapshots[0]!.snapshotId);
      expect(await recordedRowCounts(repo, snapshot, 'vendor')).toEqual({ jobs: 500 });
      expect((await readSmallFile(repo, (await rootNode(repo, snapshot, 'vendor.integrity-check.txt'))!)).trim()).toBe('ok');
      // Nothing left beside the database.
      expect(readdirSync(dir)).toEqual(['state.db']);
    } finally {
      services.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a device whose temp folder is full fails a PostgreSQL backup naming the folder and what to do", { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const small = path.join(device.root, 'full-tmp');
    mkdirSync(small);
    chownSync(small, device.account.uid, device.account.gid);
    const { mount } = await device.mutate.fillDisk('full-tmp', { sizeMB: 1, leaveBytes: 0 });
    const bashrc = path.join(device.account.home, '.bashrc');
    const before = existsSync(bashrc) ? readFileSync(bashrc, 'utf8') : null;
    const { services } = await consoleFor(device, [device.profile().sources.find((s) => s.kind === 'postgres')!]);
    try {
      appendFileSync(bashrc, `\nexport TMPDIR=${mount}\n`);
      const { record } = await startDeviceBackup(services, device.name).done;
      expect(record.status).toBe('failed');
      expect(record.error?.message).toMatch(new RegExp(`The postgres dump of "db" on .* failed: the device's temp folder ${mount} is full \\(0 B free\\)\\. Free space there, or point TMPDIR of the device's login at a larger disk\\. No snapshot was written`));
      expect(await listSnapshots(await services.repository.fresh())).toEqual([]);
    } finally {
      services.dispose();
      if (before === null) rmSync(bashrc, { force: true });
      else writeFileSync(bashrc, before);
      await device.mutate.releaseDisk('full-tmp');
      rmSync(small, { recursive: true, force: true });
    }
  });

  it('a SQLite database with a virtual table of a module sqlite3 lacks (sqlite-vec) is backed up and drilled, its shadow tables counted', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const file = path.join(device.root, 'opt', device.app, 'data', 'embeddings.db');
    // As sqlite-vec leaves it: the vec0 table in the schema, its rows in ordinary shadow tables.
    execFileSync('sqlite3', [
      file,
      `CREATE TABLE frames (id INTEGER PRIMARY KEY, label TEXT);
       INSERT INTO frames (label) VALUES ('bottle'), ('can'), ('carton');
       CREATE TABLE vec_frames_rowids (rowid INTEGER PRIMARY KEY, id, chunk_id INTEGER, chunk_offset INTEGER);
       INSERT INTO vec_frames_rowids (rowid, chunk_id, chunk_offset) VALUES (1, 1, 0), (2, 1, 1), (3, 1, 2);
       PRAGMA writable_schema = ON;
       INSERT INTO sqlite_master VALUES ('table', 'vec_frames', 'vec_frames', 0, 'CREATE VIRTUAL TABLE vec_frames USING vec0(embedding float[4])');`,
    ]);
    chownSync(file, device.account.uid, device.account.gid);
    const source: Source = { name: 'embeddings', kind: 'sqlite', path: file };
    const { services } = await consoleFor(device, [source]);
    const connect = await services.devices.connectOptions(device.name);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      expect(value!.snapshots[0]!.integrityCheck).toBeUndefined();
      const repo = await services.repository.fresh();
      const snapshot = await findSnapshot(repo, value!.snapshots[0]!.snapshotId);
      expect(snapshot.tags).not.toContain('integrity:damaged');
      expect(await recordedRowCounts(repo, snapshot, 'embeddings')).toEqual({ frames: 3, vec_frames_rowids: 3 });
      const connection = await DeviceConnection.open(connect);
      try {
        const drill = await restoreDatabaseScratch({ repo, runner: connection, snapshot, source });
        expect(drill).toMatchObject({ ok: true, problems: [], integrity: 'ok', rows: { frames: 3, vec_frames_rowids: 3 }, removed: true });
      } finally {
        connection.close();
      }
    } finally {
      services.dispose();
      rmSync(file, { force: true });
    }
  });

  it("a log only root and its group may read (/var/log/syslog, root:adm 0640) is named with the group that would let the backup read it", { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const logs = path.join(device.root, 'var/log/system');
    mkdirSync(logs, { recursive: true });
    writeFileSync(path.join(logs, 'syslog'), 'kernel: booted\n', { mode: 0o640 });
    chownSync(path.join(logs, 'syslog'), 0, 4);
    writeFileSync(path.join(logs, 'secret.log'), 'root only\n', { mode: 0o600 });
    writeFileSync(path.join(logs, 'boot.log'), 'ok\n', { mode: 0o644 });
    const { services } = await consoleFor(device, [{ name: 'system-logs', kind: 'files', paths: [logs] }]);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.status).toBe('succeeded');
      expect(value!.snapshots[0]!.skipped).toEqual([
        { path: expect.stringMatching(/var\/log\/system\/secret\.log$/) as string, message: "Cannot open: Permission denied (the device's login cannot read it)" },
        { path: expect.stringMatching(/var\/log\/system\/syslog$/) as string, message: "Cannot open: Permission denied (the device's login cannot read it; its group (gid 4) may: add the login to that group — adm for /var/log on Ubuntu — to back it up)" },
      ]);
    } finally {
      services.dispose();
      rmSync(logs, { recursive: true, force: true });
    }
  });

  it('log rotation truncates the logs the snapshot holds, never a file a log was swapped for a symbolic link to', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const logs = path.join(device.root, 'var', 'log', 'rotated');
    mkdirSync(logs);
    chownSync(logs, device.account.uid, device.account.gid);
    // A file of the device login's that is no log: a symbolic link to it has the length of its path.
    const victim = path.join(device.root, 'etc', device.app, 'keep-me.yaml');
    writeFileSync(victim, 'calibration: 42\n');
    chownSync(victim, device.account.uid, device.account.gid);
    const swapped = path.join(logs, 'swapped.log');
    const plain = path.join(logs, 'plain.log');
    writeFileSync(swapped, 'x'.repeat(Buffer.byteLength(victim)));
    writeFileSync(plain, 'a line\n');
    for (const log of [swapped, plain]) chownSync(log, device.account.uid, device.account.gid);
    const source: Source = { name: 'logs', kind: 'files', paths: [logs] };
    const { services } = await consoleFor(device, [source]);
    const connect = await services.devices.connectOptions(device.name);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      const repo = await services.repository.fresh();
      const snapshot = await findSnapshot(repo, value!.snapshots[0]!.snapshotId);
      // Between the snapshot and the rotation, the log's writer swaps it for a link of the same size and time.
      const { mtime } = statSync(swapped);
      rmSync(swapped);
      symlinkSync(victim, swapped);
      execFileSync('touch', ['-h', '-d', `@${Math.floor(mtime.getTime() / 1000)}`, swapped]);
      expect(lstatSync(swapped).size).toBe(Buffer.byteLength('x'.repeat(Buffer.byteLength(victim))));
      const connection = await DeviceConnection.open(connect);
      try {
        expect(await rotateLogs(repo, snapshot.tree, connection, device.root)).toEqual([plain]);
      } finally {
        connection.close();
      }
      expect(readFileSync(victim, 'utf8')).toBe('calibration: 42\n');
      expect(readFileSync(plain, 'utf8')).toBe('');
    } finally {
      services.dispose();
      rmSync(logs, { recursive: true, force: true });
      rmSync(victim, { force: true });
    }
  });

  it('a WAL database its app commits to every few milliseconds is copied, not started over until the run is cancelled', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const { file, writer } = busySqlite(device, 'telemetry.db', 'wal');
    const { services } = await consoleFor(device, [{ name: 'telemetry', kind: 'sqlite', path: file }]);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const job = startDeviceBackup(services, device.name);
      // 64 MB copies in well under a second on its own; 20 s is the copy starting over and over.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 20_000)));
      const ended = await Promise.race([job.done, late]);
      clearTimeout(timer);
      if (ended === 'late') {
        services.jobs.cancel(job.id);
        await job.done;
      }
      expect(ended).not.toBe('late');
      const { record, value } = ended as Awaited<typeof job.done>;
      expect(record.error).toBeNull();
      const repo = await services.repository.fresh();
      const counts = await recordedRowCounts(repo, await findSnapshot(repo, value!.snapshots[0]!.snapshotId), 'telemetry');
      expect(counts!.samples).toBeGreaterThan(60_000);
      expect(value!.snapshots[0]!.integrityCheck).toBeUndefined();
    } finally {
      writer.kill();
      services.dispose();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    }
  });

  it.skipIf(mysqlMissing())('a MySQL database named with a quote, a backtick and an accent is backed up and drilled', { timeout: 180_000 }, async () => {
    const device = fleet().devices[0]!;
    const mysql = await device.mysql(100);
    const database = "it's `odd` café";
    const quoted = `\`${database.replace(/`/g, '``')}\``;
    await mysql.query(`CREATE DATABASE ${quoted}; CREATE TABLE ${quoted}.\`crème\` (id INT PRIMARY KEY, note VARCHAR(20)); INSERT INTO ${quoted}.\`crème\` VALUES (1, 'brûlée'), (2, NULL);`);
    const source: Source = { name: 'odd', kind: 'mysql', database, socket: mysql.socket };
    const { services } = await consoleFor(device, [source]);
    const connect = await services.devices.connectOptions(device.name);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      const repo = await services.repository.fresh();
      const snapshot = await findSnapshot(repo, value!.snapshots[0]!.snapshotId);
      expect(await recordedRowCounts(repo, snapshot, 'odd')).toEqual({ crème: 2 });
      const connection = await DeviceConnection.open(connect);
      try {
        // The device's login has no UTF-8 locale over SSH: the client must not take latin1 from it.
        const drill = await restoreDatabaseScratch({ repo, runner: connection, snapshot, source });
        expect(drill).toMatchObject({ ok: true, problems: [], rows: { crème: 2 }, removed: true });
      } finally {
        connection.close();
      }
    } finally {
      services.dispose();
    }
  });
  it('a PostgreSQL database named with an = (and quotes, spaces, unicode) is backed up and drilled', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const database = `it's "odd" café 数据 site=7`;
    const conninfo = `dbname='${database.replace(/['\\]/g, (c) => `\\${c}`)}'`;
    const table = 'public."crème ""brûlée"""';
    await psql(device.pg.socketDir, 'postgres', `CREATE DATABASE "${database.replace(/"/g, '""')}";`, device.user);
    await psql(device.pg.socketDir, conninfo, `CREATE TABLE ${table} (id int); INSERT INTO ${table} SELECT generate_series(1, 7);`, device.user);
    const source: Source = { name: 'odd', kind: 'postgres', database, host: device.pg.socketDir, port: device.pg.port };
    const { services } = await consoleFor(device, [source]);
    const connect = await services.devices.connectOptions(device.name);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      const repo = await services.repository.fresh();
      const snapshot = await findSnapshot(repo, value!.snapshots[0]!.snapshotId);
      expect(await recordedRowCounts(repo, snapshot, 'odd')).toEqual({ [table]: 7 });
      const connection = await DeviceConnection.open(connect);
      try {
        const drill = await restoreDatabaseScratch({ repo, runner: connection, snapshot, source });
        expect(drill).toMatchObject({ ok: true, problems: [], rows: { [table]: 7 }, removed: true });
      } finally {
        connection.close();
      }
    } finally {
      services.dispose();
      await psql(device.pg.socketDir, 'postgres', `DROP DATABASE "${database.replace(/"/g, '""')}";`, device.user);
    }
  });
  it('a PostgreSQL dump its user may not read every table of fails naming the table and what to do, with no snapshot', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    // Made by the superuser in the app's database: the app's own role may not read it.
    await psql(device.pg.socketDir, device.app, "CREATE TABLE audit_keys (k text); INSERT INTO audit_keys VALUES ('x');", device.user);
    const source: Source = { name: 'db', kind: 'postgres', database: device.app, host: device.pg.socketDir, port: device.pg.port, user: device.app };
    const { services } = await consoleFor(device, [source]);
    try {
      const { record } = await startDeviceBackup(services, device.name).done;
      expect(record.status).toBe('failed');
      expect(record.error?.message).toContain('permission denied for table audit_keys');
      expect(record.error?.message).toContain(
        `No snapshot was written. "${device.app}" may not read audit_keys of "${device.app}", and a dump needs every table: back it up as the database's owner or a superuser (the source's user), or grant "${device.app}" SELECT on it (pg_read_all_data on PostgreSQL 14 and later).`,
      );
      expect(await listSnapshots(await services.repository.fresh())).toEqual([]);
    } finally {
      services.dispose();
      await psql(device.pg.socketDir, device.app, 'DROP TABLE audit_keys;', device.user);
    }
  });
  it.skipIf(mysqlMissing())('a MySQL dump refused a privilege is not blamed on the password: the hint names the privileges, a wrong password still points at the password', { timeout: 180_000 }, async () => {
    const device = fleet().devices[0]!;
    const mysql = await device.mysql(100);
    const database = mysql.database;
    // A backup user that logs in with its password but lacks EVENT (SHOW EVENTS, for --events).
    await mysql.query(`CREATE USER 'backup'@'localhost' IDENTIFIED BY 'a backup password'; GRANT SELECT, LOCK TABLES, SHOW VIEW, TRIGGER ON \`${database}\`.* TO 'backup'@'localhost';`);
    const source: Source = { name: 'shop', kind: 'mysql', database, socket: mysql.socket, user: 'backup' };
    const { services } = await consoleFor(device, [source]);
    try {
      services.devices.update(device.name, { ...device.profile(), sources: [source] }, { databasePasswords: { shop: 'a backup password' } }, 'test');
      const { record } = await startDeviceBackup(services, device.name).done;
      expect(record.status).toBe('failed');
      expect(record.error?.message).toContain("Couldn't execute 'show events': Access denied for user 'backup'@'localhost' to database");
      expect(record.error?.message).toContain(
        "No snapshot was written. The login worked, but 'backup'@'localhost' lacks a privilege this needs (a password does not help): a backup needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the database",
      );
      expect(record.error?.message).not.toContain('set the password');
      services.devices.update(device.name, { ...device.profile(), sources: [source] }, { databasePasswords: { shop: 'not the password' } }, 'test');
      const wrong = await startDeviceBackup(services, device.name).done;
      expect(wrong.record.error?.message).toMatch(/Access denied for user 'backup'@'localhost' \(using password: YES\).*The database refused the login: set the password of "shop"/s);
    } finally {
      services.dispose();
      await mysql.query("DROP USER 'backup'@'localhost';");
    }
  });
  it("a PostgreSQL database where an app's session holds a temporary table is backed up, the table left out as pg_dump leaves it", { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const source = device.profile().sources.find((s) => s.kind === 'postgres')!;
    // The app's long-lived session with a temporary table, open for the whole backup (ended below).
    const session = device.mutate.sql("CREATE TEMP TABLE staging_rows (id int); INSERT INTO staging_rows VALUES (1), (2); SELECT pg_sleep(30);");
    session.catch(() => undefined);
    const temporary = "SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname = 'staging_rows';";
    for (let i = 0; i < 100 && (await psql(device.pg.socketDir, device.app, temporary, device.user)) !== '1'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const { services } = await consoleFor(device, [source]);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      const repo = await services.repository.fresh();
      const counts = (await recordedRowCounts(repo, await findSnapshot(repo, value!.snapshots[0]!.snapshotId), 'db'))!;
      expect(Object.keys(counts).some((table) => table.includes('staging_rows'))).toBe(false);
      expect(counts['public.deposits']).toBeGreaterThan(0);
    } finally {
      services.dispose();
      await psql(device.pg.socketDir, 'postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid();`, device.user);
    }
  });
  it('a rollback-journal database its app writes to all the time is copied once copying it step by step keeps starting over', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const { file, writer } = busySqlite(device, 'counters.db', 'rollback');
    const { services } = await consoleFor(device, []);
    const connection = await DeviceConnection.open(await services.devices.connectOptions(device.name));
    const stop = new AbortController();
    // Copied step by step for 2 s here (SQLITE_STEPS_S in a run): then inside one read transaction.
    const timer = setTimeout(() => stop.abort(), 25_000);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const repo = await services.repository.fresh();
      const dump = new DumpSource(connection, { name: 'counters', kind: 'sqlite', path: file }, null, { sqliteStepsS: 2 });
      const made = await backup(repo, dump, { device: device.name, signal: stop.signal });
      expect(stop.signal.aborted).toBe(false);
      expect(dump.integrity).toBe('ok');
      expect(dump.rowCounts!.samples).toBeGreaterThan(60_000);
      expect(await recordedRowCounts(repo, await findSnapshot(repo, made.id), 'counters')).toEqual(dump.rowCounts);
      // The app's writes waited for the copy, none failed.
      expect(writer.exitCode).toBeNull();
    } finally {
      clearTimeout(timer);
      writer.kill();
      connection.close();
      services.dispose();
      for (const f of [file, `${file}-journal`]) rmSync(f, { force: true });
    }
  });
  it("a PostgreSQL server that ends transactions left idle (idle_in_transaction_session_timeout) does not end the backup's", { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const source = device.profile().sources.find((s) => s.kind === 'postgres')!;
    // Set for the app's database, as against leaked transactions: far shorter than the dump takes.
    await psql(device.pg.socketDir, 'postgres', `ALTER DATABASE ${device.app} SET idle_in_transaction_session_timeout = '300ms';`, device.user);
    const { services } = await consoleFor(device, [source]);
    try {
      const { record, value } = await startDeviceBackup(services, device.name).done;
      expect(record.error).toBeNull();
      expect(value!.snapshots[0]!.bytes).toBeGreaterThan(1_000_000);
    } finally {
      services.dispose();
      await psql(device.pg.socketDir, 'postgres', `ALTER DATABASE ${device.app} RESET idle_in_transaction_session_timeout;`, device.user);
    }
  });
});
