/**
 * Fleet overview benchmark (not a test): seeds a history store with 500 devices and a year of
 * backup runs, drills and storage samples, then times
 *   - the overview data query (what `overview:get` computes in main), and the same through the
 *     channel's output schema and JSON (what crosses the wire);
 *   - the dashboard data query per time range, fleet-wide and for one device;
 *   - the first render of the Fleet page in Chromium through the test host (Playwright), from the
 *     click on "Fleet" to its rows painted (the table renders the rows in view, see decision 301),
 *     and a cold load of the console on the Fleet page.
 * Targets: overview data <= 50 ms, first render <= 300 ms.
 *
 *   npx electron-vite build && npx tsx bench/fleet-overview.ts
 *   BENCH_DEVICES=500 BENCH_DAYS=365 BENCH_DIR=/tmp/jetvault-fleet-bench (defaults); BENCH_RESEED=1 to seed again
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from '@playwright/test';
import { OverviewSchema, DashboardSchema } from '../src/shared/schemas/fleet';
import { runCutoff } from '../src/shared/job-runs';
import { DashboardService } from '../src/main/fleet/dashboard-service';
import { OverviewService } from '../src/main/fleet/overview-service';
import { seedDeviceName, seedFleet } from '../src/main/fleet/seed';
import { EventBus } from '../src/main/event-bus';
import { HistoryStore } from '../src/main/history/history-store';
import { createLogger } from '../src/main/log';
import { SettingsService } from '../src/main/services/settings-service';
import { RANGES } from '../src/shared/schemas/fleet';

const devices = Number(process.env.BENCH_DEVICES ?? 500);
const days = Number(process.env.BENCH_DAYS ?? 365);
const dir = resolve(process.env.BENCH_DIR ?? '/tmp/jetvault-fleet-bench');
const root = resolve(import.meta.dirname, '..');
const marker = join(dir, 'seeded.json');

interface Row {
  what: string;
  median: number;
  p95: number;
  /** Median CPU time of this process (user + system): what the work costs when the machine is shared. */
  cpu?: number;
  target?: number;
  note?: string;
}
const rows: Row[] = [];

function stats(samples: number[]): { median: number; p95: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, p95: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)]! };
}

function time(what: string, runs: number, fn: () => unknown, target?: number, note?: string): void {
  for (let i = 0; i < 2; i++) fn(); // warm the page cache and the prepared statements
  const samples: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const cpuStart = process.cpuUsage();
    const started = performance.now();
    fn();
    samples.push(performance.now() - started);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  rows.push({ what, ...stats(samples), cpu: stats(cpu).median, target, note });
}

// 1. Seed (once; reused while the same size is asked for).
const wanted = JSON.stringify({ devices, days });
if (process.env.BENCH_RESEED || !existsSync(marker) || (JSON.parse(readFileSync(marker, 'utf8')) as { size: string }).size !== wanted) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const store = new HistoryStore(dir);
  const started = performance.now();
  const seeded = seedFleet(store, { devices, days, now: Date.now() });
  const seconds = (performance.now() - started) / 1000;
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  store.close();
  writeFileSync(marker, JSON.stringify({ size: wanted, at: new Date().toISOString(), ...seeded, devices: seeded.devices.length, seconds }));
  console.log(`seeded ${devices} devices, ${seeded.runs} runs, ${seeded.drills} drills, ${seeded.samples} samples in ${seconds.toFixed(1)} s`);
}
const seededInfo = JSON.parse(readFileSync(marker, 'utf8')) as { runs: number; drills: number; at: string; seconds: number };

// 2. Queries in this process, as main runs them.
{
  const store = new HistoryStore(dir);
  const settings = new SettingsService(store, new EventBus(), createLogger('error'));
  const overview = new OverviewService(store, settings);
  const dashboards = new DashboardService(store, settings);
  time('overview: SQL statement only', 20, () => store.sql.overview.all(runCutoff(Date.now())));
  time('overview data (overview:get in main)', 20, () => overview.overview(), 50);
  let bytes = 0;
  time('overview data + output schema + JSON', 20, () => (bytes = JSON.stringify(OverviewSchema.parse(overview.overview())).length), undefined, `${(bytes / 1024).toFixed(0)} KiB`);
  rows.at(-1)!.note = `${(bytes / 1024).toFixed(0)} KiB on the wire`;
  for (const range of RANGES) {
    let size = 0;
    time(`dashboard ${range}, fleet`, 5, () => (size = JSON.stringify(DashboardSchema.parse(dashboards.dashboard({ range }))).length));
    rows.at(-1)!.note = `${(size / 1024).toFixed(0)} KiB`;
  }
  let size = 0;
  time('dashboard 365d, one device', 5, () => (size = JSON.stringify(dashboards.dashboard({ range: '365d', device: seedDeviceName(3) })).length));
  rows.at(-1)!.note = `${(size / 1024).toFixed(0)} KiB`;
  store.close();
}

