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
 *   and removed. A damaged copy is kept all the same, with what the check said (even when the check
 *   itself stopped) and the counts of the tables that could be counted: the run says so, and the
 *   device's other sources are backed up. Its sha256 is kept beside it too (`<source>.sqlite3.sha256`): when the next run's
 *   copy has the same sum, the device sends nothing and the snapshot reuses the previous copy's
 *   content (an unchanged 5 MB database costs 2 s per run on a 20 Mbit/s field link otherwise).
 *   Before the copy the command also fingerprints the database's files (`<source>.sqlite3.state`:
 *   size, mtime, inode and device of the file, its -wal and its -journal; not the ctime, which
 *   sqlite3 itself changes when it opens a WAL database as root — it chowns the -wal; through a
 *   symlink, those of the file it points to, beside which SQLite keeps its -wal). When the next
 *   run finds the same fingerprint the database has not been written since, so the device makes no
 *   copy, runs no check and sends nothing, and the snapshot carries the previous copy and its
 *   reports forward — no full-size copy written to the device's flash and read twice every run;
 * Each is one exec (one round trip, ~45 ms on loopback and 100+ ms on a field link): what is
 * learned besides the dump (row counts, the integrity check) follows a marker line on stderr, and
 * the command removes its own temp dir (named here, so a failed run can still remove it).
 * - mysql: `mysqldump --single-transaction` (consistent for InnoDB without locking); the row counts
 *   are read from the dump itself as it streams past (its INSERT tuples per table), and so are the
 *   tables' engines: tables of a non-transactional engine (MyISAM, Aria, MEMORY…), which the dump
 *   reads as they are when it reaches them, are named in a warning of the run (`inconsistent`).
 */
import { loginHint } from './db-password';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { z } from 'zod';
import { AppError } from '../../../shared/errors';
import { formatBytes } from '../../../shared/format-bytes';
import type { MysqlSourceSchema, PostgresSourceSchema, SqliteSourceSchema } from '../../../shared/schemas/devices';
import type { Source, SourceEntry, SourceWarning } from '../../repository/archiver/source';
import type { NodeMeta, TreeNode } from '../../repository/snapshot/tree';
import type { Repository } from '../../repository/repo/repository';
import type { Snapshot } from '../../repository/snapshot/snapshot';
import { readSmallFile, rootNode } from '../../repository/snapshot/snapshot';
import { raw, sh, STDBUF_PROBE } from '../shell-quote';
import type { RawShell } from '../shell-quote';
import { connectionLost } from '../ssh-connection';
import type { CommandRunner } from '../ssh-connection';
import { chunksOf } from '../stream-chunks';
import { execCompressed } from '../wire-compression';
import { MysqlDumpCounter, mysqlOptions, nonTransactionalTables, PG_COUNTS_SQL, parsePgCounts, parseSqliteCounts, pgEnv, rowCountsFileName, sqliteCountsCommand } from './row-counts';
import type { RowCounts } from './row-counts';
import { parsePgRoles, PG_ROLES_SQL, rolesFileName } from './pg-roles';
import { DEVICE_WORK_PREFIX } from './listing';

type DumpConfig = z.infer<typeof PostgresSourceSchema> | z.infer<typeof SqliteSourceSchema> | z.infer<typeof MysqlSourceSchema>;

/** The file name a dump gets inside its snapshot. */
export function dumpFileName(source: DumpConfig): string {
  return source.kind === 'postgres' ? `${source.name}.pgdump` : source.kind === 'sqlite' ? `${source.name}.sqlite3` : `${source.name}.sql`;
}

/** Where a SQLite source's snapshot keeps the sha256 of the copy it holds. */
export function checksumFileName(source: { name: string }): string {
  return `${source.name}.sqlite3.sha256`;
}

/** Where a SQLite source's snapshot keeps the fingerprint of the database's files its copy was taken from. */
export function stateFileName(source: { name: string }): string {
  return `${source.name}.sqlite3.state`;
}

