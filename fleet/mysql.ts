/**
 * A real MySQL-compatible server (Debian's MariaDB) for a device that runs one, started on demand:
 * most Jetson apps here use PostgreSQL or SQLite, so a fleet does not pay for it unless a test asks.
 * Its data dir lives under the device root, it listens only on a unix socket in `<root>/run/mysqld`,
 * runs as the device account (which logs in through unix_socket authentication, as on a stock
 * install), and holds a small realistic schema.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import type { Account } from './accounts';
import { run, waitFor } from './exec';
import type { ResourceLog } from './registry';

export interface MysqlServer {
  socket: string;
  database: string;
  dataDir: string;
  logFile: string;
  pid: number;
  /** Runs SQL as the device account and returns the tab-separated output (no column names). */
  query(sql: string): Promise<string>;
}

const SERVER = '/usr/sbin/mariadbd';
const INSTALL = '/usr/bin/mariadb-install-db';
const CLIENT = '/usr/bin/mariadb';

/** Why this machine cannot run one, or null. */
export function mysqlMissing(): string | null {
  for (const file of [SERVER, INSTALL, CLIENT]) if (!existsSync(file)) return `${file} is missing (apt-get install mariadb-server mariadb-client)`;
  return null;
}

export async function startMysql(options: { root: string; dir: string; account: Account; registry: ResourceLog; what: string; database: string; rows: number }): Promise<MysqlServer> {
  const missing = mysqlMissing();
  if (missing) throw new Error(missing);
  const { account } = options;
  const dataDir = path.join(options.dir, 'mysql');
  const runDir = path.join(options.root, 'run', 'mysqld');
  const socket = path.join(runDir, 'mysqld.sock');
  const logFile = path.join(options.dir, 'mysql.log');
  for (const d of [dataDir, runDir]) mkdirSync(d, { recursive: true });
  await run('chown', [`${account.uid}:${account.gid}`, dataDir, runDir]);
  const env = { PATH: process.env.PATH, HOME: account.home, LANG: 'C.UTF-8' };
  const as = { uid: account.uid, gid: account.gid, env };
  await run(INSTALL, ['--no-defaults', `--datadir=${dataDir}`, `--user=${account.name}`, '--auth-root-authentication-method=socket', '--skip-test-db', '--skip-name-resolve'], { ...as, timeoutMs: 120_000 });

  const log = openSync(logFile, 'a');
  const child = spawn(
    SERVER,
    ['--no-defaults', `--datadir=${dataDir}`, `--socket=${socket}`, '--skip-networking', `--pid-file=${path.join(dataDir, 'mariadbd.pid')}`, '--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M', '--performance-schema=OFF', '--skip-log-bin'],
    { ...as, detached: true, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const pid = child.pid!;
  options.registry.addPid(pid, options.what, 'SIGTERM');
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();

  const query = async (sql: string): Promise<string> => (await run(CLIENT, [`--socket=${socket}`, '--batch', '--skip-column-names', '-e', sql], { ...as, timeoutMs: 60_000 })).stdout;
  await waitFor(
    `${options.what} to accept connections`,
    async () => {
      if (exited !== undefined) throw new Error(`mariadbd exited with ${exited}`);
      return (await run(CLIENT, [`--socket=${socket}`, '-e', 'SELECT 1'], { ...as, allowFail: true, timeoutMs: 5_000 })).code === 0;
    },
    { timeoutMs: 60_000, intervalMs: 100, logFile },
  );
  const db = options.database;
  await query(`CREATE DATABASE \`${db}\`;
USE \`${db}\`;
CREATE TABLE machines (id INT PRIMARY KEY, serial VARCHAR(32) NOT NULL, site VARCHAR(64) NOT NULL) ENGINE=InnoDB;
CREATE TABLE deposits (id BIGINT PRIMARY KEY, machine_id INT NOT NULL, material VARCHAR(8) NOT NULL, grams INT NOT NULL, at DATETIME NOT NULL, note TEXT, FOREIGN KEY (machine_id) REFERENCES machines(id)) ENGINE=InnoDB;
INSERT INTO machines SELECT seq, CONCAT('SN-', LPAD(seq, 6, '0')), CONCAT('Depot ', seq % 7) FROM seq_1_to_20;
INSERT INTO deposits SELECT seq, 1 + seq % 20, ELT(1 + seq % 4, 'PET', 'HDPE', 'ALU', 'GLASS'), 10 + seq % 900, TIMESTAMPADD(SECOND, seq * 37, '2026-01-01'), IF(seq % 97 = 0, 'rejected: label unreadable', NULL) FROM seq_1_to_${options.rows};
CREATE VIEW daily AS SELECT DATE(at) AS day, material, SUM(grams) AS grams FROM deposits GROUP BY DATE(at), material;`);
  return { socket, database: db, dataDir, logFile, pid, query };
}
