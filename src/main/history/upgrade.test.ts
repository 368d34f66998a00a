import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { cliRunner } from '../../cli/testing';
import { spawnTestHost } from '../testing/host-process';
import { oldHistory } from '../testing/old-history';
import { tempDir } from '../testing/temp-dir';
import { HISTORY_FILE, openHistoryDatabase } from './database';
import { MIGRATIONS } from './migrations';
import { outsideAsar, plannedUpgrade, upgradeHistory, upgradeMessage } from './upgrade';

const goodRuns = (dir: string): unknown[] => {
  const db = openHistoryDatabase(dir);
  try {
    return db.prepare('SELECT device_id, finished_s, gap_s FROM good_runs ORDER BY device_id, finished_s').all();
  } finally {
    db.close();
  }
};

describe('upgrading the history store', () => {
  it('plans nothing for a new, a current or an unreadable history', () => {
    const fresh = tempDir();
    expect(plannedUpgrade(fresh)).toBeNull();
    openHistoryDatabase(fresh).close();
    expect(plannedUpgrade(fresh)).toBeNull();
    const broken = tempDir();
    writeFileSync(path.join(broken, HISTORY_FILE), 'not a database');
    expect(plannedUpgrade(broken)).toBeNull();
    const old = tempDir();
    oldHistory(old, 1, 1);
    const plan = plannedUpgrade(old)!;
    expect({ from: plan.from, to: plan.to, ids: plan.pending.map((m) => m.id) }).toEqual({ from: 17, to: MIGRATIONS.at(-1)!.id, ids: MIGRATIONS.filter((m) => m.id > 17).map((m) => m.id) });
    expect(upgradeMessage(plan)).toMatch(/^Upgrading the history store from version 17 to \d+ .*The repositories are not touched\.$/);
  });

  it('runs a long migration off the caller’s thread and leaves what the services’ own open would', async () => {
    const dir = tempDir();
    oldHistory(dir, 100, 600); // 60,000 runs
    // The same history upgraded the old way, on this thread, for comparison.
    const twin = tempDir();
    copyFileSync(path.join(dir, HISTORY_FILE), path.join(twin, HISTORY_FILE));

    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = process.hrtime.bigint();
    const told: string[] = [];
    const upgrade = await upgradeHistory(dir, { onStart: (plan) => told.push(upgradeMessage(plan)), warn: (line) => told.push(line) });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(timer);

    expect(upgrade?.from).toBe(17);
    expect(told).toEqual([expect.stringMatching(/^Upgrading the history store from version 17/)]);
    // The event loop kept turning: on this thread the back-fill would have held it the whole time.
    expect(ms).toBeGreaterThan(150);
    expect(ticks).toBeGreaterThan(ms / 5 / 4);
    expect(plannedUpgrade(dir)).toBeNull();

    const upgraded = goodRuns(dir);
    expect(upgraded).toHaveLength(100 * 600 * 0.9);
    expect(upgraded).toEqual(goodRuns(twin));
    // A second call finds nothing to do.
    expect(await upgradeHistory(dir)).toBeNull();
  });

  it('two front ends upgrading at once: both start, each migration applied once', async () => {
    const dir = tempDir();
    oldHistory(dir, 50, 400);
    const [a, b] = await Promise.all([upgradeHistory(dir), upgradeHistory(dir)]);
    expect([a?.from, b?.from]).toEqual([17, 17]);
    const db = new Database(path.join(dir, HISTORY_FILE), { readonly: true });
    expect(db.prepare('SELECT id, count(*) AS n FROM schema_migrations WHERE id > 17 GROUP BY id').all()).toEqual(MIGRATIONS.filter((m) => m.id > 17).map((m) => ({ id: m.id, n: 1 })));
    db.close();
    expect(goodRuns(dir)).toHaveLength(50 * 400 * 0.9);
  });

  it('gives the worker the unpacked copy of the driver in a packaged app, and a plain path as it is', () => {
    expect(outsideAsar('/opt/Jetvault/resources/app.asar/node_modules/better-sqlite3/lib/index.js')).toBe('/opt/Jetvault/resources/app.asar.unpacked/node_modules/better-sqlite3/lib/index.js');
    expect(outsideAsar('/work/jetvault/node_modules/better-sqlite3/lib/index.js')).toBe('/work/jetvault/node_modules/better-sqlite3/lib/index.js');
  });

  it('upgrades on the caller’s thread when the worker cannot start, and says so', async () => {
    const dir = tempDir();
    oldHistory(dir, 2, 10);
    const warnings: string[] = [];
    const upgrade = await upgradeHistory(dir, { driver: path.join(dir, 'no-such-driver.js'), warn: (line) => warnings.push(line) });
    expect(upgrade?.to).toBe(MIGRATIONS.at(-1)!.id);
    expect(warnings).toEqual([expect.stringMatching(/^history upgrade: no worker \(Cannot find module .*no-such-driver\.js/)]);
    expect(plannedUpgrade(dir)).toBeNull();
    expect(goodRuns(dir)).toHaveLength(18);
  });

  it('fails as the services’ open would and rolls a failing migration back whole', async () => {
    const dir = tempDir();
    oldHistory(dir, 2, 10);
    const broken = [...MIGRATIONS, { id: 99, name: 'broken', sql: 'CREATE TABLE half (a INTEGER); INSERT INTO nowhere VALUES (1);' }];
    await expect(upgradeHistory(dir, { migrations: broken })).rejects.toThrow(new RegExp(`^The history store at ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/history\\.sqlite3 is not usable: no such table: nowhere$`));
    // The migrations before the broken one are committed (each is its own transaction, as on open); not the broken one.
    const db = new Database(path.join(dir, HISTORY_FILE), { readonly: true });
    expect(db.prepare('SELECT max(id) AS v FROM schema_migrations').get()).toEqual({ v: MIGRATIONS.at(-1)!.id });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    db.close();
  });

  it('leaves a history from a newer Jetvault to the open that refuses it, untouched', async () => {
    const dir = tempDir();
    openHistoryDatabase(dir).close();
    const file = path.join(dir, HISTORY_FILE);
    const before = readFileSync(file);
    expect(await upgradeHistory(dir, { migrations: MIGRATIONS.slice(0, 10) })).toBeNull();
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(() => openHistoryDatabase(dir, MIGRATIONS.slice(0, 10))).toThrow(/newer Jetvault/);
  });
});

describe('the front ends say when they upgrade the history', () => {
  it('the test host prints the line, then serves on the upgraded history', async () => {
    const home = tempDir();
    oldHistory(home, 20, 100);
    const child = spawnTestHost(home);
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const served = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (/JETVAULT_HOST_URL=/.test(stdout)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.once('exit', () => resolve(false));
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    expect(served, stderr).toBe(true);
    expect(stdout).toMatch(/^Upgrading the history store from version 17 to \d+ .*\nJetvault test host/s);
    expect(plannedUpgrade(home)).toBeNull();
    expect(goodRuns(home)).toHaveLength(20 * 100 * 0.9);
  }, 60_000);

  it('a CLI command prints it on stderr and its JSON on stdout as ever', async () => {
    const home = tempDir();
    oldHistory(home, 3, 10);
    const jetvault = cliRunner({ JETVAULT_HOME: home });
    const listed = await jetvault('device', 'list', '--json');
    expect(listed.code, listed.err).toBe(0);
    expect(listed.err).toMatch(/^Upgrading the history store from version 17 to \d+ /);
    expect((JSON.parse(listed.out) as { name: string }[]).map((d) => d.name).sort()).toEqual(['rvm-1', 'rvm-2', 'rvm-3']);
    // Once only.
    const again = await jetvault('device', 'list', '--json');
    expect(again.err).toBe('');
  });
});
