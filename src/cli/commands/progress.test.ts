import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../main/testing/temp-dir';
import { EventBus } from '../../main/event-bus';
import { HistoryStore } from '../../main/history/history-store';
import { JobManager, STALL_TICK_MS } from '../../main/jobs/job-manager';
import { silentLogger } from '../../main/log';
import { formatProgress, jobProgress, ttyProgress } from './repo-common';

/** Carriage return and erase-line: how the progress line redraws itself. */
const CLEAR = '\r\x1b[K';
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('progress on a terminal', () => {
  it('formats files, bytes, rate and ETA', () => {
    expect(formatProgress({ items: 12, bytes: 3 * 1048576, elapsedMs: 2000 })).toBe('12 files, 3.0 MiB, 1.5 MiB/s');
    expect(formatProgress({ items: 12, bytes: 3 * 1048576, elapsedMs: 2000, totalItems: 40, totalBytes: 12 * 1048576 })).toBe(
      '12/40 files, 3.0 MiB / 12.0 MiB (25%), 1.5 MiB/s, ETA 6s',
    );
    expect(formatProgress({ items: 1, bytes: 1048576, elapsedMs: 1000, totalBytes: 200 * 1048576, estimated: true })).toBe(
      '1 files, 1.0 MiB / 200.0 MiB (0%), 1.0 MiB/s, ETA ~3m19s',
    );
    // No ETA in the first second (no rate yet worth showing), none past the total.
    expect(formatProgress({ items: 0, bytes: 0, elapsedMs: 10, totalBytes: 100 })).toBe('0 files, 0 B / 100 B (0%), 0 B/s');
    expect(formatProgress({ items: 5, bytes: 300, elapsedMs: 3000, totalBytes: 100 })).toBe('5 files, 300 B / 100 B (100%), 100 B/s, ETA 0s');
    // A job that has not moved for a while says for how long (null: it moves).
    expect(formatProgress({ items: 5, bytes: 300, elapsedMs: 90_000, rate: 0, etaSeconds: null, stalledSeconds: 75, totalBytes: 1000 })).toBe('5 files, 300 B / 1000 B (30%), 0 B/s, no progress for 1m15s');
    expect(formatProgress({ items: 5, bytes: 300, elapsedMs: 90_000, rate: 0, etaSeconds: null, stalledSeconds: null })).toBe('5 files, 300 B, 0 B/s');
  });

  it("draws a running job's phase and progress from its events (a device backup), only its own, only on a terminal", async () => {
    const store = new HistoryStore(tempDir());
    const bus = new EventBus();
    const jobs = new JobManager(store, bus, silentLogger);
    try {
      let go: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (go = resolve));
      const job = jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect', 'transfer'] }, async (ctx) => {
        ctx.phase('transfer');
        ctx.setTotals({ bytes: 4 * 1048576, items: 10 });
        ctx.advance({ bytes: 1048576, items: 3 });
        await gate;
      });
      // Another job's progress, well after the first line is drawn (the line redraws at most every 200 ms).
      const other = jobs.start({ kind: 'backup', title: 'Back up rvm-018', phases: ['connect', 'transfer'] }, async (ctx) => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        ctx.setTotals({ items: 77 });
        ctx.advance({ items: 5 });
        await gate;
      });
      const written: string[] = [];
      const quiet: string[] = [];
      const shown = jobProgress(job.id, bus.subscribe.bind(bus), { isTTY: true, write: (t: string) => written.push(t) });
      const piped = jobProgress(job.id, bus.subscribe.bind(bus), { isTTY: false, write: (t: string) => quiet.push(t) });
      await new Promise((resolve) => setTimeout(resolve, 800)); // past both jobs' (throttled) progress events
      go();
      await Promise.all([job.done, other.done]);
      shown.done();
      piped.done();
      expect(quiet).toEqual([]);
      expect(written.length).toBeGreaterThanOrEqual(2);
      expect(written[0]!.startsWith(`${CLEAR}transfer: 3/10 files, 1.0 MiB / 4.0 MiB (25%)`)).toBe(true);
      expect(written.at(-1)).toBe(CLEAR);
      expect(written.join('')).not.toContain('/77 files'); // the other job's events are not drawn
    } finally {
      jobs.dispose();
      store.close();
    }
  });

  it("shows the job's own rate and ETA: a transfer that stalls reads 0 B/s with no ETA, not its average since the start, and how long it has been still", async () => {
    const store = new HistoryStore(tempDir());
    const bus = new EventBus();
    let clock = Date.parse('2026-12-01T08:00:00Z');
    const jobs = new JobManager(store, bus, silentLogger, () => clock);
    try {
      let go: () => void = () => undefined;
      const going = new Promise<void>((resolve) => (go = resolve));
      let resume: () => void = () => undefined;
      const stalled = new Promise<void>((resolve) => (resume = resolve));
      const job = jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect', 'transfer'] }, async (ctx) => {
        await going;
        ctx.phase('transfer');
        ctx.setTotals({ bytes: 100 * 1048576 });
        // 2 s at 10 MiB/s, then the link goes silent.
        for (let i = 0; i < 10; i++) {
          clock += 200;
          ctx.advance({ bytes: 2 * 1048576, items: 1 });
        }
        await stalled;
      });
      const written: string[] = [];
      const shown = jobProgress(job.id, bus.subscribe.bind(bus), { isTTY: true, write: (t: string) => written.push(t) });
      go();
      await new Promise((resolve) => setTimeout(resolve, 300));
      clock += 10_000;
      await new Promise((resolve) => setTimeout(resolve, STALL_TICK_MS + 300));
      expect(written.at(-1)).toBe(`${CLEAR}transfer: 10 files, 20.0 MiB / 100.0 MiB (20%), 0 B/s, no progress for 10s`);
      resume();
      await job.done;
      shown.done();
    } finally {
      jobs.dispose();
      store.close();
    }
  });

  it('draws only on a terminal and clears its line at the end', () => {
    const written: string[] = [];
    const quiet = ttyProgress({}, { isTTY: false, write: (t: string) => written.push(t) });
    quiet.onProgress({ items: 1, bytes: 10 });
    quiet.done();
    expect(written).toEqual([]);
    const tty = ttyProgress({ items: 2 }, { isTTY: true, write: (t: string) => written.push(t) });
    tty.onProgress({ items: 1, bytes: 10 });
    tty.done();
    expect(written[0]!.startsWith(`${CLEAR}1/2 files, 10 B, `)).toBe(true);
    expect(written.at(-1)).toBe(CLEAR);
  });

  it.skipIf(!hasScript)('`jetvault backup` and `restore` under a pseudo-terminal show progress on stderr; --json output stays clean', { timeout: 60_000 }, async () => {
    const home = tempDir('jv-tty-');
    const data = join(home, 'data');
    await mkdir(data);
    for (let i = 0; i < 3; i++) await writeFile(join(data, `f${i}`), `file ${i}\n`.repeat(1000));
    const env = { ...process.env, JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-tty' };
    const cli = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'bin/jetvault.js'))}`;
    const inPty = (command: string): string => execFileSync('script', ['-qec', command, '/dev/null'], { env, cwd: ROOT }).toString();
    inPty(`${cli} init`);
    const backupJson = join(home, 'backup.json');
    const screen = inPty(`${cli} backup ${JSON.stringify(data)} --json > ${JSON.stringify(backupJson)}`);
    expect(screen).toContain(CLEAR);
    expect(screen).toMatch(/\d+ files, [\d.]+ (B|KiB), [\d.]+ (B|KiB|MiB)\/s/);
    const summary = JSON.parse(await readFile(backupJson, 'utf8')) as { id: string; files: number };
    expect(summary.files).toBe(3);
    // A second backup knows its parent: the line shows the expected total.
    expect(inPty(`${cli} backup ${JSON.stringify(data)} > /dev/null`)).toMatch(/\d\/3 files, .* \/ 20\.5 KiB/);
    const restored = inPty(`${cli} restore ${summary.id} --target ${JSON.stringify(join(home, 'out'))}`);
    expect(restored).toMatch(/\d\/3 files, .* \/ 20\.5 KiB \(\d+%\)/);
    expect(restored).toMatch(/restored snapshot/);
    // Not a terminal: no progress at all.
    const piped = spawnSync(process.execPath, [join(ROOT, 'bin/jetvault.js'), 'backup', data], { env, cwd: ROOT });
    expect(piped.status).toBe(0);
    expect(piped.stdout.toString()).toMatch(/snapshot \w+ saved/);
    expect(piped.stderr.toString()).not.toContain(CLEAR);
  });
});
