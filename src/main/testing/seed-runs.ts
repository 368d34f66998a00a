/** Test helper: a finished backup run in a history store, as the job manager records one. */
import type { Database } from 'better-sqlite3';
import { GOOD_RUNS_BACKFILL } from '../history/migrations';
import { prepareSeedStatements } from '../history/statements';

export interface SeededRun {
  status?: string;
  durationMs?: number;
  bytes?: number;
  added?: number;
  error?: { code: string; message: string };
  /** The sources it made snapshots of (a succeeded run): `db` unless told. */
  sources?: string[];
}

export function seedBackupRun(db: Database, deviceId: string, startedAt: number, opts: SeededRun = {}): void {
  const status = opts.status ?? 'succeeded';
  const error = opts.error ?? (status === 'failed' ? { code: 'REMOTE_COMMAND_FAILED', message: 'pg_dump exited with 1' } : undefined);
  prepareSeedStatements(db).job.run(
    `job_t${startedAt.toString(36)}${Math.random().toString(36).slice(2, 8)}`,
    'backup',
    'Back up',
    deviceId,
    status,
    '["connect"]',
    'connect',
    new Date(startedAt).toISOString(),
    new Date(startedAt + (opts.durationMs ?? 30_000)).toISOString(),
    opts.bytes ?? 1000,
    1,
    error ? JSON.stringify(error) : null,
    status === 'succeeded' ? JSON.stringify({ bytesAdded: opts.added ?? 100, snapshots: (opts.sources ?? ['db']).map((source) => ({ source })) }) : null,
  );
}

/**
 * Rebuilds `good_runs` from the jobs table, for a test that deleted jobs or moved their times by hand
 * (the triggers follow jobs as the app writes them: inserted, and finished). Runs are judged by the
 * devices' sources now, as migration 18's back-fill does.
 */
export function rebuildGoodRuns(db: Database): void {
  db.transaction(() => db.exec(`DELETE FROM good_runs;\n${GOOD_RUNS_BACKFILL}`))();
}
