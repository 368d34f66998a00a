import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup } from '../../repository/archiver/archiver';
import { restore } from '../../repository/restorer/restorer';
import { findSnapshot, listSnapshots } from '../../repository/snapshot/snapshot';
import { newRepo } from '../../repository/testing/fixtures';
import { tempDir } from '../../testing/temp-dir';
import { LocalRunner } from '../local-runner';
import { DumpSource } from './dump-source';

const leftovers = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('jetvault-sqlite.') || n.startsWith('jetvault-pg.'));

describe('DumpSource (real sqlite3 and pg_dump through a shell)', () => {
  it('backs up a live WAL-mode SQLite database consistently and records its integrity check', async () => {
    const dir = tempDir();
    const file = path.join(dir, "local db's.db");
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL)');
    const insert = db.prepare('INSERT INTO readings (value) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 20_000; i++) insert.run(i / 3);
    })();
    // The writer keeps the database open (WAL not checkpointed) during the backup, as on a device.
    const before = leftovers();
    const { repo } = await newRepo();
    const source = new DumpSource(new LocalRunner(), { name: 'local', kind: 'sqlite', path: file });
    const result = await backup(repo, source, { device: 'rvm-017' });
    expect(source.integrity).toBe('ok');
    expect(source.rowCounts).toEqual({ readings: 20_000 });
    expect(leftovers()).toEqual(before);

    const out = tempDir();
    await restore(repo, await findSnapshot(repo, result.id), out);
    expect(readFileSync(path.join(out, 'local.integrity-check.txt'), 'utf8')).toBe('ok\n');
    expect(JSON.parse(readFileSync(path.join(out, 'local.rowcounts.json'), 'utf8'))).toEqual({ readings: 20_000 });
    const copy = new Database(path.join(out, 'local.sqlite3'), { readonly: true });
    expect(copy.prepare('SELECT count(*) AS n, sum(value) AS s FROM readings').get()).toEqual(db.prepare('SELECT count(*) AS n, sum(value) AS s FROM readings').get());
    copy.close();
    db.close();
  });

  it('a failing dump ends the backup with its error and writes no snapshot', async () => {
    const { repo } = await newRepo();
    const runner = new LocalRunner();
    const before = leftovers();
    const pg = new DumpSource(runner, { name: 'db', kind: 'postgres', database: 'myrvm', host: tempDir(), port: 5999 });
    await expect(backup(repo, pg)).rejects.toThrow(/postgres dump of "db" .* failed \(exit 1\).*No snapshot was written/s);
    const sqlite = new DumpSource(runner, { name: 'local', kind: 'sqlite', path: '/nonexistent/x.db' });
    await expect(backup(repo, sqlite)).rejects.toThrow(/SQLite backup of \/nonexistent\/x.db .* failed/);
    expect(await listSnapshots(repo)).toEqual([]);
    expect(existsSync('/nonexistent')).toBe(false);
    // Each command removed its private temp dir, failed or not.
    expect(leftovers()).toEqual(before);
  });
});
