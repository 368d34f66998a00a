/**
 * Database sources as the device page reports them: a SQLite database that is damaged on the
 * device is backed up as it is, and the page says so instead of a plain green "succeeded".
 */
import { execFileSync } from 'node:child_process';
import { chownSync, closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { expect, testWithFleet } from './fixtures';
import { importWithRepository } from './device-steps';

const test = testWithFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

test('a damaged SQLite database: the last backup is a warning and Recent backups shows its integrity check', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  const file = path.join(device.root, 'opt', device.app, 'data', 'events.db');
  execFileSync('sqlite3', [file, "CREATE TABLE readings (id INTEGER PRIMARY KEY, value TEXT); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO readings (value) SELECT printf('reading %d %.60c', i, 'x') FROM n;"]);
  const [pageSize, pages] = execFileSync('sqlite3', [file, 'PRAGMA page_size; PRAGMA page_count;'], { encoding: 'utf8' }).trim().split('\n').map(Number);
  // The cell pointers of a leaf page in the middle overwritten: it opens and counts, integrity_check fails.
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(64, 0x05), 0, 64, Math.floor(pages! / 2) * pageSize! + 8);
  closeSync(fd);
  chownSync(file, device.account.uid, device.account.gid);

  await app.open(host.url);
  await importWithRepository(page, { ...device.profile(), sources: [{ name: 'events', kind: 'sqlite', path: file }] });
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await page.getByTestId('device-backup').click();
  const last = page.getByTestId('device-last-backup');
  await expect(last).toContainText('succeeded', { timeout: 90_000 });
  await expect(last).toContainText('the database events on the device is damaged: integrity_check failed (see Recent backups)');
  await expect(last).toHaveClass(/banner-warn/);
  const history = page.getByTestId('backup-history');
  await expect(history.getByTestId('backup-run-succeeded')).toContainText('events: database damaged (integrity_check failed)');
  await history.getByText('1 thing to look at').click();
  await expect(history.getByTestId('backup-run-problems')).toContainText('events: the database on the device is damaged — its copy failed PRAGMA integrity_check (*** in database main ***; ');
  await expect(history.getByTestId('backup-run-problems')).toContainText('a restore or drill of it will be refused');
  // The snapshot itself says so in the catalog.
  await page.goto(`${host.origin}/#/catalog`);
  await expect(page.getByTestId(`snapshot-${device.name}-events`)).toContainText('events sqlite · damaged (integrity_check failed)');
});

test('a MySQL database with MyISAM tables: the last backup is a warning naming the tables dumped outside its consistent view', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(150_000);
  const device = fleet.devices[0]!;
  const mysql = await device.mysql(100);
  await mysql.query(`CREATE DATABASE legacy; CREATE TABLE legacy.orders (id INT PRIMARY KEY) ENGINE=InnoDB; CREATE TABLE legacy.sensor_log (id INT PRIMARY KEY) ENGINE=MyISAM; INSERT INTO legacy.sensor_log VALUES (1);`);

  await app.open(host.url);
  await importWithRepository(page, { ...device.profile(), sources: [{ name: 'legacy', kind: 'mysql', database: 'legacy', socket: mysql.socket }] });
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await page.getByTestId('device-backup').click();
  const last = page.getByTestId('device-last-backup');
  await expect(last).toContainText('succeeded', { timeout: 90_000 });
  await expect(last).toContainText('the MySQL dump legacy held tables outside its consistent view (see Recent backups)');
  await expect(last).toHaveClass(/banner-warn/);
  const history = page.getByTestId('backup-history');
  await expect(history.getByTestId('backup-run-succeeded')).toContainText('legacy: tables dumped without a consistent view (MyISAM…)');
  await history.getByText('1 thing to look at').click();
  await expect(history.getByTestId('backup-run-problems')).toContainText('legacy: 1 table of "legacy" was dumped without a consistent view (MyISAM: `sensor_log`)');
});
