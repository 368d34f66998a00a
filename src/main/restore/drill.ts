/**
 * Restore drills: a device's latest complete run restored into a scratch area on the device,
 * verified and validated, then removed again, with the recovery time measured per source and in
 * total. The live app is never touched: the scratch area is its own folder
 * (`<sysroot>/var/tmp/.jetvault-drill-<id>`, on the root file system like the app, not in a RAM
 * /tmp), and a drill starts by removing whatever an earlier, interrupted drill left there.
 *
 * One drill function per source kind (`SOURCE_DRILLS`): files are staged with the on-device files
 * restore (tar stream, sha256 verified on the device, presence validated) below the scratch folder;
 * PostgreSQL is restored into a scratch database (`<db>_jv_drill_<id>`: it opens, and its row counts
 * equal the snapshot's), MySQL likewise into a scratch database (loaded into a new database, then
 * its tables moved in with one RENAME TABLE), and SQLite to a scratch file inside the scratch folder
 * (integrity_check and row counts), all through the database restore's `restoreDatabaseScratch`.
 */
import { forDatabase } from '../devices/sources/db-password';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import type { DrillSourceRecord } from '../../shared/schemas/drills';
import type { Source } from '../../shared/schemas/devices';
import { raw, sh } from '../devices/shell-quote';
import type { RawShell } from '../devices/shell-quote';
import { DEVICE_WORK_PREFIX } from '../devices/sources/listing';
import type { CommandRunner } from '../devices/ssh-connection';
import { runToString } from '../devices/ssh-connection';
import type { Repository } from '../repository/repo/repository';
import { tagValue } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import { pgEnv } from '../devices/sources/row-counts';
import { DB_WORK_DIR, pgNames, restoreDatabaseScratch } from './db-restore';
import { executeFilesRestore, planFilesRestore } from './files-restore';
import { mysqlClient, mysqlDropSql, mysqlNames, mysqlVars } from './mysql-restore';

export const DRILL_PHASES = ['prepare', 'stage', 'verify', 'validate', 'cleanup'] as const;
export type DrillPhase = (typeof DRILL_PHASES)[number];
export const DRILL_PREFIX = `${DEVICE_WORK_PREFIX}drill-`;
/** Thrown by a source drill that cannot drill this kind at all: the source is skipped, not failed. */
export class DrillSkipped extends AppError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** Where drills put their scratch folders on the device. */
export function scratchParent(sysroot: string | undefined): string {
  return path.posix.join(sysroot || '/', 'var/tmp');
}

export interface SourceDrillContext {
  repo: Repository;
  runner: CommandRunner;
  snapshot: SnapshotWithId;
  /** The source as configured on the device (null if it was removed from the profile since). */
  source: Source | null;
  /** A folder of its own for this source inside the drill's scratch area (not yet created). */
  scratch: string;
  drillId: string;
  sysroot: string | undefined;
  signal: AbortSignal;
  phase: (name: DrillPhase) => void;
  advance: (delta: { bytes?: number; items?: number }) => void;
  /** Send gzip'ed, as a restore over this link would (the drill measures what a restore would take). */
  compress: boolean;
}

export interface SourceDrillOutcome {
  bytes: number;
  files: number;
  detail: string;
}

export type SourceDrill = (ctx: SourceDrillContext) => Promise<SourceDrillOutcome>;

/** Said in a source's detail when its bytes crossed the link gzip'ed. */
const sentGzip = (ctx: SourceDrillContext): string => (ctx.compress ? "; sent gzip'ed (slow link)" : '');

/** Files: the snapshot's folders restored below the scratch folder, sha256-verified on the device. */
export const drillFiles: SourceDrill = async (ctx) => {
  const options = { repo: ctx.repo, runner: ctx.runner, snapshot: ctx.snapshot, restoreId: ctx.drillId, targetRoot: ctx.scratch, signal: ctx.signal, compress: ctx.compress };
  const plan = await planFilesRestore(options);
  await executeFilesRestore(options, plan, {
    phase: (name) => {
      if (ctx.signal.aborted) throw new AppError('CANCELLED', 'The drill was cancelled');
      ctx.phase(name === 'preflight' || name === 'stage' ? 'stage' : name === 'verify' ? 'verify' : 'validate');
    },
    advance: ctx.advance,
  });
  const files = plan.roots.reduce((n, r) => n + r.add.length, 0);
  return { bytes: plan.bytesToSend, files, detail: `${files} entries restored and verified by sha256 on the device${sentGzip(ctx)}` };
};

