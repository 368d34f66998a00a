/**
 * Upgrading the history store before the services open it. A migration can take long on a large
 * history (migration 18 back-fills `good_runs`: ~14 s on a year of 500 devices, 1.8 M runs) and
 * better-sqlite3 is synchronous: run on the main thread it froze the app's start with no window at
 * all. So the front ends call `upgradeHistory` first: the pending migrations run in a worker thread,
 * each in its own transaction as `applyMigrations` runs them (a quit midway rolls the current one
 * back; the next start does it again), while the app shows a window saying so and the CLI and the
 * test host print a line. The services' own open then finds nothing left to apply.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { appliedMigration, HISTORY_FILE, historyProblem, migrationChecksum, openHistoryDatabase } from './database';
import { MIGRATIONS } from './migrations';
import type { Migration } from './migrations';

/** An existing history that opening would migrate: from the last migration it has to the newest. */
export interface HistoryUpgrade {
  from: number;
  to: number;
  pending: readonly Migration[];
}

/**
 * What opening the history in `dataDir` would apply, or null when there is nothing to say: a new
 * history (created in milliseconds), a current one, or one that cannot be opened or checked — the
 * services' own open reports that with its usual words. Never creates or changes anything.
 */
export function plannedUpgrade(dataDir: string, migrations: readonly Migration[] = MIGRATIONS): HistoryUpgrade | null {
  const file = path.join(dataDir, HISTORY_FILE);
  if (!existsSync(file)) return null;
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const from = appliedMigration(db, migrations);
    const pending = migrations.filter((m) => m.id > from);
    return from === 0 || pending.length === 0 ? null : { from, to: pending.at(-1)!.id, pending };
  } catch {
    return null;
  } finally {
    db?.close();
  }
}

/** One line for the CLI and the test host; the app's window says the same. */
export function upgradeMessage(upgrade: HistoryUpgrade): string {
  return `Upgrading the history store from version ${upgrade.from} to ${upgrade.to} (once after an update; a large fleet's history can take a minute). The repositories are not touched.`;
}

export interface UpgradeOptions {
  migrations?: readonly Migration[];
  /** Called before the upgrade starts, only when there is one. */
  onStart?: (upgrade: HistoryUpgrade) => void;
  /** Told when the worker could not run and the migrations ran on this thread instead. */
  warn?: (message: string) => void;
  /** The module the worker loads to open the file (tests name a missing one to take the fallback). */
  driver?: string;
}

/**
 * The driver's path as the worker can load it: a packaged app keeps better-sqlite3 unpacked beside its
 * archive (build/electron-builder.yml), and the worker is given that copy and its addon by path, so it
 * needs neither the archive nor the `bindings` lookup (a plain path outside an archive is returned as is).
 */
export function outsideAsar(file: string): string {
  const inside = `${path.sep}app.asar${path.sep}`;
  return file.includes(inside) ? file.replace(inside, `${path.sep}app.asar.unpacked${path.sep}`) : file;
}

/** How the worker ended: `started` once it had the history open (before that, nothing was tried). */
type Outcome = { ok: true } | { ok: false; started: boolean; message: string; code?: string };

/**
 * Applies the history's pending migrations off this thread; resolves when they are committed (at
 * once when there are none). Fails with the error opening the history would give. Should the worker
 * not start (a module it cannot load), the migrations run here instead: slower to show, never lost.
 */
export async function upgradeHistory(dataDir: string, options: UpgradeOptions = {}): Promise<HistoryUpgrade | null> {
  const migrations = options.migrations ?? MIGRATIONS;
  const upgrade = plannedUpgrade(dataDir, migrations);
  if (!upgrade) return null;
  options.onStart?.(upgrade);
  const driver = options.driver ?? outsideAsar(createRequire(import.meta.url).resolve('better-sqlite3'));
  const addon = path.join(path.dirname(driver), '..', 'build', 'Release', 'better_sqlite3.node');
  const steps = upgrade.pending.map((m) => ({ id: m.id, name: m.name, sql: m.sql, checksum: migrationChecksum(m) }));
  const outcome = await new Promise<Outcome>((resolve) => {
    const worker = new Worker(UPGRADE_WORKER, { eval: true, workerData: { driver, addon: existsSync(addon) ? addon : null, file: path.join(dataDir, HISTORY_FILE), steps } });
    let started = false;
    let settled = false;
    const settle = (result: Outcome) => {
      if (settled) return;
      settled = true;
      resolve(result);
    };
    worker.on('message', (message: { started?: true; done?: true; error?: { message: string; code?: string } }) => {
      if (message.started) started = true;
      else if (message.done) settle({ ok: true });
      else if (message.error) settle({ ok: false, started, ...message.error });
    });
    worker.on('error', (error) => settle({ ok: false, started, message: error.message }));
    worker.on('exit', (code) => settle({ ok: false, started, message: `the upgrade stopped (worker exit ${code})` }));
  });
  if (outcome.ok) return upgrade;
  if (!outcome.started) {
    // The worker could not open the driver: the same migrations on this thread, as before there was a worker.
    options.warn?.(`history upgrade: no worker (${outcome.message}); upgrading on the main thread`);
    openHistoryDatabase(dataDir, migrations).close();
    return upgrade;
  }
  throw historyProblem(Object.assign(new Error(outcome.message), outcome.code ? { code: outcome.code } : {}), dataDir);
}

/**
 * The worker: applies each step in its own transaction and records it as `applyMigrations` does,
 * after checking that no other process upgraded the history meanwhile (the checks themselves ran on
 * the caller's thread; the services' open checks the checksums again).
 */
const UPGRADE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
// A driver or file that cannot be opened throws here, before "started": the caller then upgrades on its own thread.
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true, ...(workerData.addon ? { nativeBinding: workerData.addon } : {}) });
parentPort.postMessage({ started: true });
try {
  db.pragma('foreign_keys = ON');
  // Another process upgrading the same history holds the write lock for as long as its migration runs: wait for
  // it (then its steps are found done), not the services' 5 s after which "database is locked" failed the start.
  db.pragma('busy_timeout = 600000');
  const latest = () => db.prepare('SELECT coalesce(max(id), 0) AS v FROM schema_migrations').get().v;
  const record = db.prepare('INSERT INTO schema_migrations (id, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
  for (const step of workerData.steps) {
    db.transaction(() => {
      // Another process (the CLI, the scheduler) may have applied it since the plan: then it is done.
      if (latest() >= step.id) return;
      db.exec(step.sql);
      record.run(step.id, step.name, step.checksum, new Date().toISOString());
    }).immediate();
  }
  db.close();
  parentPort.postMessage({ done: true });
} catch (error) {
  try { db.close(); } catch {}
  parentPort.postMessage({ error: { message: String(error && error.message || error), code: error && error.code } });
}
`;
