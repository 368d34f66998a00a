/**
 * Restoring database snapshots onto a device, journaled so that a cut link or a killed console at
 * any point leaves either the original database or the fully restored one.
 *
 * PostgreSQL (the dump is pg_dump's custom format, so pg_restore):
 *   stage    the dump is streamed to a work folder on the device (`~/.jetvault-restore/<id>-<source>`,
 *            holding `plan.json` and `journal`), sha256 checked there, then pg_restore'd in one
 *            transaction into a NEW database `<db>_jv_new_<id>` created like the live one (owner,
 *            encoding, locale); its row counts must equal the snapshot's before anything else moves;
 *   swap     (services stopped) one DO block — one transaction — terminates sessions and renames
 *            live → `<db>_jv_prev_<id>` and new → live: there is no instant with a half swap;
 *   validate the live database opens and holds the snapshot's row counts, then the health command;
 *   keep     the previous database until confirmed (dropped) or rolled back (renamed back).
 *   Recovery reads the state from the database names themselves: a `_jv_new_` database means the
 *   swap never committed (dropped, the original is untouched); a `_jv_prev_` one means it did (kept
 *   for confirmation).
 * SQLite: the file is staged in a work folder on the same file system as the live file (the home
 * work folder when it is on that file system, else a folder beside the file), `PRAGMA
 * integrity_check` and row counts are checked on the staged copy, and with services stopped one
 * SIGHUP-immune script moves the live file and its -wal/-shm/-journal into `previous/` and renames
 * the staged copy into place, journaling `swapping` → `swapped`.
 * MySQL/MariaDB (mysqldump SQL): loaded into a new database, row counts checked, then one atomic
 *   RENAME TABLE of every table swaps it in (mysql-restore.ts); recovery reads the state from where
 *   the tables are.
 * Other targets: a database under another name / a file at another path are restored the same way
 * but end with a plain rename of the checked result to the requested name (never a partial under
 * it), and nothing live is touched. `restoreDatabaseScratch` does that and cleans up (drills).
 */
import { forDatabase, loginHint } from '../devices/sources/db-password';
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { z } from 'zod';
import { AppError } from '../../shared/errors';
import { formatBytes } from '../../shared/format-bytes';
import type { MysqlSourceSchema, PostgresSourceSchema, SqliteSourceSchema } from '../../shared/schemas/devices';
import type { Repository } from '../repository/repo/repository';
import { blobStream } from '../repository/pipeline/blob-stream';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import { readSmallFile, rootNode } from '../repository/snapshot/snapshot';
import type { TreeNode } from '../repository/snapshot/tree';
import { raw, sh } from '../devices/shell-quote';
import type { RawShell } from '../devices/shell-quote';
import { DEVICE_WORK_PREFIX } from '../devices/sources/listing';
import type { CommandRunner } from '../devices/ssh-connection';
import { runToString } from '../devices/ssh-connection';
import { wireSink, writeCounted } from '../devices/wire-compression';
import { dumpFileName } from '../devices/sources/dump-source';
import { createRolesCommand, membershipsOf, parsePgRoles, roleAttributes, rolesFileName } from '../devices/sources/pg-roles';
import type { PgRoles } from '../devices/sources/pg-roles';
import { compareCounts, mysqlCountsCommand, parseMysqlCounts, parsePgCounts, parseSqliteCounts, pgCountsCommand, pgDbname, pgEnv, rowCountsFileName, sqliteCountsCommand } from '../devices/sources/row-counts';
import type { RowCounts } from '../devices/sources/row-counts';
import { MYSQL_CREATE_SQL, MYSQL_MOVE_SQL, MYSQL_PROBE_SQL, MYSQL_ROLLBACK_SQL, MYSQL_SWAP_SQL, MYSQL_TABLES_SQL, MYSQL_VIEWS_SQL, mysqlClient, mysqlDropSql, mysqlNames, mysqlVars, parseViews, viewsChange } from './mysql-restore';
import { counted } from '../../shared/plural';

export type PostgresSource = z.infer<typeof PostgresSourceSchema>;
export type SqliteSource = z.infer<typeof SqliteSourceSchema>;
export type MysqlSource = z.infer<typeof MysqlSourceSchema>;
export type DatabaseSource = PostgresSource | SqliteSource | MysqlSource;

/** Work folders of database restores live here, below the device account's home. */
export const DB_WORK_DIR = `${DEVICE_WORK_PREFIX}restore`;
/** A SQLite work folder beside the live file (when the home folder is on another file system). */
export const SQLITE_BESIDE_PREFIX = `${DEVICE_WORK_PREFIX}dbrestore-`;

export interface DbRestorePlan {
  restoreId: string;
  source: string;
  kind: 'postgres' | 'sqlite' | 'mysql';
  snapshotId: string;
  /** Bytes of the dump / database file to send. */
  dumpBytes: number;
  /** What the snapshot recorded (null for snapshots taken before counts were recorded). */
  expectedRows: RowCounts | null;
  /** In place: swap with the live database and keep the previous one. Else: a new name, nothing live touched. */
  inPlace: boolean;
  /** Database name (postgres, mysql) or file path (sqlite) that ends up restored. */
  target: string;
  targetExists: boolean;
  /** Folder on the device with plan.json, the journal and (postgres) the staged dump. */
  workDir: string;
  /** postgres / mysql: how to reach the server, and the database names used on the way. */
  conn?: { host?: string; port?: number; user?: string; socket?: string };
  maintenanceDb?: string;
  fresh?: string;
  previous?: string;
  rejected?: string;
  /** postgres: the roles the snapshot was taken among (null before they were recorded); recreated where missing. */
  roles?: PgRoles | null;
  /** sqlite: the staged file (same file system as the target). */
  staged?: string;
  /**
   * postgres: the tablespace the new database is created in — the live one's, so a restore never
   * moves a database to another disk; null for the cluster's default (or when the login may not
   * create there, which `warnings` says).
   */
  tablespace?: string | null;
  /** Free space and need where the work folder is (and the new database too, unless `dbSpace` is set). */
  freeBytes: number;
  spaceNeeded: number;
  /** postgres: where the new database is written, when that is another file system than the work folder's. */
  dbSpace?: { location: string; freeBytes: number; needed: number };
  /** What the operator should know before starting (shown with the plan). */
  warnings?: string[];
}

export interface DbRestoreOptions {
  repo: Repository;
  runner: CommandRunner;
  snapshot: SnapshotWithId;
  source: DatabaseSource;
  restoreId: string;
  /** Restore into another database (postgres) or to another file (sqlite) instead of in place. */
  target?: { database?: string; path?: string };
  signal?: AbortSignal;
  /** Send the dump gzip'ed (`gzip -1` here, `gzip -dc` on the device): a slow link, decision 019. */
  compress?: boolean;
}

export interface DbStageProgress {
  advance?(delta: { bytes?: number }): void;
  /** Called between sending/verifying and loading (pg_restore / integrity check). */
  step?(name: 'send' | 'verify' | 'load' | 'check'): void;
  /** Something the operator must know about the restored database (roles created for it). */
  note?(text: string): void;
}

const join = (...parts: string[]) => path.posix.join(...parts);

/** The runner for a plan's commands: with its source's database password, when one is stored. */
const planRunner = (runner: CommandRunner, plan: Pick<DbRestorePlan, 'source' | 'kind'>) => forDatabase(runner, { name: plan.source, kind: plan.kind });

/** The row counts a database snapshot recorded, or null if it predates them. */
export async function recordedRowCounts(repo: Repository, snapshot: SnapshotWithId, source: string): Promise<RowCounts | null> {
  const node = await rootNode(repo, snapshot, rowCountsFileName(source));
  if (!node) return null;
  return JSON.parse(await readSmallFile(repo, node)) as RowCounts;
}

/** The roles a PostgreSQL snapshot recorded, or null if it predates them. */
async function recordedRoles(repo: Repository, snapshot: SnapshotWithId, source: string): Promise<PgRoles | null> {
  const node = await rootNode(repo, snapshot, rolesFileName(source));
  return node ? parsePgRoles(await readSmallFile(repo, node)) : null;
}

