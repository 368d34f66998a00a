/**
 * The MySQL/MariaDB side of a database restore (db-restore.ts runs the phases and the journal).
 *
 * MySQL has no RENAME DATABASE, but one `RENAME TABLE a TO b, c TO d, …` statement moves any number
 * of tables between databases atomically (all or none). So, as for PostgreSQL:
 *   stage    the dump (mysqldump SQL) is loaded into a NEW database `<db>_jv_new_<id>` created with
 *            the live database's character set and collation, and its row counts must equal the
 *            ones recorded with the snapshot (counted from the dump's own INSERTs);
 *   swap     (services stopped) one statement renames every base table live → `<db>_jv_prev_<id>`
 *            and new → live; views stay in the live database (MySQL cannot move a view to another
 *            database) and keep pointing at `live`.`table`, so they read the restored tables. When
 *            the snapshot's views differ from the live ones, `views.sql` (written while staging)
 *            recreates them right after the rename and `views-previous.sql` puts the old ones back
 *            on rollback;
 *   keep     the previous tables stay in `<db>_jv_prev_<id>` until confirmed (dropped) or rolled back
 *            (renamed back, in one statement again).
 * Every statement that names a database or table is built inside the server from user variables set
 * with hex literals, so no name is ever pasted into SQL text or a shell here-document.
 * Triggers cannot be renamed into another database (ER_TRG_IN_WRONG_SCHEMA) and routines and events
 * belong to a database: a snapshot that holds any of them is refused before anything live moves.
 */
import { sh } from '../devices/shell-quote';
import type { RawShell } from '../devices/shell-quote';
import { mysqlOptions, mysqlText } from '../devices/sources/row-counts';
import type { MysqlConn } from '../devices/sources/row-counts';

/** Database names on the way, within MySQL's 64 characters whatever the live name is. */
export function mysqlNames(database: string, restoreId: string): { fresh: string; previous: string; rejected: string } {
  const room = 64 - restoreId.length - 9;
  const base = [...database].length > room ? [...database].slice(0, room).join('') : database;
  return { fresh: `${base}_jv_new_${restoreId}`, previous: `${base}_jv_prev_${restoreId}`, rejected: `${base}_jv_rej_${restoreId}` };
}

/** The mysql client, quiet and tab-separated, reading SQL from stdin (a here-document or a file). */
export function mysqlClient(conn: MysqlConn, database?: string): RawShell {
  return sh`mysql ${mysqlOptions(conn)} --batch --skip-column-names ${database ? [`--database=${database}`] : []}`;
}

/** `SET @name = <hex literal>, …;` — the only way names enter the scripts below. */
export function mysqlVars(vars: Record<string, string>): string {
  return `SET ${Object.entries(vars)
    .map(([k, v]) => `@${k} = ${mysqlText(v)}`)
    .join(', ')};\n`;
}

/** A quoted identifier, computed by the server. */
const Q = (expr: string) => `CONCAT('\`', REPLACE(${expr}, '\`', '\`\`'), '\`')`;
const run = (expr: string) => `SET @jv_s = ${expr};\nPREPARE jv_st FROM @jv_s;\nEXECUTE jv_st;\nDEALLOCATE PREPARE jv_st;\n`;
const baseTables = (schemaVar: string) => `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = @${schemaVar} AND TABLE_TYPE = 'BASE TABLE'`;

/** Prints: whether the database exists (-1 if not, else its bytes), then its triggers, routines and events, and the server's data directory. */
export const MYSQL_PROBE_SQL = `SELECT IF(EXISTS(SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @db),
  (SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = @db), -1),
  (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = @db),
  (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = @db),
  (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = @db),
  @@datadir;\n`;

/** Creates @fresh like @live (character set and collation), or with the server's defaults if @live does not exist. */
export const MYSQL_CREATE_SQL = `SELECT COALESCE((SELECT CONCAT(' CHARACTER SET ', DEFAULT_CHARACTER_SET_NAME, ' COLLATE ', DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @live), '') INTO @jv_cs;
${run(`CONCAT('CREATE DATABASE ', ${Q('@fresh')}, @jv_cs)`)}`;

/**
 * One RENAME TABLE moving every base table of @a to @b and of @c to @a — all or nothing. Runs only
 * while @c still holds tables (run again after it committed, it does nothing).
 */