/** A SQLite copy in the previous snapshot of a source: its node (content reused when unchanged) and sha256. */
export interface PreviousCopy {
  node: TreeNode;
  sha256: string;
  /**
   * When the previous run fingerprinted the database's files: the fingerprint, and what a run that
   * finds the files unchanged carries forward (the copy's reports as recorded, and their nodes).
   */
  unchanged?: { state: string; integrity: string; rowCounts: RowCounts; nodes: TreeNode[] };
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * A fingerprint of a SQLite database's files: one `size mtime inode device` line for each of the
 * file, its -wal and its -journal that exist. (Snapshots made before 2026-12-03 kept a sha256 of
 * these lines instead; such a parent does not match, and its next run takes one copy as before.)
 */
const FILES_STATE = /^\d+ \d+(\.\d+)? \d+ \d+(\n\d+ \d+(\.\d+)? \d+ \d+){0,2}$/;

/** The copy the parent snapshot of a SQLite source holds, if it recorded its sum. */
export async function previousCopy(repo: Repository, parent: Pick<Snapshot, 'tree'>, source: z.infer<typeof SqliteSourceSchema>): Promise<PreviousCopy | null> {
  // In the order a run writes them.
  const names = [dumpFileName(source), integrityFileName(source), checksumFileName(source), stateFileName(source), rowCountsFileName(source.name)];
  const [node, integrity, sum, state, counts] = await Promise.all(names.map((name) => rootNode(repo, parent, name)));
  if (!node?.content || !sum) return null;
  const sha256 = (await readSmallFile(repo, sum)).trim();
  if (!HEX64.test(sha256)) return null;
  if (!state || !integrity || !counts) return { node, sha256 };
  const [stateText = '', integrityText = '', countsText = ''] = await Promise.all([state, integrity, counts].map((n) => readSmallFile(repo, n)));
  let rowCounts: unknown;
  try {
    rowCounts = JSON.parse(countsText);
  } catch {
    return { node, sha256 };
  }
  return FILES_STATE.test(stateText.trim()) && isRowCounts(rowCounts)
    ? { node, sha256, unchanged: { state: stateText.trim(), integrity: integrityText.trim(), rowCounts, nodes: [node, integrity, sum, state, counts] } }
    : { node, sha256 };
}

function isRowCounts(value: unknown): value is RowCounts {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((n) => Number.isSafeInteger(n));
}

function integrityFileName(source: { name: string }): string {
  return `${source.name}.integrity-check.txt`;
}

/**
 * How long a PostgreSQL dump waits for a table another session holds locked (a migration, `VACUUM
 * FULL`): it used to wait for ever, holding the device's one job slot. Then it fails, saying why.
 */
export const PG_LOCK_WAIT_MS = 60_000;

/**
 * How long a MySQL dump may send nothing while it is being read. MariaDB's mysqldump has no lock
 * wait of its own (`lock_wait_timeout` defaults to a year, and neither an option nor an option file
 * can set it for mysqldump), so a table another session holds locked (LOCK TABLES, an ALTER TABLE)
 * held the run — and the device's one job slot — for as long as the lock. A dump streams its rows
 * as it reads them: minutes of silence is a lock, not a slow table.
 */
export const MYSQL_SILENCE_MS = 120_000;

/**
 * Free bytes below which a PostgreSQL dump's temp folder is taken to be why it failed with "No
 * space left on device": the row counts and roles it writes there are a few KiB, and below this
 * the server's own disk is not what filled up.
 */
export const PG_TEMP_LOW_BYTES = 1024 * 1024;

/** Marks where a dump command's report (row counts, integrity check) starts on stderr. */
export const REPORT_MARK = '@@jetvault-report@@';

/** A private temp dir on the device (under its $TMPDIR), removed when the command exits. */
function privateTemp(variable: string, name: string): RawShell {
  return sh`${raw(variable)}="\${TMPDIR:-/tmp}"/${name}
mkdir -m 700 "$${raw(variable)}" || { echo "no private folder could be made in the device's temp folder \${TMPDIR:-/tmp}: free space there, or point TMPDIR of the device's login at a folder it may write to" >&2; exit 1; }
trap 'rm -rf "$${raw(variable)}"' EXIT
trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`;
}

/**
 * pg_dump of the snapshot exported by a REPEATABLE READ transaction that counts the rows of every
 * table in that same snapshot into a private temp dir, and records the server's roles (pg-roles.ts).
 * The dump goes to stdout (fd 3 inside psql's `\!`), everything else to stderr; any failure exits 1,
 * as pg_dump itself does. The counts follow REPORT_MARK on stderr, the roles PG_ROLES_MARK.
 * The transaction sits idle while pg_dump runs, and counts whole tables: a server's
 * `idle_in_transaction_session_timeout` or `statement_timeout` (set for the database or role to
 * catch an app's leaked transactions) ended it, and with it every backup longer than that; both
 * are off for this transaction (where the server has them: pg_settings).
 */
export function pgDumpWithCountsCommand(source: z.infer<typeof PostgresSourceSchema>, tempName: string, lockWaitMs = PG_LOCK_WAIT_MS): RawShell {
  return sh`${pgEnv(source)} PGDATABASE=${source.database} JV_LOCK_WAIT=${`${lockWaitMs}ms`}
${privateTemp('JV_T', tempName)}
${STDBUF_PROBE}
export JV_T JV_W
exec 3>&1
jv_temp() { printf '%s\t%s\t\t%s\n' ${TEMP_MARK} "\${TMPDIR:-/tmp}" "$(df -Pk -- "$JV_T" 2>/dev/null | tail -n 1)" >&2; }
psql -X -q -At -v ON_ERROR_STOP=1 --no-password -v counts="$JV_T/counts" -v count_sql=${PG_COUNTS_SQL} -v roles="$JV_T/roles" -v roles_sql=${PG_ROLES_SQL} -v lock_wait="$JV_LOCK_WAIT" >&2 <<'SQL' || { jv_temp; exit 1; }
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT set_config('lock_timeout', :'lock_wait', true) \\g /dev/null
SELECT set_config(name, '0', true) FROM pg_settings WHERE name IN ('idle_in_transaction_session_timeout', 'statement_timeout') \\g /dev/null
SELECT pg_export_snapshot() AS jv_snapshot \\gset
\\setenv JV_SNAPSHOT :jv_snapshot
:count_sql \\g :counts
:roles_sql \\g :roles
\\! $JV_W pg_dump --format=custom --compress=0 --no-password --lock-wait-timeout="$JV_LOCK_WAIT" --snapshot="$JV_SNAPSHOT" >&3 || touch "$JV_T/failed"
COMMIT;
SQL
exec 3>&-
[ ! -e "$JV_T/failed" ] || exit 1
[ -s "$JV_T/counts" ] || { echo "the row counts were not written" >&2; jv_temp; exit 1; }
echo ${REPORT_MARK} >&2
cat -- "$JV_T/counts" >&2
echo ${PG_ROLES_MARK} >&2
cat -- "$JV_T/roles" >&2`;
}

export function mysqlDumpCommand(source: z.infer<typeof MysqlSourceSchema>): RawShell {
  // Not through stdbuf (STDBUF_PROBE): with a stored password `mysqldump` is a shell function
  // (db-password.ts) that stdbuf, a program, would bypass.
  return sh`mysqldump --single-transaction --routines --triggers --events ${mysqlOptions(source)} -- ${source.database}`;
}

/**
 * How long `.backup` waits for a writer's lock before it gives up (SQLite's busy timeout). A
 * database in the default rollback-journal mode is locked for the length of every write
 * transaction; without a timeout the copy failed at once ("database is locked") and with it the run.
 */
export const SQLITE_BUSY_MS = 30_000;

/**
 * How long a rollback-journal SQLite database is copied step by step (`.backup`, which starts over
 * after every write of another connection) before it is copied inside one read transaction: a
 * database its app writes to every few tens of ms was otherwise never copied.
 */
export const SQLITE_STEPS_S = 60;

/** Reported instead of a SQLite copy's report when the database's files are as fingerprinted last time. */
export const SQLITE_UNCHANGED_MARK = '@@unchanged';

/**
 * How long a database's files must have been left alone before their fingerprint is trusted: a
 * write in the same clock tick as the fingerprint (file times advance in ticks of a few ms, of 2 s
 * on FAT) would leave every field as it was, so a fingerprint taken that soon after a change is not
 * recorded. No coarser than this window, any later write moves the mtime past the recorded one.
 */
export const SQLITE_SETTLE_S = 2;

/**
 * Backs up a live SQLite database into a private copy and streams it, unless its sha256 equals
 * `unlessSha256` (the previous run's copy): then nothing is sent. Reports its integrity check, row
 * counts, sum and the fingerprint of the database's files taken before the copy (their `find`
 * lines as they are; empty when they changed within SQLITE_SETTLE_S, or the device lacks GNU find). When that
 * fingerprint equals `unlessState` nothing is copied, checked or sent: the report is
 * SQLITE_UNCHANGED_MARK. Without `sha256sum` on the device the sum is empty and the copy is always sent.
 */
export function sqliteDumpCommand(path: string, tempName: string, unlessSha256 = '', unlessState = '', stepSeconds = SQLITE_STEPS_S): RawShell {
  // sqlite3's .backup copies 100 pages a step and starts over whenever another connection wrote
  // between two steps: a WAL database its app commits to every few ms was never copied (64 MB
  // still copying after 35 s, 0.6 s when left alone), holding the device's job slot. Beside a -wal,
  // a read transaction held across the copy keeps one snapshot for every step — writers go on, in
  // WAL mode readers block no one. `PRAGMA user_version` starts it without reading the schema, so
  // a damaged one is still copied. A rollback-journal database is copied step by step first (its
  // writers get in between steps); only one still copying after SQLITE_STEPS_S is copied again
  // inside a read transaction, which holds its writers off (their busy timeout) for that copy.
  // (sqlite3's stdout, user_version's number, goes to /dev/null: its errors are on stderr.)
  //
  // The fingerprint costs the shell and one find: a fork and exec costs ~4 ms of CPU on a small
  // VM, and it runs on every backup of every device (it was six programs before: readlink, find,
  // date, awk, sha256sum, cut). A symlink alone needs readlink: through a symlinked directory the
  // -wal and -journal beside the given path are the very files beside the resolved one.
  return sh`set -e
[ -e ${path} ] || { echo ${path}" does not exist" >&2; exit 66; }
[ -r ${path} ] || { echo "the device's login cannot read "${path} >&2; exit 66; }
[ -f ${path} ] || { echo ${path}" is not a regular file (a named pipe, device or folder is no SQLite database)" >&2; exit 66; }
db=${path}
if [ -L "$db" ]; then db=$(readlink -f -- "$db" 2>/dev/null && echo x) || db=; db=\${db%?x}; fi
files=
[ -z "$db" ] || files=$(find "$db" "$db-wal" "$db-journal" -maxdepth 0 -printf '%s %T@ %i %D\n' -newermt ${`-${SQLITE_SETTLE_S} seconds`} -printf 'recent\n' 2>/dev/null || :)
state=
case $files in *recent*) ;; *) state=$files ;; esac
if [ -n "$state" ] && [ "$state" = ${unlessState} ]; then
  echo ${REPORT_MARK} >&2
  echo ${SQLITE_UNCHANGED_MARK} >&2
  exit 0
fi
${privateTemp('t', tempName)}
hold='BEGIN; PRAGMA user_version;'
jv_copy() { sqlite3 -bail -cmd ${`.timeout ${SQLITE_BUSY_MS}`} ${path} \${1:+"$1"} ${raw(`".backup '$t/copy.db'"`)} \${1:+'COMMIT;'} >/dev/null; }
rc=0
if [ -n "$db" ] && [ -e "$db-wal" ]; then jv_copy "$hold" || rc=$?
elif [ -n "$db" ] && [ ! -w "\${db%/*}/" ] && [ "$(od -An -tu1 -j18 -N1 -- "$db" 2>/dev/null | tr -d ' ')" = 2 ]; then
  # A WAL database its app has closed, in a folder the login may not write to: sqlite3 cannot make
  # the -shm it needs ("attempt to write a readonly database"). With no -wal, the file is the whole
  # database: copied as it is, and kept only if no writer touched it meanwhile.
  before=$(find "$db" -maxdepth 0 -printf '%s %T@ %i %D\n' 2>/dev/null || :)
  cat -- "$db" > "$t/copy.db" || rc=$?
  after=$(find "$db" "$db-wal" -maxdepth 0 -printf '%s %T@ %i %D\n' 2>/dev/null || :)
  [ "$rc" -ne 0 ] || [ "$before" = "$after" ] || { rm -f -- "$t/copy.db"; echo ${path}" was written to while it was copied (its app started meanwhile?): back up again" >&2; exit 75; }
elif command -v timeout >/dev/null 2>&1; then
  timeout ${String(stepSeconds)} sqlite3 -bail -cmd ${`.timeout ${SQLITE_BUSY_MS}`} ${path} ${raw(`".backup '$t/copy.db'"`)} >/dev/null || rc=$?
  if [ "$rc" -eq 124 ]; then rc=0; rm -f -- "$t/copy.db"; jv_copy "$hold" || rc=$?; fi
else jv_copy || rc=$?
fi
[ "$rc" -eq 0 ] || {
  rm -f -- "$t/copy.db"
  printf '%s\t%s\t%s\t%s\n' ${TEMP_MARK} "\${TMPDIR:-/tmp}" "$(wc -c < ${path} 2>/dev/null)" "$(df -Pk -- "$t" 2>/dev/null | tail -n 1)" >&2
  exit 74
}
check=$(sqlite3 "$t/copy.db" 'PRAGMA integrity_check;' 2>&1) || check="$check
(integrity_check stopped with exit $?)"
if [ "$check" = ok ]; then
  { echo ok; echo @@rows; ${sqliteCountsCommand(raw('"$t/copy.db"'))}; } > "$t/report"
else
  # Damaged: kept as it is and reported; the tables that can still be counted are.
  { printf '%s\n' "$check"; echo @@rows; ( ${sqliteCountsCommand(raw('"$t/copy.db"'))} ) 2>/dev/null || :; } > "$t/report"
fi
sum=$(sha256sum < "$t/copy.db" 2>/dev/null | cut -c1-64)
[ -n "$sum" ] && [ "$sum" = ${unlessSha256} ] || cat -- "$t/copy.db"
echo ${REPORT_MARK} >&2
cat -- "$t/report" >&2
printf '@@sha256\n%s\n@@state\n%s\n' "$sum" "$state" >&2`;
}

/**
 * Follows a failed SQLite copy on stderr: the device's temp folder, the database's size and `df
 * -Pk` of the temp folder — a full temp folder is what "database or disk is full" means there (the
 * database itself is only read).
 */
export const TEMP_MARK = '@@temp';

/** A failed SQLite copy's stderr without the TEMP_MARK line, and what that line said. */
export function splitTempReport(stderr: string): { stderr: string; temp: { dir: string; dbBytes: number | null; freeBytes: number | null } | null } {
  const match = new RegExp(`^${TEMP_MARK}\t([^\t\n]*)\t([^\t\n]*)\t([^\n]*)\n?`, 'm').exec(stderr);
  if (!match) return { stderr, temp: null };
  const [line, dir = '', size = '', df = ''] = match;
  const available = df.trim().split(/\s+/)[3];
  const number = (text: string | undefined, scale: number) => (text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) * scale : null);
  return { stderr: stderr.replace(line, ''), temp: { dir, dbBytes: number(size, 1), freeBytes: number(available, 1024) } };
}