/** Database names on the way: bounded to PostgreSQL's 63 bytes whatever the live name is. */
export function pgNames(database: string, restoreId: string): { fresh: string; previous: string; rejected: string } {
  const base = Buffer.from(database, 'utf8').length + restoreId.length + 9 > 63 ? Buffer.from(database, 'utf8').subarray(0, 63 - restoreId.length - 9).toString('utf8').replace(/\uFFFD+$/, '') : database;
  return { fresh: `${base}_jv_new_${restoreId}`, previous: `${base}_jv_prev_${restoreId}`, rejected: `${base}_jv_rej_${restoreId}` };
}

const mysqlConn = (source: MysqlSource) => ({
  ...(source.host ? { host: source.host } : {}),
  ...(source.socket ? { socket: source.socket } : {}),
  ...(source.port ? { port: source.port } : {}),
  ...(source.user ? { user: source.user } : {}),
});

/** The mysql client reading `script` (constant SQL whose only names are hex literals) from a here-document. */
function mysqlSql(conn: DbRestorePlan['conn'], script: string, database?: string): RawShell {
  return sh`${mysqlClient(conn ?? {}, database)} <<'JVSQL'
${raw(script)}
JVSQL`;
}

/** The variables every MySQL script of a plan uses. */
const mysqlPlanVars = (plan: DbRestorePlan) => mysqlVars({ live: plan.target, fresh: plan.fresh!, prev: plan.previous!, rej: plan.rejected! });

const pgConn = (source: PostgresSource) => ({
  ...(source.host ? { host: source.host } : {}),
  ...(source.port ? { port: source.port } : {}),
  ...(source.user ? { user: source.user } : {}),
});

/** Runs SQL (from stdin: a constant script) against a database with psql variables set by name. */
function psql(plan: Pick<DbRestorePlan, 'conn'>, database: string, vars: Record<string, string>, script: string, flags: RawShell = raw('')): RawShell {
  const v = Object.entries(vars).flatMap(([k, val]) => ['-v', `${k}=${val}`]);
  return sh`${pgEnv(plan.conn ?? {})}
psql -X -q -At -v ON_ERROR_STOP=1 --no-password ${flags} --dbname=${pgDbname(database)} ${v} <<'JVSQL'
${raw(script)}
JVSQL`;
}

/**
 * The roles a pg_dump's objects are owned by or granted to: `OWNER TO`, `GRANT … TO`, `REVOKE …
 * FROM` and `ALTER DEFAULT PRIVILEGES FOR ROLE` in its schema SQL (pg_dump writes each on one line,
 * one role per statement, names quoted as quote_ident does). PUBLIC is not a role.
 */
export function rolesInSchemaSql(sql: string): string[] {
  const ident = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
  const patterns = [
    new RegExp(String.raw`^ALTER .* OWNER TO ${ident};$`),
    new RegExp(String.raw`^GRANT .* TO ${ident}(?: WITH GRANT OPTION)?;$`),
    new RegExp(String.raw`^REVOKE .* FROM ${ident}(?: CASCADE)?;$`),
    new RegExp(String.raw`^ALTER DEFAULT PRIVILEGES FOR ROLE ${ident} `),
  ];
  const roles = new Set<string>();
  for (const line of sql.split('\n')) {
    for (const pattern of patterns) {
      const quoted = pattern.exec(line)?.[1];
      if (!quoted || quoted === 'PUBLIC') continue;
      roles.add(quoted.startsWith('"') ? quoted.slice(1, -1).replaceAll('""', '"') : quoted);
    }
  }
  return [...roles].sort();
}

/** What the restore's result says about roles it created (the operator may need to give a login its password). */
export function rolesNote(created: CreatedRoles, target: string, source: string, recorded: boolean): string {
  const names = created.names.map((r) => `"${r}"`).join(', ');
  const how = recorded
    ? `created as the snapshot recorded them${created.memberships.length > 0 ? `, with ${created.memberships.join(', ')}` : ''}, but without a password (PostgreSQL shows password hashes only to a superuser)`
    : 'created without login and without a password (the snapshot predates recorded roles)';
  const withheld = created.withheld.length > 0 ? ` Not given, as only a superuser may: ${created.withheld.join('; ')}.` : '';
  return (
    `PostgreSQL on ${target} had no role ${names}, which the snapshot of "${source}" gives its objects and grants to (a reflashed device?): ${how}, so the objects keep their owners.${withheld} ` +
    `If the app logs in as one of them, set its password: ALTER ROLE … LOGIN PASSWORD '…' (or set up peer login).`
  );
}

/** Roles a restore created on the device, and what it could not give them. */
export interface CreatedRoles {
  names: string[];
  /** `name: ATTRIBUTE, …` the snapshot recorded but only a superuser may grant. */
  withheld: string[];
  /** Memberships given back, as `"member" in "group"`. */
  memberships: string[];
}

/**
 * Creates the roles the staged dump needs and the server lacks (a reflashed device whose app has
 * not created its role yet), so pg_restore keeps every owner and grant instead of failing on the
 * first: as the snapshot recorded them (login, create rights, memberships among them and roles the
 * server has; never a password, which only a superuser could read), NOLOGIN where it recorded none.
 * The roles in one transaction, then the memberships. Needs CREATEROLE; without it, says which roles to create before anything is loaded.
 */
async function createMissingRoles(runner: CommandRunner, plan: DbRestorePlan, file: string, source: string): Promise<CreatedRoles> {
  const none: CreatedRoles = { names: [], withheld: [], memberships: [] };
  const schema = join(plan.workDir, 'schema.sql');
  const lines = await runToString(
    runner,
    sh`pg_restore --schema-only --no-comments -f ${schema} -- ${file} || exit $?
grep -E '^(ALTER .* OWNER TO |GRANT |REVOKE |ALTER DEFAULT PRIVILEGES FOR ROLE )' -- ${schema}; rm -f -- ${schema}; true`,
  );
  const roles = rolesInSchemaSql(lines);
  if (roles.length === 0) return none;
  const vars = Object.fromEntries(roles.map((r, i) => [`r${i}`, r]));
  const list = roles.map((_, i) => `(:'r${i}')`).join(', ');
  const missing = `SELECT r FROM (VALUES ${list}) v(r) WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)`;
  const absent = (await runToString(runner, psql(plan, plan.maintenanceDb!, vars, `${missing};`))).split('\n').filter(Boolean);
  if (absent.length === 0) return none;
  const recorded = plan.roles ?? null;
  const created = new Set(absent);
  const withheld: string[] = [];
  // Names go in as psql variables (quoted by format's %I on the server); attributes are keywords and a number.
  const statements = absent.map((name) => {
    const { sql, withheld: w } = roleAttributes(recorded?.roles[name]);
    if (w.length > 0) withheld.push(`"${name}": ${w.join(', ')}`);
    return `SELECT format('CREATE ROLE %I ${sql}', :'r${roles.indexOf(name)}') \\gexec`;
  });
  // Memberships the snapshot recorded where a side was created now, given after the roles are in,
  // each on its own: one the login may not give (PostgreSQL 16 wants ADMIN on an existing group)
  // leaves the roles created and is missing from what the result lists.
  const grants = membershipsOf(recorded, created);
  const grantStatements = grants.map(([group, member, admin], i) => {
    vars[`g${i}`] = group;
    vars[`m${i}`] = member;
    // A side the dump does not name may be missing on the server: granted only if both are there.
    const there = (v: string) => `EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'${v}${i}')`;
    return `SELECT format('GRANT %I TO %I${admin ? ' WITH ADMIN OPTION' : ''}', :'g${i}', :'m${i}') WHERE ${there('g')} AND ${there('m')} \\gexec`;
  });
  // Which of those memberships hold once the transaction is in (by index: names may hold any character).
  const held = grants.length === 0 ? '' : `SELECT i FROM (VALUES ${grants.map((_, i) => `(${i}, :'g${i}', :'m${i}')`).join(', ')}) v(i, g, m) WHERE EXISTS (SELECT 1 FROM pg_auth_members a JOIN pg_roles gr ON gr.oid = a.roleid JOIN pg_roles mr ON mr.oid = a.member WHERE gr.rolname = g AND mr.rolname = m);`;
  const out = await runToString(runner, psql(plan, plan.maintenanceDb!, vars, ['BEGIN;', ...statements, 'COMMIT;', '\\set ON_ERROR_STOP 0', ...grantStatements, held].join('\n'))).catch((error: unknown) => {
    throw new AppError(
      'REMOTE_COMMAND_FAILED',
      `The snapshot of "${source}" needs the role${absent.length > 1 ? 's' : ''} ${absent.map((r) => `"${r}"`).join(', ')}, which PostgreSQL on ${runner.target} does not have, ` +
        `and the source's login cannot create them (${(error as Error).message}). Nothing was changed. Create them as the snapshot recorded them, then restore again: ${createRolesCommand(absent, recorded)}`,
    );
  });
  const memberships = out.split('\n').filter((line) => /^\d+$/.test(line)).map((i) => `"${grants[Number(i)]![1]}" in "${grants[Number(i)]![0]}"`);
  return { names: absent, withheld, memberships };
}

