/** Test helper: a SQLite database whose copy fails PRAGMA integrity_check, put on a fleet device. */
import { chownSync, closeSync, copyFileSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Device } from '../../../fleet/index';
import { tempDir } from './temp-dir';

/**
 * A SQLite database with a table of one row and one of 5,000 rows, a page in the middle of the
 * latter damaged: `pointers`, its cell pointers overwritten (it opens and counts, integrity_check
 * lists the damage); `page`, all of it (integrity_check itself stops, the table cannot be counted).
 */
export function damagedDatabase(file: string, owner: Device, damage: 'pointers' | 'page' = 'pointers'): void {
  const made = path.join(tempDir(), 'made.db');
  const db = new Database(made);
  db.exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('installed')");
  db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, value TEXT)');
  const insert = db.prepare('INSERT INTO readings (value) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 5_000; i++) insert.run(`reading ${i} `.padEnd(80, 'x'));
  })();
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.close();
  const fd = openSync(made, 'r+');
  // A leaf page's cell pointer array starts after its 8-byte header.
  if (damage === 'pointers') writeSync(fd, Buffer.alloc(64, 0x05), 0, 64, Math.floor(pages / 2) * pageSize + 8);
  else writeSync(fd, Buffer.alloc(pageSize, 0xde), 0, pageSize, Math.floor(pages / 2) * pageSize);
  closeSync(fd);
  copyFileSync(made, file);
  chownSync(file, owner.account.uid, owner.account.gid);
}
