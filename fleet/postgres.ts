/**
 * A real PostgreSQL cluster per device: Debian's server binaries, its own data dir under the device
 * root, listening only on a unix socket in `<root>/run/postgresql`, run as the device account. One
 * template cluster per fleet carries the schema and ~200k rows; devices get a copy of its (cleanly
 * stopped) data dir, which is much faster than initdb plus loading per device.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { run, waitFor } from './exec';
import type { ResourceLog } from './registry';
import type { Account } from './accounts';

export const PG_PORT = 5432;

/** The newest /usr/lib/postgresql/<version>/bin, or an error naming the package to install. */
export function pgBin(): { dir: string; version: string } {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'postgres'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: apt-get install postgresql');
  return { dir: path.join(base, versions[0], 'bin'), version: versions[0] };
}

export interface Cluster {
  dataDir: string;
  socketDir: string;
  logFile: string;
  pid: number;
  stop(): Promise<void>;
}

export async function initdb(dataDir: string, account: Account): Promise<void> {
  const { dir } = pgBin();
  await run(path.join(dir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync', '--no-instructions'], {
    uid: account.uid,
    gid: account.gid,
    env: { PATH: process.env.PATH, HOME: account.home, LANG: 'C.UTF-8' },
    timeoutMs: 60_000,
  });
}