const existsSql = (names: string[]) => names.map((n, i) => `SELECT ${i} AS i FROM pg_database WHERE datname = :'n${i}'`).join(' UNION ALL ') + ';';

/** Which of `names` exist as databases. */
async function pgExisting(runner: CommandRunner, plan: Pick<DbRestorePlan, 'conn' | 'maintenanceDb'>, names: string[]): Promise<Set<string>> {
  const vars = Object.fromEntries(names.map((n, i) => [`n${i}`, n]));
  const out = await runToString(runner, psql(plan, plan.maintenanceDb ?? 'postgres', vars, existsSql(names)));
  return new Set(out.split('\n').filter(Boolean).map((i) => names[Number(i)]!));
}

export async function planDbRestore(options: DbRestoreOptions): Promise<DbRestorePlan> {
  const { repo, snapshot, source, restoreId } = options;
  const runner = forDatabase(options.runner, source);
  const kind = source.kind;
  if (!snapshot.tags.includes(`kind:${kind}`)) throw new AppError('VALIDATION', `Snapshot ${snapshot.id.slice(0, 12)} is not a ${kind} snapshot`);
  const dump = await rootNode(repo, snapshot, dumpFileName(source));
  if (!dump || dump.type !== 'file') throw new AppError('NOT_FOUND', `Snapshot ${snapshot.id.slice(0, 12)} holds no ${dumpFileName(source)}`);
  const expectedRows = await recordedRowCounts(repo, snapshot, source.name);
  const home = (await runToString(runner, sh`printf '%s' "$HOME"`)).trim() || '/tmp';
  const homeWork = join(home, DB_WORK_DIR);
  const base = { restoreId, source: source.name, kind, snapshotId: snapshot.id, dumpBytes: dump.size, expectedRows } as const;

  if (source.kind === 'postgres') {
    const target = options.target?.database ?? source.database;
    const inPlace = target === source.database;
    const names = pgNames(target, restoreId);
    const conn = pgConn(source);
    const maintenanceDb = target === 'postgres' || source.database === 'postgres' ? 'template1' : 'postgres';
    const partial = { conn, maintenanceDb };
    const info = await runToString(runner, psql(partial, maintenanceDb, { target, like: source.database }, PG_PLAN_SQL)).catch((error: unknown) => {
      throw new AppError('UNAVAILABLE', `PostgreSQL on ${runner.target} cannot be reached for the restore: ${(error as Error).message}${loginHint(source, (error as Error).message)}`);
    });
    const [size, place] = [Number(info.split('\n')[0]), parsePlace(info.split('\n')[1] ?? '')];
    if (!inPlace && size >= 0) throw new AppError('CONFLICT', `A database named "${target}" already exists on ${runner.target}; choose another name (it is never overwritten)`);
    const workDir = join(homeWork, `${restoreId}-${source.name}`);
    const warnings: string[] = [];
    const keepsTablespace = place.tablespace !== null && place.canCreate;
    if (place.tablespace !== null && !place.canCreate) {
      warnings.push(
        `"${source.database}" on ${runner.target} lives in tablespace "${place.tablespace}", where the device's database login may not create databases: the restored copy will be created in the cluster's default tablespace instead (another disk, perhaps). GRANT CREATE ON TABLESPACE to the login to keep it there.`,
      );
    }
    // The dump is staged in the work folder, then loaded into a second database about the size of
    // the live one, where that database's tablespace is (the data directory for the default one).
    const space = await roomFor(runner, homeWork, keepsTablespace ? place.location : place.defaultLocation, dump.size, size);
    warnings.push(...roomWarnings('postgres', runner.target, target, space));
    const roles = await recordedRoles(repo, snapshot, source.name);
    return { ...base, inPlace, target, targetExists: size >= 0, workDir, ...partial, ...names, roles, tablespace: keepsTablespace ? place.tablespace : null, ...space, ...(warnings.length > 0 ? { warnings } : {}) };
  }

  if (source.kind === 'mysql') {
    const target = options.target?.database ?? source.database;
    const inPlace = target === source.database;
    const conn = mysqlConn(source);
    const probe = await runToString(runner, mysqlSql(conn, mysqlVars({ db: target }) + MYSQL_PROBE_SQL)).catch((error: unknown) => {
      throw new AppError('UNAVAILABLE', `MySQL on ${runner.target} cannot be reached for the restore: ${(error as Error).message}${loginHint(source, (error as Error).message)}`);
    });
    const [sizeText = '-1', triggersText = '0', , , datadirText = ''] = probe.replace(/\n$/, '').split('\t');
    const [size, triggers] = [Number(sizeText), Number(triggersText)];
    if (!inPlace && size >= 0) throw new AppError('CONFLICT', `A database named "${target}" already exists on ${runner.target}; choose another name (it is never overwritten)`);
    if (inPlace && triggers > 0) {
      throw new AppError('VALIDATION', `"${target}" on ${runner.target} has triggers: MySQL cannot move their tables aside for an atomic swap. Restore into another database name instead; nothing was changed.`);
    }
    const workDir = join(homeWork, `${restoreId}-${source.name}`);
    // The new database's tables are written below the server's data directory.
    const space = await roomFor(runner, homeWork, datadirText || null, dump.size, size);
    const warnings = roomWarnings('mysql', runner.target, target, space);
    return { ...base, inPlace, target, targetExists: size >= 0, workDir, conn, ...mysqlNames(target, restoreId), ...space, ...(warnings.length > 0 ? { warnings } : {}) };
  }

  const target = options.target?.path ?? source.path;
  const inPlace = target === source.path;
  const dir = path.posix.dirname(target);
  const probe = await runToString(
    runner,
    sh`t=${target}; d=${dir}; h=${homeWork}; [ -d "$h" ] || h=$(dirname -- "$h"); if [ -e "$t" ]; then echo exists; else echo missing; fi; stat -c %d -- "$d" 2>/dev/null || echo none; stat -c %d -- "$h" 2>/dev/null || echo none`,
  );
  const [exists, dirDev, homeDev] = probe.trim().split('\n');
  if (dirDev === 'none') throw new AppError('NOT_FOUND', `The folder ${dir} does not exist on ${runner.target}`);
  if (!inPlace && exists === 'exists') throw new AppError('CONFLICT', `${target} already exists on ${runner.target}; choose another path (it is never overwritten)`);
  // Renames are only atomic within one file system: stage where the live file lives.
  const workDir = dirDev === homeDev ? join(homeWork, `${restoreId}-${source.name}`) : join(dir, `${SQLITE_BESIDE_PREFIX}${restoreId}-${path.posix.basename(target)}`);
  const freeBytes = await freeOf(runner, dir);
  return { ...base, inPlace, target, targetExists: exists === 'exists', workDir, staged: join(workDir, 'new.db'), freeBytes, spaceNeeded: dump.size };
}

/**
 * The planning query: the target's size (-1 when absent), then where the database the restore is
 * created like (the source's live one) keeps its data — tablespace (NULL for pg_default), whether
 * the login may create databases in it, its folder and the default tablespace's folder (the data
 * directory, readable by superusers and pg_read_all_settings only; empty otherwise). Names and
 * folders are hex so that any character survives the line format.
 */
