/**
 * A machine-wide cache of the template PostgreSQL data dir. Building it (initdb + ~200k rows) is the
 * slowest part of starting a fleet and gives the same bytes every time for one PostgreSQL version and
 * schema, so the first fleet on a machine stores it in /var/tmp/jvf-cache and later fleets copy it.
 * Entries are immutable once in place (built aside, then renamed), owned by root, and removed when
 * unused for a few days. JVF_NO_CACHE=1 turns the cache off.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { run } from './exec';

export const CACHE_ROOT = '/var/tmp/jvf-cache';
const MAX_IDLE_MS = 3 * 24 * 3600_000;

export function cacheEnabled(option: boolean | undefined): boolean {
  return (option ?? true) && !process.env.JVF_NO_CACHE;
}

/** Where the entry for this PostgreSQL version and template SQL lives (whether or not it exists yet). */
export function cacheEntry(pgVersion: string, templateSql: string, settings: Record<string, string>): string {
  const key = createHash('sha256').update(JSON.stringify([pgVersion, templateSql, settings])).digest('hex').slice(0, 16);
  return path.join(CACHE_ROOT, `pg${pgVersion}-${key}`);
}

/** The cached data dir if it is complete (a cleanly stopped cluster), touched as used; else null. */
export function lookup(entry: string): string | null {
  if (!existsSync(path.join(entry, 'PG_VERSION')) || existsSync(path.join(entry, 'postmaster.pid'))) return null;
  const now = new Date();
  try {
    utimesSync(entry, now, now);
  } catch {}
  return entry;
}

/** Stores a stopped data dir as `entry` (atomically; a concurrent store of the same entry wins harmlessly). */
export async function store(entry: string, dataDir: string): Promise<void> {
  mkdirSync(CACHE_ROOT, { recursive: true, mode: 0o755 });
  const aside = `${entry}.tmp-${process.pid}-${Date.now()}`;
  try {
    await run('cp', ['-a', dataDir, aside]);
    await run('chown', ['-R', 'root:root', aside]); // the account that built it is about to be deleted
    renameSync(aside, entry);
  } catch {
    rmSync(aside, { recursive: true, force: true });
  }
  prune(entry);
}

/** Removes entries (and abandoned half-built ones) unused for a few days. */
function prune(keep: string): void {
  for (const name of existsSync(CACHE_ROOT) ? readdirSync(CACHE_ROOT) : []) {
    const entry = path.join(CACHE_ROOT, name);
    if (entry === keep) continue;
    try {
      if (Date.now() - statSync(entry).mtimeMs > MAX_IDLE_MS) rmSync(entry, { recursive: true, force: true });
    } catch {}
  }
}
