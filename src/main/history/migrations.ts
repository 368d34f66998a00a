/**
 * Ordered schema migrations of the history store. Append only: an applied migration must never
 * change (its checksum is stored and verified on every open). To change the schema, add one.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

/** Migration 18's triggers: a run that is a complete good backup (every source of its device). */
const GOOD_RUN = `NEW.kind = 'backup' AND NEW.device_id IS NOT NULL AND NEW.status = 'succeeded' AND NEW.finished_at IS NOT NULL
        AND NOT EXISTS (SELECT 1 FROM devices d, json_each(d.profile, '$.sources') s WHERE d.id = NEW.device_id
                        AND json_extract(s.value, '$.name') NOT IN (SELECT json_extract(x.value, '$.source') FROM json_each(NEW.result, '$.snapshots') x))`;

/** Migration 18's triggers: the run kept with its gap since the device's previous one; the next one's gap shortened. */
const GOOD_RUN_KEPT = `      BEGIN
        INSERT OR IGNORE INTO good_runs
          SELECT NEW.device_id, f, f - coalesce((SELECT max(finished_s) FROM good_runs WHERE device_id = NEW.device_id AND finished_s < f),
                                                 (SELECT CAST(strftime('%s', created_at) AS INTEGER) FROM devices WHERE id = NEW.device_id), f)
          FROM (SELECT CAST(strftime('%s', NEW.finished_at) AS INTEGER) AS f);
        -- A run that finished before one already counted (another process's, or a clock set back) shortens the next one's gap.
        UPDATE good_runs SET gap_s = finished_s - CAST(strftime('%s', NEW.finished_at) AS INTEGER)
          WHERE device_id = NEW.device_id
            AND finished_s = (SELECT min(finished_s) FROM good_runs WHERE device_id = NEW.device_id AND finished_s > CAST(strftime('%s', NEW.finished_at) AS INTEGER));
      END;`;

/**
 * Migration 18's back-fill of `good_runs` from the jobs table (exported for tests that write jobs by hand
 * — deleted, or moved to another time — and rebuild the table after; the app only inserts and finishes
 * jobs, which the triggers follow). Its text is part of migration 18's checksum: do not change it.
 */