const PG_PLAN_SQL = `SELECT coalesce((SELECT pg_database_size(datname) FROM pg_database WHERE datname = :'target'), -1);
SELECT concat_ws(' ',
  coalesce(encode(convert_to(CASE WHEN t.spcname <> 'pg_default' THEN t.spcname END, 'UTF8'), 'hex'), '-'),
  CASE WHEN t.spcname IS NULL OR t.spcname = 'pg_default' OR has_tablespace_privilege(t.oid, 'CREATE') THEN 'y' ELSE 'n' END,
  coalesce(nullif(encode(convert_to(CASE WHEN t.spcname <> 'pg_default' THEN pg_tablespace_location(t.oid) END, 'UTF8'), 'hex'), ''), '-'),
  coalesce(nullif(encode(convert_to(CASE WHEN pg_has_role('pg_read_all_settings', 'USAGE') THEN current_setting('data_directory') || '/base' END, 'UTF8'), 'hex'), ''), '-'))
FROM (SELECT 1) one LEFT JOIN pg_database d ON d.datname = :'like' LEFT JOIN pg_tablespace t ON t.oid = d.dattablespace;`;

interface PgPlace {
  tablespace: string | null;
  canCreate: boolean;
  location: string | null;
  defaultLocation: string | null;
}

function parsePlace(line: string): PgPlace {
  const [spc = '-', can = 'y', loc = '-', def = '-'] = line.trim().split(' ');
  const text = (hex: string) => (hex === '-' ? null : Buffer.from(hex, 'hex').toString('utf8'));
  return { tablespace: text(spc), canCreate: can === 'y', location: text(loc), defaultLocation: text(def) };
}

/** Free bytes and the file system (device number) of `dir`, or of its nearest existing parent; null when the device cannot tell. */
async function spaceAt(runner: CommandRunner, dir: string): Promise<{ free: number; dev: string } | null> {
  const out = await runToString(runner, sh`p=${dir}; while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done; stat -c %d -- "$p" && df -P -k -- "$p" | tail -n +2`).catch(() => '');
  const [dev = '', df = ''] = out.trim().split('\n');
  const free = Number(df.trim().split(/\s+/)[3]) * 1024;
  return dev && Number.isFinite(free) ? { free, dev } : null;
}

/**
 * Where a database restore needs room: the dump in the work folder, and a new database about the
 * size of the live one (`liveBytes`, -1 when there is none; at least the dump's) where the server
 * writes it (`location`, when known). Counted together on one file system, apart on two.
 */
async function roomFor(runner: CommandRunner, workDir: string, location: string | null, dumpBytes: number, liveBytes: number): Promise<Pick<DbRestorePlan, 'freeBytes' | 'spaceNeeded' | 'dbSpace'>> {
  const needed = Math.max(liveBytes, dumpBytes);
  const [work, db] = await Promise.all([spaceAt(runner, workDir), location ? spaceAt(runner, location) : null]);
  if (location && db && work && db.dev !== work.dev) return { freeBytes: work.free, spaceNeeded: dumpBytes, dbSpace: { location, freeBytes: db.free, needed } };
  return { freeBytes: work?.free ?? 0, spaceNeeded: dumpBytes + needed };
}

const SERVER = { postgres: 'PostgreSQL', mysql: 'MySQL', sqlite: 'SQLite' } as const;

function roomWarnings(kind: 'postgres' | 'mysql', device: string, target: string, space: Pick<DbRestorePlan, 'dbSpace'>): string[] {
  const db = space.dbSpace;
  if (!db || db.freeBytes >= db.needed) return [];
  return [`The disk holding ${SERVER[kind]}'s data on ${device} (${db.location}) has ${formatBytes(db.freeBytes)} free; the restored "${target}" needs about ${formatBytes(db.needed)} there beside the live one: the restore will stop before changing anything.`];
}

async function freeOf(runner: CommandRunner, dir: string): Promise<number> {
  return (await spaceAt(runner, dir))?.free ?? 0;
}

/**
 * Serializes the swap and any rollback/recovery of one work folder (flock on `<work>/lock`): a
 * recovery started while a dead console's swap script still runs on the device waits for it, and a
 * swap that starts after a recovery removed the folder finds nothing to do. Exits 3 if the folder is gone.
 */
const lockWork = (workDir: string) => sh`[ -d ${workDir} ] || { echo "the restore work folder ${raw('is gone')}" >&2; exit 3; }
exec 9>>${join(workDir, 'lock')}
if command -v flock >/dev/null 2>&1; then flock 9; fi
[ -d ${workDir} ] || exit 3
if [ "$(cat ${join(workDir, 'journal')} 2>/dev/null)" = rolling-back ]; then echo "the restore is being rolled back" >&2; exit 3; fi`;

const journal = (plan: DbRestorePlan, state: string) => sh`printf '%s\\n' ${state} > ${join(plan.workDir, 'journal')}`;

/**
 * Sends a snapshot file's bytes to `dest` on the device (gzip'ed on the way when `compress`);
 * resolves the sha256 of the bytes themselves, which the device checks on what it wrote.
 */
async function sendFile(repo: Repository, runner: CommandRunner, node: TreeNode, dest: string, progress: DbStageProgress, signal?: AbortSignal, compress = false): Promise<string> {
  const running = await runner.exec(sh`umask 077 && ${raw(compress ? 'gzip -dc' : 'cat')} > ${dest}`, signal);
  running.stdout.resume(); // an SSH channel only closes once its output has been read
  running.stdin.on('error', () => undefined); // a dead link closes the channel under the pipe
  const sink = wireSink(running.stdin, compress);
  const hash = createHash('sha256');
  let ended = false;
  const finished = running.done.then((result) => {
    ended = true;
    return result;
  });
  // Read ahead (decrypted in the repository's workers when it is local) while the dump is sent.
  const blobs = blobStream(repo, node.content ?? []);
  try {
    for (let n = (node.content ?? []).length; n > 0; n--) {
      if (signal?.aborted) throw new AppError('CANCELLED', 'Cancelled');
      if (ended) break;
      const data = await blobs.next();
      hash.update(data);
      // Counted as the pipe takes it (under a bandwidth limit, not all at once) — or until the
      // channel ends under it (link cut).
      await writeCounted(sink, data, (bytes) => progress.advance?.({ bytes }), finished);
    }
    sink.end();
  } catch (error) {
    running.stdin.destroy();
    throw error;
  } finally {
    void blobs.close().catch(() => undefined);
  }
  const result = await finished;
  if (result.code !== 0) throw new AppError('UNAVAILABLE', `Sending the database to ${runner.target} failed (${result.stderr.trim() || `exit ${result.code ?? result.signal}`}). The live database was not changed.`);
  return hash.digest('hex');
}

async function writePlanFile(runner: CommandRunner, plan: DbRestorePlan): Promise<void> {
  const running = await runner.exec(sh`umask 077 && mkdir -p -- ${plan.workDir} && cat > ${join(plan.workDir, 'plan.json')} && printf 'staging\\n' > ${join(plan.workDir, 'journal')}`);
  running.stdout.resume();
  running.stdin.end(Buffer.from(JSON.stringify(plan)));
  const result = await running.done;
  if (result.code !== 0) throw new AppError('REMOTE_COMMAND_FAILED', `Cannot create the restore work folder ${plan.workDir} on ${runner.target}: ${result.stderr.trim()}`);
}

async function counts(runner: CommandRunner, plan: DbRestorePlan, where: string): Promise<RowCounts> {
  if (plan.kind === 'postgres') return parsePgCounts(await runToString(runner, pgCountsCommand(plan.conn ?? {}, where)));
  if (plan.kind === 'mysql') return parseMysqlCounts(await runToString(runner, mysqlCountsCommand(plan.conn ?? {}, where)));
  return parseSqliteCounts(await runToString(runner, sqliteCountsCommand(where)));
}

async function integrity(runner: CommandRunner, file: string): Promise<string> {
  const out = await runToString(runner, sh`sqlite3 -batch ${file} 'PRAGMA integrity_check;'`).catch((error: unknown) => (error as Error).message);
  return out.trim() || 'no answer';
}

/**
 * Stage and verify: after this the restored data sits beside the live one (a new database, a
 * staged file), sha256-verified, loaded and checked against the snapshot's row counts. Nothing live
 * has changed. A failure leaves a work folder that `rollbackDbRestore`/`recoverDbRestores` clean.
 */