// 3. First render in Chromium through the test host.
if (!existsSync(join(root, 'out/renderer/index.html'))) {
  console.log('no built renderer (run `npx electron-vite build`): skipping the render timing');
} else {
  // The scheduler stays off: the seeded devices' addresses are not real.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/host/cli.ts'], { cwd: root, env: { ...process.env, JETVAULT_HOME: dir, JETVAULT_LOG_LEVEL: 'warn', JETVAULT_SCHEDULER: 'off' }, stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = await new Promise<string>((resolveUrl, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('test host did not start in 30 s')), 30_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /^JETVAULT_HOST_URL=(\S+)$/m.exec(out);
        if (match) {
          clearTimeout(timer);
          resolveUrl(match[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`test host exited with ${code}`)));
    });
    const browser = await chromium.launch({ executablePath: process.env.JETVAULT_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
    // The console's CSP forbids eval; the timing snippets below are strings, so let them in.
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, bypassCSP: true });
    // Cold: from navigation start to every row painted (the console boots on the Fleet page).
    const cold: number[] = [];
    for (let i = 0; i < 3; i++) {
      await page.goto(i === 0 ? url : new URL(url).origin + '/#/fleet');
      if (i > 0) await page.reload();
      await page.waitForFunction(`document.querySelector('[data-testid="fleet-table"][data-count="${devices}"] [data-testid^="device-row-"]') !== null`, undefined, { timeout: 60_000 });
      cold.push(await page.evaluate<number>('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))'));
    }
    // Warm: from the click on "Fleet" (coming from another page) to all rows painted.
    const warm: number[] = [];
    for (let i = 0; i < 7; i++) {
      await page.getByTestId('nav-settings').click();
      await page.getByTestId('page-settings').waitFor();
      // Runs in the page (this file has no DOM types): click, then poll each frame until every row is painted.
      warm.push(
        await page.evaluate<number>(`new Promise((done) => {
          const started = performance.now();
          const check = () => {
            if (document.querySelector('[data-testid="fleet-table"][data-count="${devices}"] [data-testid^="device-row-"]')) requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - started)));
            else requestAnimationFrame(check);
          };
          document.querySelector('[data-testid="nav-fleet"]').click();
          check();
        })`),
      );
    }
    const rendered = await page.evaluate<number>('document.querySelectorAll(\'[data-testid^="device-row-"]\').length');
    rows.push({ what: 'Fleet page first render (click → rows painted)', ...stats(warm), target: 300, note: `${devices} devices, ${rendered} rows in the DOM (windowed)` });
    rows.push({ what: 'console cold load on the Fleet page', ...stats(cold), note: 'navigation start → first rows painted' });
    await browser.close();
  } finally {
    child.kill('SIGTERM');
  }
}

console.log(`\nFleet overview benchmark: ${devices} devices × ${days} days (${seededInfo.runs.toLocaleString()} runs, ${seededInfo.drills.toLocaleString()} drills; seeded in ${seededInfo.seconds.toFixed(1)} s)\n`);
const pad = (s: string, n: number) => s.padEnd(n);
console.log(`load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${(await import('node:os')).availableParallelism()} CPUs\n`);
console.log(`${pad('what', 52)} ${pad('median ms', 10)} ${pad('p95 ms', 10)} ${pad('CPU ms', 8)} ${pad('target', 8)} note`);
for (const r of rows) {
  const verdict = r.target === undefined ? '' : r.median <= r.target ? `≤${r.target} ✓` : `≤${r.target} ✗`;
  console.log(`${pad(r.what, 52)} ${pad(r.median.toFixed(1), 10)} ${pad(r.p95.toFixed(1), 10)} ${pad(r.cpu === undefined ? '' : r.cpu.toFixed(1), 8)} ${pad(verdict, 8)} ${r.note ?? ''}`);
}
