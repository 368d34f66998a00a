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

/** A running job and the process that runs it (null: written before jobs had owners). */
export interface RunningJobRow {
  id: string;
  kind: string;
  title: string;
  phase: string | null;
  device_id: string | null;
  started_at: string;
  owner_pid: number | null;
  heartbeat_at: string | null;
  heartbeat_awake: string | null;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  detail: string | null;
  result: 'ok' | 'failed' | 'cancelled';
  /** Why it failed (or was cancelled); null when it succeeded. */
  message: string | null;
}

export interface DeviceRow {
  id: string;
  name: string;
  profile: string;
  host_key: string | null;
  facts: string | null;
  facts_at: string | null;
  /** JSON DiskUsage[] the newest read saw (a discovery, or a backup's first command), and when. */
  disks: string | null;
  disks_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface AlertRow {
  id: number;
  rule: string;
  device_id: string | null;
  /** Set when the device was removed: its name then (device_id no longer finds it). */
  device_name: string | null;
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

export interface PendingRestoreRow {
  restore_id: string;
  device_id: string;
  device_name: string;
  snapshot_id: string;
  finished_at: string;
  plans: string;
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
  /** JSON array of what the drill stopped first (leftovers.ts); null: nothing. */
  leftovers: string | null;
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

/** One device with everything the fleet overview needs, from one statement (indexed lookups per device). */
/** A device's own columns (DeviceRow), and what its jobs, drills and probes say of it. */
export interface OverviewDbRow extends Pick<DeviceRow, 'id' | 'name' | 'profile' | 'host_key' | 'facts' | 'facts_at' | 'disks'> {
  /** The scheduler's last probe of the device's address (null: none yet) and whether it answered. */
  probe_at: string | null;
  probe_reachable: number | null;
  last_good_at: string | null;
  last_attempt_at: string | null;
  last_attempt_status: string | null;
  last_attempt_error: string | null;
  last_job_at: string | null;
  last_job_status: string | null;
  last_job_error: string | null;
  last_verify_at: string | null;
  last_verify_status: string | null;
  last_drill_at: string | null;
  last_drill_result: string | null;
  measured_ms: number | null;
  measured_result: 'passed' | 'partial' | null;
}

export interface RepositoryRow {
  id: string;
  name: string;
  location: string;
  offsite: number;
  copy_when_reachable: number;
  added_at: string;
  tested_at: string | null;
  test: string | null;
}

export interface HoldingRow {
  repository_id: string;
  device: string;
  latest_run: string;
  latest_at: string;
  runs: number;
  checked_at: string;
}

export interface RunBucketRow {
  t: number;
  runs: number;
  succeeded: number;
  failed: number;
  avg_duration_ms: number | null;
  max_duration_ms: number | null;
  bytes_transferred: number;
  bytes_added: number;
}

export interface SampleBucketRow {
  t: number;
  metric: string;
  value: number;
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
    secretRefsPrefix: db.prepare<[string], { ref: string }>("SELECT ref FROM secrets WHERE ref LIKE ? ESCAPE '\\' ORDER BY ref"),

    deviceInsert: db.prepare<[string, string, string, string | null, string, string]>(
      'INSERT INTO devices (id, name, profile, host_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    deviceUpdateProfile: db.prepare<[string, string, string | null, string, string]>(
      'UPDATE devices SET name = ?, profile = ?, host_key = ?, updated_at = ? WHERE id = ?',
    ),
    deviceSetFacts: db.prepare<[string, string, string]>('UPDATE devices SET facts = ?, facts_at = ? WHERE id = ?'),
    deviceSetDisks: db.prepare<[string, string, string]>('UPDATE devices SET disks = ?, disks_at = ? WHERE id = ?'),
    /** The scheduler's probe of a device's address: when, and whether it answered (1) or not (0). */
    deviceSetProbe: db.prepare<[string, number, string]>('UPDATE devices SET probe_at = ?, probe_reachable = ? WHERE id = ?'),
    deviceByName: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE name = ?'),
    deviceById: db.prepare<[string], DeviceRow>('SELECT * FROM devices WHERE id = ?'),
    devicesAll: db.prepare<[], DeviceRow>('SELECT * FROM devices ORDER BY name'),
    /** The newest job row, and the jobs since one that have ended (services/external-changes.ts). */
    jobsLastRowid: db.prepare<[], { last: number | null }>('SELECT max(rowid) AS last FROM jobs'),
    jobsEndedSince: db.prepare<[number, number], { id: string }>("SELECT id FROM jobs WHERE rowid > ? AND status <> 'running' AND (owner_pid IS NULL OR owner_pid <> ?) ORDER BY rowid"),
    /** What a console shows of each device changes with these (services/external-changes.ts). */
    deviceStamps: db.prepare<[], { name: string; stamp: string }>("SELECT name, id || ' ' || updated_at || ' ' || coalesce(host_key, '') || ' ' || coalesce(facts_at, '') || ' ' || coalesce(disks_at, '') AS stamp FROM devices"),
    deviceDelete: db.prepare<[string]>('DELETE FROM devices WHERE id = ?'),

    settingsAll: db.prepare<[], SettingRow>('SELECT key, value, updated_at FROM settings'),
    settingUpsert: db.prepare<[string, string, string]>(
      'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
    ),
    settingsClear: db.prepare('DELETE FROM settings'),

    jobInsert: db.prepare<[string, string, string, string | null, string, string, string, number, string, string | null]>(
      "INSERT INTO jobs (id, kind, title, device_id, status, phases, phase, started_at, owner_pid, heartbeat_at, heartbeat_awake) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
    ),
    /** A process's mark on a job it still runs (every HEARTBEAT_MS). */
    jobHeartbeat: db.prepare<[string, string | null, string]>("UPDATE jobs SET heartbeat_at = ?, heartbeat_awake = ? WHERE id = ? AND status = 'running'"),
    /** Every job some process runs now, or ran when it died. */
    jobsRunning: db.prepare<[], RunningJobRow>("SELECT id, kind, title, phase, device_id, started_at, owner_pid, heartbeat_at, heartbeat_awake FROM jobs WHERE status = 'running'"),
    jobProgress: db.prepare<[string, number, number, string]>('UPDATE jobs SET phase = ?, bytes_done = ?, items_done = ? WHERE id = ?'),
    jobFinish: db.prepare<[string, string, string, number, number, string | null, string | null, string]>(
      'UPDATE jobs SET status = ?, phase = ?, finished_at = ?, bytes_done = ?, items_done = ?, error = ?, result = ? WHERE id = ?',
    ),
    jobGet: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    jobsRecent: db.prepare<[number], JobRow>('SELECT * FROM jobs ORDER BY started_at DESC, rowid DESC LIMIT ?'),
    jobsRecentByStatus: db.prepare<[string, number], JobRow>(
      'SELECT * FROM jobs WHERE status = ? ORDER BY started_at DESC, rowid DESC LIMIT ?',
    ),
    /** One device's jobs of one kind, newest first (index jobs_device_kind_started). */
    jobsRecentOfDevice: db.prepare<[string, string, number], JobRow>(
      'SELECT * FROM jobs WHERE device_id = ? AND kind = ? ORDER BY started_at DESC, rowid DESC LIMIT ?',
    ),
    /** A job whose process died: it did not finish. */
    jobInterrupt: db.prepare<[string, string, string]>("UPDATE jobs SET status = 'failed', finished_at = ?, error = ? WHERE id = ? AND status = 'running'"),

    /** Per device: the last successful backup and the last attempt. Index seeks per device (a GROUP BY over every run took 4 s at 1.4 million runs). */
    backupsByDevice: db.prepare<[], { device_id: string; last_success: string | null; last_attempt: string; last_status: string }>(
      `SELECT d.id AS device_id,
              (SELECT max(g.finished_at) FROM jobs g WHERE g.device_id = d.id AND g.kind = 'backup' AND g.status = 'succeeded') AS last_success,
              la.started_at AS last_attempt, la.status AS last_status
       FROM devices d
       JOIN jobs la ON la.rowid = (SELECT rowid FROM jobs WHERE device_id = d.id AND kind = 'backup' ORDER BY started_at DESC LIMIT 1)`,
    ),

    drillInsert: db.prepare<[string, string | null, string, string, string]>(
      "INSERT INTO drills (id, job_id, device_id, device_name, started_at, result) VALUES (?, ?, ?, ?, ?, 'running')",
    ),
    drillFinish: db.prepare<[string | null, string, string, number | null, string | null, string | null, string | null, string]>(
      'UPDATE drills SET run_id = ?, finished_at = ?, result = ?, total_ms = ?, error = ?, cleanup = ?, leftovers = ? WHERE id = ?',
    ),
    drillSourceInsert: db.prepare<[string, number, string, string, string, string, number, number, number, string | null, string | null]>(
      'INSERT INTO drill_sources (drill_id, position, source, kind, snapshot_id, result, duration_ms, bytes, files, detail, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    drillGet: db.prepare<[string], DrillRow>('SELECT * FROM drills WHERE id = ?'),
    drillsRecent: db.prepare<[number], DrillRow>('SELECT * FROM drills ORDER BY started_at DESC, rowid DESC LIMIT ?'),
    drillsByDevice: db.prepare<[string, number], DrillRow>('SELECT * FROM drills WHERE device_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?'),
    /** The drills this console recorded of a device: their scratch on the device is its own to sweep. */
    drillIdsOfDevice: db.prepare<[string], { id: string }>('SELECT id FROM drills WHERE device_id = ?'),
    /** The device's newest finished drill that measured a recovery time (passed, or passed but for skipped sources). */
    drillLastMeasured: db.prepare<[string], DrillRow>(
      "SELECT * FROM drills WHERE device_id = ? AND result IN ('passed','partial') ORDER BY started_at DESC, rowid DESC LIMIT 1",
    ),
    drillSources: db.prepare<[string], DrillSourceRow>('SELECT * FROM drill_sources WHERE drill_id = ? ORDER BY position'),
    /** Drills whose job no process runs any more (the job manager has marked those of dead processes). */
    drillsInterrupt: db.prepare<[string, string]>(
      "UPDATE drills SET result = 'failed', finished_at = ?, error = ? WHERE result = 'running' AND (job_id IS NULL OR job_id NOT IN (SELECT id FROM jobs WHERE status = 'running'))",
    ),

    /** Restores waiting for keep / rollback (their plans as JSON), kept across console restarts. */
    pendingRestoreUpsert: db.prepare<[string, string, string, string, string, string]>(
      `INSERT INTO pending_restores (restore_id, device_id, device_name, snapshot_id, finished_at, plans) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (restore_id) DO UPDATE SET device_id = excluded.device_id, device_name = excluded.device_name, snapshot_id = excluded.snapshot_id,
         finished_at = excluded.finished_at, plans = excluded.plans`,
    ),
    pendingRestoreDelete: db.prepare<[string]>('DELETE FROM pending_restores WHERE restore_id = ?'),
    pendingRestoresAll: db.prepare<[], PendingRestoreRow>('SELECT * FROM pending_restores ORDER BY finished_at, restore_id'),

    /** Folders a restore into another folder staged beside, looked at by every recovery of the device until empty of Jetvault's. */
    restorePlaceAdd: db.prepare<[string, string, string]>('INSERT OR IGNORE INTO restore_places (device_id, dir, since) VALUES (?, ?, ?)'),
    restorePlacesOf: db.prepare<[string], { dir: string }>('SELECT dir FROM restore_places WHERE device_id = ? ORDER BY dir'),
    restorePlaceDelete: db.prepare<[string, string]>('DELETE FROM restore_places WHERE device_id = ? AND dir = ?'),

    /**
     * The fleet overview: every device with its newest complete good run, last backup attempt, last job
     * (for reachability), last verification and last drill. Each lookup is one index seek
     * (jobs_device_kind_status, jobs_device_kind_started, jobs_device, drills_device). The parameter is
     * the latest finish time that counts (`runCutoff(now)`): a run stamped later, by a clock that was
     * ahead, is not a good backup, or the device would look protected until the clock got there again.
     */
    overview: db.prepare<[string], OverviewDbRow>(
      `WITH cutoff AS (SELECT at, CAST(strftime('%s', at) AS INTEGER) AS s FROM (SELECT ? AS at))
       SELECT d.id, d.name, d.profile, d.host_key, d.facts, d.facts_at, d.disks, d.probe_at, d.probe_reachable,
              -- A good backup is a run that covered every source the device had when it finished (as the
              -- alerts and the RPO charts count it; the scheduler's clock is lastCompleteRuns): a source
              -- backed up alone on its own schedule does not reset the device's age, and a source added
              -- since does not undo the runs before it (the device had been "never backed up" at once,
              -- and alerted so). good_runs keeps those runs by the second; the job's own stamp is the
              -- first one in that second.
              (SELECT g.finished_at FROM jobs g WHERE g.device_id = d.id AND g.kind = 'backup' AND g.status = 'succeeded' AND g.finished_at <= c.at
                 AND g.finished_at >= strftime('%Y-%m-%dT%H:%M:%S', (SELECT max(r.finished_s) FROM good_runs r WHERE r.device_id = d.id AND r.finished_s <= c.s), 'unixepoch')
               ORDER BY g.finished_at LIMIT 1) AS last_good_at,
              la.started_at AS last_attempt_at, la.status AS last_attempt_status, la.error AS last_attempt_error,
              lj.finished_at AS last_job_at, lj.status AS last_job_status, lj.error AS last_job_error,
              lv.finished_at AS last_verify_at, lv.status AS last_verify_status,
              dr.finished_at AS last_drill_at, dr.result AS last_drill_result,
              md.total_ms AS measured_ms, md.result AS measured_result
       FROM devices d, cutoff c
       LEFT JOIN jobs la ON la.rowid = (SELECT rowid FROM jobs WHERE device_id = d.id AND kind = 'backup' ORDER BY started_at DESC LIMIT 1)
       LEFT JOIN jobs lj ON lj.rowid = (SELECT rowid FROM jobs WHERE device_id = d.id AND status <> 'running' ORDER BY started_at DESC LIMIT 1)
       -- The last verification that finished checking (one under way or cancelled verified nothing yet).
       LEFT JOIN jobs lv ON lv.rowid = (SELECT rowid FROM jobs WHERE device_id = d.id AND kind = 'verify' AND status IN ('succeeded','failed') ORDER BY started_at DESC LIMIT 1)
       LEFT JOIN drills dr ON dr.rowid = (SELECT rowid FROM drills WHERE device_id = d.id AND result NOT IN ('running','cancelled') ORDER BY started_at DESC LIMIT 1)
       -- The newest drill that measured a recovery time (a partial one left sources out of it).
       LEFT JOIN drills md ON md.rowid = (SELECT rowid FROM drills WHERE device_id = d.id AND result IN ('passed','partial') ORDER BY started_at DESC LIMIT 1)
       ORDER BY d.name`,
    ),
    /**
     * Each device's newest run that covered every source it has now: the scheduler's clock, so that a
     * source added to a device is backed up at once rather than an RPO later (the overview's good run,
     * judged by the sources when it finished, still stands then). Parameter as for `overview`.
     */
    lastCompleteRuns: db.prepare<[string], { id: string; last_complete_at: string | null }>(
      `SELECT d.id,
              (SELECT g.finished_at FROM jobs g WHERE g.device_id = d.id AND g.kind = 'backup' AND g.status = 'succeeded' AND g.finished_at <= ?
                 AND NOT EXISTS (SELECT 1 FROM json_each(d.profile, '$.sources') s
                                 WHERE json_extract(s.value, '$.name') NOT IN (SELECT json_extract(x.value, '$.source') FROM json_each(g.result, '$.snapshots') x))
               ORDER BY g.finished_at DESC LIMIT 1) AS last_complete_at
       FROM devices d`,
    ),
    /** The newest repository-wide verification that finished checking (counts for every device; a cancelled one checked nothing whole). */
    lastRepositoryVerify: db.prepare<[], { finished_at: string | null; status: string }>(
      "SELECT finished_at, status FROM jobs WHERE kind = 'verify' AND device_id IS NULL AND status IN ('succeeded','failed') ORDER BY started_s DESC LIMIT 1",
    ),

    /** Backup runs per time bucket [from, to) in seconds since the epoch (buckets under a day); all devices, or one (`device`). */
    dashboardRuns: db.prepare<{ from: number; to: number; bucket: number; device: string | null }, RunBucketRow>(
      `SELECT (started_s / CAST(:bucket AS INTEGER)) * CAST(:bucket AS INTEGER) AS t,
              count(*) AS runs,
              sum(status = 'succeeded') AS succeeded,
              sum(status = 'failed') AS failed,
              avg(CASE WHEN status = 'succeeded' THEN duration_ms END) AS avg_duration_ms,
              max(CASE WHEN status = 'succeeded' THEN duration_ms END) AS max_duration_ms,
              coalesce(sum(bytes_done), 0) AS bytes_transferred,
              coalesce(sum(CASE WHEN status = 'succeeded' THEN bytes_added END), 0) AS bytes_added
       FROM jobs
       WHERE kind = 'backup' AND started_s >= :from AND started_s < :to AND status <> 'running'
         AND (:device IS NULL OR device_id = :device)
       GROUP BY t ORDER BY t`,
    ),
    /** The same from the daily roll-up (buckets of whole days): a year of 500 devices is 182,500 rows. */
    dashboardRunsDaily: db.prepare<{ from: number; to: number; bucket: number; device: string | null }, RunBucketRow>(
      `SELECT (day_s / CAST(:bucket AS INTEGER)) * CAST(:bucket AS INTEGER) AS t,
              sum(runs) AS runs, sum(succeeded) AS succeeded, sum(failed) AS failed,
              CASE WHEN sum(succeeded) > 0 THEN sum(duration_ms_sum) * 1.0 / sum(succeeded) END AS avg_duration_ms,
              max(CASE WHEN succeeded > 0 THEN duration_ms_max END) AS max_duration_ms,
              sum(bytes_transferred) AS bytes_transferred, sum(bytes_added) AS bytes_added
       FROM backup_days
       WHERE day_s >= :from AND day_s < :to AND (:device IS NULL OR device_id = :device)
       GROUP BY t ORDER BY t`,
    ),
    /**
     * RPO breaches that meet [from, to): complete good runs (`good_runs`, migration 18) of the devices
     * ({id, rpo} minutes in `devices` JSON) whose gap since the previous one ran past the RPO — the
     * device was outside it over [finished - gap + rpo, finished). Runs stamped after `now` (a clock
     * that was ahead) do not count. One range read per device over its breaching runs (`good_runs_gap`).
     */
    dashboardRpoBreaches: db.prepare<{ from: number; to: number; now: number; devices: string }, { device_id: string; finished_s: number; gap_s: number; rpo_s: number }>(
      `WITH dev(id, rpo_s) AS (SELECT json_extract(value, '$.id'), json_extract(value, '$.rpo') * 60 FROM json_each(:devices))
       SELECT g.device_id, g.finished_s, g.gap_s, dev.rpo_s
       FROM dev JOIN good_runs g INDEXED BY good_runs_gap ON g.device_id = dev.id AND g.gap_s > dev.rpo_s
       WHERE g.finished_s > :from AND g.finished_s <= :now AND g.finished_s - g.gap_s + dev.rpo_s < :to`,
    ),
    /** Each device's newest complete good run at `now` (seconds; null for none): its RPO runs out at that + rpo. */
    dashboardLastGood: db.prepare<{ now: number; devices: string }, { id: string; last_s: number | null }>(
      `SELECT json_extract(value, '$.id') AS id,
              (SELECT max(finished_s) FROM good_runs WHERE device_id = json_extract(value, '$.id') AND finished_s <= :now) AS last_s
       FROM json_each(:devices)`,
    ),
    /** Laptop storage: the last sample of each metric per bucket. */
    dashboardLaptopSamples: db.prepare<{ from: number; to: number; bucket: number }, SampleBucketRow>(
      `SELECT t, metric, value FROM (
         SELECT (at_s / CAST(:bucket AS INTEGER)) * CAST(:bucket AS INTEGER) AS t, metric, value,
                row_number() OVER (PARTITION BY metric, at_s / CAST(:bucket AS INTEGER) ORDER BY at_s DESC) AS n
         FROM metric_samples WHERE metric IN ('laptop_free','repository_bytes') AND at_s >= :from AND at_s < :to
       ) WHERE n = 1 ORDER BY t`,
    ),
    /** One device's disks: the last sample of each metric per bucket. */
    dashboardDeviceDisk: db.prepare<{ from: number; to: number; bucket: number; device: string }, SampleBucketRow>(
      `SELECT t, metric, value FROM (
         SELECT (at_s / CAST(:bucket AS INTEGER)) * CAST(:bucket AS INTEGER) AS t, metric, value,
                row_number() OVER (PARTITION BY metric, at_s / CAST(:bucket AS INTEGER) ORDER BY at_s DESC) AS n
         FROM metric_samples WHERE device_id = :device AND metric LIKE 'device_disk_%' AND at_s >= :from AND at_s < :to
       ) WHERE n = 1 ORDER BY t`,
    ),
    /**
     * Fleet disks per bucket: the mean over devices of each one's mean used share (per mille), and the
     * fullest sample. Per device first: a device is sampled at each of its backups, so one backed up
     * every 10 minutes has 36 times the samples of one backed up every 6 hours, and a mean over the
     * samples was mostly its disk.
     */
    dashboardFleetDisks: db.prepare<{ from: number; to: number; bucket: number }, { t: number; avg: number; max: number }>(
      `SELECT t, avg(used) AS avg, max(fullest) AS max FROM (
         SELECT (at_s / CAST(:bucket AS INTEGER)) * CAST(:bucket AS INTEGER) AS t, device_id, avg(value) AS used, max(value) AS fullest
         FROM metric_samples WHERE metric = 'device_disk_permille' AND at_s >= :from AND at_s < :to
         GROUP BY t, device_id)
       GROUP BY t ORDER BY t`,
    ),
    /** One device's drills in [from, to) (ISO times). */
    dashboardDeviceDrills: db.prepare<{ from: string; to: string; device: string }, { finished_s: number; result: string; total_ms: number | null }>(
      `SELECT CAST(strftime('%s', finished_at) AS INTEGER) AS finished_s, result, total_ms FROM drills
       WHERE device_id = :device AND finished_at >= :from AND finished_at < :to AND result NOT IN ('running','cancelled')
       ORDER BY finished_at`,
    ),
    /**
     * All drills per bucket: how many, how many failed, mean and slowest measured recovery, and how
     * many measured more than their own device's RTO objective (its `rtoMinutes`, else `defaultRto`).
     */
    dashboardFleetDrills: db.prepare<{ from: string; to: string; bucket: number; defaultRto: number }, { t: number; count: number; failed: number; over: number; avg_ms: number | null; max_ms: number | null }>(
      `SELECT (CAST(strftime('%s', r.finished_at) AS INTEGER) / CAST(:bucket AS INTEGER)) * CAST(:bucket AS INTEGER) AS t,
              count(*) AS count, sum(r.result = 'failed') AS failed,
              coalesce(sum(r.total_ms > coalesce(json_extract(d.profile, '$.rtoMinutes'), :defaultRto) * 60000), 0) AS over,
              avg(r.total_ms) AS avg_ms, max(r.total_ms) AS max_ms
       FROM drills r LEFT JOIN devices d ON d.id = r.device_id
       WHERE r.finished_at >= :from AND r.finished_at < :to AND r.result NOT IN ('running','cancelled')
       GROUP BY t ORDER BY t`,
    ),
    sampleInsert: db.prepare<[string, number, string, string | null, number]>('INSERT INTO metric_samples (at, at_s, metric, device_id, value) VALUES (?, ?, ?, ?, ?)'),

    /** A device's newest backup runs and drills, for its report. */
    deviceRuns: db.prepare<[string, number], JobRow & { duration_ms: number | null; bytes_added: number | null }>(
      "SELECT *, duration_ms, bytes_added FROM jobs WHERE device_id = ? AND kind = 'backup' ORDER BY started_at DESC LIMIT ?",
    ),

    /** When a device's source was last backed up (its newest succeeded run with a snapshot of it), for the report. */
    lastSourceBackup: db.prepare<[string, string], { finished_at: string }>(
      `SELECT g.finished_at FROM jobs g WHERE g.device_id = ? AND g.kind = 'backup' AND g.status = 'succeeded' AND g.finished_at IS NOT NULL
         AND EXISTS (SELECT 1 FROM json_each(g.result, '$.snapshots') x WHERE json_extract(x.value, '$.source') = ?)
       ORDER BY g.finished_at DESC LIMIT 1`,
    ),

    auditInsert: db.prepare<[string, string, string, string | null, string | null, string, string | null]>(
      'INSERT INTO audit_log (at, actor, action, target, detail, result, message) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    /** The audit log filtered (every filter optional), newest first. */
    auditFind: db.prepare<{ from: string | null; to: string | null; actor: string | null; action: string | null; target: string | null; result: string | null; text: string | null; limit: number }, AuditRow>(
      `SELECT * FROM audit_log
       WHERE (:from IS NULL OR at >= :from) AND (:to IS NULL OR at < :to)
         AND (:actor IS NULL OR actor = :actor) AND (:action IS NULL OR action = :action) AND (:target IS NULL OR target = :target)
         AND (:result IS NULL OR result = :result)
         AND (:text IS NULL OR instr(lower(action || ' ' || coalesce(target, '') || ' ' || coalesce(detail, '') || ' ' || coalesce(message, '')), lower(:text)) > 0)
       ORDER BY at DESC, id DESC LIMIT :limit`,
    ),
    /** How many entries `auditFind`'s filters match, whatever its limit. */
    auditCount: db.prepare<{ from: string | null; to: string | null; actor: string | null; action: string | null; target: string | null; result: string | null; text: string | null }, { n: number }>(
      `SELECT count(*) AS n FROM audit_log
       WHERE (:from IS NULL OR at >= :from) AND (:to IS NULL OR at < :to)
         AND (:actor IS NULL OR actor = :actor) AND (:action IS NULL OR action = :action) AND (:target IS NULL OR target = :target)
         AND (:result IS NULL OR result = :result)
         AND (:text IS NULL OR instr(lower(action || ' ' || coalesce(target, '') || ' ' || coalesce(detail, '') || ' ' || coalesce(message, '')), lower(:text)) > 0)`,
    ),
    auditActions: db.prepare<[], { action: string }>('SELECT DISTINCT action FROM audit_log ORDER BY action'),
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
    /** An open alert grown worse (warning → critical): its acknowledgement was for the milder one. */
    alertEscalate: db.prepare<[string, string, string, number]>('UPDATE alerts SET severity = ?, message = ?, last_seen_at = ?, acknowledged_at = NULL, acknowledged_by = NULL WHERE id = ?'),
    alertResolve: db.prepare<[string, number]>('UPDATE alerts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL'),
    alertAcknowledge: db.prepare<[string, string, number]>('UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ? AND acknowledged_at IS NULL'),
    /** Open alerts per device (the fleet overview's column). */
    alertsOpenByDevice: db.prepare<[], { device_id: string; open: number }>('SELECT device_id, count(*) AS open FROM alerts WHERE resolved_at IS NULL AND device_id IS NOT NULL GROUP BY device_id'),

    repositoriesAll: db.prepare<[], RepositoryRow>('SELECT * FROM repositories ORDER BY added_at, name'),
    repositoryGet: db.prepare<[string], RepositoryRow>('SELECT * FROM repositories WHERE id = ?'),
    repositoryByLocation: db.prepare<[string], RepositoryRow>('SELECT * FROM repositories WHERE location = ?'),
    repositoryInsert: db.prepare<[string, string, string, number, string]>('INSERT INTO repositories (id, name, location, offsite, added_at) VALUES (?, ?, ?, ?, ?)'),
    repositorySetFlags: db.prepare<[number, number, string]>('UPDATE repositories SET offsite = ?, copy_when_reachable = ? WHERE id = ?'),
    repositorySetTest: db.prepare<[string, string, string]>('UPDATE repositories SET tested_at = ?, test = ? WHERE id = ?'),
    repositoryDelete: db.prepare<[string]>('DELETE FROM repositories WHERE id = ?'),
    holdingsAll: db.prepare<[], HoldingRow>('SELECT * FROM repository_holdings'),
    /** A finished backup's run is the repository's newest run of the device (whatever its id). */
    holdingAddNewest: db.prepare<[string, string, string, string, string]>(
      `INSERT INTO repository_holdings (repository_id, device, latest_run, latest_at, runs, checked_at) VALUES (?, ?, ?, ?, 1, ?)
       ON CONFLICT (repository_id, device) DO UPDATE SET runs = runs + (excluded.latest_run <> latest_run),
         latest_run = excluded.latest_run, latest_at = excluded.latest_at, checked_at = excluded.checked_at`,
    ),
    holdingsOfRepository: db.prepare<[string], HoldingRow>('SELECT * FROM repository_holdings WHERE repository_id = ? ORDER BY device'),
    holdingsClear: db.prepare<[string]>('DELETE FROM repository_holdings WHERE repository_id = ?'),
    /**
     * Records a run a repository holds for a device: a listing writes each device once (after
     * clearing), a finished backup adds its run; an older run never replaces a newer one.
     */
    holdingUpsert: db.prepare<[string, string, string, string, number, string]>(
      `INSERT INTO repository_holdings (repository_id, device, latest_run, latest_at, runs, checked_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (repository_id, device) DO UPDATE SET
         runs = runs + (excluded.latest_run > latest_run),
         latest_run = max(latest_run, excluded.latest_run), latest_at = max(latest_at, excluded.latest_at),
         checked_at = excluded.checked_at`,
    ),

    outboxInsert: db.prepare<[string, string, string, string]>('INSERT INTO webhook_outbox (url, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?)'),
    /** The oldest undelivered events, in the order they were written (delivered in that order). */
    outboxHead: db.prepare<[number], OutboxRow>('SELECT * FROM webhook_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ?'),
    /** Rows that hold a plain webhook URL refer to the secret store instead (ref, url). */
    outboxProtectUrl: db.prepare<[string, string]>('UPDATE webhook_outbox SET url = ? WHERE url = ?'),
    outboxDelivered: db.prepare<[string, number, number]>('UPDATE webhook_outbox SET delivered_at = ?, attempts = ? WHERE id = ?'),
    outboxRetry: db.prepare<[number, string, string, number]>('UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?'),
    /** Takes an event for one delivery attempt (moves its next attempt on) unless another process took it first. */
    outboxClaim: db.prepare<[string, number, string]>('UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ? AND delivered_at IS NULL'),
    /** The webhook set to another URL: what waits goes to it (ref), from now on (now), counted afresh. */
    outboxReschedule: db.prepare<[string, string]>('UPDATE webhook_outbox SET url = ?, next_attempt_at = ?, attempts = 0, last_error = NULL WHERE delivered_at IS NULL'),
    /** The webhook turned off: what waited is not sent. */
    outboxDropUndelivered: db.prepare<[]>('DELETE FROM webhook_outbox WHERE delivered_at IS NULL'),
    outboxPurgeDelivered: db.prepare<[string]>('DELETE FROM webhook_outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?'),
    outboxPending: db.prepare<[], { pending: number; next: string | null; last_error: string | null }>(
      'SELECT count(*) AS pending, (SELECT next_attempt_at FROM webhook_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1) AS next, (SELECT last_error FROM webhook_outbox WHERE delivered_at IS NULL ORDER BY id LIMIT 1) AS last_error FROM webhook_outbox WHERE delivered_at IS NULL',
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

/**
 * Bulk inserts for seeding a store with a synthetic fleet and its history (tests and benchmarks
 * only; prepared on demand, never by the console).
 */
export function prepareSeedStatements(db: Database) {
  return {
    /** Facts without their disks, which go in their own column (as DeviceService.setFacts keeps them: factsColumn). */
    device: db.prepare<[string, string, string, string | null, string, string, string, string, string, string]>(
      'INSERT INTO devices (id, name, profile, host_key, facts, facts_at, created_at, updated_at, disks, disks_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    job: db.prepare<[string, string, string, string | null, string, string, string, string, string | null, number, number, string | null, string | null]>(
      'INSERT INTO jobs (id, kind, title, device_id, status, phases, phase, started_at, finished_at, bytes_done, items_done, error, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    drill: db.prepare<[string, string, string, string, string, string, number | null, string | null]>(
      "INSERT INTO drills (id, device_id, device_name, started_at, finished_at, result, total_ms, error, cleanup) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'done')",
    ),
    sample: db.prepare<[string, number, string, string | null, number]>('INSERT INTO metric_samples (at, at_s, metric, device_id, value) VALUES (?, ?, ?, ?, ?)'),
  };
}