export async function stageDbRestore(options: DbRestoreOptions, plan: DbRestorePlan, progress: DbStageProgress = {}): Promise<void> {
  const { repo, snapshot, source, signal } = options;
  const runner = forDatabase(options.runner, source);
  if (plan.spaceNeeded > plan.freeBytes) {
    throw new AppError('UNAVAILABLE', `Not enough space on ${runner.target} to restore "${source.name}": it needs ${plan.spaceNeeded} bytes, ${plan.freeBytes} are free. Nothing was changed.`);
  }
  if (plan.dbSpace && plan.dbSpace.needed > plan.dbSpace.freeBytes) {
    const { location, needed, freeBytes } = plan.dbSpace;
    throw new AppError('UNAVAILABLE', `Not enough space on ${runner.target} to restore "${source.name}": the disk holding ${SERVER[plan.kind]}'s data (${location}) has ${formatBytes(freeBytes)} free, the restored database needs about ${formatBytes(needed)}. Nothing was changed.`);
  }
  const dump = (await rootNode(repo, snapshot, dumpFileName(source)))!;
  await writePlanFile(runner, plan);
  progress.step?.('send');
  const file = plan.kind === 'sqlite' ? plan.staged! : join(plan.workDir, 'dump');
  const sum = await sendFile(repo, runner, dump, file, progress, signal, options.compress);
  progress.step?.('verify');
  // Hashed on the device (OpenSSL where present, else sha256sum) and compared there with what was
  // sent, then journaled: one command. Exit 65 is a mismatch.
  const check = await runner.exec(sh`s=$({ openssl dgst -sha256 -r 2>/dev/null || sha256sum; } < ${file} | cut -c1-64) && { [ "$s" = ${sum} ] || exit 65; } && ${journal(plan, 'verified')}`, signal);
  check.stdout.resume(); // an SSH channel only closes once its output has been read
  check.stdin.end();
  const checked = await check.done;
  if (checked.code === 65) throw new AppError('INTERNAL', `The staged copy of "${source.name}" on ${runner.target} does not match the snapshot; nothing was changed`);
  if (checked.code !== 0) throw new AppError('REMOTE_COMMAND_FAILED', `Verifying the staged copy of "${source.name}" on ${runner.target} failed: ${checked.stderr.trim() || `exit ${checked.code ?? checked.signal}`}`);

  progress.step?.('load');
  if (plan.kind === 'postgres') {
    const created = await createMissingRoles(runner, plan, file, source.name);
    if (created.names.length > 0) progress.note?.(rolesNote(created, runner.target, source.name, plan.roles != null));
    // Created like the live database (owner, encoding, locale, tablespace), from template0 as pg_restore wants.
    const failed = (what: string) => (error: unknown) => {
      const message = (error as Error).message;
      const full = /No space left on device|could not extend file/i.test(message)
        ? ` The disk holding PostgreSQL's data${plan.dbSpace ? ` (${plan.dbSpace.location})` : ''} filled up while the copy was loaded: free space there and try again; the half-loaded copy is removed.`
        : '';
      throw new AppError('REMOTE_COMMAND_FAILED', `${what} on ${runner.target} failed; the live database was not changed.${full} ${message}`);
    };
    await runToString(
      runner,
      psql(
        plan,
        plan.maintenanceDb!,
        { fresh: plan.fresh!, live: plan.target, space: plan.tablespace ?? '' },
        `SELECT format('CREATE DATABASE %I TEMPLATE template0 OWNER %I ENCODING %L LC_COLLATE %L LC_CTYPE %L', :'fresh', pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype) || CASE WHEN :'space' <> '' THEN format(' TABLESPACE %I', :'space') ELSE '' END FROM pg_database WHERE datname = :'live'
UNION ALL SELECT format('CREATE DATABASE %I TEMPLATE template0', :'fresh') || CASE WHEN :'space' <> '' THEN format(' TABLESPACE %I', :'space') ELSE '' END WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'live') \\gexec`,
      ),
    ).catch(failed(`Creating the new database for "${source.name}"`));
    await runToString(runner, sh`${pgEnv(plan.conn ?? {})}
pg_restore --single-transaction --exit-on-error --no-password --dbname=${pgDbname(plan.fresh!)} -- ${file} && rm -f -- ${file}`).catch(failed(`pg_restore of "${source.name}" into a new database`));
  } else if (plan.kind === 'mysql') {
    await loadMysql(runner, plan, file, source.name);
  } else {
    await runToString(runner, sh`f=${file}; t=${plan.target}; if [ -e "$t" ]; then chmod --reference="$t" -- "$f"; chown --reference="$t" -- "$f" 2>/dev/null || true; else chmod 640 -- "$f"; fi`);
    const check = await integrity(runner, file);
    if (check !== 'ok') throw new AppError('INTERNAL', `The staged SQLite copy of "${source.name}" failed PRAGMA integrity_check (${check.slice(0, 200)}); nothing was changed`);
  }
  progress.step?.('check');
  if (plan.expectedRows) {
    const diff = compareCounts(plan.expectedRows, await counts(runner, plan, plan.kind === 'sqlite' ? file : plan.fresh!));
    if (diff.length > 0) throw new AppError('INTERNAL', `The restored copy of "${source.name}" does not hold the snapshot's rows (${diff.slice(0, 5).join('; ')}); nothing was changed`);
  }
  if (plan.kind === 'mysql') await writeMysqlViews(runner, plan);
  await runToString(runner, journal(plan, 'staged'));
  if (!plan.inPlace) await finishOtherTarget(runner, plan);
}

/**
 * Loads the dump into a new database created like the live one; a snapshot with triggers, routines
 * or events is refused (they cannot move with the tables), the new database dropped by the caller's rollback.
 */
async function loadMysql(runner: CommandRunner, plan: DbRestorePlan, file: string, name: string): Promise<void> {
  await runToString(runner, mysqlSql(plan.conn, mysqlPlanVars(plan) + MYSQL_CREATE_SQL));
  await runToString(runner, sh`${mysqlClient(plan.conn ?? {}, plan.fresh)} < ${file} && rm -f -- ${file}`).catch((error: unknown) => {
    throw new AppError('REMOTE_COMMAND_FAILED', `Loading "${name}" into a new database on ${runner.target} failed; the live database was not changed. ${(error as Error).message}`);
  });
  const [, triggers = 0, routines = 0, events = 0] = (await runToString(runner, mysqlSql(plan.conn, mysqlVars({ db: plan.fresh! }) + MYSQL_PROBE_SQL))).trim().split('\t').map(Number);
  if (triggers + routines + events > 0) {
    throw new AppError(
      'VALIDATION',
      `The snapshot of "${name}" holds ${counted(triggers, 'trigger')}, ${counted(routines, 'routine')} and ${counted(events, 'event')}: this version restores MySQL tables and views only. Download the dump and load it by hand; nothing was changed.`,
    );
  }
}

/** Views stay in the live database; when the snapshot's differ, the swap applies `views.sql` and a rollback `views-previous.sql`. */
async function writeMysqlViews(runner: CommandRunner, plan: DbRestorePlan): Promise<void> {
  const views = async (db: string) => parseViews(await runToString(runner, mysqlSql(plan.conn, mysqlVars({ db, into: plan.target }) + MYSQL_VIEWS_SQL)));
  const restored = await views(plan.fresh!);
  const live = plan.inPlace && plan.targetExists ? await views(plan.target) : new Map<string, string>();
  const forward = viewsChange(plan.target, live, restored);
  const back = viewsChange(plan.target, restored, live);
  for (const [file, text] of [
    ['views.sql', forward],
    ['views-previous.sql', back],
  ] as const) {
    if (text === null) continue;
    const running = await runner.exec(sh`umask 077 && cat > ${join(plan.workDir, file)}`);
    running.stdout.resume();
    running.stdin.end(Buffer.from(text, 'utf8'));
    const result = await running.done;
    if (result.code !== 0) throw new AppError('REMOTE_COMMAND_FAILED', `Cannot write ${file} on ${runner.target}: ${result.stderr.trim()}`);
  }
}

/** Applies a views file of the work folder to the live database, if the restore wrote one. */
const applyViews = (plan: DbRestorePlan, file: 'views.sql' | 'views-previous.sql') =>
  sh`if [ -f ${join(plan.workDir, file)} ]; then ${mysqlClient(plan.conn ?? {}, plan.target)} < ${join(plan.workDir, file)}; fi`;

