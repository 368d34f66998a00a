/**
 * Database sources as archiver Sources: the dump streams from the device over SSH exec into the
 * repository as one file. A dump that exits non-zero throws from `entries()` after its bytes were
 * read, which aborts the backup before any snapshot is written: a failed dump never yields a
 * "valid" snapshot.
 *
 * - postgres: `pg_dump --format=custom --compress=0` — uncompressed so it deduplicates across runs,
 *   custom so pg_restore can restore selectively and into another database name. It dumps the
 *   snapshot of a psql transaction that counts every table's rows in that same snapshot, so the
 *   recorded row counts (`<source>.rowcounts.json`) are exactly the dump's;
 * - sqlite: the online `.backup` API into a private temp dir on the device, `PRAGMA
 *   integrity_check` and row counts on the copy (kept beside the dump), then the copy is streamed
 *   and removed;
 * - mysql: `mysqldump --single-transaction` (consistent for InnoDB without locking); the row counts
 *   are read from the dump itself as it streams past (its INSERT tuples per table).
 */
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { AppError } from '../../../shared/errors';
import type { MysqlSourceSchema, PostgresSourceSchema, SqliteSourceSchema } from '../../../shared/schemas/devices';
import type { Source, SourceEntry, SourceWarning } from '../../repository/archiver/source';
import type { NodeMeta } from '../../repository/snapshot/tree';
import { raw, sh } from '../shell-quote';
import type { RawShell } from '../shell-quote';
import type { CommandRunner, RunningCommand } from '../ssh-connection';
import { MysqlDumpCounter, mysqlOptions, PG_COUNTS_SQL, parsePgCounts, parseSqliteCounts, pgEnv, rowCountsFileName, sqliteCountsCommand } from './row-counts';
import type { RowCounts } from './row-counts';

type DumpConfig = z.infer<typeof PostgresSourceSchema> | z.infer<typeof SqliteSourceSchema> | z.infer<typeof MysqlSourceSchema>;

/** The file name a dump gets inside its snapshot. */
export function dumpFileName(source: DumpConfig): string {
  return source.kind === 'postgres' ? `${source.name}.pgdump` : source.kind === 'sqlite' ? `${source.name}.sqlite3` : `${source.name}.sql`;
}

export function pgDumpCommand(source: z.infer<typeof PostgresSourceSchema>): RawShell {
  const opts = [
    ...(source.host ? [`--host=${source.host}`] : []),
    ...(source.port ? [`--port=${source.port}`] : []),
    ...(source.user ? [`--username=${source.user}`] : []),
    `--dbname=${source.database}`,
  ];
  return sh`pg_dump --format=custom --compress=0 --no-password ${opts}`;
}

/**
 * pg_dump of the snapshot exported by a REPEATABLE READ transaction that counts the rows of every
 * table in that same snapshot into `<tempDir>/counts`. The dump goes to stdout (fd 3 inside psql's
 * `\!`), everything else to stderr; any failure exits 1, as pg_dump itself does.
 */
export function pgDumpWithCountsCommand(source: z.infer<typeof PostgresSourceSchema>, tempDir: string): RawShell {
  return sh`${pgEnv(source)} PGDATABASE=${source.database} JV_T=${tempDir}
exec 3>&1
psql -X -q -At -v ON_ERROR_STOP=1 --no-password -v counts=${`${tempDir}/counts`} -v count_sql=${PG_COUNTS_SQL} >&2 <<'SQL' || exit 1
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT pg_export_snapshot() AS jv_snapshot \\gset
\\setenv JV_SNAPSHOT :jv_snapshot
:count_sql \\g :counts
\\! pg_dump --format=custom --compress=0 --no-password --snapshot="$JV_SNAPSHOT" >&3 || touch "$JV_T/failed"
COMMIT;
SQL
exec 3>&-
[ ! -e "$JV_T/failed" ] || exit 1
[ -s "$JV_T/counts" ] || { echo "the row counts were not written" >&2; exit 1; }`;
}

export function mysqlDumpCommand(source: z.infer<typeof MysqlSourceSchema>): RawShell {
  return sh`mysqldump --single-transaction --routines --triggers --events ${mysqlOptions(source)} -- ${source.database}`;
}

/** Copies the database online into a private temp dir and checks the copy; prints the dir, then the check. */
export function sqliteSnapshotCommand(path: string): RawShell {
  return sh`set -e
[ -r ${path} ] || { echo "cannot read "${path} >&2; exit 66; }
t=$(mktemp -d "\${TMPDIR:-/tmp}/jetvault-sqlite.XXXXXX")
if ! sqlite3 -bail ${path} ${raw(`".backup '$t/copy.db'"`)} >&2; then rm -rf "$t"; exit 74; fi
printf '%s\\n' "$t"
sqlite3 "$t/copy.db" 'PRAGMA integrity_check;'
echo @@rows
${sqliteCountsCommand(raw('"$t/copy.db"'))}`;
}

