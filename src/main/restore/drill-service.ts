/**
 * Restore drills as jobs (prepare → stage → verify → validate → cleanup), recorded in the history
 * store with the measured recovery time per source and in total; and the RTO each device gets
 * from its last drill, against its objective (the device's `rtoMinutes`, else the console-wide
 * `defaultRtoMinutes`).
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../../shared/errors';
import type { DrillRecord, DrillResult, DrillSourceRecord, RtoStatus } from '../../shared/schemas/drills';
import type { DeviceService } from '../devices/device-service';
import type { DeviceConnector } from '../devices/device-connector';
import { DeviceConnection } from '../devices/ssh-connection';
import { chooseCompression, probeDevice } from '../devices/wire-compression';
import { leftoversOf, markedRunner, stopLeftovers } from '../devices/leftovers';
import type { CommandRunner } from '../devices/ssh-connection';
import type { HistoryStore } from '../history/history-store';
import type { DrillRow } from '../history/statements';
import type { JobManager, StartedJob } from '../jobs/job-manager';
import type { CatalogService } from '../services/catalog-service';
import { tagValue } from '../repository/snapshot/snapshot';
import type { RepositoryService } from '../services/repository-service';
import type { SettingsService } from '../services/settings-service';
import { DRILL_PHASES, drillSources, scratchParent, sweepable, sweepDatabaseScratch, sweepScratch } from './drill';
import type { ScratchFilter } from './drill';
import type { SourceDrill } from './drill';
import { rtoStateOf } from './rto-state';
import type { Source } from '../../shared/schemas/devices';

/** How long the cleanup waits for a fresh connection when the drill's own link died. */
const CLEANUP_CONNECT_MS = 10_000;

export class DrillService {
  /** Source drills by kind; replaceable so a drill of one kind can be swapped in (tests, later kinds). */
  drills: Record<Source['kind'], SourceDrill> | undefined;

  constructor(
    private readonly devices: DeviceService,
    private readonly connector: DeviceConnector,
    private readonly repository: RepositoryService,
    private readonly catalog: CatalogService,
    private readonly jobs: JobManager,
    private readonly history: HistoryStore,
    private readonly settings: SettingsService,
  ) {
    // A drill still "running" whose job no process runs any more (the job manager, made first, has
    // marked the jobs of dead processes; another live process's drill is left alone): now, and
    // whenever the job manager finds a process that died while this one runs.
    const interrupt = () => history.sql.drillsInterrupt.run(new Date().toISOString(), 'The Jetvault process running this drill stopped before it finished');
    interrupt();
    jobs.onOrphansReaped(interrupt);
  }

  /** Starts a drill of the device's latest complete backup run. */
  start(deviceName: string): StartedJob<DrillRecord> & { drillId: string } {
    const device = this.devices.get(deviceName);
    const drillId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    // Under a shared lease, as a restore: a prune elsewhere refuses the drill before it is recorded
    // (it says nothing about the device's recovery time).
    const job = this.jobs.start({ kind: 'drill', title: `Drill ${deviceName}`, phases: [...DRILL_PHASES], deviceId: device.id }, (ctx) => this.repository.read(async () => {
      const started = performance.now();
      this.history.sql.drillInsert.run(drillId, ctx.id, device.id, deviceName, new Date().toISOString());
      // What earlier drills left on the device is swept: this console's, and other consoles' once old (drill.ts).
      const may = sweepable(new Set(this.history.sql.drillIdsOfDevice.all(device.id).map((row) => row.id)));
      let runId: string | null = null;
      let sources: DrillSourceRecord[] = [];
      let totalMs: number | null = null;
      let cleanup: string | null = null;
      let stopped: string[] = [];
      let failure: unknown = null;
      try {
        const repo = await this.repository.fresh();
        const snapshots = await this.catalog.complete(deviceName);
        runId = snapshots.map((s) => tagValue(s.tags, 'run')).find((r) => r !== null) ?? null;
        if (runId === null) throw new AppError('NOT_FOUND', `${deviceName} has no complete backup run to drill`);
        const order = device.profile.sources.map((s) => s.name);
        const rank = (name: string | null) => (name !== null && order.includes(name) ? order.indexOf(name) : order.length);
        const members = snapshots.filter((s) => tagValue(s.tags, 'run') === runId).sort((a, b) => rank(tagValue(a.tags, 'source')) - rank(tagValue(b.tags, 'source')));
        ctx.setTotals({ bytes: members.reduce((n, s) => n + s.summary.bytes, 0) });
        await this.connector.withDevice(deviceName, async (connection) => {
          const parent = scratchParent(device.profile.sysroot);
          try {
            // Timed first, as a restore's first command is: over a slow link the drill sends
            // gzip'ed like the restore it stands in for, so its time is the restore's time. It also
            // stops what an earlier run of this console cut off by a dead link left running there —
            // a drill's pg_restore still holding its scratch database, a backup's pg_dump — and the
            // drill's own commands are marked for the next run to do the same (leftovers.ts).
            const scope = this.devices.marksScope(device.profile.name);
            const runner = markedRunner(connection, scope);
            const { text, probe } = await probeDevice(runner, device.profile.sysroot, undefined, stopLeftovers(scope));
            stopped = leftoversOf(text);
            const compress = await chooseCompression(connection, device.profile.wireCompression, probe);
            await sweepScratch(connection, parent, may, ctx.signal);
            // A database server that is down fails its own source below; the files are still drilled.
            await sweepDatabaseScratch(connection, device.profile.sources, may, ctx.signal).catch(() => []);
            const outcome = await drillSources({
              repo,
              runner,
              drillId,
              snapshots: members,
              sources: device.profile.sources,
              sysroot: device.profile.sysroot,
              signal: ctx.signal,
              phase: (name) => ctx.phase(name),
              advance: (delta) => ctx.advance(delta),
              compress,
              ...(this.drills ? { drills: this.drills } : {}),
            });
            sources = outcome.sources;
            totalMs = Math.round(performance.now() - started);
          } finally {
            ctx.phase('cleanup');
            cleanup = await this.#cleanup(deviceName, connection, parent, device.profile.sources, may);
          }
        });
      } catch (error) {
        failure = error;
      }
      const cancelled = ctx.signal.aborted || (failure instanceof AppError && failure.code === 'CANCELLED');
      const failed = sources.filter((s) => s.result === 'failed');
      const result: DrillResult = cancelled ? 'cancelled' : failure || failed.length > 0 ? 'failed' : sources.some((s) => s.result === 'skipped') ? 'partial' : 'passed';
      const error = failure ? (failure as Error).message : failed.length > 0 ? failed.map((s) => `${s.source}: ${s.error}`).join('; ') : null;
      this.#record(drillId, runId, result, result === 'passed' || result === 'partial' ? totalMs : null, error, cleanup, stopped, sources);
      const record = this.get(drillId)!;
      if (failure) throw failure instanceof Error ? failure : new AppError('INTERNAL', error ?? 'The drill failed');
      if (result === 'failed') throw new AppError('REMOTE_COMMAND_FAILED', `The drill of ${deviceName} failed: ${error}`);
      return record;
    }, ctx.signal));
    return { ...job, drillId };
  }