/** Another name / path: the checked result takes the requested name in one rename; then the work folder goes. */
async function finishOtherTarget(runner: CommandRunner, plan: DbRestorePlan): Promise<void> {
  if (plan.kind === 'postgres') {
    await runToString(runner, psql(plan, plan.maintenanceDb!, { fresh: plan.fresh!, target: plan.target }, `ALTER DATABASE :"fresh" RENAME TO :"target";`));
  } else if (plan.kind === 'mysql') {
    // Every table in one RENAME, then the views, then the emptied new database goes.
    await runToString(runner, mysqlSql(plan.conn, mysqlVars({ fresh: plan.fresh!, target: plan.target }) + MYSQL_MOVE_SQL));
    await runToString(runner, applyViews(plan, 'views.sql'));
    await runToString(runner, mysqlSql(plan.conn, mysqlPlanVars(plan) + mysqlDropSql(['fresh'])));
  } else {
    await runToString(runner, sh`t=${plan.target}; [ ! -e "$t" ] || { echo "$t appeared meanwhile" >&2; exit 17; }; mv -- ${plan.staged!} "$t"`);
  }
  await runToString(runner, sh`rm -rf -- ${plan.workDir}`);
}

/** The swap, with the device's services stopped. One transaction (postgres) / one SIGHUP-immune script (sqlite). */
export async function swapDbRestore(to: CommandRunner, plan: DbRestorePlan): Promise<void> {
  const runner = planRunner(to, plan);
  if (!plan.inPlace) return;
  if (plan.kind === 'postgres') {
    await runToString(runner, sh`trap '' HUP INT TERM PIPE
set -e
${lockWork(plan.workDir)}
printf 'swapping\\n' > ${join(plan.workDir, 'journal')}
jvswap() {
${psql(plan, plan.maintenanceDb!, { live: plan.target, fresh: plan.fresh!, prev: plan.previous! }, PG_SWAP_SQL)}
}
i=0
# A session that reconnects between the terminate and the rename makes the rename fail: try again.
until jvswap >/dev/null; do
  i=$((i + 1)); [ "$i" -lt 5 ] || exit 1; sleep 1
done
printf 'swapped\\n' > ${join(plan.workDir, 'journal')}`).catch((error: unknown) => {
      throw new AppError('REMOTE_COMMAND_FAILED', `Swapping the restored database "${plan.target}" into place on ${runner.target} failed: ${(error as Error).message}`);
    });
    return;
  }
  if (plan.kind === 'mysql') {
    // One RENAME TABLE (all or nothing), then the views if they changed; a metadata lock still held
    // by a client the stopped services left makes it fail after 30 s instead of waiting for a year.
    await runToString(runner, sh`trap '' HUP INT TERM PIPE
set -e
${lockWork(plan.workDir)}
printf 'swapping\\n' > ${join(plan.workDir, 'journal')}
${mysqlSql(plan.conn, `SET SESSION lock_wait_timeout = 30;\n${mysqlPlanVars(plan)}${MYSQL_SWAP_SQL}`)}
${applyViews(plan, 'views.sql')}
${mysqlSql(plan.conn, mysqlPlanVars(plan) + mysqlDropSql(['fresh']))}
printf 'swapped\\n' > ${join(plan.workDir, 'journal')}`).catch((error: unknown) => {
      throw new AppError('REMOTE_COMMAND_FAILED', `Swapping the restored database "${plan.target}" into place on ${runner.target} failed: ${(error as Error).message}`);
    });
    return;
  }
  const j = join(plan.workDir, 'journal');
  const prev = join(plan.workDir, 'previous');
  const base = path.posix.basename(plan.target);
  await runToString(runner, sh`trap '' HUP INT TERM PIPE
set -e
${lockWork(plan.workDir)}
t=${plan.target}
[ -e ${plan.staged!} ] || { echo "the staged copy is gone" >&2; exit 3; }
printf 'swapping\\n' > ${j}
mkdir -p -- ${prev}
for s in '' -wal -shm -journal; do if [ -e "$t$s" ]; then mv -- "$t$s" ${prev}/${base}"$s"; fi; done
mv -- ${plan.staged!} "$t"
printf 'swapped\\n' > ${j}
${raw('sync')}`);
}

/** One transaction: sessions ended, live → previous, new → live. */
const PG_SWAP_SQL = `SELECT set_config('jv.live', :'live', false), set_config('jv.fresh', :'fresh', false), set_config('jv.prev', :'prev', false);
DO $$
BEGIN
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (current_setting('jv.live'), current_setting('jv.fresh')) AND pid <> pg_backend_pid();
  IF EXISTS (SELECT 1 FROM pg_database WHERE datname = current_setting('jv.live')) THEN
    EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('jv.live'), current_setting('jv.prev'));
  END IF;
  EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('jv.fresh'), current_setting('jv.live'));
END $$;`;

/** Rolls back a swapped database: restored → rejected, previous → live, in one transaction. */
const PG_ROLLBACK_SQL = `SELECT set_config('jv.live', :'live', false), set_config('jv.prev', :'prev', false), set_config('jv.rej', :'rej', false), set_config('jv.existed', :'existed', false);
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_database WHERE datname = current_setting('jv.prev')) OR current_setting('jv.existed') = 'false' THEN
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname IN (current_setting('jv.live'), current_setting('jv.prev')) AND pid <> pg_backend_pid();
    IF EXISTS (SELECT 1 FROM pg_database WHERE datname = current_setting('jv.live')) THEN
      EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('jv.live'), current_setting('jv.rej'));
    END IF;
    IF EXISTS (SELECT 1 FROM pg_database WHERE datname = current_setting('jv.prev')) THEN
      EXECUTE format('ALTER DATABASE %I RENAME TO %I', current_setting('jv.prev'), current_setting('jv.live'));
    END IF;
  END IF;
END $$;`;

/** DROP DATABASE of each psql variable name that exists (sessions ended first). */
const dropSql = (vars: string[]) =>
  vars
    .map(
      (v) => `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'${v}' AND pid <> pg_backend_pid();
SELECT format('DROP DATABASE IF EXISTS %I', :'${v}') \\gexec`,
    )
    .join('\n');

export interface DbValidation {
  ok: boolean;
  rows: RowCounts;
  problems: string[];
  integrity: string | null;
}

/** After the swap (services running again): the live database opens, holds the snapshot's rows, and (SQLite) passes integrity_check. */
export async function validateDbRestore(to: CommandRunner, plan: DbRestorePlan): Promise<DbValidation> {
  const runner = planRunner(to, plan);
  const problems: string[] = [];
  let rows: RowCounts = {};
  let check: string | null = null;
  try {
    if (plan.kind === 'sqlite') {
      check = await integrity(runner, plan.target);
      if (check !== 'ok') problems.push(`integrity_check: ${check.slice(0, 200)}`);
    }
    rows = await counts(runner, plan, plan.target);
    if (plan.expectedRows) problems.push(...compareCounts(plan.expectedRows, rows));
  } catch (error) {
    problems.push(`the database does not open: ${(error as Error).message}`);
  }
  return { ok: problems.length === 0, rows, problems, integrity: check };
}

/**
 * Under the work folder's lock (a swap or rollback script in flight finishes first): prints the
 * journal's state and replaces it with `state`. Nothing when the work folder is gone.
 */
const setJournal = (plan: DbRestorePlan, state: string) =>
  sh`w=${plan.workDir}; [ -d "$w" ] || exit 0; exec 9>>"$w/lock"; if command -v flock >/dev/null 2>&1; then flock 9; fi; [ -d "$w" ] || exit 0; cat "$w/journal" 2>/dev/null; printf '%s\n' ${state} > "$w/journal"`;

/**
 * The first step of a keep, before anything of any part of the restore is removed: each database's
 * journal says `kept` (under the work folder's lock, so a swap or rollback script in flight finishes
 * first). From then on a rollback is refused (`dbJournal` says so) and recovery finishes the keep instead of
 * rolling back — the previous copies may be partly dropped already.
 */
export async function markDbKept(to: CommandRunner, plan: DbRestorePlan): Promise<void> {
  await runToString(planRunner(to, plan), setJournal(plan, 'kept'));
}

/**
 * Where the database's restore stands on the device: null once its work folder is gone (kept or
 * rolled back), else its journal — `kept` once a keep has begun (`markDbKept`).
 */
