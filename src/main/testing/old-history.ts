import { openHistoryDatabase } from '../history/database';
import { MIGRATIONS } from '../history/migrations';

const BEFORE_GOOD_RUNS = MIGRATIONS.filter((m) => m.id < 18);

/**
 * A history as the release before migration 18 left it: `devices` devices with two sources each and
 * `runs` finished backups of each (every tenth one missing a source), one a minute.
 */
export function oldHistory(dir: string, devices: number, runs: number): void {
  const db = openHistoryDatabase(dir, BEFORE_GOOD_RUNS);
  const sources = JSON.stringify([{ name: 'db', kind: 'postgres', database: 'app' }, { name: 'config', kind: 'files', paths: ['/etc/app'] }]);
  db.exec(`
    WITH RECURSIVE d(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < ${devices})
    INSERT INTO devices (id, name, profile, created_at, updated_at)
      SELECT 'dev-' || n, 'rvm-' || n, json_object('name', 'rvm-' || n, 'host', '127.0.0.1', 'port', 22, 'user', 'jetson', 'sources', json('${sources}')), '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z' FROM d;
    WITH RECURSIVE r(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM r WHERE n < ${devices * runs - 1})
    INSERT INTO jobs (id, kind, title, device_id, status, phases, phase, started_at, finished_at, result)
      SELECT 'job-' || n, 'backup', 'Back up', 'dev-' || (n % ${devices} + 1), 'succeeded', '[]', 'commit',
             strftime('%Y-%m-%dT%H:%M:%fZ', '2026-02-01', '+' || (n / ${devices}) || ' minutes'),
             strftime('%Y-%m-%dT%H:%M:%fZ', '2026-02-01', '+' || (n / ${devices}) || ' minutes', '+20 seconds'),
             CASE WHEN n % 10 = 0 THEN '{"snapshots":[{"source":"db"}]}' ELSE '{"snapshots":[{"source":"db"},{"source":"config"}]}' END
      FROM r;`);
  db.close();
}

