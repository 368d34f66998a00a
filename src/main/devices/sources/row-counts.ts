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

/** One JSON object `{"schema.table": rows}` for every ordinary and partitioned table outside the catalogs. */
export const PG_COUNTS_SQL =
  "SELECT coalesce(json_object_agg(format('%s.%s', quote_ident(n.nspname), quote_ident(c.relname)), " +
  "(xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint " +
  "ORDER BY n.nspname, c.relname), '{}') FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
  "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'";

/** Connection environment for psql/pg_dump/pg_restore (quoted assignments, exported). */
export function pgEnv(conn: { host?: string | undefined; port?: number | undefined; user?: string | undefined }): RawShell {
  return sh`export PGCONNECT_TIMEOUT=15${conn.host ? sh` PGHOST=${conn.host}` : raw('')}${conn.port ? sh` PGPORT=${conn.port}` : raw('')}${conn.user ? sh` PGUSER=${conn.user}` : raw('')}`;
}

/** Prints the row counts (JSON) of a database. */
export function pgCountsCommand(conn: { host?: string | undefined; port?: number | undefined; user?: string | undefined }, database: string): RawShell {
  return sh`${pgEnv(conn)}
psql -X -q -At -v ON_ERROR_STOP=1 --no-password --dbname=${database} -c ${PG_COUNTS_SQL}`;
}

/** SQL that writes one counting statement per table; its output, run again, prints `hex(name)|rows`. */
const SQLITE_COUNT_STATEMENTS =
  "SELECT 'SELECT ' || quote(hex(name)) || ', count(*) FROM \"' || replace(name, '\"', '\"\"') || '\";' FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name;";

/** Prints `hex(table)|rows` lines for a SQLite file (only reads it). */
export function sqliteCountsCommand(file: RawShell | string): RawShell {
  const f = typeof file === 'string' ? sh`${file}` : file;
  return sh`sqlite3 -batch ${f} ${SQLITE_COUNT_STATEMENTS} | sqlite3 -batch ${f}`;
}

export function parseSqliteCounts(text: string): RowCounts {
  const out: RowCounts = {};
  for (const line of text.split('\n')) {
    const bar = line.indexOf('|');
    if (bar <= 0) continue;
    out[Buffer.from(line.slice(0, bar), 'hex').toString('utf8')] = Number(line.slice(bar + 1));
  }
  return out;
}

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