export async function dbJournal(to: CommandRunner, plan: DbRestorePlan): Promise<string | null> {
  const out = await runToString(planRunner(to, plan), sh`w=${plan.workDir}; [ -d "$w" ] || exit 0; printf 'journal:'; cat -- "$w/journal" 2>/dev/null; true`);
  return out.startsWith('journal:') ? out.slice('journal:'.length).trim() : null;
}

/** Keeps the restored database: the previous one and the work folder go. */
export async function confirmDbRestore(to: CommandRunner, plan: DbRestorePlan): Promise<void> {
  const runner = planRunner(to, plan);
  if (plan.kind === 'postgres' && plan.inPlace) {
    await runToString(runner, psql(plan, plan.maintenanceDb!, { prev: plan.previous! }, dropSql(['prev'])));
  }
  if (plan.kind === 'mysql' && plan.inPlace) await runToString(runner, mysqlSql(plan.conn, mysqlPlanVars(plan) + mysqlDropSql(['prev', 'fresh', 'rej'])));
  await runToString(runner, sh`rm -rf -- ${plan.workDir}`);
}

/**
 * Puts the previous database back (validation failed, on demand, or an interrupted restore):
 * safe to run in any state and more than once. The device's services should be stopped around it.
 */
export async function rollbackDbRestore(to: CommandRunner, plan: DbRestorePlan): Promise<void> {
  const runner = planRunner(to, plan);
  if (plan.kind === 'postgres') {
    // Disarmed first: a swap script of this restore that has not run yet will refuse to.
    const journalState = (
      await runToString(runner, setJournal(plan, 'rolling-back'))
    ).trim();
    const existing = await pgExisting(runner, plan, [plan.fresh!, plan.previous!]);
    const swapped = !existing.has(plan.fresh!) && (existing.has(plan.previous!) || !plan.targetExists);
    // A restore onto a device that had no such database: only a completed swap made the live one.
    if (plan.inPlace && (existing.has(plan.previous!) || (swapped && journalState === 'swapped'))) {
      await runToString(runner, psql(plan, plan.maintenanceDb!, { live: plan.target, prev: plan.previous!, rej: plan.rejected!, existed: String(plan.targetExists) }, PG_ROLLBACK_SQL));
    }
    await runToString(runner, psql(plan, plan.maintenanceDb!, { fresh: plan.fresh!, rej: plan.rejected! }, dropSql(['fresh', 'rej'])));
    await runToString(runner, sh`rm -rf -- ${plan.workDir}`);
    return;
  }
  if (plan.kind === 'mysql') {
    const journalState = (
      await runToString(runner, setJournal(plan, 'rolling-back'))
    ).trim();
    if (plan.inPlace) {
      const { committed, previousTables } = await mysqlState(runner, plan, journalState);
      if (committed) {
        if (previousTables > 0) {
          await runToString(runner, sh`trap '' HUP INT TERM PIPE
set -e
${mysqlSql(plan.conn, `SET SESSION lock_wait_timeout = 30;\n${mysqlPlanVars(plan)}${MYSQL_ROLLBACK_SQL}`)}
${applyViews(plan, 'views-previous.sql')}`);
        } else {
          // The live database held no tables before: the restored ones move out again.
          await runToString(runner, mysqlSql(plan.conn, mysqlVars({ fresh: plan.target, target: plan.rejected! }) + MYSQL_MOVE_SQL));
          await runToString(runner, applyViews(plan, 'views-previous.sql'));
          if (!plan.targetExists) await runToString(runner, mysqlSql(plan.conn, mysqlPlanVars(plan) + mysqlDropSql(['live'])));
        }
      }
      await runToString(runner, mysqlSql(plan.conn, mysqlPlanVars(plan) + mysqlDropSql(['fresh', 'prev', 'rej'])));
    } else {
      await runToString(runner, mysqlSql(plan.conn, mysqlPlanVars(plan) + mysqlDropSql(['fresh'])));
    }
    await runToString(runner, sh`rm -rf -- ${plan.workDir}`);
    return;
  }
  const w = plan.workDir;
  const base = path.posix.basename(plan.target);
  await runToString(runner, sh`trap '' HUP INT TERM PIPE
set -e
w=${w}; t=${plan.target}; b=${base}
[ -d "$w" ] || exit 0
exec 9>>"$w/lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
[ -d "$w" ] || exit 0
state=$(cat "$w/journal" 2>/dev/null || echo staging)
if [ ${plan.inPlace ? 'yes' : 'no'} = yes ] && { [ "$state" = swapping ] || [ "$state" = swapped ]; }; then
  if [ ! -e "$w/new.db" ]; then
    # The restored file is in place: it goes, with whatever -wal/-shm it grew.
    for s in '' -wal -shm -journal; do rm -f -- "$t$s"; done
  fi
  for s in '' -wal -shm -journal; do if [ -e "$w/previous/$b$s" ]; then mv -- "$w/previous/$b$s" "$t$s"; fi; done
fi
rm -rf -- "$w"`);
}

/** What `recoverDbRestores` found and did. */
export interface RecoveredDbRestore {
  plan: DbRestorePlan;
  /**
   * `rolled-back`: the device is back to its original state; `swapped`: restored, waiting for
   * confirmation; `kept`: a keep had begun (or another part of the restore was kept), so it was finished.
   */
  outcome: 'rolled-back' | 'swapped' | 'kept';
}

/**
 * Settles database restores an interruption left behind (killed console, cut link, full disk):
 * every work folder in the home work folder and in `besideDirs` (folders of SQLite files) is rolled
 * back unless its swap completed — then it is kept, restored, waiting for confirmation.
 */
export async function recoverDbRestores(device: CommandRunner, where: { besideDirs?: string[]; postgres?: PostgresSource[]; mysql?: MysqlSource[]; kept?: ReadonlySet<string> } = {}): Promise<RecoveredDbRestore[]> {
  const besideDirs = where.besideDirs ?? [];
  const listing = await runToString(
    device,
    sh`show() {
  w=$1; [ -f "$w/plan.json" ] || return 0
  # A swap script still running (its console died a moment ago) is waited for.
  if command -v flock >/dev/null 2>&1; then flock "$w/lock" true 2>/dev/null || true; fi
  printf '%s\t' "$(cat "$w/journal" 2>/dev/null || echo staging)"; tr -d '\n' < "$w/plan.json"; echo
}
for w in "$HOME"/${raw(DB_WORK_DIR)}/*; do show "$w"; done
for d in ${besideDirs}; do for w in "$d"/${raw(SQLITE_BESIDE_PREFIX)}*; do show "$w"; done; done
true`,
  );
  const out: RecoveredDbRestore[] = [];
  for (const line of listing.split('\n').filter(Boolean)) {
    const tab = line.indexOf('\t');
    const state = line.slice(0, tab);
    let plan: DbRestorePlan;
    try {
      plan = JSON.parse(line.slice(tab + 1)) as DbRestorePlan;
    } catch {
      continue; // a plan file cut short while it was written: nothing was staged yet
    }
    const runner = planRunner(device, plan);
    if (state === 'kept') {
      // A keep cut off part-way: the previous copy may be dropped already, so it is finished, never rolled back.
      await confirmDbRestore(device, plan);
      out.push({ plan, outcome: 'kept' });
      continue;
    }
    let swapped = plan.inPlace && state === 'swapped';
    if (plan.kind === 'mysql' && plan.inPlace) {
      // The tables are the truth: the one RENAME either moved all of them or none.
      swapped = state !== 'rolling-back' && (await mysqlState(runner, plan, state)).committed;
      if (swapped && state !== 'swapped') {
        // Cut between the rename and the views: the views step is idempotent, finish it.
        await runToString(runner, applyViews(plan, 'views.sql'));
        await runToString(runner, journal(plan, 'swapped'));
      }
    }
    if (plan.kind === 'postgres' && plan.inPlace) {
      // The names are the truth: the swap transaction either committed or it did not.
      const existing = await pgExisting(runner, plan, [plan.fresh!, plan.previous!]);
      swapped = !existing.has(plan.fresh!) && (existing.has(plan.previous!) || (!plan.targetExists && state !== 'staging' && state !== 'verified' && state !== 'staged'));
      if (state === 'rolling-back') swapped = false; // a rollback was cut short: it is finished now
      if (swapped && state !== 'swapped') await runToString(runner, journal(plan, 'swapped'));
    }
    if (swapped && where.kept?.has(plan.restoreId)) {
      // Another part of the same restore (its files) was being kept: the restore is kept whole.
      await confirmDbRestore(device, plan);
      out.push({ plan, outcome: 'kept' });
      continue;
    }
    if (swapped) {
      out.push({ plan, outcome: 'swapped' });
      continue;
    }
    await rollbackDbRestore(runner, plan);
    out.push({ plan, outcome: 'rolled-back' });
  }
  // A CREATE DATABASE still in flight when its console died can land after the work folder was
  // cleaned: new/rejected databases of no pending restore are dropped too (previous ones never are).
  const pending = new Set(out.filter((o) => o.outcome === 'swapped').map((o) => o.plan.restoreId));
  for (const source of where.postgres ?? []) {
    const runner = forDatabase(device, source);
    const conn = pgConn(source);
    const maintenanceDb = source.database === 'postgres' ? 'template1' : 'postgres';
    const orphans = await runToString(
      runner,
      psql({ conn }, maintenanceDb, { base: pgNames(source.database, 'x').fresh.slice(0, -'_jv_new_x'.length) }, "SELECT datname FROM pg_database WHERE left(datname, length(:'base') + 8) IN (:'base' || '_jv_new_', :'base' || '_jv_rej_');"),
    ).catch(() => '');
    for (const name of orphans.split('\n').filter(Boolean)) {
      if (pending.has(name.slice(name.lastIndexOf('_') + 1))) continue;
      await runToString(runner, psql({ conn }, maintenanceDb, { t: name }, dropSql(['t'])));
    }
  }
  for (const source of where.mysql ?? []) {
    const runner = forDatabase(device, source);
    const conn = mysqlConn(source);
    const base = mysqlNames(source.database, 'x').fresh.slice(0, -'_jv_new_x'.length);
    const orphans = await runToString(
      runner,
      mysqlSql(conn, `${mysqlVars({ base })}SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, CHAR_LENGTH(@base) + 8) IN (CONCAT(@base, '_jv_new_'), CONCAT(@base, '_jv_rej_'));\n`),
    ).catch(() => '');
    for (const name of orphans.split('\n').filter(Boolean)) {
      if (pending.has(name.slice(name.lastIndexOf('_') + 1))) continue;
      await runToString(runner, mysqlSql(conn, mysqlVars({ t: name }) + mysqlDropSql(['t'])));
    }
  }
  return out;
}

