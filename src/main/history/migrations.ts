/**
 * Ordered schema migrations of the history store. Append only: an applied migration must never
 * change (its checksum is stored and verified on every open). To change the schema, add one.
 */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

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
];
