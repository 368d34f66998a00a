/**
 * Row counts per table, recorded with every database snapshot and compared after a restore.
 *
 * PostgreSQL: counted inside the transaction whose snapshot pg_dump uses (`pg_export_snapshot()` +
 * `pg_dump --snapshot`), so the counts are exactly the dump's rows even while the app writes.
 * SQLite: counted on the `.backup` copy that becomes the snapshot. Both are stored in the snapshot
 * as `<source>.rowcounts.json` (`{"public.deposits": 140000, …}`), keys as the engine quotes them.
 */
import { raw, sh } from '../shell-quote';
import type { RawShell } from '../shell-quote';

export type RowCounts = Record<string, number>;

/** The file a database snapshot keeps its row counts in. */
export const rowCountsFileName = (source: string) => `${source}.rowcounts.json`;

/**
 * One JSON object `{"schema.table": rows}` for every ordinary and partitioned table outside the
 * catalogs — not temporary tables, which pg_dump leaves out too and which no session may read but
 * its own ("cannot access temporary tables of other sessions" failed the backup for as long as an
 * app's session held one).
 */
export const PG_COUNTS_SQL =
  "SELECT coalesce(json_object_agg(format('%s.%s', quote_ident(n.nspname), quote_ident(c.relname)), " +
  "(xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint " +
  "ORDER BY n.nspname, c.relname), '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
  "WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'";

/** Connection environment for psql/pg_dump/pg_restore (quoted assignments, exported). */
export function pgEnv(conn: { host?: string | undefined; port?: number | undefined; user?: string | undefined }): RawShell {
  return sh`export PGCONNECT_TIMEOUT=15${conn.host ? sh` PGHOST=${conn.host}` : raw('')}${conn.port ? sh` PGPORT=${conn.port}` : raw('')}${conn.user ? sh` PGUSER=${conn.user}` : raw('')}`;
}

/**
 * A database name as `--dbname=` of psql and pg_restore takes it: a connection string naming it.
 * Given as it is, a name holding `=` ("app=prod") or starting as a URI is read as a connection
 * string itself ('missing "=" after …'), so its restores and drills failed.
 */