/**
 * Whether a MySQL swap committed: the new database gave up its tables (all at once) and the previous
 * one holds the live database's former tables — or, when the live database had none, the journal
 * got past the rename.
 */
async function mysqlState(runner: CommandRunner, plan: DbRestorePlan, journalState: string): Promise<{ committed: boolean; previousTables: number }> {
  const [previousTables = 0, freshTables = 0, previousExists = 0] = (await runToString(runner, mysqlSql(plan.conn, mysqlVars({ a: plan.previous!, b: plan.fresh! }) + MYSQL_TABLES_SQL)))
    .trim()
    .split('\t')
    .map(Number);
  const freshGone = freshTables === 0;
  const committed = freshGone && (previousTables > 0 || (previousExists === 1 && (journalState === 'swapped' || journalState === 'swapping')));
  return { committed, previousTables };
}

/** One database restored, checked and swapped in place (or put under another name), as one call. */
export async function executeDbRestore(
  options: DbRestoreOptions,
  plan: DbRestorePlan,
  hooks: DbStageProgress & { beforeSwap?(): Promise<void>; afterSwap?(): Promise<void> } = {},
): Promise<DbValidation> {
  try {
    await stageDbRestore(options, plan, hooks);
  } catch (error) {
    await rollbackDbRestore(options.runner, plan).catch(() => undefined);
    throw error;
  }
  if (!plan.inPlace) return { ok: true, rows: plan.expectedRows ?? {}, problems: [], integrity: null };
  await hooks.beforeSwap?.();
  try {
    await swapDbRestore(options.runner, plan);
  } finally {
    await hooks.afterSwap?.();
  }
  return validateDbRestore(options.runner, plan);
}

export interface ScratchRestoreOptions {
  repo: Repository;
  runner: CommandRunner;
  snapshot: SnapshotWithId;
  source: DatabaseSource;
  /** Database name (postgres) or absolute file path (sqlite) to restore into; default a unique scratch name. */
  scratch?: string;
  restoreId?: string;
  /** Leave the scratch database/file in place (inspection); by default it is removed after validation. */
  keep?: boolean;
  signal?: AbortSignal;
  progress?: DbStageProgress;
  /** Send the dump gzip'ed, as a restore over the same link would (decision 019). */
  compress?: boolean;
}

export interface ScratchRestoreResult {
  source: string;
  kind: 'postgres' | 'sqlite' | 'mysql';
  snapshotId: string;
  /** The scratch database name or file path. */
  target: string;
  bytes: number;
  /** Rows found in the restored copy, and what the snapshot recorded (null: not recorded). */
  rows: RowCounts;
  expectedRows: RowCounts | null;
  /** SQLite: PRAGMA integrity_check of the restored copy. */
  integrity: string | null;
  ok: boolean;
  problems: string[];
  /** From the first byte sent to a validated copy (excludes the clean-up). */
  durationMs: number;
  removed: boolean;
}

/**
 * Restores a database snapshot into a scratch database / file on the device, validates it (opens,
 * row counts equal the snapshot's, SQLite integrity_check), and removes it again unless `keep`.
 * The live database is never touched. Used by restore drills and "restore for inspection".
 */
export async function restoreDatabaseScratch(options: ScratchRestoreOptions): Promise<ScratchRestoreResult> {
  const restoreId = options.restoreId ?? `${Date.now().toString(36)}${Math.random().toString(16).slice(2, 8)}`;
  const { source } = options;
  const scratch =
    options.scratch ??
    (source.kind === 'postgres'
      ? pgNames(source.database, restoreId).fresh.replace('_jv_new_', '_jv_drill_')
      : source.kind === 'mysql'
        ? mysqlNames(source.database, restoreId).fresh.replace('_jv_new_', '_jv_drill_')
        : join(path.posix.dirname(source.path), `${DEVICE_WORK_PREFIX}drill-${restoreId}-${path.posix.basename(source.path)}`));
  const target = source.kind === 'sqlite' ? { path: scratch } : { database: scratch };
  if (scratch === (source.kind === 'sqlite' ? source.path : source.database)) {
    throw new AppError('VALIDATION', 'A scratch restore needs a name other than the live database');
  }
  const dbOptions: DbRestoreOptions = { repo: options.repo, runner: options.runner, snapshot: options.snapshot, source, restoreId, target, ...(options.signal ? { signal: options.signal } : {}), ...(options.compress ? { compress: true } : {}) };
  const started = Date.now();
  const plan = await planDbRestore(dbOptions);
  await executeDbRestore(dbOptions, plan, options.progress);
  const validation = await validateDbRestore(options.runner, plan);
  const durationMs = Date.now() - started;
  let removed = false;
  if (!options.keep) {
    await dropScratch(options.runner, plan);
    removed = true;
  }
  return {
    source: source.name,
    kind: source.kind,
    snapshotId: options.snapshot.id,
    target: scratch,
    bytes: plan.dumpBytes,
    rows: validation.rows,
    expectedRows: plan.expectedRows,
    integrity: validation.integrity,
    ok: validation.ok,
    problems: validation.problems,
    durationMs,
    removed,
  };
}

/** Removes a scratch database / file made by `restoreDatabaseScratch` (or a restore to another name). */
export async function dropScratch(to: CommandRunner, plan: Pick<DbRestorePlan, 'source' | 'kind' | 'target' | 'conn' | 'maintenanceDb' | 'inPlace'>): Promise<void> {
  const runner = planRunner(to, plan);
  if (plan.inPlace) throw new AppError('VALIDATION', 'Refusing to drop a live database');
  if (plan.kind === 'postgres') await runToString(runner, psql(plan, plan.maintenanceDb ?? 'postgres', { t: plan.target }, dropSql(['t'])));
  else if (plan.kind === 'mysql') await runToString(runner, mysqlSql(plan.conn, mysqlVars({ t: plan.target }) + mysqlDropSql(['t'])));
  else await runToString(runner, sh`t=${plan.target}; rm -f -- "$t" "$t-wal" "$t-shm" "$t-journal"`);
}