/** The parts of a SQLite dump's report: integrity check, row counts (raw), the copy's sum and the files' fingerprint ('' if none). */
export function splitSqliteReport(report: string): { check: string; rows: string; sha256: string; state: string } {
  const [check = '', rest = ''] = report.split(/^@@rows$/m);
  const [rows = '', sums = ''] = rest.split(/^@@sha256$/m);
  const [sum = '', state = ''] = sums.split(/^@@state$/m);
  const hex = (text: string) => (HEX64.test(text.trim()) ? text.trim() : '');
  return { check: check.trim(), rows: rows.replace(/^\n/, ''), sha256: hex(sum), state: FILES_STATE.test(state.trim()) ? state.trim() : '' };
}

/** Separates a PostgreSQL dump's recorded roles from its row counts in the report. */
export const PG_ROLES_MARK = '@@roles';

/** The parts of a PostgreSQL dump's report: row counts and roles (raw; roles '' from an older command). */
export function splitPgReport(report: string): { counts: string; roles: string } {
  const [counts = '', roles = ''] = report.split(new RegExp(`^${PG_ROLES_MARK}$`, 'm'));
  return { counts, roles: roles.trim() };
}

/** Splits a dump command's stderr into what it reported after the marker and the rest. */
export function splitReport(stderr: string): { report: string | null; stderr: string } {
  const at = stderr.lastIndexOf(`${REPORT_MARK}\n`);
  if (at < 0) return { report: null, stderr };
  return { report: stderr.slice(at + REPORT_MARK.length + 1), stderr: stderr.slice(0, at) };
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
  /** For SQLite: the sha256 of the copy (null when the device could not compute it). */
  sha256: string | null = null;
  /** For SQLite: the database's files were as fingerprinted by the previous run, which this snapshot's copy and reports come from. */
  unchanged = false;
  /**
   * For MySQL: the tables `--single-transaction` could not read in its consistent snapshot (MyISAM,
   * Aria, MEMORY…), said as a warning of the run; null when every table is transactional.
   */
  inconsistent: string | null = null;
  /** Rows per table of what was backed up, also kept in the snapshot. */
  rowCounts: RowCounts | null = null;
  /** Bytes of the dump read from the device so far. */
  bytesRead = 0;
  /** Size of the dump in the snapshot (read, or reused from the previous copy). */
  bytes = 0;
  /** Compressed bytes that crossed the link (when this source compresses). */
  wireBytes = 0;
  readonly #runner: CommandRunner;
  readonly #source: DumpConfig;
  readonly #previous: PreviousCopy | null;
  readonly #compress: boolean;
  readonly #lockWaitMs: number;
  readonly #silenceMs: number;
  readonly #sqliteStepsS: number;
  /** Set when a MySQL dump sent nothing for `#silenceMs`: the command was stopped for it. */
  #silent = false;

  /**
   * `previous`: for SQLite, the parent snapshot's copy; an identical copy is not sent again.
   * `compress`: the dump crosses the link gzip-compressed (a slow link: wire-compression.ts).
   * `lockWaitMs` (PostgreSQL) and `silenceMs` (MySQL): how long a dump may wait behind another
   * session's lock before it fails, saying so. `sqliteStepsS`: SQLITE_STEPS_S.
   */
  constructor(
    runner: CommandRunner,
    source: DumpConfig,
    previous: PreviousCopy | null = null,
    { compress = false, lockWaitMs = PG_LOCK_WAIT_MS, silenceMs = MYSQL_SILENCE_MS, sqliteStepsS = SQLITE_STEPS_S }: { compress?: boolean; lockWaitMs?: number; silenceMs?: number; sqliteStepsS?: number } = {},
  ) {
    this.#runner = runner;
    this.#compress = compress;
    this.#lockWaitMs = lockWaitMs;
    this.#silenceMs = silenceMs;
    this.#sqliteStepsS = sqliteStepsS;
    this.#source = source;
    this.#previous = source.kind === 'sqlite' ? previous : null;
    this.kind = source.kind;
    this.paths = [source.kind === 'sqlite' ? source.path : `${source.kind}:${source.database}`];
  }

  async *entries(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    const source = this.#source;
    const previous = this.#previous;
    const tempName = `${DEVICE_WORK_PREFIX}dump-${source.kind === 'sqlite' ? 'sqlite' : 'pg'}.${randomBytes(6).toString('hex')}`;
    const command = source.kind === 'sqlite' ? sqliteDumpCommand(source.path, tempName, previous?.sha256, previous?.unchanged?.state, this.#sqliteStepsS) : source.kind === 'postgres' ? pgDumpWithCountsCommand(source, tempName, this.#lockWaitMs) : mysqlDumpCommand(source);
    const counter = source.kind === 'mysql' ? new MysqlDumpCounter() : null;
    // A MySQL dump that falls silent is stopped through its own signal (the run's stops it too).
    const silence = source.kind === 'mysql' ? new AbortController() : null;
    const commandSignal = silence ? (signal ? AbortSignal.any([signal, silence.signal]) : silence.signal) : signal;
    let finished = false;
    try {
      const running = this.#compress ? await execCompressed(this.#runner, command, commandSignal, (bytes) => (this.wireBytes += bytes)) : await this.#runner.exec(command, commandSignal);
      running.stdin.end();
      const chunks = chunksOf(running.stdout);
      const stdout = silence ? this.#untilSilent(chunks, silence) : chunks;
      // With a previous copy, whether the device sends anything decides what the entry is: its first
      // bytes, or the end of a stream that stayed empty because the copy was unchanged.
      const first = previous ? await stdout.next() : null;
      const sentNothing = first?.done === true;
      const meta = this.#meta(0);
      if (!sentNothing) yield { path: dumpFileName(source), meta, open: () => this.#counted(stdout, first, meta, counter) };
      // Resumed only after the archiver has read the whole dump: now its exit status is known.
      const result = await running.done;
      finished = true;
      if (signal?.aborted) throw new AppError('CANCELLED', 'Cancelled');
      if (this.#silent) throw this.#silenceError();
      const what = source.kind === 'sqlite' ? `SQLite backup of ${source.path}` : `The ${source.kind} dump of "${source.name}"`;
      const lost = connectionLost(result, `${what} on ${this.#runner.target}`);
      if (lost) throw new AppError(lost.code, `${lost.message}. No snapshot was written.`);
      const { report, stderr: reported } = splitReport(result.stderr);
      const { stderr, temp } = splitTempReport(reported);
      if (result.code !== 0 || (source.kind !== 'mysql' && report === null)) {
        if (temp && source.kind === 'postgres' && /no space left on device|the row counts were not written/i.test(stderr) && temp.freeBytes !== null && temp.freeBytes < PG_TEMP_LOW_BYTES) {
          // What the transaction writes there (row counts, roles) is small: a folder this full is why it failed.
          throw new AppError(
            'REMOTE_COMMAND_FAILED',
            `${what} on ${this.#runner.target} failed: the device's temp folder ${temp.dir} is full (${formatBytes(temp.freeBytes)} free). Free space there, or point TMPDIR of the device's login at a larger disk. No snapshot was written; the database itself was not changed.`,
          );
        }
        if (temp && source.kind === 'sqlite' && /database or disk is full|no space left on device/i.test(stderr)) {
          const size = temp.dbBytes !== null ? ` (the database is ${formatBytes(temp.dbBytes)}${temp.freeBytes !== null ? `, ${formatBytes(temp.freeBytes)} are free there` : ''})` : '';
          throw new AppError(
            'REMOTE_COMMAND_FAILED',
            `${what} on ${this.#runner.target} failed: the device's temp folder ${temp.dir} has no room for the copy of the database that is sent${size}. Free space there, or point TMPDIR of the device's login at a larger disk. No snapshot was written; the database itself was not changed.`,
          );
        }
        const locked = source.kind === 'postgres' && /lock timeout|could not obtain lock/i.test(stderr)
          ? ` Another session held a table of "${source.database}" locked for more than ${Math.round(this.#lockWaitMs / 1000)} s (a migration or VACUUM FULL?): back up again once it is done.`
          : '';
        // The database gone (the app uninstalled, or moved it): every run fails until the source goes.
        const gone =
          source.kind === 'sqlite' && result.code === 66 && /does not exist$/.test(stderr.trim())
            ? ' Was the database removed or moved? If the app keeps it elsewhere now, correct the path in the device\'s sources; if it is gone for good, remove the source (its snapshots are kept).'
            : (source.kind === 'postgres' && /database ".*" does not exist/.test(stderr)) || (source.kind === 'mysql' && /Unknown database/i.test(stderr))
              ? ` Was "${source.database}" dropped or renamed? Correct the database in the device's sources, or remove the source if it is gone for good (its snapshots are kept).`
              : '';
        throw new AppError('REMOTE_COMMAND_FAILED', `${what} on ${this.#runner.target} failed (exit ${result.code ?? result.signal}): ${stderr.trim() || 'no error output'}. No snapshot was written.${gone}${locked}${unreadable(source, stderr)}${loginHint(source, stderr)}`);
      }
      if (source.kind === 'sqlite' && sentNothing && previous?.unchanged && report!.trim() === SQLITE_UNCHANGED_MARK) {
        // Not written since the previous copy was taken: that copy and its reports stand.
        const { integrity, rowCounts, nodes } = previous.unchanged;
        this.unchanged = true;
        this.integrity = integrity;
        this.rowCounts = rowCounts;
        this.sha256 = previous.sha256;
        this.bytes = previous.node.size;
        for (const { name, content, ...meta } of nodes) yield { path: name, meta, ...(content ? { content } : {}) };
        return;
      }
      if (source.kind === 'sqlite') {
        const { check, rows, sha256, state } = splitSqliteReport(report!);
        this.integrity = check || 'unknown';
        this.rowCounts = parseSqliteCounts(rows);
        this.sha256 = sha256 || null;
        if (sentNothing) {
          if (previous && sha256 === previous.sha256) {
            // The same copy as last time: the archiver reuses the previous node's content.
            const { type, mode, uid, gid, mtime, ctime, size, inode } = previous.node;
            yield { path: dumpFileName(source), meta: { type, mode, uid, gid, mtime, size, ...(ctime !== undefined ? { ctime } : {}), ...(inode !== undefined ? { inode } : {}) } };
            this.bytes = size;
          } else {
            yield { path: dumpFileName(source), meta, open: () => oneChunk('') };
          }
        }
        yield { path: integrityFileName(source), meta: this.#meta(Buffer.byteLength(this.integrity) + 1), open: () => oneChunk(`${this.integrity}\n`) };
        if (this.sha256) yield { path: checksumFileName(source), meta: this.#meta(65), open: () => oneChunk(`${this.sha256}\n`) };
        // Only with a sum: the copy a later run reuses is found by it.
        if (this.sha256 && state) yield { path: stateFileName(source), meta: this.#meta(Buffer.byteLength(state) + 1), open: () => oneChunk(`${state}\n`) };
      } else if (source.kind === 'postgres') {
        const { counts, roles } = splitPgReport(report!);
        this.rowCounts = parsePgCounts(counts);
        // Kept as the server said it; a restore onto a reflashed device recreates roles from it.
        if (parsePgRoles(roles)) yield { path: rolesFileName(source.name), meta: this.#meta(Buffer.byteLength(roles) + 1), open: () => oneChunk(`${roles}\n`) };
      } else {
        this.rowCounts = counter!.end();
        this.inconsistent = inconsistentWarning(source.database, nonTransactionalTables(counter!.engines));
      }
      yield this.#countsEntry(source.name, this.rowCounts);
    } finally {
      // The command removes its temp dir as it exits; one that was cut off may have left it.
      if (!finished && source.kind !== 'mysql') await this.#runner.run(sh`rm -rf -- "\${TMPDIR:-/tmp}"/${tempName}`).catch(() => undefined);
    }
  }

  #countsEntry(name: string, counts: RowCounts): SourceEntry {
    const text = `${JSON.stringify(counts)}\n`;
    return { path: rowCountsFileName(name), meta: this.#meta(Buffer.byteLength(text)), open: () => oneChunk(text) };
  }

  /**
   * `chunks`, failing with #silenceError (and aborting `silence`, which stops the command) when the
   * device sends nothing for `#silenceMs` while the next chunk is awaited — time the archiver spends
   * on a chunk is not counted, so a slow console is never taken for a locked table.
   */
  #untilSilent(chunks: AsyncIterator<Buffer>, silence: AbortController): AsyncIterator<Buffer> {
    return {
      next: async () => {
        let timer: NodeJS.Timeout | undefined;
        const silent = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            this.#silent = true;
            silence.abort();
            reject(this.#silenceError());
          }, this.#silenceMs);
        });
        try {
          return await Promise.race([chunks.next(), silent]);
        } catch (error) {
          throw this.#silent ? this.#silenceError() : error;
        } finally {
          clearTimeout(timer);
        }
      },
    };
  }

  #silenceError(): AppError {
    const source = this.#source;
    const database = source.kind === 'sqlite' ? source.path : source.database;
    return new AppError(
      'REMOTE_COMMAND_FAILED',
      `The ${source.kind} dump of "${source.name}" on ${this.#runner.target} sent nothing for ${this.#silenceMs / 1000} s: another session holds a table of "${database}" locked (LOCK TABLES, or an ALTER TABLE)? No snapshot was written; back up again once it is done.`,
    );
  }

  /** The dump's bytes (`first` already taken from `stdout`); its size is only known at the end, so the node's size follows the stream. */
  async *#counted(stdout: AsyncIterator<Buffer>, first: IteratorResult<Buffer> | null, meta: NodeMeta, counter: MysqlDumpCounter | null): AsyncIterable<Buffer> {
    for (let next = first ?? (await stdout.next()); !next.done; next = await stdout.next()) {
      const chunk = next.value;
      counter?.push(chunk);
      meta.size += chunk.length;
      this.bytesRead += chunk.length;
      this.bytes += chunk.length;
      yield chunk;
    }
  }

  #meta(size: number): NodeMeta {
    const now = nowNs();
    return { type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: now, ctime: now, size };
  }
}

/**
 * What to add to a PostgreSQL dump that failed on a table its login may not read ("permission
 * denied for table …", from the row counts or pg_dump): a dump needs every table of the database.
 */
function unreadable(source: DumpConfig, error: string): string {
  if (source.kind !== 'postgres') return '';
  const table = /permission denied for (?:table|sequence|schema) (\S+)/i.exec(error)?.[1];
  if (!table) return '';
  const who = source.user ? `"${source.user}"` : "the device's login";
  return ` ${who} may not read ${table} of "${source.database}", and a dump needs every table: back it up as the database's owner or a superuser (the source's user), or grant ${who} SELECT on it (pg_read_all_data on PostgreSQL 14 and later).`;
}

/** How many tables an inconsistent MySQL dump's warning names, by engine, before "and N more". */
const TABLES_NAMED = 10;

/**
 * What to say of a MySQL dump that held tables of a non-transactional engine: `--single-transaction`
 * gives InnoDB tables one consistent view without locking, but reads a MyISAM table as it is when
 * the dump reaches it — rows the app wrote meanwhile may be in one table and not in another.
 */
export function inconsistentWarning(database: string, tables: [string, string[]][]): string | null {
  if (tables.length === 0) return null;
  const count = tables.reduce((n, [, names]) => n + names.length, 0);
  const named = tables.map(([engine, names]) => `${engine}: ${names.slice(0, TABLES_NAMED).map((t) => `\`${t}\``).join(', ')}${names.length > TABLES_NAMED ? ` and ${names.length - TABLES_NAMED} more` : ''}`).join('; ');
  return `${count === 1 ? '1 table' : `${count} tables`} of "${database}" ${count === 1 ? 'was' : 'were'} dumped without a consistent view (${named}): only transactional (InnoDB) tables are read in the dump's one snapshot, so what the app wrote to ${count === 1 ? 'this table' : 'these'} during the dump may not match the other tables. Convert ${count === 1 ? 'it' : 'them'} to InnoDB (ALTER TABLE … ENGINE=InnoDB), or back up while the app is stopped.`;
}

function oneChunk(text: string): AsyncIterable<Buffer> {
  return Readable.from([Buffer.from(text, 'utf8')]);
}