/** Marks the names of drill databases: `<db>_jv_drill_<id>` (and `…_jv_new_…` while loading). */
const PG_DRILL_MARK = '_jv_drill_';
/** Work folders of drill database restores in `~/.jetvault-restore` start with this. */
const DRILL_RESTORE_ID = 'drill';

/** Databases: restored under a scratch name / to a scratch file, validated, dropped again. */
export const drillDatabase: SourceDrill = async (ctx) => {
  const source = ctx.source;
  if (!source || source.kind === 'files') {
    throw new AppError('NOT_FOUND', `The source of snapshot ${ctx.snapshot.id.slice(0, 12)} is no longer configured as a database on this device`);
  }
  const restoreId = `${DRILL_RESTORE_ID}${ctx.drillId}`;
  let scratch: string;
  if (source.kind === 'postgres') scratch = pgNames(source.database, restoreId).fresh.replace('_jv_new_', PG_DRILL_MARK);
  else if (source.kind === 'mysql') scratch = mysqlNames(source.database, restoreId).fresh.replace('_jv_new_', PG_DRILL_MARK);
  else {
    await runToString(ctx.runner, sh`mkdir -p -- ${ctx.scratch}`, { signal: ctx.signal });
    scratch = path.posix.join(ctx.scratch, path.posix.basename(source.path));
  }
  ctx.phase('stage');
  const result = await restoreDatabaseScratch({
    repo: ctx.repo,
    runner: ctx.runner,
    snapshot: ctx.snapshot,
    source,
    scratch,
    restoreId,
    signal: ctx.signal,
    compress: ctx.compress,
    progress: {
      advance: (delta) => ctx.advance(delta),
      step: (name) => ctx.phase(name === 'send' ? 'stage' : name === 'verify' ? 'verify' : 'validate'),
    },
  });
  if (!result.ok) throw new AppError('INTERNAL', `The restored copy of ${source.name} is not valid: ${result.problems.join('; ')}`);
  const tables = Object.keys(result.rows).length;
  const rows = Object.values(result.rows).reduce((n, r) => n + Number(r), 0);
  const checked = result.expectedRows ? 'match the snapshot' : '(the snapshot recorded no counts to compare)';
  return {
    bytes: result.bytes,
    files: tables,
    detail: `${tables} tables, ${rows} rows ${checked}${result.integrity ? `; integrity_check ${result.integrity}` : ''}; opened as ${source.kind === 'sqlite' ? scratch : `database ${scratch}`}${sentGzip(ctx)}`,
  };
};

/** The drill of each source kind. */
export const SOURCE_DRILLS: Record<Source['kind'], SourceDrill> = {
  files: drillFiles,
  postgres: drillDatabase,
  sqlite: drillDatabase,
  mysql: drillDatabase,
};

/** Another console's drill scratch is left to it for this long after its drill began (the time its id carries). */
export const FOREIGN_SCRATCH_HOURS = 24;

/**
 * Which drills' scratch a sweep may remove, by drill id: this console's (`own`: none of them runs —
 * one job per device), and any drill begun FOREIGN_SCRATCH_HOURS ago or more. Another console's drill
 * of the same device (a second technician's laptop) keeps its scratch while it may be under way; the
 * sweeps had removed it, and that drill failed. A name without a drill id (`null`) counts as old.
 */
export type ScratchFilter = (drillId: string | null) => boolean;

export function sweepable(own: ReadonlySet<string>, now = Date.now()): ScratchFilter {
  return (id) => {
    if (id === null || own.has(id)) return true;
    // `${Date.now().toString(36)}${3 random bytes in hex}` (DrillService.start).
    const time = /^([0-9a-z]+)[0-9a-f]{6}$/.exec(id);
    const started = time ? parseInt(time[1]!, 36) : Number.NaN;
    return !Number.isFinite(started) || now - started >= FOREIGN_SCRATCH_HOURS * 3_600_000;
  };
}

/** The drill id in a drill scratch database's name (`<db>_jv_drill_drill<id>`), or null. */
const dbDrillId = (name: string) => /_jv_drill_drill([0-9a-z]+)$/.exec(name)?.[1] ?? null;
/** The drill id in a drill database restore's work folder name (`drill<id>-<source>`). */
const WORK_DRILL_ID = new RegExp(`^${DRILL_RESTORE_ID}([0-9a-z]+)-`);

/** How long a drill's sweep waits for a MySQL scratch database's locks before it leaves that database for later. */
const MYSQL_DROP_WAIT_S = 5;

