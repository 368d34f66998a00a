import { chmodSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/temp-dir';
import { unmount } from '../testing/unmount';
import { HISTORY_FILE, migrationChecksum, openHistoryDatabase } from './database';
import { MIGRATIONS } from './migrations';

describe('history database', () => {
  it('opens in WAL mode and applies every migration once, in order, with checksums', () => {
    const dir = tempDir();
    const db = openHistoryDatabase(dir);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const rows = db.prepare('SELECT id, name, checksum FROM schema_migrations ORDER BY id').all();
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ id: m.id, name: m.name, checksum: migrationChecksum(m) })));
    db.close();
    // Re-opening applies nothing new and keeps the data.
    const again = openHistoryDatabase(dir);
    expect(again.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual({ n: MIGRATIONS.length });
    again.close();
  });

  it('applies only the migrations added since the last open', () => {
    const dir = tempDir();
    openHistoryDatabase(dir, MIGRATIONS.slice(0, 1)).close();
    const db = openHistoryDatabase(dir);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'jobs'").get()).toEqual({ name: 'jobs' });
    db.close();
  });

  it('keeps the disks a discovery read in their own column (migration 20), and only there (22)', () => {
    const dir = tempDir();
    const before = openHistoryDatabase(dir, MIGRATIONS.filter((m) => m.id < 20));
    const insert = before.prepare('INSERT INTO devices (id, name, profile, host_key, facts, facts_at, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)');
    const disks = [{ mount: '/', filesystem: '/dev/nvme0n1p1', sizeBytes: 100, usedBytes: 95, availableBytes: 5 }];
    const at = '2026-12-01T10:00:00.000Z';
    insert.run('d1', 'rvm-001', '{}', JSON.stringify({ collectedAt: at, disks }), at, at, at);
    insert.run('d2', 'rvm-002', '{}', JSON.stringify({ collectedAt: at, disks, disksAt: '2026-12-02T10:00:00.000Z' }), '2026-12-02T10:00:00.000Z', at, at);
    insert.run('d3', 'rvm-003', '{}', null, null, at, at);
    before.close();
    const db = openHistoryDatabase(dir);
    const rows = db.prepare('SELECT id, disks, disks_at FROM devices ORDER BY id').all() as { id: string; disks: string | null; disks_at: string | null }[];
    expect(rows.map((r) => ({ ...r, disks: r.disks === null ? null : (JSON.parse(r.disks) as unknown) }))).toEqual([
      { id: 'd1', disks, disks_at: at },
      { id: 'd2', disks, disks_at: '2026-12-02T10:00:00.000Z' },
      { id: 'd3', disks: null, disks_at: null },
    ]);
    const facts = db.prepare('SELECT facts FROM devices ORDER BY id').all() as { facts: string | null }[];
    expect(facts.map((r) => (r.facts === null ? null : (JSON.parse(r.facts) as unknown)))).toEqual([{ collectedAt: at }, { collectedAt: at }, null]);
    db.close();
  });

  it('refuses a history whose applied migration changed since', () => {
    const dir = tempDir();
    openHistoryDatabase(dir).close();
    const edited = MIGRATIONS.map((m) => (m.id === 2 ? { ...m, sql: `${m.sql}\nCREATE INDEX x ON jobs (kind);` } : m));
    expect(() => openHistoryDatabase(dir, edited)).toThrow(/migration 2 "jobs" changed after it was applied/);
  });

  it('refuses a history written by a newer version', () => {
    const dir = tempDir();
    openHistoryDatabase(dir).close();
    expect(() => openHistoryDatabase(dir, MIGRATIONS.slice(0, 1))).toThrow(/newer Jetvault/);
  });

  it('rolls back a failing migration completely', () => {
    const dir = tempDir();
    const broken = [...MIGRATIONS, { id: 99, name: 'broken', sql: 'CREATE TABLE half (a INTEGER); INSERT INTO nowhere VALUES (1);' }];
    expect(() => openHistoryDatabase(dir, broken)).toThrow(/not usable/);
    const raw = new Database(path.join(dir, HISTORY_FILE));
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(raw.prepare('SELECT max(id) AS v FROM schema_migrations').get()).toEqual({ v: MIGRATIONS.at(-1)!.id });
    raw.close();
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`says the disk is full when the data folder's disk has no room left, not "disk I/O error"${root ? '' : ' (skipped: mounting a tmpfs needs root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const { rmSync, writeFileSync } = await import('node:fs');
    const dir = tempDir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
    try {
      openHistoryDatabase(dir).close();
      // The laptop's disk filled up meanwhile (the repository is a folder beside the history).
      for (let n = 0; ; n++) {
        try {
          writeFileSync(path.join(dir, `filler-${n}`), Buffer.alloc(16 * 1024));
        } catch {
          break;
        }
      }
      expect(() => openHistoryDatabase(dir)).toThrow(expect.objectContaining({ code: 'UNAVAILABLE', message: expect.stringMatching(/The disk holding .* is full: .* Free some space/) as string }));
    } finally {
      await unmount(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a file that is not a database instead of replacing it', async () => {
    const dir = tempDir();
    const { writeFileSync, readFileSync } = await import('node:fs');
    writeFileSync(path.join(dir, HISTORY_FILE), 'this is not sqlite, and it is somebody\'s data'.repeat(100));
    expect(() => openHistoryDatabase(dir)).toThrow(/not usable|Cannot open/);
    expect(readFileSync(path.join(dir, HISTORY_FILE), 'utf8')).toMatch(/^this is not sqlite/);
  });
});

describe('history file permissions', () => {
  it('keeps the history (webhook URL with its token, fleet inventory, audit) readable by its owner only, in a data folder that already existed', () => {
    // JETVAULT_HOME pointed at a folder made by hand (0755 under the usual umask).
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const db = openHistoryDatabase(dir);
    db.prepare("INSERT INTO settings (key, value, updated_at) VALUES ('probe', 'x', 'now')").run();
    const modes = () => Object.fromEntries(readdirSync(dir).filter((f) => f.startsWith(HISTORY_FILE)).map((f) => [f, statSync(path.join(dir, f)).mode & 0o777]));
    expect(Object.keys(modes()).sort()).toEqual([HISTORY_FILE, `${HISTORY_FILE}-shm`, `${HISTORY_FILE}-wal`]);
    expect(Object.values(modes())).toEqual([0o600, 0o600, 0o600]);
    db.close();
    // A history an earlier version left world-readable is made private when it is opened.
    chmodSync(path.join(dir, HISTORY_FILE), 0o644);
    const again = openHistoryDatabase(dir);
    again.prepare("INSERT INTO settings (key, value, updated_at) VALUES ('probe2', 'x', 'now')").run();
    expect(Object.values(modes())).toEqual([0o600, 0o600, 0o600]);
    again.close();
  });
});
