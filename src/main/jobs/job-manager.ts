/**
 * Every long operation (backup, restore, verify, prune, drill, copy) runs as a job: an id, a kind,
 * named phases, progress (bytes, items, rate, ETA), cancellation through an AbortSignal, and a
 * record in the history store. Progress reaches the renderer as `jobs:progress` events, throttled
 * to about ten a second; phase changes and the end are always sent at once.
 */
import { randomBytes } from 'node:crypto';
import { AppError } from '../../shared/errors';
import { STALLED_AFTER_S } from '../../shared/schemas/jobs';
import type { JobKind, JobProgress, JobRecord, JobStatus } from '../../shared/schemas/jobs';
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { JobRow, RunningJobRow } from '../history/statements';
import type { Logger } from '../log';
import { processAlive } from '../process-alive';
import { awakeClock, formatAwake, parseAwake } from './awake-clock';
import type { AwakeStamp } from './awake-clock';
import { ProgressMeter } from './progress-meter';
import { counted, verb } from '../../shared/plural';

export interface JobSpec {
  kind: JobKind;
  title: string;
  phases: readonly [string, ...string[]];
  deviceId?: string | null;
  /** Who started it, for the audit log (default: the console itself). */
  actor?: string;
}

/** What a running task sees of its job. */
export interface JobContext {
  readonly id: string;
  readonly signal: AbortSignal;
  /** Moves to a named phase (one of the spec's phases). */
  phase(name: string): void;
  /** Sets what "done" means; null while unknown. */
  setTotals(totals: { bytes?: number | null; items?: number | null }): void;
  /** Adds work done. */
  advance(delta: { bytes?: number; items?: number }): void;
  /** Throws a CANCELLED AppError if the job was cancelled; call between units of work. */
  throwIfCancelled(): void;
  /**
   * The job's work is done and kept (a backup's snapshots are all written): from now on a cancel is
   * refused and the job is not reported as cancelled, whatever its last steps (log rotation) do.
   */
  commit(): void;
}

export type JobTask<T> = (ctx: JobContext) => Promise<T>;

export interface StartedJob<T> {
  id: string;
  /**
   * Settles with the job's final record; rejects never. `value` is set when it succeeded; `error`
   * is what the task threw when it failed (the record keeps its code and message; a caller in this
   * process may need more of it, e.g. the CLI's exit code for a locked repository).
   */
  done: Promise<{ record: JobRecord; value: T | undefined; error?: unknown }>;
}

interface LiveJob {
  spec: JobSpec;
  startedAt: string;
  controller: AbortController;
  progress: JobProgress;
  meter: ProgressMeter;
  lastEmit: number;
  /** When the job last moved: a byte, a file or a phase (its `stalledSeconds` count from here). */
  lastMoved: number;
  pending: ReturnType<typeof setTimeout> | null;
  /** Sends the progress again when the job has been silent for STALL_TICK_MS (its rate falls). */
  ticker?: ReturnType<typeof setInterval>;
  /** Set by `ctx.commit()`: cancels are refused from then on. */
  committed?: boolean;
  /** Why it was cancelled when no person did (its process stopping), for its record. */
  cancelledBecause?: string;
  /** Why the history store refused the job's progress row (said once). */
  progressNotStored?: string;
}

export const PROGRESS_INTERVAL_MS = 100;
/**
 * A job that reported nothing for this long is sampled again as it is: rate and ETA are measured
 * only when progress is sent, so a stalled transfer (a silent link, a device busy on one file)
 * otherwise went on showing its last rate and a shrinking-never ETA until keepalives gave up.
 */
export const STALL_TICK_MS = 1_000;
/** How often a process marks the jobs it runs as still its own (and looks for orphans). */
export const HEARTBEAT_MS = 10_000;
/**
 * A running job whose process has not marked it for this long is an orphan even when a process
 * with its pid is alive: that pid now belongs to something else.
 */
export const ORPHAN_AFTER_MS = 5 * 60_000;

/**
 * What a job's record adds to "was cancelled" when the process running it stopped (the app quit,
 * run-scheduler or the test host stopped): a cancel all the same, but not the technician's — the
 * scheduler waits after a cancelled run only when a person cancelled it.
 */