/**
 * Removes what drills of database sources may have left (those `may` allows): scratch databases
 * (`…_jv_drill_…`) on each PostgreSQL and MySQL source's server, and the drills' work folders in
 * `~/.jetvault-restore`. (SQLite scratch files live inside the drill's scratch folder.) Returns the
 * databases dropped.
 *
 * A scratch database a session still uses — another console's drill under way, or one a dead link
 * cut off that its device has not noticed yet (this console's own are stopped first, leftovers.ts)
 * — is left for later: PostgreSQL refuses to drop it (and stopped at the first refusal, leaving the
 * rest), and MySQL's DROP waits for its metadata locks for up to a year by default (a drill hung
 * there); it is given up after MYSQL_DROP_WAIT_S.
 */
export async function sweepDatabaseScratch(runner: CommandRunner, sources: Source[], may: ScratchFilter, signal?: AbortSignal): Promise<string[]> {
  await sweepEntries(runner, raw(`"$HOME"/${DB_WORK_DIR}`), DRILL_RESTORE_ID, (name) => may(WORK_DRILL_ID.exec(name)?.[1] ?? null), signal);
  const dropped: string[] = [];
  const servers = new Map<string, Extract<Source, { kind: 'postgres' }>>();
  for (const s of sources) if (s.kind === 'postgres') servers.set(JSON.stringify([s.host, s.port, s.user]), s);
  for (const source of servers.values()) {
    const maintenance = source.database === 'postgres' ? 'template1' : 'postgres';
    const conn = { host: source.host, port: source.port, user: source.user };
    const server = forDatabase(runner, source);
    const psql = (input: RawShell) => sh`${pgEnv(conn)}
psql -X -q -At -v ON_ERROR_STOP=1 --no-password --dbname=${maintenance} ${input}`;
    // Those no session uses (the LIKE pattern is a constant), one per line (a name with a line break is not a drill's).
    const idle = (await runToString(server, psql(raw(`<<'JVSQL'
SELECT datname FROM pg_database d WHERE datname LIKE '%\\_jv\\_drill\\_%' AND datname !~ '\\n' AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname);
JVSQL`)), { signal })).split('\n').filter((name) => name !== '' && may(dbDrillId(name)));
    if (idle.length === 0) continue;
    // Each name as a psql variable, quoted as an identifier by psql itself.
    const vars = idle.flatMap((name, i) => ['-v', `d${i}=${name}`]);
    await runToString(server, sh`${psql(raw(''))} ${vars} <<'JVSQL'
${raw(idle.map((_, i) => `DROP DATABASE IF EXISTS :"d${i}";`).join('\n'))}
JVSQL`, { signal });
    dropped.push(...idle);
  }
  const mysqlServers = new Map<string, Extract<Source, { kind: 'mysql' }>>();
  for (const s of sources) if (s.kind === 'mysql') mysqlServers.set(JSON.stringify([s.host, s.socket, s.port, s.user]), s);
  for (const source of mysqlServers.values()) {
    const conn = { host: source.host, socket: source.socket, port: source.port, user: source.user };
    const server = forDatabase(runner, source);
    const out = await runToString(
      server,
      sh`${mysqlClient(conn)} <<'JVSQL'
${raw(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%\\_jv\\_drill\\_%';\n`)}
JVSQL`,
      { signal },
    );
    for (const name of out.split('\n').filter((n) => n !== '' && may(dbDrillId(n)))) {
      const gone = await runToString(server, sh`${mysqlClient(conn)} <<'JVSQL'
${raw(`SET SESSION lock_wait_timeout = ${MYSQL_DROP_WAIT_S};\n${mysqlVars({ t: name })}${mysqlDropSql(['t'])}`)}
JVSQL`, { signal }).then(
        () => true,
        (error: unknown) => {
          if (signal?.aborted || !/Lock wait timeout exceeded/.test((error as Error).message)) throw error;
          return false;
        },
      );
      if (gone) dropped.push(name);
    }
  }
  return dropped;
}

export function kindOf(snapshot: SnapshotWithId): Source['kind'] | null {
  const kind = tagValue(snapshot.tags, 'kind');
  return kind === 'files' || kind === 'postgres' || kind === 'sqlite' || kind === 'mysql' ? kind : null;
}

/** Removes the drill scratch folders under `parent` that `may` allows (leftovers of interrupted drills); returns them. */
export async function sweepScratch(runner: CommandRunner, parent: string, may: ScratchFilter, signal?: AbortSignal): Promise<string[]> {
  const gone = await sweepEntries(runner, sh`${parent}`, DRILL_PREFIX, (name) => may(name.slice(DRILL_PREFIX.length) || null), signal);
  return gone.map((name) => path.posix.join(parent, name));
}

/**
 * Removes the entries of folder `dir` (a shell word) whose names begin with `prefix` and that `goes`
 * accepts — made writable first, as a drill's restored tree may hold read-only folders — and returns
 * the names removed. The drills' scratch folders and their database work folders are swept so.
 */
async function sweepEntries(runner: CommandRunner, dir: RawShell, prefix: string, goes: (name: string) => boolean, signal?: AbortSignal): Promise<string[]> {
  const names = (await runToString(runner, sh`for s in ${dir}/${raw(`${prefix}*`)}; do [ -e "$s" ] && printf '%s\\0' "\${s##*/}"; done; true`, { signal })).split('\0').filter(Boolean);
  const chosen = names.filter(goes);
  if (chosen.length === 0) return [];
  const out = await runToString(runner, sh`cd ${dir} && for s in ${chosen}; do chmod -R u+rwx -- "$s" 2>/dev/null; rm -rf -- "$s" && printf '%s\\n' "$s"; done; true`, { signal });
  return out.split('\n').filter(Boolean);
}

export interface DrillRunOptions {
  repo: Repository;
  runner: CommandRunner;
  drillId: string;
  /** The run's snapshots, in the order the device's profile lists its sources. */
  snapshots: SnapshotWithId[];
  sources: Source[];
  sysroot: string | undefined;
  signal: AbortSignal;
  phase: (name: DrillPhase) => void;
  advance: (delta: { bytes?: number; items?: number }) => void;
  /** Source drills by kind (the default table; tests may narrow it). */
  drills?: Record<Source['kind'], SourceDrill>;
  /** The link is slow: send gzip'ed, as a restore would (wire-compression.ts). */
  compress?: boolean;
}

/**
 * Drills every snapshot of the run into `<scratch parent>/.jetvault-drill-<id>/<source>`. A source
 * that fails is recorded and the next one still runs (a cancelled drill stops). Does not clean up:
 * the caller removes the scratch folder whatever happened.
 */
export async function drillSources(options: DrillRunOptions): Promise<{ scratch: string; sources: DrillSourceRecord[] }> {
  const { runner, drillId, signal } = options;
  const drills = options.drills ?? SOURCE_DRILLS;
  const scratch = path.posix.join(scratchParent(options.sysroot), `${DRILL_PREFIX}${drillId}`);
  await runToString(runner, sh`mkdir -p -- ${path.posix.dirname(scratch)} && mkdir -m 700 -- ${scratch}`, { signal });
  const results: DrillSourceRecord[] = [];
  let linkLost: string | null = null;
  for (const snapshot of options.snapshots) {
    if (signal.aborted) throw new AppError('CANCELLED', 'The drill was cancelled');
    const name = tagValue(snapshot.tags, 'source') ?? snapshot.id.slice(0, 12);
    const kind = kindOf(snapshot);
    const started = performance.now();
    const base = { source: name, kind: kind ?? snapshot.source, snapshotId: snapshot.id };
    if (linkLost !== null) {
      results.push({ ...base, result: 'failed', durationMs: 0, bytes: 0, files: 0, detail: null, error: `not run: ${linkLost}` });
      continue;
    }
    if (!kind) {
      results.push({ ...base, result: 'skipped', durationMs: 0, bytes: 0, files: 0, detail: null, error: `no drill for snapshots of kind ${snapshot.source}` });
      continue;
    }
    try {
      const outcome = await drills[kind]({
        repo: options.repo,
        runner,
        snapshot,
        source: options.sources.find((s) => s.name === name) ?? null,
        scratch: path.posix.join(scratch, name.replace(/[^A-Za-z0-9._-]/g, '_')),
        drillId,
        sysroot: options.sysroot,
        signal,
        phase: options.phase,
        advance: options.advance,
        compress: options.compress ?? false,
      });
      results.push({ ...base, result: 'passed', durationMs: Math.round(performance.now() - started), bytes: outcome.bytes, files: outcome.files, detail: outcome.detail, error: null });
    } catch (error) {
      if (signal.aborted) throw error;
      const message = (error as Error).message;
      const skipped = error instanceof DrillSkipped;
      results.push({ ...base, result: skipped ? 'skipped' : 'failed', durationMs: skipped ? 0 : Math.round(performance.now() - started), bytes: 0, files: 0, detail: null, error: message });
      // One failed source does not stop the others, unless the device can no longer be reached.
      if (!skipped) linkLost = await runToString(runner, sh`true`).then(() => null, () => `the connection to ${runner.target} was lost`);
      // Then what failed may be the link's doing: a SQLite copy whose check lost the link was said
      // to be "not valid", as if the backup were damaged.
      if (linkLost !== null && !message.includes(linkLost)) results.at(-1)!.error = `${linkLost} while this source was drilled, so its result says nothing about the backup (${message})`;
    }
  }
  return { scratch, sources: results };
}