function renameSql(a: string, b: string, c: string): string {
  return `SET SESSION group_concat_max_len = 67108864;
${run(`CONCAT('CREATE DATABASE IF NOT EXISTS ', ${Q(`@${b}`)})`)}${run(`CONCAT('CREATE DATABASE IF NOT EXISTS ', ${Q(`@${a}`)})`)}SELECT GROUP_CONCAT(r ORDER BY k, t SEPARATOR ', ') INTO @jv_r FROM (
  SELECT 1 AS k, t, CONCAT(${Q(`@${a}`)}, '.', ${Q('t')}, ' TO ', ${Q(`@${b}`)}, '.', ${Q('t')}) AS r FROM (${baseTables(a)}) x
  UNION ALL SELECT 2, t, CONCAT(${Q(`@${c}`)}, '.', ${Q('t')}, ' TO ', ${Q(`@${a}`)}, '.', ${Q('t')}) FROM (${baseTables(c)}) y) z;
${run(`IF((SELECT COUNT(*) FROM (${baseTables(c)}) w) > 0, CONCAT('RENAME TABLE ', @jv_r), 'DO 0')`)}`;
}

/** The swap: live tables → @prev, new tables → @live, in one statement. */
export const MYSQL_SWAP_SQL = renameSql('live', 'prev', 'fresh');
/** The rollback of a committed swap: restored tables → @rej, previous tables → @live, in one statement. */
export const MYSQL_ROLLBACK_SQL = renameSql('live', 'rej', 'prev');

/** Moves every base table of @fresh to @target (a restore under another name), in one statement. */
export const MYSQL_MOVE_SQL = `SET SESSION group_concat_max_len = 67108864;
${run(`CONCAT('CREATE DATABASE ', ${Q('@target')})`)}SELECT GROUP_CONCAT(CONCAT(${Q('@fresh')}, '.', ${Q('t')}, ' TO ', ${Q('@target')}, '.', ${Q('t')}) ORDER BY t SEPARATOR ', ') INTO @jv_r FROM (${baseTables('fresh')}) x;
${run(`IF(@jv_r IS NULL, 'DO 0', CONCAT('RENAME TABLE ', @jv_r))`)}`;

/** Drops each database named by a variable, if it exists. */
export const mysqlDropSql = (vars: string[]) => vars.map((v) => run(`CONCAT('DROP DATABASE IF EXISTS ', ${Q(`@${v}`)})`)).join('');

/** Prints the number of base tables in @a and in @b (recovery reads the state from them). */
export const MYSQL_TABLES_SQL = `SELECT (SELECT COUNT(*) FROM (${baseTables('a')}) x), (SELECT COUNT(*) FROM (${baseTables('b')}) y), EXISTS(SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = @a);\n`;

/**
 * Prints one line per view of @db: hex(name), then hex of a complete CREATE OR REPLACE statement for
 * that view in @into (its definition re-pointed from @db to @into), so the console can compare view
 * sets and write them to a file without ever parsing SQL.
 */
export const MYSQL_VIEWS_SQL = `SELECT HEX(TABLE_NAME), HEX(CONCAT('CREATE OR REPLACE DEFINER=', ${Q("SUBSTRING_INDEX(DEFINER, '@', 1)")}, '@', ${Q("SUBSTRING_INDEX(DEFINER, '@', -1)")},
  ' SQL SECURITY ', SECURITY_TYPE, ' VIEW ', ${Q('@into')}, '.', ${Q('TABLE_NAME')}, ' AS ',
  REPLACE(VIEW_DEFINITION, CONCAT(${Q('@db')}, '.'), CONCAT(${Q('@into')}, '.')),
  IF(CHECK_OPTION = 'NONE', '', CONCAT(' WITH ', CHECK_OPTION, ' CHECK OPTION')), ';'))
FROM information_schema.VIEWS WHERE TABLE_SCHEMA = @db ORDER BY TABLE_NAME;\n`;

/** name → CREATE OR REPLACE statement, from MYSQL_VIEWS_SQL's output. */
export function parseViews(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [name, statement] = line.split('\t');
    if (name && statement) out.set(Buffer.from(name, 'hex').toString('utf8'), Buffer.from(statement, 'hex').toString('utf8'));
  }
  return out;
}

const ident = (name: string) => `\`${name.replace(/`/g, '``')}\``;

/**
 * The SQL that turns the views of `database` from `from` into `to` (statements already re-pointed at
 * `database`): every view of `to` created or replaced, every view only in `from` dropped. Null when
 * the two sets are equal — then the views need nothing at all.
 */
export function viewsChange(database: string, from: Map<string, string>, to: Map<string, string>): string | null {
  const same = from.size === to.size && [...to].every(([name, statement]) => from.get(name) === statement);
  if (same) return null;
  const drops = [...from.keys()].filter((name) => !to.has(name)).map((name) => `DROP VIEW IF EXISTS ${ident(database)}.${ident(name)};`);
  return [...drops, ...to.values()].join('\n') + '\n';
}
