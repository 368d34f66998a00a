/**
 * Backs devices up by themselves while a console (or `jetvault run-scheduler`) runs: every tick it
 * plans the queue from the history store (see plan.ts), probes each due device with a plain TCP
 * connect before starting it (an unreachable one is marked offline and probed again with backoff,
 * then caught up as soon as it answers), and starts at most as many backups as may run in
 * parallel; the device connector keeps one job per device.
 */
import { AppError } from '../../shared/errors';
import net from 'node:net';
import type { DeviceService } from '../devices/device-service';
import type { HistoryStore } from '../history/history-store';
import { STOPPED_WITH_PROCESS } from '../jobs/job-manager';
import type { JobManager, StartedJob } from '../jobs/job-manager';
import type { Logger } from '../log';
import type { SettingsService } from '../services/settings-service';
import { runCutoff } from '../../shared/job-runs';
import { effectiveRpo } from '../../shared/tiers';
import { planSchedule, toStart } from './plan';
import type { DeviceScheduleState, ScheduleEntry } from './plan';

const MINUTE = 60_000;
const PROBE_TIMEOUT_MS = 3_000;
/**
 * Due devices probed side by side (at least as many as may still start): probed one at a time, each
 * device gone silent cost a whole timeout first — 100 of them held every backup back 5 minutes a tick.
 */
const PROBE_BATCH = 16;
/** An unreachable device is probed again after 1, 2, 4 … minutes, at most this long. */
const MAX_PROBE_BACKOFF_MS = 10 * MINUTE;