/** Streams the copy and removes its temp dir whatever happens. */
export function sqliteStreamCommand(tempDir: string): RawShell {
  return sh`trap 'rm -rf '${tempDir} EXIT; cat -- ${tempDir}/copy.db`;
}

function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

export class DumpSource implements Source {
  readonly kind: string;
  readonly paths: string[];
  readonly warnings: SourceWarning[] = [];
  /** For SQLite: the integrity_check result of the copy that was backed up. */
  integrity: string | null = null;
  /** Rows per table of what was backed up, also kept in the snapshot. */
  rowCounts: RowCounts | null = null;
  /** Bytes of the dump read from the device so far. */
  bytesRead = 0;
  readonly #runner: CommandRunner;
  readonly #source: DumpConfig;

  constructor(runner: CommandRunner, source: DumpConfig) {
    this.#runner = runner;
    this.#source = source;
    this.kind = source.kind;
    this.paths = [source.kind === 'sqlite' ? source.path : `${source.kind}:${source.database}`];
  }

  async *entries(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    const source = this.#source;
    let command: RawShell;
    let pgTemp: string | null = null;
    let counter: MysqlDumpCounter | null = null;
    if (source.kind === 'sqlite') {
      const out = await this.#runner.run(sqliteSnapshotCommand(source.path), { signal }).catch((error: unknown) => {
        throw new AppError('REMOTE_COMMAND_FAILED', `SQLite backup of ${source.path} on ${this.#runner.target} failed: ${(error as Error).message}`);
      });
      const [head, rows = ''] = out.split('\n@@rows\n');
      const [tempDir, ...check] = head!.trim().split('\n');
      this.integrity = check.join('\n').trim() || 'unknown';
      this.rowCounts = parseSqliteCounts(rows);
      command = sqliteStreamCommand(tempDir!);
      yield { path: `${source.name}.integrity-check.txt`, meta: this.#meta(this.integrity.length + 1), open: () => oneChunk(`${this.integrity}\n`) };
      yield this.#countsEntry(source.name, this.rowCounts);
    } else if (source.kind === 'postgres') {
      pgTemp = (await this.#runner.run(sh`mktemp -d "\${TMPDIR:-/tmp}/jetvault-pg.XXXXXX"`, { signal })).trim();
      command = pgDumpWithCountsCommand(source, pgTemp);
    } else {
      command = mysqlDumpCommand(source);
      counter = new MysqlDumpCounter();
    }
    try {
      const running = await this.#runner.exec(command, signal);
      running.stdin.end();
      const meta = this.#meta(0);
      yield { path: dumpFileName(source), meta, open: () => this.#counted(running, meta, counter) };
      // Resumed only after the archiver has read the whole dump: now its exit status is known.
      const result = await running.done;
      if (signal?.aborted) throw new AppError('CANCELLED', 'Cancelled');
      if (result.code !== 0) {
        throw new AppError(
          'REMOTE_COMMAND_FAILED',
          `The ${source.kind} dump of "${source.name}" on ${this.#runner.target} failed (exit ${result.code ?? result.signal}): ${result.stderr.trim() || 'no error output'}. No snapshot was written.`,
        );
      }
      if (pgTemp) {
        this.rowCounts = parsePgCounts(await this.#runner.run(sh`cat -- ${`${pgTemp}/counts`}`, { signal }));
        yield this.#countsEntry(source.name, this.rowCounts);
      }
      if (counter) {
        this.rowCounts = counter.end();
        yield this.#countsEntry(source.name, this.rowCounts);
      }
    } finally {
      if (pgTemp) await this.#runner.run(sh`rm -rf -- ${pgTemp}`).catch(() => undefined);
    }
  }

  #countsEntry(name: string, counts: RowCounts): SourceEntry {
    const text = `${JSON.stringify(counts)}\n`;
    return { path: rowCountsFileName(name), meta: this.#meta(Buffer.byteLength(text)), open: () => oneChunk(text) };
  }

  /** The dump's bytes; its size is only known at the end, so the node's size follows the stream. */
  async *#counted(running: RunningCommand, meta: NodeMeta, counter: MysqlDumpCounter | null): AsyncIterable<Buffer> {
    for await (const chunk of running.stdout) {
      counter?.push(chunk as Buffer);
      meta.size += (chunk as Buffer).length;
      this.bytesRead += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }

  #meta(size: number): NodeMeta {
    const now = nowNs();
    return { type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: now, ctime: now, size };
  }
}

function oneChunk(text: string): AsyncIterable<Buffer> {
  return Readable.from([Buffer.from(text, 'utf8')]);
}