export function pgDbname(database: string): string {
  return `dbname='${database.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** Prints the row counts (JSON) of a database. */
export function pgCountsCommand(conn: { host?: string | undefined; port?: number | undefined; user?: string | undefined }, database: string): RawShell {
  return sh`${pgEnv(conn)}
psql -X -q -At -v ON_ERROR_STOP=1 --no-password --dbname=${pgDbname(database)} -c ${PG_COUNTS_SQL}`;
}

/**
 * SQL that writes one counting statement per table — virtual tables (rootpage 0) or the others —;
 * its output, run again, prints `hex(name)|rows`.
 */
const sqliteCountStatements = (virtual: boolean) =>
  `SELECT 'SELECT ' || quote(hex(name)) || ', count(*) FROM "' || replace(name, '"', '""') || '";' FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND rootpage ${virtual ? '=' : '<>'} 0 ORDER BY name;`;

/**
 * Prints `hex(table)|rows` lines for a SQLite file (only reads it). A table that cannot be counted
 * fails the command, except a virtual table whose module this sqlite3 lacks (an extension's, such
 * as sqlite-vec's `vec0` or SpatiaLite's): it is left out — its rows live in its shadow tables,
 * which are counted — where it made every backup and restore of the database fail ("no such
 * module"). The same tables are left out wherever the same sqlite3 counts.
 */
export function sqliteCountsCommand(file: RawShell | string): RawShell {
  const f = typeof file === 'string' ? sh`${file}` : file;
  return sh`sqlite3 -batch ${f} ${sqliteCountStatements(false)} | sqlite3 -batch ${f} || exit
{ sqlite3 -batch ${f} ${sqliteCountStatements(true)} | sqlite3 -batch ${f} 2>/dev/null; } || :`;
}

/** Lines of `<table name in hex><separator><count>` (sqlite3's `|`, mysql's tab): any name survives the trip. */
function parseHexCounts(text: string, separator: string): RowCounts {
  const out: RowCounts = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf(separator);
    if (at <= 0) continue;
    out[Buffer.from(line.slice(0, at), 'hex').toString('utf8')] = Number(line.slice(at + 1));
  }
  return out;
}

export const parseSqliteCounts = (text: string): RowCounts => parseHexCounts(text, '|');

export function parsePgCounts(text: string): RowCounts {
  const parsed = JSON.parse(text.trim() || '{}') as Record<string, number | string>;
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, Number(v)]));
}

/** Differences between what the snapshot recorded and what a database holds now ("" when equal). */
export function compareCounts(expected: RowCounts, actual: RowCounts): string[] {
  const out: string[] = [];
  for (const [table, rows] of Object.entries(expected)) {
    if (!(table in actual)) out.push(`${table}: missing (snapshot has ${rows} rows)`);
    else if (actual[table] !== rows) out.push(`${table}: ${actual[table]} rows, snapshot has ${rows}`);
  }
  for (const table of Object.keys(actual)) if (!(table in expected)) out.push(`${table}: not in the snapshot`);
  return out;
}

/** How the mysql client reaches the server (the source's socket / host / port / user). */
export interface MysqlConn {
  host?: string | undefined;
  socket?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
}

/**
 * Client options for mysql/mysqldump; no password on the command line (unix_socket auth or
 * ~/.my.cnf). The connection is utf8mb4 whatever the device's locale: the mysql client takes its
 * character set from the locale, which over SSH is often C (latin1), and then named a database
 * `dé` as `dÃ©` — "Unknown database" for every restore and drill of it.
 */
export function mysqlOptions(conn: MysqlConn): string[] {
  return [
    ...(conn.host ? [`--host=${conn.host}`] : []),
    ...(conn.socket ? [`--socket=${conn.socket}`] : []),
    ...(conn.port ? [`--port=${conn.port}`] : []),
    ...(conn.user ? [`--user=${conn.user}`] : []),
    '--default-character-set=utf8mb4',
  ];
}

/** A string as a MySQL literal that needs no quoting at all (hex, read as utf8mb4). */
export const mysqlText = (value: string) => (value === '' ? "''" : `CONVERT(0x${Buffer.from(value, 'utf8').toString('hex')} USING utf8mb4)`);

/**
 * Prints `hex(table)\trows` for every base table of a MySQL/MariaDB database: the first client
 * writes one COUNT(*) statement per table, the second runs them.
 */
export function mysqlCountsCommand(conn: MysqlConn, database: string): RawShell {
  const sql = `SELECT CONCAT('SELECT ', QUOTE(HEX(TABLE_NAME)), ', COUNT(*) FROM \`', REPLACE(TABLE_SCHEMA, '\`', '\`\`'), '\`.\`', REPLACE(TABLE_NAME, '\`', '\`\`'), '\`;') FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${mysqlText(database)} AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME;`;
  const opts = mysqlOptions(conn);
  return sh`set -o pipefail 2>/dev/null || true
mysql ${opts} --batch --skip-column-names -e ${sql} | mysql ${opts} --batch --skip-column-names`;
}

export const parseMysqlCounts = (text: string): RowCounts => parseHexCounts(text, '\t');

const LINE_INSERT = Buffer.from('INSERT INTO `');
const LINE_CREATE = Buffer.from('CREATE TABLE `');
const DELIMITER_OPEN = 'DELIMITER ;;';
const DELIMITER_CLOSE = 'DELIMITER ;';

/**
 * Counts the rows of a mysqldump stream as it passes: tuples of `INSERT INTO \`t\` VALUES (…),(…);`
 * per table, and 0 for every `CREATE TABLE` without data. mysqldump escapes newlines inside strings
 * (`\n`), so statements can be read line by line; strings are single-quoted with backslash escapes;
 * trigger and routine bodies (between `DELIMITER ;;` and `DELIMITER ;`) are skipped. The counts are
 * exactly the dump's rows — mysqldump's snapshot cannot be shared with a counting session the way
 * pg_dump's can.
 */
export class MysqlDumpCounter {
  readonly counts: RowCounts = {};
  /** Each table's storage engine, from the `) ENGINE=…` line that ends its CREATE TABLE. */
  readonly engines: Record<string, string> = {};
  #partial: Buffer[] = [];
  /** The table whose CREATE TABLE statement is being read (its engine comes on its last line). */
  #creating: string | null = null;
  #inDelimiter = false;
  #table: string | null = null;
  #depth = 0;
  #inString = false;
  #escape = false;

  push(chunk: Buffer): void {
    let at = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, at);
      if (nl < 0) {
        if (at < chunk.length) this.#partial.push(chunk.subarray(at));
        return;
      }
      const piece = chunk.subarray(at, nl);
      const line = this.#partial.length > 0 ? Buffer.concat([...this.#partial, piece]) : piece;
      this.#partial = [];
      this.#line(line);
      at = nl + 1;
    }
  }

  end(): RowCounts {
    if (this.#partial.length > 0) this.#line(Buffer.concat(this.#partial));
    this.#partial = [];
    return this.counts;
  }

  #line(line: Buffer): void {
    if (this.#table !== null) {
      this.#scan(line, 0);
      return;
    }
    if (this.#inDelimiter) {
      if (line.toString('latin1').trim() === DELIMITER_CLOSE) this.#inDelimiter = false;
      return;
    }
    if (this.#creating !== null && line[0] === 0x29) {
      // `) ENGINE=MyISAM AUTO_INCREMENT=… DEFAULT CHARSET=…;` closes the table's definition.
      const engine = /^\)\s*ENGINE\s*=\s*(\w+)/i.exec(line.toString('latin1'))?.[1];
      if (engine) this.engines[this.#creating] = engine;
      this.#creating = null;
      return;
    }
    if (line.subarray(0, DELIMITER_OPEN.length).toString('latin1') === DELIMITER_OPEN) {
      this.#inDelimiter = true;
      return;
    }
    for (const [prefix, insert] of [
      [LINE_INSERT, true],
      [LINE_CREATE, false],
    ] as const) {
      if (!line.subarray(0, prefix.length).equals(prefix)) continue;
      const { name, end } = identifier(line, prefix.length);
      this.counts[name] ??= 0;
      if (insert) {
        const values = line.indexOf('VALUES', end, 'latin1');
        this.#table = name;
        this.#depth = 0;
        this.#inString = false;
        this.#escape = false;
        this.#scan(line, values < 0 ? end : values + 6);
      } else {
        // Whole on one line (not as mysqldump writes it, but as a hand-made dump may): ended here.
        const text = line.toString('latin1');
        const engine = /\)\s*ENGINE\s*=\s*(\w+)/i.exec(text)?.[1];
        if (engine) this.engines[name] = engine;
        this.#creating = text.trimEnd().endsWith(';') ? null : name;
      }
      return;
    }
  }

  #scan(line: Buffer, from: number): void {
    for (let i = from; i < line.length; i++) {
      const b = line[i]!;
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (b === 0x5c) this.#escape = true; // backslash
        else if (b === 0x27) {
          if (line[i + 1] === 0x27) i++; // '' inside a string
          else this.#inString = false;
        }
      } else if (b === 0x27) this.#inString = true;
      else if (b === 0x28) {
        if (this.#depth === 0) this.counts[this.#table!] = (this.counts[this.#table!] ?? 0) + 1;
        this.#depth++;
      } else if (b === 0x29) this.#depth--;
      else if (b === 0x3b && this.#depth === 0) {
        this.#table = null;
        return;
      }
    }
  }
}