export const STOPPED_WITH_PROCESS = 'Jetvault stopped while it ran';

export function newJobId(): string {
  return `job_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

export function jobRecordFromRow(row: JobRow): JobRecord {
  return {
    id: row.id,
    kind: row.kind as JobKind,
    title: row.title,
    deviceId: row.device_id,
    status: row.status as JobStatus,
    phases: JSON.parse(row.phases) as string[],
    phase: row.phase,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    bytesDone: row.bytes_done,
    itemsDone: row.items_done,
    error: row.error ? (JSON.parse(row.error) as { code: string; message: string }) : null,
    result: row.result ? (JSON.parse(row.result) as unknown) : null,
  };
}

export class JobManager {
  readonly #store: HistoryStore;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #live = new Map<string, LiveJob>();
  /** Ends of jobs the history store refused (its disk full), stored again on each heartbeat. */
  readonly #unsavedEnds: Array<() => void> = [];
  /** Every started job's end (its record written), for `stopAll`. */
  readonly #ending = new Set<Promise<unknown>>();
  readonly #heartbeat: ReturnType<typeof setInterval>;
  /** Told after jobs of dead processes were marked interrupted (records that follow a job's fate). */
  readonly #reapedListeners: Array<() => void> = [];
  readonly #interruptedNote: (row: RunningJobRow) => string;
  /** Why the last heartbeat could not be stored (said once, until one is stored again). */
  #heartbeatFailure: string | null = null;
  /** When this manager's last heartbeat ran (its first: when it was made). */
  #lastBeatAt: number;
  /**
   * When this process last found its own heartbeat late by far (the laptop slept, every process with
   * it): another process's heartbeat is not counted stale from before then — that process slept too
   * and has not had its turn to beat yet.
   */
  #wokeAt = Number.NEGATIVE_INFINITY;
  readonly #awake: () => AwakeStamp | null;

  /**
   * The app, the scheduler and every CLI command share one history, each with a job manager of its
   * own: a job "running" there may be another live process's. Only the jobs of processes that are
   * gone are marked interrupted — now and on every heartbeat.
   */
  constructor(
    store: HistoryStore,
    bus: EventBus,
    log: Logger,
    now: () => number = Date.now,
    /** What an interrupted job of a kind adds to its error (a restore: what its device holds), '' for nothing. */
    interruptedNote: (row: RunningJobRow) => string = () => '',
    /**
     * The clock that stops while the machine sleeps (awake-clock.ts); null where there is none. A
     * manager on a test's wall clock (`now`) has none unless given one: its tests move `now` alone.
     */
    awake: () => AwakeStamp | null = now === Date.now ? awakeClock : () => null,
  ) {
    this.#awake = awake;
    this.#store = store;
    this.#bus = bus;
    this.#log = log;
    this.#now = now;
    this.#interruptedNote = interruptedNote;
    this.#lastBeatAt = now();
    const interrupted = this.reapOrphans();
    if (interrupted > 0) log.warn(`${counted(interrupted, 'job')} ${verb(interrupted, 'was', 'were')} interrupted: the process running them stopped before they finished`);
    this.#heartbeat = setInterval(() => this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  /**
   * Marks as failed (INTERRUPTED) every running job whose process is gone: its pid is not alive, or
   * it has not marked the job for ORPHAN_AFTER_MS, or the row predates owners. Returns how many.
   */
  reapOrphans(): number {
    // Ends the store refused before come first: their rows must not be taken for running jobs.
    while (this.#unsavedEnds.length > 0) {
      try {
        this.#unsavedEnds[0]!();
        this.#unsavedEnds.shift();
      } catch {
        break;
      }
    }
    const at = new Date(this.#now()).toISOString();
    let interrupted = 0;
    for (const row of this.#store.sql.jobsRunning.all()) {
      if (this.#live.has(row.id) || this.#ownerRuns(row)) continue;
      const message =
        row.owner_pid === null
          ? 'The console stopped while this job was running'
          : `The Jetvault process running this job (pid ${row.owner_pid}) stopped before it finished`;
      const note = this.#interruptedNote(row);
      interrupted += this.#store.sql.jobInterrupt.run(at, JSON.stringify({ code: 'INTERRUPTED', message: `${message}${note}` }), row.id).changes;
    }
    if (interrupted > 0) for (const listener of this.#reapedListeners) listener();
    return interrupted;
  }

  /** Calls `listener` whenever `reapOrphans` has marked jobs interrupted (at start, or on a heartbeat). */
  onOrphansReaped(listener: () => void): void {
    this.#reapedListeners.push(listener);
  }

  /** Whether the process that started this job still runs it. */
  #ownerRuns(row: RunningJobRow): boolean {
    if (row.owner_pid === null || row.heartbeat_at === null) return false;
    const beat = parseAwake(row.heartbeat_awake);
    const here = beat ? this.#awake() : null;
    if (beat && here) {
      // Stamped in an earlier boot: its process is gone (a live pid now is another process's).
      if (beat.boot !== here.boot) return false;
      // Late by the time the machine was awake, a sleep not counted.
      return here.ms - beat.ms <= ORPHAN_AFTER_MS && processAlive(row.owner_pid);
    }
    if (this.#now() - Math.max(Date.parse(row.heartbeat_at), this.#wokeAt) > ORPHAN_AFTER_MS) return false;
    return processAlive(row.owner_pid);
  }

  #beat(): void {
    if (!this.#store.db.open) return;
    const now = this.#now();
    // Woken (a laptop's sleep, a stopped process): whichever process beats first after it used to take
    // the others' backups, still running, for orphans of reused pids — marked interrupted (a "backup
    // failed" alert and webhook for a backup that went on to succeed) and their devices free for a
    // second backup. Their heartbeats are counted from now instead.
    if (now - this.#lastBeatAt > 3 * HEARTBEAT_MS) this.#wokeAt = now;
    this.#lastBeatAt = now;
    try {
      const at = new Date(now).toISOString();
      const awake = formatAwake(this.#awake());
      for (const id of this.#live.keys()) this.#store.sql.jobHeartbeat.run(at, awake, id);
      this.reapOrphans();
      this.#heartbeatFailure = null;
    } catch (error) {
      // A full disk would say so every 10 s: once is enough until it clears.
      if (this.#heartbeatFailure === null) this.#log.warn(`jobs: the heartbeat could not be stored: ${(error as Error).message}`);
      this.#heartbeatFailure = (error as Error).message;
    }
  }

  /** The device jobs (backups, restores, drills) other live processes run now. */
  #deviceJobsElsewhere(): RunningJobRow[] {
    return this.#store.sql.jobsRunning.all().filter((row) => row.device_id !== null && !this.#live.has(row.id) && this.#ownerRuns(row));
  }

  /**
   * Throws CONFLICT when another process runs a job on the device: two processes must not work on
   * one device at once (this process's own jobs on it queue in the device connector instead).
   * Checked and recorded in one write transaction, so two processes starting at once cannot both pass.
   */
  start<T>(spec: JobSpec, task: JobTask<T>): StartedJob<T> {
    const id = newJobId();
    const startedAt = new Date(this.#now()).toISOString();
    this.#store.db
      .transaction(() => {
        if (spec.deviceId) this.refuseIfBusyElsewhere(spec.deviceId);
        this.#store.sql.jobInsert.run(id, spec.kind, spec.title, spec.deviceId ?? null, JSON.stringify(spec.phases), spec.phases[0], startedAt, process.pid, startedAt, formatAwake(this.#awake()));
      })
      .immediate();
    const live: LiveJob = {
      spec,
      startedAt,
      controller: new AbortController(),
      meter: new ProgressMeter(),
      lastEmit: 0,
      lastMoved: this.#now(),
      pending: null,
      progress: {
        jobId: id,
        kind: spec.kind,
        title: spec.title,
        phase: spec.phases[0],
        phaseIndex: 0,
        phaseCount: spec.phases.length,
        bytesDone: 0,
        bytesTotal: null,
        itemsDone: 0,
        itemsTotal: null,
        rate: 0,
        etaSeconds: null,
        fraction: null,
        stalledSeconds: null,
      },
    };
    this.#live.set(id, live);
    live.meter.sample(0, this.#now());
    this.#emitProgress(live, true);
    live.ticker = setInterval(() => {
      if (this.#now() - live.lastEmit >= STALL_TICK_MS) this.#emitProgress(live, true);
    }, STALL_TICK_MS);
    live.ticker.unref();

    const ctx: JobContext = {
      id,
      signal: live.controller.signal,
      phase: (name) => {
        const index = spec.phases.indexOf(name);
        if (index < 0) throw new Error(`Job ${spec.kind} has no phase "${name}"`);
        live.progress.phase = name;
        live.progress.phaseIndex = index;
        live.lastMoved = this.#now();
        this.#emitProgress(live, true);
      },
      setTotals: ({ bytes, items }) => {
        if (bytes !== undefined) live.progress.bytesTotal = bytes;
        if (items !== undefined) live.progress.itemsTotal = items;
        this.#emitProgress(live, false);
      },
      advance: ({ bytes = 0, items = 0 }) => {
        live.progress.bytesDone += bytes;
        live.progress.itemsDone += items;
        if (bytes > 0 || items > 0) live.lastMoved = this.#now();
        this.#emitProgress(live, false);
      },
      throwIfCancelled: () => {
        if (live.controller.signal.aborted) throw new AppError('CANCELLED', `${spec.title} was cancelled`);
      },
      commit: () => {
        live.committed = true;
      },
    };

    const done = (async () => {
      let status: JobStatus = 'succeeded';
      let error: { code: string; message: string } | null = null;
      let value: T | undefined;
      let thrown: unknown;
      try {
        value = await task(ctx);
        if (live.controller.signal.aborted && !live.committed) throw new AppError('CANCELLED', `${spec.title} was cancelled`);
      } catch (caught) {
        const cancelled = (live.controller.signal.aborted && !live.committed) || (caught instanceof AppError && caught.code === 'CANCELLED');
        status = cancelled ? 'cancelled' : 'failed';
        // However the task noticed the abort (AbortError from a stream, our CANCELLED), it is a cancellation.
        error = cancelled
          ? { code: 'CANCELLED', message: `${spec.title} was cancelled${live.cancelledBecause ? `: ${live.cancelledBecause}` : ''}` }
          : caught instanceof AppError
            ? { code: caught.code, message: caught.message }
            : { code: 'INTERNAL', message: (caught as Error)?.message ?? String(caught) };
        // An AppError is a failure the job foresaw, whose message says it all (a refused login, a
        // failed dump): it is in the job's record, which the console, the CLI command that started
        // it and run-scheduler show — logged at info (the app's log keeps it; a CLI printed it twice).
        // Anything else is a bug, logged as an error with the stack that finds it.
        if (!cancelled && caught instanceof AppError) this.#log.info(`job ${id} (${spec.kind}) failed`, { code: caught.code, message: caught.message });
        else if (!cancelled) this.#log.error(`job ${id} (${spec.kind}) failed`, caught);
        value = undefined;
        if (!cancelled) thrown = caught;
      }
      return { record: this.#finish(live, status, error, value), value, ...(thrown !== undefined ? { error: thrown } : {}) };
    })();
    this.#ending.add(done);
    void done.finally(() => this.#ending.delete(done));
    return { id, done };
  }

  /**
   * Throws CONFLICT when another live process runs a job on the device. Work on a device outside a
   * job — a restore's keep, rollback or recovery — is refused then, as a second job would be: its
   * recovery would roll back the other process's restore while that one stages or swaps.
   */
  refuseIfBusyElsewhere(deviceId: string): void {
    const other = this.#deviceJobsElsewhere().find((row) => row.device_id === deviceId);
    if (other) {
      throw new AppError(
        'CONFLICT',
        `"${other.title}" is running in another Jetvault process (pid ${other.owner_pid}, since ${other.started_at}): wait for it to finish, or cancel it there`,
      );
    }
  }

  /** Cancels a running job; `because` is said in its record after "was cancelled" (none: a person cancelled it). */
  cancel(jobId: string, because?: string): boolean {
    const live = this.#live.get(jobId);
    if (!live || live.controller.signal.aborted || live.committed) return false;
    if (because) live.cancelledBecause = because;
    live.controller.abort(new AppError('CANCELLED', `${live.spec.title} was cancelled`));
    return true;
  }

  /** The title of the job this process runs on the device now ("Back up rvm-017"), or null. */
  runningHereOn(deviceId: string): string | null {
    for (const live of this.#live.values()) if (live.spec.deviceId === deviceId) return live.spec.title;
    return null;
  }

  /**
   * Devices with a job running now (a backup, a restore, a drill) in this process or another live
   * one: one job per device at a time.
   */
  busyDevices(): Set<string> {
    const here = [...this.#live.values()].flatMap((live) => (live.spec.deviceId ? [live.spec.deviceId] : []));
    const elsewhere = this.#deviceJobsElsewhere().map((row) => row.device_id!);
    return new Set([...here, ...elsewhere]);
  }

  active(): JobProgress[] {
    return [...this.#live.values()].map((live) => ({ ...live.progress }));
  }

  /** Whether this process runs the job (its end is announced here as it happens). */
  runsHere(jobId: string): boolean {
    return this.#live.has(jobId);
  }

  list(limit: number, status?: JobStatus): JobRecord[] {
    const rows = status ? this.#store.sql.jobsRecentByStatus.all(status, limit) : this.#store.sql.jobsRecent.all(limit);
    return rows.map(jobRecordFromRow);
  }

  /** One device's jobs of one kind (its backup history, say), newest first. */
  listOfDevice(deviceId: string, kind: JobKind, limit: number): JobRecord[] {
    return this.#store.sql.jobsRecentOfDevice.all(deviceId, kind, limit).map(jobRecordFromRow);
  }

  get(jobId: string): JobRecord | null {
    const row = this.#store.sql.jobGet.get(jobId);
    return row ? jobRecordFromRow(row) : null;
  }

  /** Cancels everything still running (on shutdown). */
  dispose(): void {
    clearInterval(this.#heartbeat);
    for (const id of this.#live.keys()) this.cancel(id, STOPPED_WITH_PROCESS);
  }

  /**
   * Cancels every running job and waits, at most `timeoutMs`, until each has ended — its clean-up
   * done (a backup's written snapshots removed) and its record written — so the history store can
   * be closed after it. A process that stops without this (run-scheduler on SIGTERM) closed the
   * store under its jobs: their records stayed "running" and the process failed writing them.
   */
  async stopAll(timeoutMs = 60_000): Promise<void> {
    for (const id of this.#live.keys()) this.cancel(id, STOPPED_WITH_PROCESS);
    if (this.#ending.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.#ending]), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  #finish(live: LiveJob, status: JobStatus, error: { code: string; message: string } | null, value: unknown): JobRecord {
    if (live.pending) clearTimeout(live.pending);
    live.pending = null;
    clearInterval(live.ticker);
    const { progress } = live;
    if (status === 'succeeded') {
      progress.fraction = 1;
      progress.etaSeconds = 0;
    }
    this.#emitProgress(live, true);
    this.#live.delete(progress.jobId);
    let result: string | null;
    try {
      result = value === undefined ? null : JSON.stringify(value);
    } catch {
      result = null; // a result that cannot be stored does not fail the job
    }
    const finishedAt = new Date(this.#now()).toISOString();
    const store = () => {
      this.#store.sql.jobFinish.run(status, progress.phase, finishedAt, progress.bytesDone, progress.itemsDone, error ? JSON.stringify(error) : null, result, progress.jobId);
      this.#audit(live, status, error);
    };
    const record: JobRecord = {
      id: progress.jobId,
      kind: live.spec.kind,
      title: live.spec.title,
      deviceId: live.spec.deviceId ?? null,
      status,
      phases: [...live.spec.phases],
      phase: progress.phase,
      startedAt: live.startedAt,
      finishedAt,
      bytesDone: progress.bytesDone,
      itemsDone: progress.itemsDone,
      error,
      result: result === null ? null : (JSON.parse(result) as unknown),
    };
    if (!this.#store.db.open) {
      // The process is stopping and closed the store first: the next start marks the job interrupted.
      this.#log.warn(`job ${progress.jobId} (${live.spec.kind}) ended ${status} after the history store was closed`);
    } else {
      try {
        store();
        return this.#ended(this.get(progress.jobId) ?? record);
      } catch (caught) {
        // The data folder's disk is full (SQLITE_FULL): the job's work is done — a backup's snapshots
        // written — and must not turn into a failure, nor stay "running" in the console. Its end is
        // stored on a later heartbeat, once there is room.
        this.#log.warn(`job ${progress.jobId} (${live.spec.kind}): its end (${status}) could not be stored in the history yet: ${(caught as Error).message}`);
        this.#unsavedEnds.push(store);
      }
    }
    return this.#ended(record);
  }

  #ended(record: JobRecord): JobRecord {
    this.#bus.emit('jobs:finished', { job: record });
    return record;
  }


  /** Every job's end is in the audit log with its result (a failure with its message). */
  #audit(live: LiveJob, status: JobStatus, error: { code: string; message: string } | null): void {
    const { spec, progress } = live;
    try {
      const device = spec.deviceId ? (this.#store.sql.deviceById.get(spec.deviceId)?.name ?? spec.deviceId) : null;
      const outcome = status === 'succeeded' ? { result: 'ok' as const } : { result: status === 'cancelled' ? ('cancelled' as const) : ('failed' as const), message: error?.message ?? status };
      this.#store.audit(spec.actor ?? 'console', `job.${spec.kind}`, device, { job: progress.jobId, title: spec.title }, outcome);
    } catch (caught) {
      this.#log.warn(`job ${progress.jobId}: could not record it in the audit log: ${(caught as Error).message}`);
    }
  }

  /** Sends progress now if forced or the interval has passed; otherwise schedules one trailing send. */
  #emitProgress(live: LiveJob, force: boolean): void {
    const now = this.#now();
    if (!force && now - live.lastEmit < PROGRESS_INTERVAL_MS) {
      live.pending ??= setTimeout(() => {
        live.pending = null;
        if (this.#live.has(live.progress.jobId)) this.#emitProgress(live, true);
      }, PROGRESS_INTERVAL_MS - (now - live.lastEmit));
      return;
    }
    if (live.pending) {
      clearTimeout(live.pending);
      live.pending = null;
    }
    live.lastEmit = now;
    const { progress, meter } = live;
    meter.sample(progress.bytesDone, now);
    progress.rate = meter.rate();
    progress.etaSeconds = progress.fraction === 1 ? 0 : meter.etaSeconds(progress.bytesDone, progress.bytesTotal);
    const still = Math.floor((now - live.lastMoved) / 1000);
    progress.stalledSeconds = still >= STALLED_AFTER_S ? still : null;
    if (progress.fraction !== 1) {
      progress.fraction =
        progress.bytesTotal && progress.bytesTotal > 0
          ? Math.min(1, progress.bytesDone / progress.bytesTotal)
          : progress.itemsTotal && progress.itemsTotal > 0
            ? Math.min(1, progress.itemsDone / progress.itemsTotal)
            : null;
    }
    // The row only shows the progress to another window or process; the job's end is written by
    // #finish. A history store that refuses it (its disk full: SQLITE_FULL) must not fail the job
    // from inside its own progress callback — a backup would end with "database or disk is full"
    // instead of going on (or saying which disk is full and that nothing was kept).
    try {
      this.#store.sql.jobProgress.run(progress.phase, progress.bytesDone, progress.itemsDone, progress.jobId);
    } catch (error) {
      if (live.progressNotStored === undefined) {
        live.progressNotStored = (error as Error).message;
        this.#log.warn(`job ${progress.jobId}: its progress could not be stored in the history: ${live.progressNotStored}`);
      }
    }
    this.#bus.emit('jobs:progress', { ...progress });
  }
}
