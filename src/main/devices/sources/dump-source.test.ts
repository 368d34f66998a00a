import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup } from '../../repository/archiver/archiver';
import { restore } from '../../repository/restorer/restorer';
import { findSnapshot, listSnapshots, readSmallFile, rootNode } from '../../repository/snapshot/snapshot';
import type { Snapshot } from '../../repository/snapshot/snapshot';
import { newRepo } from '../../repository/testing/fixtures';
import { tempDir } from '../../testing/temp-dir';
import { LocalRunner } from '../local-runner';
import { rowCountsFileName } from './row-counts';
import { checksumFileName, DumpSource, previousCopy, SQLITE_SETTLE_S, splitSqliteReport, stateFileName } from './dump-source';

const leftovers = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('.jetvault-dump-'));

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

  it('waits for a writer that holds a rollback-journal SQLite database locked, and copies what it committed', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const db = new Database(file); // journal_mode DELETE, SQLite's default: a writer locks out readers
    db.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, what TEXT)');
    db.exec("INSERT INTO events (what) VALUES ('started')");
    db.exec('BEGIN EXCLUSIVE');
    db.exec("INSERT INTO events (what) VALUES ('in a long write')");
    const released = new Promise<void>((resolve) =>
      setTimeout(() => {
        db.exec('COMMIT');
        resolve();
      }, 1500),
    );
    try {
      const { repo } = await newRepo();
      const source = new DumpSource(new LocalRunner(), { name: 'app', kind: 'sqlite', path: file });
      const result = await backup(repo, source, { device: 'rvm-017' });
      expect(source.integrity).toBe('ok');
      expect(source.rowCounts).toEqual({ events: 2 });
      const out = tempDir();
      await restore(repo, await findSnapshot(repo, result.id), out);
      const copy = new Database(path.join(out, 'app.sqlite3'), { readonly: true });
      expect(copy.prepare('SELECT what FROM events ORDER BY id').pluck().all()).toEqual(['started', 'in a long write']);
      copy.close();
    } finally {
      await released;
      db.close();
    }
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

  it('refuses a SQLite path that is not a regular file at once: a named pipe does not hang the run, a device node is not stored as an empty database', { timeout: 20_000 }, async () => {
    const { execFileSync } = await import('node:child_process');
    const { repo } = await newRepo();
    const fifo = path.join(tempDir(), 'local.db');
    execFileSync('mkfifo', [fifo]);
    for (const file of [fifo, '/dev/zero']) {
      const sqlite = new DumpSource(new LocalRunner(), { name: 'local', kind: 'sqlite', path: file });
      await expect(backup(repo, sqlite)).rejects.toThrow(new RegExp(`SQLite backup of ${file} .* failed \\(exit 66\\): ${file} is not a regular file`));
    }
    expect(await listSnapshots(repo)).toEqual([]);
  });

  it('does not send an unchanged SQLite copy again: the device compares its sha256 with the previous run\'s', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'local.db');
    const db = new Database(file);
    db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL)');
    const insert = db.prepare('INSERT INTO readings (value) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 5_000; i++) insert.run(i / 7);
    })();
    const config = { name: 'local', kind: 'sqlite' as const, path: file };
    const { repo } = await newRepo();
    const runner = new LocalRunner();

    const first = new DumpSource(runner, config);
    const one = await backup(repo, first, { device: 'rvm-017' });
    expect(first.bytesRead).toBeGreaterThan(50_000);
    const sum = await rootNode(repo, one.snapshot, checksumFileName(config));
    expect((await readSmallFile(repo, sum!)).trim()).toBe(first.sha256);
    expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);

    // Unchanged: nothing crosses, the snapshot holds the same content, the reports are fresh.
    const previous = await previousCopy(repo, one.snapshot, config);
    expect(previous?.sha256).toBe(first.sha256);
    const second = new DumpSource(runner, config, previous);
    const two = await backup(repo, second, { device: 'rvm-017', parent: { ...one.snapshot, id: one.id } });
    expect(second.bytesRead).toBe(0);
    expect(second.bytes).toBe(first.bytes);
    expect(second.integrity).toBe('ok');
    expect(second.rowCounts).toEqual({ readings: 5_000 });
    expect((await rootNode(repo, two.snapshot, 'local.sqlite3'))!.content).toEqual((await rootNode(repo, one.snapshot, 'local.sqlite3'))!.content);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, two.id), out);
    const copy = new Database(path.join(out, 'local.sqlite3'), { readonly: true });
    expect(copy.prepare('SELECT count(*) AS n FROM readings').get()).toEqual({ n: 5_000 });
    copy.close();

    // Changed: the copy is sent again and the new rows are in it.
    insert.run(42);
    const third = new DumpSource(runner, config, await previousCopy(repo, two.snapshot, config));
    const three = await backup(repo, third, { device: 'rvm-017', parent: { ...two.snapshot, id: two.id } });
    expect(third.bytesRead).toBeGreaterThan(50_000);
    expect(third.sha256).not.toBe(first.sha256);
    expect(third.rowCounts).toEqual({ readings: 5_001 });
    const out3 = tempDir();
    await restore(repo, await findSnapshot(repo, three.id), out3);
    const copy3 = new Database(path.join(out3, 'local.sqlite3'), { readonly: true });
    expect(copy3.prepare('SELECT count(*) AS n FROM readings').get()).toEqual({ n: 5_001 });
    copy3.close();
    db.close();
  });

  // The source names a symlink (SQLite keeps the -wal beside the file it points to), or a file in a
  // symlinked folder (the -wal beside the given name is the one beside the real one).
  it.each(['a symlink to the database', 'the database in a symlinked folder'])('neither copies nor checks a SQLite database whose files were not written since the previous run (%s)', async (layout) => {
    // The repository first: the first run must start well within SQLITE_SETTLE_S of the last write.
    const { repo } = await newRepo();
    const runner = new LocalRunner();
    const dir = tempDir();
    const name = `it's a "db" $(touch x) ;.db`;
    const real = path.join(tempDir(), layout.startsWith('a symlink') ? 'real.db' : name);
    const file = path.join(dir, name);
    if (layout.startsWith('a symlink')) {
      symlinkSync(real, file);
    } else {
      rmSync(dir, { recursive: true });
      symlinkSync(path.dirname(real), dir);
    }
    const db = new Database(real);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE readings (id INTEGER PRIMARY KEY, value REAL)');
    const insert = db.prepare('INSERT INTO readings (value) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 5_000; i++) insert.run(i / 7);
    })();
    // The writer stays connected (its -wal holds the rows), as an app on a device does.
    const config = { name: 'local', kind: 'sqlite' as const, path: file };
    const run = async (parent?: { snapshot: Snapshot; id: string }) => {
      const source = new DumpSource(runner, config, parent ? await previousCopy(repo, parent.snapshot, config) : null);
      const made = await backup(repo, source, { device: 'rvm-017', ...(parent ? { parent: { ...parent.snapshot, id: parent.id } } : {}) });
      return { source, snapshot: made.snapshot, id: made.id };
    };
    const contents = async (taken: { snapshot: Snapshot }) =>
      Promise.all(['local.sqlite3', 'local.integrity-check.txt', checksumFileName(config), stateFileName(config), rowCountsFileName('local')].map(async (name) => (await rootNode(repo, taken.snapshot, name))?.content));

    // Written just now: the fingerprint could miss a write in the same clock tick, so none is kept.
    const fresh = await run();
    expect(fresh.source.bytesRead).toBeGreaterThan(50_000);
    expect(await rootNode(repo, fresh.snapshot, stateFileName(config))).toBeNull();
    const again = await run(fresh);
    expect(again.source.unchanged).toBe(false);
    expect(again.source.integrity).toBe('ok');

    await new Promise((resolve) => setTimeout(resolve, SQLITE_SETTLE_S * 1000 + 200));
    const one = await run(again);
    expect(one.source.unchanged).toBe(false);
    expect(await rootNode(repo, one.snapshot, stateFileName(config))).not.toBeNull();

    // Left alone since: nothing copied, checked or sent; the snapshot carries the copy and its reports.
    const leftBefore = leftovers();
    const two = await run(one);
    expect(two.source.unchanged).toBe(true);
    expect(two.source.bytesRead).toBe(0);
    expect(two.source.integrity).toBe('ok');
    expect(two.source.rowCounts).toEqual({ readings: 5_000 });
    expect(two.source.sha256).toBe(one.source.sha256);
    expect(await contents(two)).toEqual(await contents(one));
    expect((await contents(two)).every((content) => content !== undefined)).toBe(true);
    expect(leftovers()).toEqual(leftBefore);
    expect(existsSync(path.join(dir, 'x'))).toBe(false);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, two.id), out);
    const copy = new Database(path.join(out, 'local.sqlite3'), { readonly: true });
    expect(copy.prepare('SELECT count(*) AS n FROM readings').get()).toEqual({ n: 5_000 });
    copy.close();

    // One row more, in the -wal only (the writer has not checkpointed): copied and checked again.
    insert.run(42);
    const three = await run(two);
    expect(three.source.unchanged).toBe(false);
    expect(three.source.bytesRead).toBeGreaterThan(50_000);
    expect(three.source.rowCounts).toEqual({ readings: 5_001 });
    const out3 = tempDir();
    await restore(repo, await findSnapshot(repo, three.id), out3);
    const copy3 = new Database(path.join(out3, 'local.sqlite3'), { readonly: true });
    expect(copy3.prepare('SELECT count(*) AS n FROM readings').get()).toEqual({ n: 5_001 });
    copy3.close();
    db.close();
  });

  it('reads a SQLite report with or without a sum', () => {
    const sha = 'a'.repeat(64);
    expect(splitSqliteReport(`ok\n@@rows\n7265|3\n@@sha256\n${sha}\n`)).toEqual({ check: 'ok', rows: '7265|3\n', sha256: sha, state: '' });
    expect(splitSqliteReport('ok\n@@rows\n@@sha256\n\n')).toEqual({ check: 'ok', rows: '', sha256: '', state: '' });
    const state = '73728 1796278467.3632605520 2097185 2049\n32992 1796278467.3712605550 2097190 2049';
    expect(splitSqliteReport(`ok\n@@rows\n7265|3\n@@sha256\n${sha}\n@@state\n${state}\n`)).toEqual({ check: 'ok', rows: '7265|3\n', sha256: sha, state });
    // Not a fingerprint of files (a sum, as snapshots before 2026-12-03 kept, or stray output): none.
    for (const other of ['b'.repeat(64), '73728 1796278467.36 2097185', `${state}\nrecent`, `${state}\n${state}`]) {
      expect(splitSqliteReport(`ok\n@@rows\n@@sha256\n${sha}\n@@state\n${other}\n`).state).toBe('');
    }
    expect(splitSqliteReport(`ok\n@@rows\n@@sha256\n${sha}\n@@state\n\n`)).toMatchObject({ sha256: sha, state: '' });
    expect(splitSqliteReport('*** in database main ***\nPage 3 is never used\n@@rows\n')).toMatchObject({ check: '*** in database main ***\nPage 3 is never used', sha256: '' });
  });
});