/** Whether something accepts TCP connections at host:port (no SSH, nothing sent). */
export function tcpReachable(host: string, port: number, timeoutMs = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export interface SchedulerDeps {
  store: HistoryStore;
  devices: DeviceService;
  jobs: JobManager;
  settings: SettingsService;
  log: Logger;
  startBackup: (name: string, only?: string[]) => StartedJob<unknown>;
  probe?: (host: string, port: number) => Promise<boolean>;
  /**
   * Why backups cannot be written now (the repository locked until the technician unlocks it, or not
   * created yet), or null when they can. Nothing is started meanwhile: every due device's backup
   * failed at once with "the repository is locked", each raising a "backup failed" alert (and webhook).
   */
  repositoryUnready?: () => Promise<string | null>;
  /** Repository upkeep (verify, prune), run when no backup is due or running. */
  maintenance?: { tick(): Promise<unknown> };
  clock?: () => number;
}

export class Scheduler {
  readonly #deps: SchedulerDeps;
  readonly #clock: () => number;
  readonly #probe: (host: string, port: number) => Promise<boolean>;
  /** Devices found unreachable: when to probe again, and how often it failed. */
  readonly #offline = new Map<string, { until: number; probes: number }>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<{ device: string; jobId: string }[]> | null = null;
  /** Why the last tick started nothing (the repository locked), said once until it changes. */
  #unready: string | null = null;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? Date.now;
    this.#probe = deps.probe ?? tcpReachable;
  }

  states(): DeviceScheduleState[] {
    const { store, devices, jobs, settings } = this.#deps;
    const now = this.#clock();
    const defaultRpo = settings.get().defaultRpoMinutes;
    const busy = jobs.busyDevices();
    // A run stamped in the future (by a clock that was ahead, set right since) decides nothing: counted,
    // its RPO would not run out, nor its retry or cron time come, until the clock got there again.
    const cutoff = runCutoff(now);
    // The device's RPO is met by runs that covered every source (a source run alone does not count),
    // every source it has now: one added since is due at once ("no run of every source yet"). The
    // indexed lookup finds the newest such run however many runs of one source came after it.
    const lastGood = new Map(store.sql.lastCompleteRuns.all(cutoff).map((row) => [row.id, row.last_complete_at]));
    return devices.list().map((record) => {
      const { profile } = record;
      const runs = store.sql.backupsOfDevice.all(record.id, 50).filter((r) => (r.finished_at ?? r.started_at) <= cutoff);
      const sourcesOf = (result: string | null): Set<string> => {
        try {
          return new Set(((JSON.parse(result ?? 'null') as { snapshots?: { source: string }[] } | null)?.snapshots ?? []).map((x) => x.source));
        } catch {
          return new Set();
        }
      };
      let failuresInRow = 0;
      for (const run of runs) {
        if (run.status === 'succeeded') break;
        if (run.status === 'failed') failuresInRow++;
      }
      const notReady = profile.sources.length === 0 ? 'no sources yet' : !profile.hostKey ? 'host key not confirmed' : profile.jump && !profile.jump.hostKey ? 'jump host key not confirmed' : null;
      const offline = this.#offline.get(profile.name);
      return {
        name: profile.name,
        // The RPO the overview shows: the device's own, else its tier tag's, else the default.
        rpoMinutes: effectiveRpo({ rpoMinutes: profile.rpoMinutes, tags: profile.tags ?? [] }, defaultRpo).rpoMinutes,
        schedule: profile.schedule,
        sourceSchedules: profile.sources.flatMap((src) =>
          src.schedule ? [{ source: src.name, schedule: src.schedule, lastAttemptAt: runs.find((r) => r.status !== 'running' && sourcesOf(r.result).has(src.name))?.started_at ?? runs[0]?.started_at ?? null }] : [],
        ),
        ready: notReady === null,
        ...(notReady ? { notReadyReason: notReady } : {}),
        lastSuccessAt: lastGood.get(record.id) ?? null,
        lastAttemptAt: runs[0]?.started_at ?? null,
        failuresInRow,
        // Cancelled by a person (not with a process that stopped: the app quit mid-backup is caught up at once).
        cancelledAt: runs[0]?.status === 'cancelled' && !runs[0].error?.includes(STOPPED_WITH_PROCESS) ? (runs[0].finished_at ?? runs[0].started_at) : null,
        // The lead time is for a run of every source: a source backed up alone says nothing about its length.
        recentDurationsMs: runs
          .filter((r) => r.status === 'succeeded' && r.finished_at && profile.sources.every((src) => sourcesOf(r.result).has(src.name)))
          .slice(0, 10)
          .map((r) => Date.parse(r.finished_at!) - Date.parse(r.started_at)),
        running: busy.has(record.id),
        // A next probe further off than the longest back-off was set by a clock that was ahead (set
        // right since, or the laptop's clock stepped back): the device was left "offline" until the
        // clock reached that time again — a day ahead kept it from being probed, and backed up, for a day.
        ...(offline && offline.until > now && offline.until - now <= MAX_PROBE_BACKOFF_MS ? { offlineUntil: offline.until } : {}),
      };
    });
  }

  /** What runs next, in order. */
  queue(): ScheduleEntry[] {
    return planSchedule(this.states(), this.#clock());
  }

  /** Starts what is due (one tick at a time); resolves with the devices started. */
  async tick(): Promise<string[]> {
    return (await this.tickJobs()).map((s) => s.device);
  }

  /**
   * "Run due now" pressed: starts what is due, or says why nothing could start (the repository locked
   * or not created yet) — the tick alone returned nothing and the button seemed to do nothing.
   */
  async runDue(): Promise<string[]> {
    const started = await this.tick();
    if (started.length === 0 && this.#unready !== null) throw new AppError('UNAVAILABLE', `No backup starts: ${this.#unready}`);
    return started;
  }

  /** A tick that says which job it started on each device (other processes' jobs end meanwhile too). */
  tickJobs(): Promise<{ device: string; jobId: string }[]> {
    this.#ticking ??= this.#tick().finally(() => (this.#ticking = null));
    return this.#ticking;
  }

  async #tick(): Promise<{ device: string; jobId: string }[]> {
    const { settings, devices, log, store } = this.#deps;
    const queue = this.queue();
    const started: { device: string; jobId: string }[] = [];
    // Counted afresh before each start: another process's scheduler (the app and `run-scheduler` on one
    // data folder) may have started backups while this one probed; its jobs are in busyDevices too.
    const slots = () => settings.get().maxParallelDevices - this.#deps.jobs.busyDevices().size;
    const due = toStart(queue, Number.MAX_SAFE_INTEGER);
    if (due.length > 0 && this.#deps.repositoryUnready) {
      const why = await this.#deps.repositoryUnready();
      if (why !== this.#unready) log.info(why === null ? 'scheduler: the repository can be written again; starting what is due' : `scheduler: no backup starts: ${why}`);
      this.#unready = why;
      if (why !== null) return started;
    }
    for (let next = 0; next < due.length && slots() > 0; ) {
      const batch = due.slice(next, (next += Math.max(slots(), PROBE_BATCH)));
      const probed = await Promise.all(
        batch.map(async (name) => {
          const { id, profile } = devices.get(name);
          const via = profile.jump ?? profile;
          const reachable = await this.#probe(via.host, via.port);
          // For the overview: a device found silent starts no job, and would otherwise still look
          // reachable. (Not storing it — a full disk — changes nothing about this tick.)
          try {
            store.sql.deviceSetProbe.run(new Date(this.#clock()).toISOString(), reachable ? 1 : 0, id);
          } catch (error) {
            log.warn(`scheduler: could not record the probe of ${name}: ${(error as Error).message}`);
          }
          return { name, via, reachable };
        }),
      );
      // In queue order: the longest overdue reachable devices start, as many as may run.
      for (const { name, via, reachable } of probed) {
        if (!reachable) {
          const probes = (this.#offline.get(name)?.probes ?? 0) + 1;
          this.#offline.set(name, { until: this.#clock() + Math.min(MAX_PROBE_BACKOFF_MS, 2 ** (probes - 1) * MINUTE), probes });
          log.info(`scheduler: ${name} is unreachable at ${via.host}:${via.port}; probing again later`);
          continue;
        }
        if (slots() <= 0) continue;
        const wasOffline = this.#offline.delete(name);
        const entry = queue.find((e) => e.device === name)!;
        try {
          const job = this.#deps.startBackup(name, entry.sources);
          store.audit('scheduler', 'backup.scheduled', name, { reason: wasOffline ? `back online; ${entry.reason}` : entry.reason });
          started.push({ device: name, jobId: job.id });
        } catch (error) {
          log.warn(`scheduler: could not start a backup of ${name}: ${(error as Error).message}`);
        }
      }
    }
    if (started.length === 0 && this.#deps.jobs.active().length === 0) await this.#deps.maintenance?.tick();
    return started;
  }

  /** Ticks every `intervalMs` while the scheduler setting is on. */
  start(intervalMs = 30_000): void {
    if (this.#timer) return;
    const run = () => {
      if (!this.#deps.settings.get().schedulerEnabled) return;
      this.tick().catch((error: unknown) => this.#deps.log.error(`scheduler: ${(error as Error).message}`));
    };
    this.#timer = setInterval(run, intervalMs);
    this.#timer.unref();
    setImmediate(run);
  }

  /** Whether backups start by themselves here: the scheduler runs in this process and the setting is on. */
  get active(): boolean {
    return this.#timer !== null && this.#deps.settings.get().schedulerEnabled;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