/** Starts `postgres` as the account, in its own process group, and waits until it accepts connections. */
export async function startCluster(options: { dataDir: string; socketDir: string; logFile: string; account: Account; registry: ResourceLog; what: string; settings?: Record<string, string> }): Promise<Cluster> {
  const { dir } = pgBin();
  const log = openSync(options.logFile, 'a');
  const child = spawn(
    path.join(dir, 'postgres'),
    ['-D', options.dataDir, '-k', options.socketDir, '-p', String(PG_PORT), '-c', 'listen_addresses=', '-c', 'shared_buffers=16MB', '-c', 'max_connections=20', '-c', 'max_wal_size=256MB', '-c', 'log_min_messages=warning', ...Object.entries(options.settings ?? {}).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
    { uid: options.account.uid, gid: options.account.gid, detached: true, stdio: ['ignore', log, log], env: { PATH: process.env.PATH, HOME: options.account.home, LANG: 'C.UTF-8' } },
  );
  closeSync(log);
  const pid = child.pid!;
  options.registry.addPid(pid, options.what, 'SIGINT');
  let exited: number | null | undefined;
  const exitedPromise = new Promise<void>((resolve) => child.on('exit', (code) => ((exited = code), resolve())));
  child.unref();
  await waitFor(
    `${options.what} to accept connections`,
    async () => {
      if (exited !== undefined) throw new Error(`postgres exited with ${exited}`);
      const r = await run(path.join(dir, 'pg_isready'), ['-q', '-h', options.socketDir, '-p', String(PG_PORT)], { allowFail: true, timeoutMs: 5_000 });
      return r.code === 0;
    },
    { timeoutMs: 30_000, intervalMs: 50, logFile: options.logFile },
  );
  return {
    dataDir: options.dataDir,
    socketDir: options.socketDir,
    logFile: options.logFile,
    pid,
    async stop() {
      if (exited === undefined) {
        process.kill(pid, 'SIGINT'); // fast shutdown: clean, with a checkpoint
        await Promise.race([exitedPromise, new Promise((r) => setTimeout(r, 15_000))]);
        if (exited === undefined) {
          process.kill(-pid, 'SIGKILL');
          await exitedPromise;
        }
      }
      options.registry.remove((r) => r.kind === 'pid' && r.pid === pid);
    },
  };
}

/** Runs SQL through psql over the cluster's socket (as root, trust auth) and returns its unaligned output. */
export async function psql(socketDir: string, database: string, sql: string, role = 'postgres'): Promise<string> {
  const { dir } = pgBin();
  const r = await run(path.join(dir, 'psql'), ['-h', socketDir, '-p', String(PG_PORT), '-U', role, '-d', database, '-v', 'ON_ERROR_STOP=1', '-AtqX', '-f', '-'], { input: sql, timeoutMs: 120_000 });
  return r.stdout.trim();
}

/** The app's schema and ~200k rows, generated inside PostgreSQL (generate_series, seeded random). */
export function templateSql(app: string): string {
  return `
CREATE ROLE ${app} LOGIN;
CREATE DATABASE ${app} OWNER ${app};
\\connect ${app}
SET ROLE ${app};
BEGIN;
SELECT setseed(0.4242);
CREATE TABLE machines (id serial PRIMARY KEY, serial text UNIQUE NOT NULL, name text NOT NULL, site text NOT NULL, installed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE materials (id smallint PRIMARY KEY, code text UNIQUE NOT NULL, deposit_cents integer NOT NULL);
CREATE TABLE members (id bigserial PRIMARY KEY, card_uid text UNIQUE NOT NULL, email text, created_at timestamptz NOT NULL, balance_cents integer NOT NULL DEFAULT 0);
CREATE TABLE transactions (id bigserial PRIMARY KEY, machine_id integer NOT NULL, member_id bigint, started_at timestamptz NOT NULL, ended_at timestamptz, total_cents integer NOT NULL DEFAULT 0, status text NOT NULL CHECK (status IN ('open','done','voided')));
CREATE TABLE deposits (id bigserial PRIMARY KEY, transaction_id bigint NOT NULL, material_id smallint NOT NULL, barcode text NOT NULL, weight_g numeric(7,2) NOT NULL, confidence real NOT NULL, accepted boolean NOT NULL, scanned_at timestamptz NOT NULL);
CREATE TABLE events (id bigserial PRIMARY KEY, machine_id integer NOT NULL, kind text NOT NULL, payload jsonb NOT NULL, at timestamptz NOT NULL);
INSERT INTO machines (serial, name, site, installed_at) VALUES ('1421000template', 'template', 'Depot', '2024-03-01');
INSERT INTO materials VALUES (1,'PET',25),(2,'HDPE',25),(3,'ALU',25),(4,'GLASS',15),(5,'REJECT',0);
INSERT INTO members (card_uid, email, created_at, balance_cents)
  SELECT md5('card' || i), 'member' || i || '@example.invalid', timestamptz '2024-01-01' + i * interval '37 minutes', (random() * 5000)::int FROM generate_series(1, 10000) i;
INSERT INTO transactions (machine_id, member_id, started_at, ended_at, total_cents, status)
  SELECT 1, CASE WHEN random() < 0.7 THEN 1 + (random() * 9999)::bigint END, t, t + interval '45 seconds', (random() * 300)::int, CASE WHEN random() < 0.02 THEN 'voided' ELSE 'done' END
  FROM (SELECT timestamptz '2024-03-01' + i * interval '11 minutes' AS t FROM generate_series(1, 40000) i) s;
INSERT INTO deposits (transaction_id, material_id, barcode, weight_g, confidence, accepted, scanned_at)
  SELECT 1 + (i % 40000), 1 + (random() * 4)::int % 5, lpad(((random() * 1e12)::bigint)::text, 13, '0'), (10 + random() * 500)::numeric(7,2), 0.5 + random() / 2, random() > 0.08,
         timestamptz '2024-03-01' + i * interval '3 minutes'
  FROM generate_series(1, 140000) i;
INSERT INTO events (machine_id, kind, payload, at)
  SELECT 1, (ARRAY['boot','door_open','bin_full','jam','sync'])[1 + (random() * 4)::int], jsonb_build_object('seq', i, 'temp_c', 30 + (random() * 40)::int), timestamptz '2024-03-01' + i * interval '17 minutes'
  FROM generate_series(1, 10000) i;
-- Constraints after the load: one validating scan instead of a trigger per row.
ALTER TABLE transactions ADD FOREIGN KEY (machine_id) REFERENCES machines, ADD FOREIGN KEY (member_id) REFERENCES members;
ALTER TABLE deposits ADD FOREIGN KEY (transaction_id) REFERENCES transactions ON DELETE CASCADE, ADD FOREIGN KEY (material_id) REFERENCES materials;
ALTER TABLE events ADD FOREIGN KEY (machine_id) REFERENCES machines;
CREATE INDEX deposits_tx ON deposits (transaction_id);
CREATE INDEX deposits_scanned ON deposits (scanned_at);
CREATE INDEX transactions_started ON transactions (started_at);
CREATE VIEW daily_totals AS SELECT date_trunc('day', started_at) AS day, count(*) AS transactions, sum(total_cents) AS cents FROM transactions WHERE status = 'done' GROUP BY 1;
CREATE FUNCTION member_balance(bigint) RETURNS integer LANGUAGE sql STABLE AS 'SELECT balance_cents FROM members WHERE id = $1';
COMMIT;
RESET ROLE;
ANALYZE;
CHECKPOINT;
`;
}

/** Per-device data: the device's own machine row, its own role, and a few hundred rows of its own. */
export function deviceSql(app: string, device: { name: string; serial: string; site: string; osUser: string }): string {
  const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return `
CREATE ROLE "${device.osUser}" SUPERUSER LOGIN;
\\connect ${app}
SET ROLE ${app};
UPDATE machines SET serial = ${q(device.serial)}, name = ${q(device.name)}, site = ${q(device.site)} WHERE id = 1;
INSERT INTO transactions (machine_id, member_id, started_at, ended_at, total_cents, status)
  SELECT 1, NULL, now() - i * interval '5 minutes', now() - i * interval '5 minutes' + interval '30 seconds', (hashtext(${q(device.name)} || i) & 255), 'done' FROM generate_series(1, 300) i;
INSERT INTO events (machine_id, kind, payload, at) VALUES (1, 'boot', jsonb_build_object('device', ${q(device.name)}), now());
`;
}