  /**
   * Removes the drill's scratch folder (all drill scratch folders under `parent`). If the drill's
   * connection is gone, one fresh connection is tried; if that fails too, the next drill removes it.
   */
  async #cleanup(deviceName: string, connection: CommandRunner, parent: string, sources: Source[], may: ScratchFilter): Promise<string> {
    const sweep = async (runner: CommandRunner) => {
      await sweepScratch(runner, parent, may);
      await sweepDatabaseScratch(runner, sources, may);
    };
    try {
      await sweep(connection);
      return 'done';
    } catch (first) {
      let fresh: DeviceConnection | null = null;
      try {
        fresh = await DeviceConnection.open({ ...(await this.devices.connectOptions(deviceName)), readyTimeoutMs: CLEANUP_CONNECT_MS });
        await sweep(fresh);
        return 'done';
      } catch (second) {
        return `not removed (${(first as Error).message}; reconnecting: ${(second as Error).message}); the next drill of ${deviceName} removes it`;
      } finally {
        fresh?.close();
      }
    }
  }

  #record(id: string, runId: string | null, result: DrillResult, totalMs: number | null, error: string | null, cleanup: string | null, stopped: string[], sources: DrillSourceRecord[]): void {
    const { sql, db } = this.history;
    db.transaction(() => {
      sources.forEach((s, i) => sql.drillSourceInsert.run(id, i, s.source, s.kind, s.snapshotId, s.result, s.durationMs, s.bytes, s.files, s.detail, s.error));
      sql.drillFinish.run(runId, new Date().toISOString(), result, totalMs, error, cleanup, stopped.length > 0 ? JSON.stringify(stopped) : null, id);
    })();
  }

  #fromRow(row: DrillRow): DrillRecord {
    return {
      id: row.id,
      jobId: row.job_id,
      device: row.device_name,
      runId: row.run_id,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
      result: row.result as DrillResult,
      totalMs: row.total_ms,
      error: row.error,
      cleanup: row.cleanup,
      ...(row.leftovers ? { leftoversStopped: JSON.parse(row.leftovers) as string[] } : {}),
      sources: this.history.sql.drillSources.all(row.id).map((s) => ({
        source: s.source,
        kind: s.kind,
        snapshotId: s.snapshot_id,
        result: s.result as DrillSourceRecord['result'],
        durationMs: s.duration_ms,
        bytes: s.bytes,
        files: s.files,
        detail: s.detail,
        error: s.error,
      })),
    };
  }

  get(id: string): DrillRecord | null {
    const row = this.history.sql.drillGet.get(id);
    return row ? this.#fromRow(row) : null;
  }

  /** Newest first; of one device or of all. */
  list(deviceName?: string, limit = 50): DrillRecord[] {
    const rows = deviceName === undefined ? this.history.sql.drillsRecent.all(limit) : this.history.sql.drillsByDevice.all(this.devices.get(deviceName).id, limit);
    return rows.map((row) => this.#fromRow(row));
  }

  /** When the device's newest drill that measured a recovery time finished (for "drill overdue"). */
  lastGoodAt(deviceId: string): string | null {
    return this.history.sql.drillLastMeasured.get(deviceId)?.finished_at ?? null;
  }

  /** The device's RTO: the newest measured recovery time against its objective. */
  rto(deviceName: string): RtoStatus {
    const device = this.devices.get(deviceName);
    const own = device.profile.rtoMinutes;
    const objectiveMinutes = own ?? this.settings.get().defaultRtoMinutes;
    const last = this.history.sql.drillsByDevice.all(device.id, 5).find((r) => r.result !== 'running' && r.result !== 'cancelled');
    const measured = this.history.sql.drillLastMeasured.get(device.id);
    const estimateMs = measured?.total_ms ?? null;
    const status = rtoStateOf(last?.result, { ms: estimateMs, result: measured?.result }, objectiveMinutes);
    return {
      device: deviceName,
      objectiveMinutes,
      objectiveFrom: own === undefined ? 'default' : 'device',
      estimateMs,
      measuredAt: measured?.finished_at ?? null,
      complete: measured?.result === 'passed',
      status,
      lastDrill: last ? this.#fromRow(last) : null,
    };
  }
}
