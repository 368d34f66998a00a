/**
 * Opens the history store: a better-sqlite3 database in WAL mode under the data directory, with
 * checksummed, ordered migrations. The history is a cache and a log; the repository stays the
 * source of truth, so a history that cannot be opened is reported, never silently replaced.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statfsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { AppError } from '../../shared/errors';
import { MIGRATIONS } from './migrations';
import type { Migration } from './migrations';

export const HISTORY_FILE = 'history.sqlite3';

export function migrationChecksum(migration: Migration): string {
  return createHash('sha256').update(`${migration.id}\n${migration.name}\n${migration.sql.trim()}`).digest('hex');
}

/**
 * Checks the migrations a history has applied against `migrations` (order, checksums, none unknown or
 * skipped) and returns the id of the last one applied (0 for a new history). Throws the AppError that
 * names the problem.
 */
export function appliedMigration(db: SqliteDatabase, migrations: readonly Migration[] = MIGRATIONS): number {
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.id <= migrations[i - 1]!.id) throw new Error(`Migrations out of order at id ${migrations[i]!.id}`);
  }
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
  if (!table) return 0;
  const applied = db.prepare('SELECT id, name, checksum FROM schema_migrations ORDER BY id').all() as {
    id: number;
    name: string;
    checksum: string;
  }[];
  const known = new Map(migrations.map((m) => [m.id, m]));
  for (const row of applied) {
    const migration = known.get(row.id);
    if (!migration) {
      throw new AppError('CONFLICT', `The history store was written by a newer Jetvault (migration ${row.id} "${row.name}" is unknown); update Jetvault`);
    }
    if (migrationChecksum(migration) !== row.checksum) {
      throw new AppError('INTERNAL', `History migration ${row.id} "${row.name}" changed after it was applied (checksum mismatch)`);
    }
  }
  const latest = applied.at(-1)?.id ?? 0;
  for (const migration of migrations) {
    if (migration.id <= latest && !applied.some((row) => row.id === migration.id)) {
      throw new AppError('INTERNAL', `History migration ${migration.id} "${migration.name}" was skipped; migrations must be appended in order`);
    }
  }
  return latest;
}

export function applyMigrations(db: SqliteDatabase, migrations: readonly Migration[] = MIGRATIONS): number {
  const latest = appliedMigration(db, migrations);
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`);
  const record = db.prepare('INSERT INTO schema_migrations (id, name, checksum, applied_at) VALUES (?, ?, ?, ?)');
  for (const migration of migrations) {
    if (migration.id <= latest) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      record.run(migration.id, migration.name, migrationChecksum(migration), new Date().toISOString());
    })();
  }
  return migrations.at(-1)?.id ?? 0;
}

export function openHistoryDatabase(dataDir: string, migrations: readonly Migration[] = MIGRATIONS): SqliteDatabase {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new AppError('UNAVAILABLE', `The data folder ${dataDir} cannot be used: ${folderProblem(error)}`);
  }
  const file = path.join(dataDir, HISTORY_FILE);
  let db: SqliteDatabase;
  try {
    keepPrivate(file);
    db = new Database(file);
  } catch (error) {
    throw new AppError('UNAVAILABLE', `Cannot open the history store at ${file}: ${(error as Error).message}`);
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    applyMigrations(db, migrations);
    return db;
  } catch (error) {
    db.close();
    throw historyProblem(error, dataDir);
  }
}

/** What a failure to open or upgrade the history store says (an AppError passes as it is). */
export function historyProblem(error: unknown, dataDir: string): AppError {
  if (error instanceof AppError) return error;
  // SQLite says "disk I/O error" when WAL mode cannot grow its shared-memory file on a full disk:
  // on a laptop whose disk filled up, that read as a failing disk.
  if (/^SQLITE_(FULL|IOERR)/.test((error as { code?: string }).code ?? '') && diskFull(dataDir)) {
    return new AppError('UNAVAILABLE', `The disk holding the data folder (${dataDir}) is full: the history store cannot be opened. Free some space, then try again.`);
  }
  return new AppError('UNAVAILABLE', `The history store at ${path.join(dataDir, HISTORY_FILE)} is not usable: ${(error as Error).message}`);
}

/**
 * The history holds the fleet's inventory, its audit log and the webhook URL (which can carry a
 * token) in plain text: its file is the owner's alone (0600) whatever the umask and wherever the data
 * folder is (JETVAULT_HOME may name a folder made by hand, 0755). SQLite gives the -wal and -shm files
 * the database file's mode; a history an earlier version left readable to all is made private too.
 */
function keepPrivate(file: string): void {
  // Best effort: a file that cannot be made or changed here is reported by SQLite's own open.
  const attempt = (step: () => void) => {
    try {
      step();
    } catch {
      /* reported by the open that follows */
    }
  };
  attempt(() => closeSync(openSync(file, 'a', 0o600)));
  for (const name of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(name)) attempt(() => chmodSync(name, 0o600));
}

/** Less than 1 MiB left for this user on the disk holding `dir`. */
function diskFull(dir: string): boolean {
  try {
    const { bavail, bsize } = statfsSync(dir);
    return bavail * bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

/** Why the data folder could not be made, in words (mkdir's own message names the syscall, not the problem). */
function folderProblem(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'EEXIST' || code === 'ENOTDIR') return 'a file (not a folder) is in its way';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'its file system is read-only';
  if (code === 'ENOSPC') return 'the disk is full';
  return message;
}