/**
 * Engines whose tables `mysqldump --single-transaction` reads in its one consistent snapshot. Any
 * other (MyISAM, Aria, MEMORY, CSV, ARCHIVE, MRG_MyISAM…) is read as it is when the dump reaches it.
 */
const TRANSACTIONAL_ENGINES = new Set(['innodb', 'xtradb', 'rocksdb', 'tokudb']);

/**
 * The tables of a dump (as MysqlDumpCounter read them) that were not in its consistent snapshot,
 * by engine, `[engine, tables]` in the order of the dump — empty when every table is transactional.
 */
export function nonTransactionalTables(engines: Record<string, string>): [string, string[]][] {
  const out = new Map<string, string[]>();
  for (const [table, engine] of Object.entries(engines)) {
    if (TRANSACTIONAL_ENGINES.has(engine.toLowerCase())) continue;
    out.set(engine, [...(out.get(engine) ?? []), table]);
  }
  return [...out];
}

/** A backtick-quoted identifier starting after its opening backtick at `from`: its name and the index after it. */
function identifier(line: Buffer, from: number): { name: string; end: number } {
  const parts: Buffer[] = [];
  let i = from;
  while (i < line.length) {
    const close = line.indexOf(0x60, i);
    if (close < 0) return { name: Buffer.concat([...parts, line.subarray(i)]).toString('utf8'), end: line.length };
    parts.push(line.subarray(i, close));
    if (line[close + 1] === 0x60) {
      parts.push(Buffer.from('`'));
      i = close + 2;
      continue;
    }
    return { name: Buffer.concat(parts).toString('utf8'), end: close + 1 };
  }
  return { name: Buffer.concat(parts).toString('utf8'), end: line.length };
}
