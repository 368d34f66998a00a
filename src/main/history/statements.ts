/**
 * Every SQL statement the console runs, named and prepared once. Services call these by name;
 * nothing else in the code base writes SQL, and the renderer never sends any.
 */
import type { Database } from 'better-sqlite3';

export interface SettingRow {
  key: string;
  value: string;
  updated_at: string;
}

export interface JobRow {
  id: string;
  kind: string;
  title: string;
  device_id: string | null;
  status: string;
  phases: string;
  phase: string;
  started_at: string;
  finished_at: string | null;
  bytes_done: number;
  items_done: number;
  error: string | null;
  result: string | null;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
}

export interface DeviceRow {
  id: string;
  name: string;
  profile: string;
  host_key: string | null;
  facts: string | null;
  facts_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface AlertRow {
  id: number;
  rule: string;
  device_id: string | null;
  subject: string;
  severity: string;
  message: string;
  raised_at: string;
  last_seen_at: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
  resolved_at: string | null;
}

export interface OutboxRow {
  id: number;
  url: string;
  payload: string;
  created_at: string;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  delivered_at: string | null;
}

export interface DrillRow {
  id: string;
  job_id: string | null;
  device_id: string;
  device_name: string;
  run_id: string | null;
  started_at: string;
  finished_at: string | null;
  result: string;
  total_ms: number | null;
  error: string | null;
  cleanup: string | null;
}

export interface DrillSourceRow {
  drill_id: string;
  position: number;
  source: string;
  kind: string;
  snapshot_id: string;
  result: string;
  duration_ms: number;
  bytes: number;
  files: number;
  detail: string | null;
  error: string | null;
}

export function prepareStatements(db: Database) {
  return {
    metaGet: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    metaSet: db.prepare<[string, string]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),

    secretUpsert: db.prepare<[string, string, Buffer, string]>(
      'INSERT INTO secrets (ref, scheme, blob, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET scheme = excluded.scheme, blob = excluded.blob, updated_at = excluded.updated_at',
    ),
    secretGet: db.prepare<[string], { scheme: string; blob: Buffer }>('SELECT scheme, blob FROM secrets WHERE ref = ?'),
    secretDelete: db.prepare<[string]>('DELETE FROM secrets WHERE ref = ?'),
    secretDeletePrefix: db.prepare<[string]>("DELETE FROM secrets WHERE ref LIKE ? ESCAPE '\\'"),

    deviceInsert: db.prepare<[string, string, string, string | null, string, string]>(
      'INSERT INTO devices (id, name, profile, host_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    deviceUpdateProfile: db.prepare<[string, string, string | null, string, string]>(
      'UPDATE devices SET name = ?, profile = ?, host_key = ?, updated_at = ? WHERE id = ?',
    ),
    deviceSetFacts: db.prepare<[string, string, string]>('UPDATE devices SET facts = ?, facts_at = ? WHERE id = ?'),
    deviceByName: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE name = ?'),
    deviceById: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
    devicesAll: db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY name'),
    deviceDelete: db.prepare<[string]>('DELETE FROM devices WHERE id = ?'),

    settingsAll: db.prepare<[], SettingRow>('SELECT key, value, updated_at FROM settings'),
    settingUpsert: db.prepare<[string, string, string]>(
      'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    ),
    settingsClear: db.prepare('DELETE FROM settings'),

    jobInsert: db.prepare<[string, string, string, string | null, string, string, string]>(
      "INSERT INTO jobs (id, kind, title, device_id, status, phases, phase, started_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
    ),
    jobProgress: db.prepare<[string, number, number, string]>('UPDATE jobs SET phase = ?, bytes_done = ?, items_done = ? WHERE id = ?'),
    jobFinish: db.prepare<[string, string, string, number, number, string | null, string | null, string]>(
      'UPDATE jobs SET status = ?, phase = ?, finished_at = ?, bytes_done = ?, items_done = ?, error = ?, result = ? WHERE id = ?',
    ),
    jobGet: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    jobsRecent: db.prepare<[number], JobRow>('SELECT * FROM jobs ORDER BY started_at DESC, rowid DESC LIMIT ?'),
    jobsRecentByStatus: db.prepare<[string, number], JobRow>(
      'SELECT * FROM jobs WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?',
    ),
    /** Jobs a previous process left running: it died, so they did not finish. */
    jobsInterrupt: db.prepare<[string, string]>(
      "UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE status = 'running'",
    ),

    /** Per device: the last successful backup and the last attempt (for the fleet overview). */
    backupsByDevice: db.prepare<[], { device_id: string; last_success: string | null; last_attempt: string; last_status: string }>(
      `SELECT device_id,
              max(CASE WHEN status = 'succeeded' THEN finished_at END) AS last_success,
              max(started_at) AS last_attempt,
              (SELECT j2.status FROM jobs j2 WHERE j2.device_id = jobs.device_id AND j2.kind = 'backup' ORDER BY j2.started_at DESC LIMIT 1) AS last_status
       FROM jobs WHERE kind = 'backup' AND device_id IS NOT NULL GROUP BY device_id`,
    ),

    drillInsert: db.prepare<[string, string | null, string, string, string]>(
      "INSERT INTO drills (id, job_id, device_id, device_name, started_at, result) VALUES (?, ?, ?, ?, ?, 'running')",
    ),
    drillFinish: db.prepare<[string | null, string, string, number | null, string | null, string | null, string]>(
      'UPDATE drills SET run_id = ?, finished_at = ?, result = ?, total_ms = ?, error = ?, cleanup = ? WHERE id = ?',
    ),
    drillSourceInsert: db.prepare<[string, number, string, string, string, string, number, number, number, string | null, string | null]>(
      'INSERT INTO drill_sources (drill_id, position, source, kind, snapshot_id, result, duration_ms, bytes, files, detail, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    drillGet: db.prepare<[string], DrillRow>('SELECT * FROM drills WHERE id = ?'),
    drillsRecent: db.prepare<[number], DrillRow>('SELECT * FROM drills ORDER BY started_at DESC, rowid DESC LIMIT ?'),
    drillsByDevice: db.prepare<[string, number], DrillRow>('SELECT * FROM drills WHERE device_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?'),
    /** The device's newest finished drill that measured a recovery time (passed, or passed but for skipped sources). */
    drillLastMeasured: db.prepare<[string], DrillRow>(
      "SELECT * FROM drills WHERE device_id = ? AND result IN ('passed','partial') ORDER BY started_at DESC, rowid DESC LIMIT 1",
    ),
    drillSources: db.prepare<[string], DrillSourceRow>('SELECT * FROM drill_sources WHERE drill_id = ? ORDER BY position'),
    /** Drills a previous process left running: it died, so they did not finish. */
    drillsInterrupt: db.prepare<[string, string]>("UPDATE drills SET result = 'failed', finished_at = ?, error = ? WHERE result = 'running'"),

    auditInsert: db.prepare<[string, string, string, string | null, string | null]>(
      'INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)',
    ),
    auditRecent: db.prepare<[number], AuditRow>('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?'),

    /** Backup jobs of one device, newest first (monitoring: failures in a row, usual duration). */
    backupsOfDevice: db.prepare<[string, number], JobRow>("SELECT * FROM jobs WHERE kind = 'backup' AND device_id = ? AND status != 'running' ORDER BY started_at DESC, rowid DESC LIMIT ?"),
    /** The newest successful job of a kind; with the flag, only one whose result says it read data. */
    lastSucceededOfKind: db.prepare<[string, number], JobRow>(
      "SELECT * FROM jobs WHERE kind = ? AND status = 'succeeded' AND (? = 0 OR json_extract(result, '$.readData') = 1) ORDER BY started_at DESC, rowid DESC LIMIT 1",
    ),
    /** The newest finished job of a kind (repository checks for the verification rule). */
    lastJobOfKind: db.prepare<[string], JobRow>("SELECT * FROM jobs WHERE kind = ? AND status != 'running' ORDER BY started_at DESC, rowid DESC LIMIT 1"),

    alertsOpen: db.prepare<[], AlertRow>('SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY raised_at DESC, id DESC'),
    alertsRecent: db.prepare<[number], AlertRow>('SELECT * FROM alerts ORDER BY raised_at DESC, id DESC LIMIT ?'),
    alertGet: db.prepare<[number], AlertRow>('SELECT * FROM alerts WHERE id = ?'),
    alertInsert: db.prepare<[string, string | null, string, string, string, string, string]>(
      'INSERT INTO alerts (rule, device_id, subject, severity, message, raised_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    alertSeen: db.prepare<[string, string, string, number]>('UPDATE alerts SET severity = ?, message = ?, last_seen_at = ? WHERE id = ?'),
    alertResolve: db.prepare<[string, number]>('UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL'),
    alertAcknowledge: db.prepare<[string, string, number]>('UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL'),
    /** Open alerts per device (the fleet overview's column). */
    alertsOpenByDevice: db.prepare<[], { device_id: string; open: number }>('SELECT device_id, count(*) AS open FROM alerts WHERE resolved_at IS NULL AND device_id IS NOT NULL GROUP BY device_id'),

    outboxInsert: db.prepare<[string, string, string, string]>('INSERT INTO webhook_outbox (url, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?)'),
    /** The oldest undelivered events, in the order they were written (delivered in that order). */
    outboxHead: db.prepare<[number], OutboxRow>('SELECT * FROM webhook_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?'),
    outboxDelivered: db.prepare<[string, number, number]>('UPDATE webhook_outbox SET delivered_at = ?, attempts = ? WHERE id = ?'),
    outboxRetry: db.prepare<[number, string, string, number]>('UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?'),
    outboxPending: db.prepare<[], { pending: number; next: string | null }>(
      'SELECT count(*) AS pending, (SELECT next_attempt_at FROM webhook_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1) AS next FROM webhook_outbox WHERE delivered_at IS NULL',
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