export const GOOD_RUNS_BACKFILL = `      -- The back-fill: each device's source names once (indexed: unindexed, SQLite scanned them for
      -- every run), then one parse of each run's result. A year of 500 devices, 1.8 M runs: 14 s CPU,
      -- against 21 s checking each run against its device's profile as the triggers do.
      CREATE TEMP TABLE jv_want AS SELECT d.id AS device_id, json_extract(s.value, '$.name') AS name FROM devices d, json_each(d.profile, '$.sources') s;
      CREATE INDEX temp.jv_want_name ON jv_want (device_id, name);
      CREATE TEMP TABLE jv_wanted AS
        SELECT id AS device_id, (SELECT count(*) FROM jv_want w WHERE w.device_id = d.id) AS n, CAST(strftime('%s', created_at) AS INTEGER) AS created_s FROM devices d;
      CREATE UNIQUE INDEX temp.jv_wanted_id ON jv_wanted (device_id);
      INSERT OR IGNORE INTO good_runs
        SELECT device_id, f, f - coalesce(lag(f) OVER (PARTITION BY device_id ORDER BY f), created_s, f)
        FROM (SELECT DISTINCT j.device_id, CAST(strftime('%s', j.finished_at) AS INTEGER) AS f, c.created_s
              FROM jobs j JOIN jv_wanted c ON c.device_id = j.device_id
              WHERE j.kind = 'backup' AND j.status = 'succeeded' AND j.finished_at IS NOT NULL
                AND (c.n = 0 OR (SELECT count(DISTINCT w.name) FROM json_each(j.result, '$.snapshots') x
                                 JOIN jv_want w ON w.device_id = j.device_id AND w.name = json_extract(x.value, '$.source')) = c.n));
      DROP TABLE temp.jv_wanted;
      DROP TABLE temp.jv_want;`;

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'settings',
    sql: `
      CREATE TABLE settings (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,          -- JSON
        updated_at TEXT NOT NULL
      ) STRICT;`,
  },
  {
    id: 2,
    name: 'jobs',
    sql: `
      CREATE TABLE jobs (
        id          TEXT PRIMARY KEY,
        kind        TEXT NOT NULL,
        title       TEXT NOT NULL,
        device_id   TEXT,
        status      TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','cancelled')),
        phases      TEXT NOT NULL,         -- JSON array of phase names
        phase       TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        bytes_done  INTEGER NOT NULL DEFAULT 0,
        items_done  INTEGER NOT NULL DEFAULT 0,
        error       TEXT,                  -- JSON {code, message}
        result      TEXT                   -- JSON
      ) STRICT;
      CREATE INDEX jobs_started ON jobs (started_at DESC);
      CREATE INDEX jobs_device ON jobs (device_id, started_at DESC);`,
  },
  {
    id: 3,
    name: 'audit log',
    sql: `
      CREATE TABLE audit_log (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,             -- technician / transport that did it
        action  TEXT NOT NULL,
        target  TEXT,
        detail  TEXT                       -- JSON, never secrets
      ) STRICT;
      CREATE INDEX audit_at ON audit_log (at DESC);`,
  },
  {
    id: 4,
    name: 'devices and secrets',
    sql: `
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
      CREATE TABLE devices (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        profile     TEXT NOT NULL,         -- JSON DeviceProfile, never secrets
        host_key    TEXT,                  -- pinned SHA256 fingerprint
        facts       TEXT,                  -- JSON, last facts read over SSH
        facts_at    TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
      ) STRICT;
      CREATE TABLE secrets (
        ref         TEXT PRIMARY KEY,      -- e.g. device:<id>:password
        scheme      TEXT NOT NULL,         -- which cipher wrote it
        blob        BLOB NOT NULL,         -- ciphertext only
        updated_at  TEXT NOT NULL
      ) STRICT;`,
  },
  {
    id: 5,
    name: 'restore drills',
    sql: `
      CREATE TABLE drills (
        id          TEXT PRIMARY KEY,
        job_id      TEXT,
        device_id   TEXT NOT NULL,
        device_name TEXT NOT NULL,
        run_id      TEXT,                  -- the backup run that was restored
        started_at  TEXT NOT NULL,
        finished_at TEXT,
        result      TEXT NOT NULL CHECK (result IN ('running','passed','partial','failed','cancelled')),
        total_ms    INTEGER,               -- measured recovery time: connect to last source validated
        error       TEXT,
        cleanup     TEXT                   -- 'done', or why the scratch area could not be removed
      ) STRICT;
      CREATE INDEX drills_device ON drills (device_id, started_at DESC);
      CREATE TABLE drill_sources (
        drill_id    TEXT NOT NULL REFERENCES drills (id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        source      TEXT NOT NULL,
        kind        TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        result      TEXT NOT NULL CHECK (result IN ('passed','failed','skipped')),
        duration_ms INTEGER NOT NULL,      -- measured recovery time of this source
        bytes       INTEGER NOT NULL,
        files       INTEGER NOT NULL,
        detail      TEXT,
        error       TEXT,
        PRIMARY KEY (drill_id, position)
      ) STRICT;`,
  },
  {
    id: 7,
    name: 'alerts and webhook outbox',
    sql: `
      CREATE TABLE alerts (
        id              INTEGER PRIMARY KEY,
        rule            TEXT NOT NULL,
        device_id       TEXT,              -- NULL: the laptop / repository
        subject         TEXT NOT NULL,     -- what the condition is about (one open alert per rule + subject)
        severity        TEXT NOT NULL CHECK (severity IN ('critical','warning','info')),
        message         TEXT NOT NULL,
        raised_at       TEXT NOT NULL,
        last_seen_at    TEXT NOT NULL,
        acknowledged_at TEXT,
        acknowledged_by TEXT,
        resolved_at     TEXT
      ) STRICT;
      CREATE UNIQUE INDEX alerts_open ON alerts (rule, subject) WHERE resolved_at IS NULL;
      CREATE INDEX alerts_raised ON alerts (raised_at DESC);
      CREATE INDEX alerts_device ON alerts (device_id) WHERE resolved_at IS NULL;
      CREATE TABLE webhook_outbox (
        id              INTEGER PRIMARY KEY,
        url             TEXT NOT NULL,
        payload         TEXT NOT NULL,     -- JSON
        created_at      TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error      TEXT,
        delivered_at    TEXT
      ) STRICT;
      CREATE INDEX webhook_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;`,
  },
  {
    id: 8,
    name: 'fleet overview and dashboards',
    // Derived values of a run as virtual columns (seconds, duration, bytes added) for the dashboards;
    // indexes that make every overview lookup one seek per device (decision 301).
    sql: `
      ALTER TABLE jobs ADD COLUMN started_s INTEGER GENERATED ALWAYS AS (CAST(strftime('%s', started_at) AS INTEGER)) VIRTUAL;
      ALTER TABLE jobs ADD COLUMN duration_ms INTEGER GENERATED ALWAYS AS (CAST(round((julianday(finished_at) - julianday(started_at)) * 86400000) AS INTEGER)) VIRTUAL;
      ALTER TABLE jobs ADD COLUMN bytes_added INTEGER GENERATED ALWAYS AS (CAST(json_extract(result, '$.bytesAdded') AS INTEGER)) VIRTUAL;
      CREATE INDEX jobs_device_kind_status ON jobs (device_id, kind, status, finished_at);
      CREATE INDEX jobs_device_kind_started ON jobs (device_id, kind, started_at);
      CREATE INDEX jobs_kind_time ON jobs (kind, started_s);
      CREATE INDEX audit_target_at ON audit_log (target, at);
      -- Measurements that have no other home: laptop free space and device disks over time.
      CREATE TABLE metric_samples (
        at        TEXT NOT NULL,
        at_s      INTEGER NOT NULL,
        metric    TEXT NOT NULL CHECK (metric IN ('laptop_free','repository_bytes','device_disk_used','device_disk_permille')),
        device_id TEXT,
        value     INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX metric_samples_metric_time ON metric_samples (metric, at_s, value);
      CREATE INDEX metric_samples_device ON metric_samples (device_id, metric, at_s);
      -- Backup runs rolled up per device and UTC day as they finish: a year of 500 devices is
      -- 182,500 rows to chart instead of 1.4 million runs (decision 301).
      CREATE TABLE backup_days (
        day_s             INTEGER NOT NULL,
        device_id         TEXT NOT NULL,
        runs              INTEGER NOT NULL,
        succeeded         INTEGER NOT NULL,
        failed            INTEGER NOT NULL,
        duration_ms_sum   INTEGER NOT NULL,   -- of succeeded runs
        duration_ms_max   INTEGER,
        bytes_transferred INTEGER NOT NULL,
        bytes_added       INTEGER NOT NULL,
        PRIMARY KEY (day_s, device_id)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX backup_days_device ON backup_days (device_id, day_s);
      CREATE TRIGGER jobs_finished_backup_days AFTER UPDATE OF status ON jobs
      WHEN NEW.kind = 'backup' AND NEW.device_id IS NOT NULL AND OLD.status = 'running' AND NEW.status <> 'running'
      BEGIN
        INSERT INTO backup_days VALUES ((NEW.started_s / 86400) * 86400, NEW.device_id, 1, NEW.status = 'succeeded', NEW.status = 'failed',
          CASE WHEN NEW.status = 'succeeded' THEN coalesce(NEW.duration_ms, 0) ELSE 0 END, CASE WHEN NEW.status = 'succeeded' THEN NEW.duration_ms END,
          NEW.bytes_done, CASE WHEN NEW.status = 'succeeded' THEN coalesce(NEW.bytes_added, 0) ELSE 0 END)
        ON CONFLICT (day_s, device_id) DO UPDATE SET runs = runs + 1, succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed,
          duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum, duration_ms_max = max(coalesce(duration_ms_max, 0), coalesce(excluded.duration_ms_max, 0)),
          bytes_transferred = bytes_transferred + excluded.bytes_transferred, bytes_added = bytes_added + excluded.bytes_added;
      END;
      CREATE TRIGGER jobs_inserted_backup_days AFTER INSERT ON jobs
      WHEN NEW.kind = 'backup' AND NEW.device_id IS NOT NULL AND NEW.status <> 'running'
      BEGIN
        INSERT INTO backup_days VALUES ((NEW.started_s / 86400) * 86400, NEW.device_id, 1, NEW.status = 'succeeded', NEW.status = 'failed',
          CASE WHEN NEW.status = 'succeeded' THEN coalesce(NEW.duration_ms, 0) ELSE 0 END, CASE WHEN NEW.status = 'succeeded' THEN NEW.duration_ms END,
          NEW.bytes_done, CASE WHEN NEW.status = 'succeeded' THEN coalesce(NEW.bytes_added, 0) ELSE 0 END)
        ON CONFLICT (day_s, device_id) DO UPDATE SET runs = runs + 1, succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed,
          duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum, duration_ms_max = max(coalesce(duration_ms_max, 0), coalesce(excluded.duration_ms_max, 0)),
          bytes_transferred = bytes_transferred + excluded.bytes_transferred, bytes_added = bytes_added + excluded.bytes_added;
      END;
      INSERT INTO backup_days
        SELECT (started_s / 86400) * 86400, device_id, count(*), sum(status = 'succeeded'), sum(status = 'failed'),
               coalesce(sum(CASE WHEN status = 'succeeded' THEN duration_ms END), 0), max(CASE WHEN status = 'succeeded' THEN duration_ms END),
               sum(bytes_done), coalesce(sum(CASE WHEN status = 'succeeded' THEN bytes_added END), 0)
        FROM jobs WHERE kind = 'backup' AND device_id IS NOT NULL AND status <> 'running' GROUP BY 1, 2;
`,
  },
  {
    id: 9,
    name: 'audit results',
    // Who, when, what — and the result: ok, failed (with the message) or cancelled (decision 017).
    // Rows from before were written only when an operation succeeded, hence the default.
    sql: `
      ALTER TABLE audit_log ADD COLUMN result TEXT NOT NULL DEFAULT 'ok' CHECK (result IN ('ok','failed','cancelled'));
      ALTER TABLE audit_log ADD COLUMN message TEXT;
      CREATE INDEX audit_result_at ON audit_log (result, at);`,
  },
  {
    id: 10,
    name: 'pending restores',
    // Restores whose swap completed and that wait for the technician to keep or roll them back:
    // the plans (JSON) are what confirm and rollback need, so a console restart still offers both.
    sql: `
      CREATE TABLE pending_restores (
        restore_id  TEXT PRIMARY KEY,
        device_id   TEXT NOT NULL,
        device_name TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        plans       TEXT NOT NULL          -- JSON {files, databases, targets}
      ) STRICT;
      CREATE INDEX pending_restores_device ON pending_restores (device_id);`,
  },
  {
    id: 13,
    name: 'repositories and copies',
    // The console's repositories (primary = the one in use; secondaries hold copies) and, per
    // repository and device, the newest run it holds: read when a repository is tested or refreshed
    // and after each backup, so the fleet shows copies without opening remote repositories
    // (decision 017). Credentials live in the secret store, never here.
    sql: `
      CREATE TABLE repositories (
        id                  TEXT PRIMARY KEY,
        name                TEXT NOT NULL UNIQUE,
        location            TEXT NOT NULL UNIQUE,
        offsite             INTEGER NOT NULL DEFAULT 0 CHECK (offsite IN (0, 1)),
        copy_when_reachable INTEGER NOT NULL DEFAULT 0 CHECK (copy_when_reachable IN (0, 1)),
        added_at            TEXT NOT NULL,
        tested_at           TEXT,
        test                TEXT                 -- JSON: the last test's outcome
      ) STRICT;
      CREATE TABLE repository_holdings (
        repository_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
        device        TEXT NOT NULL,             -- device name as the snapshots record it
        latest_run    TEXT NOT NULL,             -- newest run id held (run ids sort by time)
        latest_at     TEXT NOT NULL,             -- that run's newest snapshot time
        runs          INTEGER NOT NULL,
        checked_at    TEXT NOT NULL,
        PRIMARY KEY (repository_id, device)
      ) STRICT, WITHOUT ROWID;`,
  },
  {
    id: 14,
    name: 'job owners',
    // The process that runs a job and when it last said so: the app, the scheduler and any CLI
    // command share one history, and a process starting up must tell a job another live process
    // runs from one a dead process left "running" (JobManager's orphan rule). The running jobs are
    // read on every heartbeat and job start: a partial index keeps that a seek at a million rows.
    sql: `
      ALTER TABLE jobs ADD COLUMN owner_pid INTEGER;
      ALTER TABLE jobs ADD COLUMN heartbeat_at TEXT;
      CREATE INDEX jobs_running ON jobs (device_id) WHERE status = 'running';`,
  },
  {
    id: 15,
    name: 'device probes',
    // The scheduler's last look at a device's address (TCP, before it starts a backup): a device it
    // finds silent starts no job, so without this the overview went on calling it reachable from
    // its last facts or job, however long it had been offline.
    sql: `
      ALTER TABLE devices ADD COLUMN probe_at TEXT;
      ALTER TABLE devices ADD COLUMN probe_reachable INTEGER;`,
  },
  {
    id: 16,
    name: 'alerts keep a removed device name',
    // An alert names its device through device_id; once the device is removed, its alerts in the
    // history (and the alert.resolved webhook sent as they clear) said device: null. The name is
    // kept on the alert when its device row goes.
    sql: `
      ALTER TABLE alerts ADD COLUMN device_name TEXT;
      CREATE TRIGGER alerts_keep_device_name AFTER DELETE ON devices
      BEGIN
        UPDATE alerts SET device_name = OLD.name WHERE device_id = OLD.id;
      END;`,
  },
  {
    id: 17,
    name: 'job heartbeats on the awake clock',
    // Each heartbeat also on a clock that stops while the machine sleeps ("<boot id> <ms awake>",
    // jobs/awake-clock.ts): a process started just after a laptop woke took another live process's
    // job, its heartbeat late by the hour asleep, for a dead process's.
    sql: `ALTER TABLE jobs ADD COLUMN heartbeat_awake TEXT;`,
  },
  {
    id: 18,
    name: 'complete good runs for RPO compliance over time',
    // Every complete good backup run (one that covered every source of its device, as the scheduler,
    // the overview and the RPO alert count it) as its finish time and the gap since the device's
    // previous one (or since the device was added). A device is outside its RPO for gap - RPO seconds
    // before each run whose gap exceeds it, and since its last run + RPO: the dashboards' compliance is
    // the share of device-time within RPO, exact between samples, from a few index reads (decision 301).
    sql: `
      CREATE TABLE good_runs (
        device_id  TEXT NOT NULL,
        finished_s INTEGER NOT NULL,
        gap_s      INTEGER NOT NULL,
        PRIMARY KEY (device_id, finished_s)
      ) STRICT, WITHOUT ROWID;
      -- The dashboards read only the runs whose gap ran past the RPO: few, whatever the history's length.
      CREATE INDEX good_runs_gap ON good_runs (device_id, gap_s);
      CREATE TRIGGER jobs_finished_good_runs AFTER UPDATE OF status ON jobs
      WHEN OLD.status <> 'succeeded' AND ${GOOD_RUN}
${GOOD_RUN_KEPT}
      CREATE TRIGGER jobs_inserted_good_runs AFTER INSERT ON jobs
      WHEN ${GOOD_RUN}
${GOOD_RUN_KEPT}
      CREATE TRIGGER devices_removed_good_runs AFTER DELETE ON devices
      BEGIN
        DELETE FROM good_runs WHERE device_id = OLD.id;
      END;
${GOOD_RUNS_BACKFILL}`,
  },
  {
    id: 19,
    name: 'restore places',
    // Folders on a device beside which a restore into another folder staged (not beside one of the
    // device's own sources, where recovery always looks): recovery — Look for interrupted restores,
    // the next restore — looks there too, until nothing of Jetvault's is left in them. A restore cut
    // off there had left its staged copy, and what it kept for the next restore, on the device for good.
    sql: `
      CREATE TABLE restore_places (
        device_id TEXT NOT NULL,
        dir       TEXT NOT NULL,
        since     TEXT NOT NULL,
        PRIMARY KEY (device_id, dir)
      ) STRICT, WITHOUT ROWID;
      CREATE TRIGGER devices_removed_restore_places AFTER DELETE ON devices
      BEGIN
        DELETE FROM restore_places WHERE device_id = OLD.id;
      END;`,
  },
  {
    id: 20,
    name: 'device disks',
    // The disks the newest read saw (a discovery's, or the first command of every backup), beside the
    // facts: a device imported from a profile and never discovered had none, so the fleet showed
    // "disk ?" and the low-disk alert never looked at it, though every backup read its disks.
    sql: `
      ALTER TABLE devices ADD COLUMN disks TEXT;
      ALTER TABLE devices ADD COLUMN disks_at TEXT;
      UPDATE devices SET disks = json_extract(facts, '$.disks'), disks_at = coalesce(json_extract(facts, '$.disksAt'), facts_at)
      WHERE facts IS NOT NULL AND json_valid(facts) AND json_type(facts, '$.disks') = 'array';`,
  },
  {
    id: 21,
    name: 'drill leftovers',
    // What a drill stopped first on the device, left running there by a backup or drill of this
    // console that a dead link cut off (JSON array of process names; null: nothing). A backup's run
    // records it in its result; a drill had nowhere to, so it was stopped without a word.
    sql: `ALTER TABLE drills ADD COLUMN leftovers TEXT;`,
  },
  {
    id: 22,
    name: 'disks kept once',
    // A device's disks had two copies: in the disks column (20) and in its facts JSON, which every
    // backup rewrote too ("disksAt") and bumped facts_at with. The column keeps them; the facts keep
    // what only a discovery reads. A facts row whose disks column is empty gives its disks first.
    sql: `
      UPDATE devices SET disks = json_extract(facts, '$.disks'), disks_at = coalesce(json_extract(facts, '$.disksAt'), facts_at)
      WHERE disks IS NULL AND facts IS NOT NULL AND json_valid(facts) AND json_type(facts, '$.disks') = 'array';
      UPDATE devices SET facts = json_remove(facts, '$.disks', '$.disksAt') WHERE facts IS NOT NULL AND json_valid(facts);`,
  },
];
