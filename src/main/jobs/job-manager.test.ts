import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../../shared/errors';
import { STALLED_AFTER_S } from '../../shared/schemas/jobs';
import type { JobFinished, JobProgress } from '../../shared/schemas/jobs';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { createLogger, silentLogger } from '../log';
import { tempDir } from '../testing/temp-dir';
import { awakeClock, formatAwake } from './awake-clock';
import { HEARTBEAT_MS, JobManager, ORPHAN_AFTER_MS, PROGRESS_INTERVAL_MS, STALL_TICK_MS } from './job-manager';
import type { JobContext } from './job-manager';

const FILE_BYTES = 160 * 1024 * 1024;

function bigFile(dir: string): string {
  const file = path.join(dir, 'model.engine');
  const block = randomBytes(4 * 1024 * 1024);
  const blocks = Array.from({ length: FILE_BYTES / block.length }, (_, i) => Buffer.concat([block.subarray(0, 8).fill(i), block.subarray(8)]));
  writeFileSync(file, Buffer.concat(blocks));
  return file;
}

/** A real long task: sha256 of a file, streamed in 256 KiB reads, honouring cancellation. */
async function hashFile(file: string, ctx: JobContext): Promise<string> {
  ctx.phase('measure');
  ctx.setTotals({ bytes: (await stat(file)).size, items: 1 });
  ctx.phase('hash');
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024, signal: ctx.signal })) {
    hash.update(chunk as Buffer);
    ctx.advance({ bytes: (chunk as Buffer).length });
    // Paced like work on a slow link (≥ 1 ms per 256 KiB, so ≥ 0.64 s in all): the hashing spans
    // several progress intervals however fast this machine hashes, and timers (throttle, cancel) run.
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  ctx.advance({ items: 1 });
  return hash.digest('hex');
}

function setup() {
  const dir = tempDir();
  const store = new HistoryStore(dir);
  const bus = new EventBus();
  const progress: JobProgress[] = [];
  const finished: JobFinished[] = [];
  bus.subscribe((event, payload) => {
    if (event === 'jobs:progress') progress.push(payload as JobProgress);
    if (event === 'jobs:finished') finished.push(payload as JobFinished);
  });
  return { dir, store, bus, progress, finished, jobs: new JobManager(store, bus, silentLogger) };
}

