/**
 * The app's local SQLite database (WAL mode, ~50k rows), made with Debian's sqlite3 in one
 * transaction from a recursive CTE. Runs as the device account so -wal/-shm files get its owner.
 */
import { existsSync } from 'node:fs';
import { run } from './exec';
import type { Account } from './accounts';

export async function sqlite(file: string, sql: string, account?: Account): Promise<string> {
  if (!existsSync('/usr/bin/sqlite3')) throw new Error('sqlite3 not found: apt-get install sqlite3');
  const ids = account ? { uid: account.uid, gid: account.gid } : {};
  const r = await run('/usr/bin/sqlite3', ['-batch', '-bail', file], { input: sql, timeoutMs: 60_000, ...ids });
  return r.stdout.trim();
}

export const SQLITE_TEMPLATE = `
PRAGMA journal_mode=WAL;
BEGIN;
CREATE TABLE scans (id INTEGER PRIMARY KEY, barcode TEXT NOT NULL, material TEXT NOT NULL, weight_g REAL NOT NULL, confidence REAL NOT NULL, accepted INTEGER NOT NULL, scanned_at TEXT NOT NULL, synced INTEGER NOT NULL DEFAULT 0);
CREATE TABLE sync_queue (id INTEGER PRIMARY KEY, scan_id INTEGER REFERENCES scans(id), attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, queued_at TEXT NOT NULL);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE calibration (id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, offset_value REAL NOT NULL, measured_at TEXT NOT NULL, image BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 45000)
INSERT INTO scans (barcode, material, weight_g, confidence, accepted, scanned_at, synced)
  SELECT printf('%013d', (i * 7919) % 10000000000000), CASE i % 4 WHEN 0 THEN 'PET' WHEN 1 THEN 'ALU' WHEN 2 THEN 'HDPE' ELSE 'GLASS' END,
         10 + (i * 37 % 5000) / 10.0, 0.5 + (i * 13 % 500) / 1000.0, (i % 13) <> 0, strftime('%Y-%m-%dT%H:%M:%SZ', 1709251200 + i * 60, 'unixepoch'), i < 44000
  FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4900)
INSERT INTO sync_queue (scan_id, attempts, last_error, queued_at)
  SELECT 40000 + i, i % 4, CASE WHEN i % 4 > 0 THEN 'timeout after 30s' END, strftime('%Y-%m-%dT%H:%M:%SZ', 1709251200 + i * 600, 'unixepoch') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80)
INSERT INTO calibration (sensor, offset_value, measured_at, image) SELECT 'loadcell-' || (i % 3), (i % 17) / 100.0, strftime('%Y-%m-%dT%H:%M:%SZ', 1709251200 + i * 86400, 'unixepoch'), zeroblob(2048) FROM n;
INSERT INTO settings VALUES ('schema_version', '12'), ('camera_exposure', '8000'), ('reject_threshold', '0.85');
CREATE INDEX scans_synced ON scans (synced, scanned_at);
COMMIT;
`;

export function sqliteDeviceSql(device: { name: string; serial: string }): string {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return `BEGIN;
INSERT OR REPLACE INTO settings VALUES ('device_name', ${q(device.name)}), ('serial', ${q(device.serial)});
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO scans (barcode, material, weight_g, confidence, accepted, scanned_at, synced)
  SELECT printf('%013d', abs(random()) % 10000000000000), 'PET', 25.0, 0.99, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-' || i || ' minutes'), 0 FROM n;
COMMIT;`;
}