describe('JobManager', () => {
  it('runs a long task with phases, throttled progress, rate and ETA, and records it', async () => {
    const { dir, store, jobs, progress, finished } = setup();
    const file = bigFile(dir);
    const started = Date.now();
    const { id, done } = jobs.start({ kind: 'verify', title: 'Hash model.engine', phases: ['measure', 'hash'] }, (ctx) => hashFile(file, ctx));
    expect(jobs.active().map((p) => p.jobId)).toEqual([id]);
    const { record, value } = await done;
    const elapsed = Date.now() - started;

    const expected = createHash('sha256');
    for await (const chunk of createReadStream(file)) expected.update(chunk as Buffer);
    expect(value).toBe(expected.digest('hex'));
    expect(record).toMatchObject({ id, status: 'succeeded', phase: 'hash', bytesDone: FILE_BYTES, itemsDone: 1, error: null });
    expect(record.result).toBe(value);
    expect(finished).toEqual([{ job: record }]);
    expect(jobs.active()).toEqual([]);

    // ~10 events a second at most, plus the forced ones (start, 2 phase changes, end).
    expect(FILE_BYTES / (256 * 1024)).toBeGreaterThan(500); // many more advances than events
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(elapsed / PROGRESS_INTERVAL_MS) + 5);
    const hashing = progress.filter((p) => p.phase === 'hash' && p.bytesDone > 0 && p.bytesDone < FILE_BYTES);
    expect(hashing.length).toBeGreaterThanOrEqual(2);
    expect(hashing.some((p) => p.rate > 0 && p.etaSeconds !== null && p.fraction !== null)).toBe(true);
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ jobId: id, fraction: 1, etaSeconds: 0, bytesDone: FILE_BYTES, phaseIndex: 1, phaseCount: 2 });
    // Fractions never go backwards.
    const fractions = progress.map((p) => p.fraction ?? 0);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));

    expect(jobs.list(10)).toEqual([record]);
    store.close();
  });

  it('cancels a running task through its AbortSignal and records it as cancelled', async () => {
    const { dir, store, jobs, progress } = setup();
    const file = bigFile(dir);
    const { id, done } = jobs.start({ kind: 'verify', title: 'Hash model.engine', phases: ['measure', 'hash'] }, (ctx) => hashFile(file, ctx));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (progress.some((p) => p.bytesDone > 0)) {
          clearInterval(poll);
          resolve();
        }
      }, 5);
    });
    expect(jobs.cancel(id)).toBe(true);
    expect(jobs.cancel(id)).toBe(false); // already cancelling
    const { record, value } = await done;
    expect(value).toBeUndefined();
    expect(record.status).toBe('cancelled');
    expect(record.error?.code).toBe('CANCELLED');
    expect(record.bytesDone).toBeGreaterThan(0);
    expect(record.bytesDone).toBeLessThan(FILE_BYTES);
    expect(jobs.list(10, 'cancelled').map((r) => r.id)).toEqual([id]);
    expect(jobs.cancel('job_doesnotexist')).toBe(false);
    store.close();
  });

  it('shows a stalled transfer as stalled: the rate falls to 0, the ETA becomes unknown and how long it has been still is said', async () => {
    const { store, bus, progress } = setup();
    let clock = Date.parse('2026-12-01T08:00:00Z');
    const jobs = new JobManager(store, bus, silentLogger, () => clock);
    let resume!: () => void;
    const stalled = new Promise<void>((resolve) => (resume = resolve));
    const { id, done } = jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['transfer'], deviceId: 'rvm-017' }, async (ctx) => {
      ctx.setTotals({ bytes: 100 * 1024 * 1024 });
      // 2 s at 10 MiB/s, then the link goes silent (no byte, no error: only keepalives would tell).
      for (let i = 0; i < 10; i++) {
        clock += 200;
        ctx.advance({ bytes: 2 * 1024 * 1024 });
      }
      await stalled;
      ctx.advance({ bytes: 80 * 1024 * 1024 });
    });
    const moving = jobs.active().find((p) => p.jobId === id)!;
    expect(moving.rate).toBeGreaterThan(9 * 1024 * 1024);
    expect(moving.etaSeconds).toBeGreaterThan(0);
    expect(moving.stalledSeconds).toBeNull();
    // A pause shorter than STALLED_AFTER_S is not called one.
    clock += (STALLED_AFTER_S - 1) * 1000;
    await new Promise((resolve) => setTimeout(resolve, STALL_TICK_MS + 300));
    expect(progress.at(-1)).toMatchObject({ jobId: id, stalledSeconds: null });
    // Twelve seconds of silence, as the tray and the job's row see them.
    const seen = progress.length;
    clock += 3_000;
    await new Promise((resolve) => setTimeout(resolve, STALL_TICK_MS + 300));
    expect(progress.length).toBeGreaterThan(seen);
    expect(progress.at(-1)).toMatchObject({ jobId: id, rate: 0, etaSeconds: null, bytesDone: 20 * 1024 * 1024, stalledSeconds: STALLED_AFTER_S + 2 });
    expect(jobs.active().find((p) => p.jobId === id)).toMatchObject({ rate: 0, etaSeconds: null, stalledSeconds: STALLED_AFTER_S + 2 });
    resume();
    expect((await done).record.status).toBe('succeeded');
    // Moving again, it is no longer still.
    expect(progress.filter((p) => p.jobId === id).at(-1)).toMatchObject({ stalledSeconds: null });
    store.close();
  });

  it('records a failure with its error code', async () => {
    const { store, jobs } = setup();
    const { done } = jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect'], deviceId: 'rvm-017' }, () =>
      Promise.reject(new AppError('UNAVAILABLE', 'rvm-017 did not answer on 10.0.4.17:22')),
    );
    const { record } = await done;
    expect(record).toMatchObject({ status: 'failed', deviceId: 'rvm-017', error: { code: 'UNAVAILABLE', message: 'rvm-017 did not answer on 10.0.4.17:22' } });
    store.close();
  });

  it('keeps running a job whose progress row the history store refuses (its disk full), and records its end', async () => {
    const { store, jobs, progress } = setup();
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const original = store.sql.jobProgress;
    store.sql.jobProgress = {
      run: () => {
        throw full;
      },
    } as unknown as typeof original;
    const { id, done } = jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['transfer'], deviceId: 'rvm-017' }, async (ctx) => {
      ctx.setTotals({ bytes: 3 });
      for (let i = 0; i < 3; i++) {
        ctx.advance({ bytes: 1 });
        await new Promise((resolve) => setTimeout(resolve, PROGRESS_INTERVAL_MS + 5));
      }
      return 'stored';
    });
    const { record, value } = await done;
    store.sql.jobProgress = original;
    expect(value).toBe('stored');
    expect(record).toMatchObject({ status: 'succeeded', error: null });
    expect(jobs.get(id)).toMatchObject({ status: 'succeeded' });
    // The live progress still reaches the console.
    expect(progress.filter((p) => p.jobId === id).length).toBeGreaterThan(1);
    store.close();
  });

  it('logs a foreseen failure (AppError) at info by its code and message, without a stack; any other error as an error with its stack', async () => {
    const { store, bus } = setup();
    const lines: string[] = [];
    const jobs = new JobManager(store, bus, createLogger('info', (line) => lines.push(line)));
    await jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect'] }, () => Promise.reject(new AppError('UNAVAILABLE', 'rvm-017 did not answer on 10.0.4.17:22'))).done;
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/\binfo\b/);
    expect(lines[0]).toContain('{"code":"UNAVAILABLE","message":"rvm-017 did not answer on 10.0.4.17:22"}');
    expect(lines[0]).not.toMatch(/stack|job-manager/);
    await jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect'] }, () => Promise.reject(new TypeError('x is undefined'))).done;
    expect(lines[1]).toMatch(/\berror\b/);
    expect(lines[1]).toMatch(/"stack":"TypeError: x is undefined\\n +at /);
    store.close();
  });

  it('marks as interrupted only the running jobs of processes that are gone, on start and on each heartbeat', async () => {
    const { dir, store, bus } = setup();
    const now = new Date().toISOString();
    const stale = new Date(Date.now() - ORPHAN_AFTER_MS - 1000).toISOString();
    const dead = spawnSync('true').pid;
    const alive = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const insert = (id: string, device: string, pid: number, heartbeat: string) =>
        store.sql.jobInsert.run(id, 'backup', `Back up ${device}`, device, '["transfer"]', 'transfer', now, pid, heartbeat, null);
      insert('job_dead', 'rvm-001', dead, now);
      insert('job_before_owners', 'rvm-002', alive.pid!, now);
      store.db.prepare('UPDATE jobs SET owner_pid = NULL, heartbeat_at = NULL WHERE id = ?').run('job_before_owners');
      insert('job_pid_reused', 'rvm-003', alive.pid!, stale);
      insert('job_elsewhere', 'rvm-004', alive.pid!, now);
      store.close();
      const reopened = new HistoryStore(dir);
      const lines: string[] = [];
      const jobs = new JobManager(reopened, bus, createLogger('warn', (line) => lines.push(line)));
      expect(jobs.get('job_dead')).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED', message: `The Jetvault process running this job (pid ${dead}) stopped before it finished` } });
      expect(jobs.get('job_before_owners')).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED', message: 'The console stopped while this job was running' } });
      expect(jobs.get('job_pid_reused')).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' } });
      expect(lines.join('\n')).toContain('3 jobs were interrupted');
      // Another process's backup that is still under way is left alone, and its device is busy here too.
      expect(jobs.get('job_elsewhere')).toMatchObject({ status: 'running', error: null });
      expect([...jobs.busyDevices()]).toEqual(['rvm-004']);
      expect(() => jobs.start({ kind: 'restore', title: 'Restore rvm-004', phases: ['stage'], deviceId: 'rvm-004' }, () => Promise.resolve(1))).toThrow(
        new AppError('CONFLICT', `"Back up rvm-004" is running in another Jetvault process (pid ${alive.pid}, since ${now}): wait for it to finish, or cancel it there`),
      );
      expect(jobs.list(10).filter((j) => j.deviceId === 'rvm-004')).toHaveLength(1);
      expect((await jobs.start({ kind: 'restore', title: 'Restore rvm-003', phases: ['stage'], deviceId: 'rvm-003' }, () => Promise.resolve(1)).done).record.status).toBe('succeeded');
      // That process dies: the next sweep marks its job, and the device is free.
      alive.kill('SIGKILL');
      await new Promise((resolve) => alive.once('exit', resolve));
      expect(jobs.reapOrphans()).toBe(1);
      expect(jobs.get('job_elsewhere')).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' } });
      expect(jobs.busyDevices().size).toBe(0);
      expect((await jobs.start({ kind: 'restore', title: 'Restore rvm-004', phases: ['stage'], deviceId: 'rvm-004' }, () => Promise.resolve(1)).done).record.status).toBe('succeeded');
      jobs.dispose();
      reopened.close();
    } finally {
      alive.kill('SIGKILL');
    }
  });

  it('marks its own running jobs on every heartbeat, so another process leaves them alone', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const { store, bus, jobs: first } = setup();
      first.dispose();
      let now = Date.now();
      const startedAt = new Date(now).toISOString();
      const jobs = new JobManager(store, bus, silentLogger, () => now);
      let finish!: () => void;
      const { id, done } = jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['transfer'], deviceId: 'rvm-017' }, () => new Promise<void>((resolve) => (finish = resolve)));
      const heartbeat = () => store.db.prepare<[string], { owner_pid: number; heartbeat_at: string }>('SELECT owner_pid, heartbeat_at FROM jobs WHERE id = ?').get(id);
      expect(heartbeat()).toEqual({ owner_pid: process.pid, heartbeat_at: startedAt });
      now += ORPHAN_AFTER_MS + 1000; // without the heartbeat, an orphan by now
      vi.advanceTimersByTime(HEARTBEAT_MS);
      expect(heartbeat()!.heartbeat_at).toBe(new Date(now).toISOString());
      // A second manager (another process would see the same) finds it live and its device busy.
      const other = new JobManager(store, bus, silentLogger, () => now);
      expect(other.get(id)).toMatchObject({ status: 'running' });
      expect(other.busyDevices()).toEqual(new Set(['rvm-017']));
      finish();
      expect((await done).record.status).toBe('succeeded');
      other.dispose();
      jobs.dispose();
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it.skipIf(awakeClock() === null)("a process started just after the laptop woke leaves another process's running backup alone: its heartbeat is late only by the sleep", () => {
    const { dir, store, bus } = setup();
    const here = awakeClock()!;
    const hourAgo = new Date(Date.now() - 60 * 60_000).toISOString();
    const insert = (id: string, device: string, awake: string) =>
      store.sql.jobInsert.run(id, 'backup', `Back up ${device}`, device, '["transfer"]', 'transfer', hourAgo, process.pid, hourAgo, awake);
    // The console beat 20 s of awake time ago, then the laptop slept an hour: its wall-clock heartbeat is an hour old.
    insert('job_slept', 'rvm-001', formatAwake({ boot: here.boot, ms: here.ms - 20_000 })!);
    // One that missed its heartbeats while the machine was awake is a stopped process's.
    insert('job_stalled', 'rvm-002', formatAwake({ boot: here.boot, ms: here.ms - ORPHAN_AFTER_MS - 1000 })!);
    // One stamped in an earlier boot: whatever process has that pid now is another.
    insert('job_before_restart', 'rvm-003', formatAwake({ boot: 'an-earlier-boot', ms: here.ms })!);
    store.close();
    // A CLI command started now, on the real clocks.
    const reopened = new HistoryStore(dir);
    const jobs = new JobManager(reopened, bus, silentLogger);
    try {
      expect(jobs.get('job_slept')).toMatchObject({ status: 'running', error: null });
      expect([...jobs.busyDevices()]).toEqual(['rvm-001']);
      expect(jobs.get('job_stalled')).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' } });
      expect(jobs.get('job_before_restart')).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' } });
      // Its own jobs carry the awake stamp from the start.
      const { id } = jobs.start({ kind: 'verify', title: 'Verify', phases: ['check'] }, () => new Promise<void>(() => undefined));
      const row = reopened.db.prepare<[string], { heartbeat_awake: string }>('SELECT heartbeat_awake FROM jobs WHERE id = ?').get(id)!;
      expect(row.heartbeat_awake).toMatch(new RegExp(`^${here.boot} \\d+$`));
    } finally {
      jobs.dispose();
      reopened.close();
    }
  });

  it("after the laptop sleeps, the first process to wake leaves another process's running backup alone (its heartbeat is late for the same reason)", async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const { store, bus, jobs: first } = setup();
      first.dispose();
      let now = Date.now();
      // The app (made first: its heartbeat runs first on waking) and run-scheduler's backup.
      const app = new JobManager(store, bus, silentLogger, () => now);
      const scheduler = new JobManager(store, bus, silentLogger, () => now);
      let finish!: () => void;
      const { id, done } = scheduler.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['transfer'], deviceId: 'rvm-017' }, () => new Promise<void>((resolve) => (finish = resolve)));
      vi.advanceTimersByTime(HEARTBEAT_MS);
      now += HEARTBEAT_MS;
      // An hour asleep; on waking both heartbeats are due, the app's first.
      now += 60 * 60_000;
      vi.advanceTimersByTime(HEARTBEAT_MS);
      expect(app.get(id)).toMatchObject({ status: 'running', error: null });
      expect(app.busyDevices()).toEqual(new Set(['rvm-017']));
      expect(() => app.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['transfer'], deviceId: 'rvm-017' }, () => Promise.resolve())).toThrow(/running in another Jetvault process/);
      // A process that really stopped beating is still found out, ORPHAN_AFTER_MS after the wake.
      scheduler.dispose(); // its heartbeat stops (the job's promise is left to the end of the test)
      for (let beats = 0; beats * HEARTBEAT_MS <= ORPHAN_AFTER_MS; beats++) {
        now += HEARTBEAT_MS;
        vi.advanceTimersByTime(HEARTBEAT_MS);
      }
      expect(app.get(id)).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' } });
      finish();
      await done;
      app.dispose();
      store.close();
    } finally {
      vi.useRealTimers();
    }
  });
});
