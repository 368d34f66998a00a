/**
 * Device restore benchmark (not a test): one fleet device (models, many small files, PostgreSQL and
 * SQLite) is backed up, then damaged and restored whole — by Jetvault's on-device restore (stage,
 * verify, swap, check), and by what an operator would script: `rsync -a --delete` pushing a local
 * copy back plus `pg_restore --clean` of a dump, over OpenSSH. Same damage before each. Two kinds of
 * damage: a tenth of the files changed, every model deleted and rows deleted; and 4 KiB of the
 * largest model overwritten in place (Jetvault sends the blocks that differ, decision 025; rsync its
 * delta); and an update that moved the models folder aside (Jetvault stages each model from its moved
 * copy, decision 025's copies at other paths; rsync finds no basis at the old path and sends them) —
 * the last two also over a shaped field link (20 Mbit/s, 50 ms each way, 1% loss) where the machine
 * can build one. Target: Jetvault ≤ 1.2× the baseline. On the field link also: a reflashed device's
 * restore (every model deleted) cut off once half of the models' bytes had crossed — the console
 * process killed; rsync (with `--partial`, which keeps what crossed) killed — then run again: the
 * rerun is timed (decision 029).
 *
 *   npx tsx bench/device-restore.ts          BENCH_MODELS_MB (default 200), BENCH_SMALL_FILES (default 5000),
 *                                            BENCH_RUNS (default 3: alternating pairs, medians shown),
 *                                            BENCH_SHAPED=0 skips the field link,
 *                                            BENCH_ONLY=TEXT runs only the scenarios whose label holds TEXT
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netnsSupport, startFleet } from '../fleet/index';
import { addSmallFiles, FIELD_LINK, median, opensshCommand, runAsync, settle, shapeFieldLink } from './device-helpers';
import type { Device } from '../fleet/index';
import { startConsole } from './console-process';
import { waitFor } from '../src/main/testing/wait';

const MODELS_MB = Number(process.env.BENCH_MODELS_MB ?? 200);
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 5000);

/** A reflashed device's models: all of them gone (the restore sends every one). */
async function deleteModels(device: Device): Promise<void> {
  const models = path.join(device.root, 'opt', device.app, 'models');
  for (const f of readdirSync(models)) unlinkSync(path.join(models, f));
  return Promise.resolve();
}

async function damage(device: Device): Promise<void> {
  device.mutate.changeFiles(0.1);
  const models = path.join(device.root, 'opt', device.app, 'models');
  for (const f of readdirSync(models)) unlinkSync(path.join(models, f));
  await device.mutate.pgDeleteRows(20_000);
}

async function damageModel(device: Device): Promise<void> {
  device.mutate.patchModel(4096);
  return Promise.resolve();
}

/** An update that moved the models: their folder renamed aside, every model still on the device. */
async function moveModels(device: Device): Promise<void> {
  const app = path.join(device.root, 'opt', device.app);
  renameSync(path.join(app, 'models'), path.join(app, 'models-previous'));
  return Promise.resolve();
}

/** Bytes of the files directly in `dir` (a models folder), 0 when it is not there. */
const bytesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0) : 0);

/** Waits (100 ms polls, at most 10 minutes: a transfer on the field link) until `ready` holds. */
const until = (what: string, ready: () => boolean) => waitFor(what, ready, 600_000, 100);

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** Backs a fresh device up, then restores it `RUNS` times after `how` damaged it (alternating with the baseline). */
async function scenario(label: string, how: (device: Device) => Promise<void>, shaped: boolean, { cutHalfway = false } = {}): Promise<void> {
  if (process.env.BENCH_ONLY && !label.includes(process.env.BENCH_ONLY)) return;
  const fleet = await startFleet({ devices: 1, netns: shaped, sharedModelMB: Math.round(MODELS_MB * 0.7), uniqueModelMB: Math.round(MODELS_MB * 0.3) });
  const device = fleet.devices[0]!;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-bench-restore-'));
  const copy = mkdtempSync(path.join(os.tmpdir(), 'jetvault-bench-restore-copy-'));
  // Jetvault in a process of its own that never forks, as the app's main process (bench/console-process.ts).
  let jetvaultConsole = startConsole();
  try {
    addSmallFiles(device, SMALL_FILES);
    const profile = device.profile();
    const sources = profile.sources.filter((s) => s.kind === 'files' || s.kind === 'postgres');
    await jetvaultConsole.open(dataDir, { ...profile, sources });
    const backedUp = await jetvaultConsole.backup(device.name);

    // The baseline's own copy, taken while the device is intact (not timed).
    const ssh = opensshCommand(device);
    const paths = sources.flatMap((s) => (s.kind === 'files' ? s.paths : []));
    const pull = await runAsync('rsync', ['-a', '--relative', '-e', ssh, ...paths.map((p) => `${device.user}@${device.host}:${p}`), copy]);
    if (pull.status !== 0 && pull.status !== 23) throw new Error(`rsync pull failed: ${pull.stderr}`);
    const pgArgs = `--host=${device.pg.socketDir} --port=${device.pg.port}`;
    const dumped = await runAsync('sh', ['-c', `${ssh} ${device.user}@${device.host} pg_dump --format=custom --compress=0 ${pgArgs} --dbname=${device.pg.database} > ${copy}/db.pgdump`]);
    if (dumped.status !== 0) throw new Error(`pg_dump failed: ${dumped.stderr}`);
    // The backup and the baseline's copy were taken at full speed; only the restores cross the shaped link.
    if (shaped) {
      await shapeFieldLink(device);
    }

    // Alternating pairs, each after the same damage: on a shared machine one pair says little, the
    // medians of several say more.
    const jetvaultRuns: number[] = [];
    const baselineRuns: number[] = [];
    const steps = new Map<string, number[]>();
    const notes = new Set<string>();
    const opt = path.join(device.root, 'opt');
    const models = path.join(opt, device.app, 'models');
    const half = bytesIn(models) / 2;
    const jetvaultRun = async () => {
      // Jetvault: the whole device back to the run, then kept; what it noted (block patches) kept for the table.
      await how(device);
      if (cutHalfway) {
        // Cut off once half of the models' bytes are staged: the console process killed, as a laptop
        // that died; the next console on the same data folder restores again (timed below).
        const staged = () => readdirSync(opt).reduce((n, d) => n + (d.startsWith('.jetvault-restore-') ? bytesIn(path.join(opt, d, 'new', 'models')) : 0), 0);
        const first = jetvaultConsole.restoreDevice(device.name).catch(() => null);
        await until('half of the models staged', () => staged() >= half);
        await jetvaultConsole.kill();
        await first;
        jetvaultConsole = startConsole();
        await jetvaultConsole.reopen(dataDir);
        await until('the device to see the console gone', () => spawnSync('pgrep', ['-u', device.user, '-x', 'tar']).status !== 0);
      }
      await settle();
      const restored = await jetvaultConsole.restoreDevice(device.name);
      jetvaultRuns.push(restored.seconds);
      notes.add(restored.notes.join(' '));
      for (const t of restored.timings) steps.set(t.step, [...(steps.get(t.step) ?? []), t.ms]);
      await jetvaultConsole.confirmRestore(restored.restoreId);
    };
    const baselineRun = async () => {
      // The baseline: push the copy back with --delete, and pg_restore --clean the dump.
      await how(device);
      const push = `cd ${copy} && exec rsync -a ${cutHalfway ? '--partial ' : ''}--relative --delete -e "${ssh}" ${paths.map((p) => `.${p}`).join(' ')} ${device.user}@${device.host}:/`;
      if (cutHalfway) {
        // rsync's temporary files (.name.XXXXXX) sit in the models folder as they arrive; --partial keeps one cut off.
        const cut = spawn('sh', ['-c', push], { detached: true, stdio: 'ignore' });
        const ended = new Promise((resolve) => cut.once('exit', resolve));
        await until('half of the models pushed', () => bytesIn(models) >= half);
        process.kill(-cut.pid!, 'SIGKILL');
        await ended;
        await until("the device's rsync to end", () => spawnSync('pgrep', ['-u', device.user, '-x', 'rsync']).status !== 0);
      }
      await settle();
      const started = process.hrtime.bigint();
      const pushed = await runAsync('sh', ['-c', push]);
      if (pushed.status !== 0 && pushed.status !== 23) throw new Error(`rsync push failed: ${pushed.stderr}`);
      const restored = await runAsync('sh', ['-c', `${ssh} ${device.user}@${device.host} pg_restore --clean --if-exists --single-transaction ${pgArgs} --dbname=${device.pg.database} < ${copy}/db.pgdump`]);
      if (restored.status !== 0) throw new Error(`pg_restore failed: ${restored.stderr}`);
      baselineRuns.push(seconds(started));
    };
    // Which tool goes first alternates: whatever the machine does in the background lands on both.
    for (let run = 0; run < RUNS; run++) for (const work of run % 2 === 0 ? [jetvaultRun, baselineRun] : [baselineRun, jetvaultRun]) await work();
    rows.push({ label, jetvault: median(jetvaultRuns), baseline: median(baselineRuns), jetvaultRuns, baselineRuns, steps, notes: [...notes].filter(Boolean), bytes: backedUp.bytes });
  } finally {
    await jetvaultConsole.stop();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(copy, { recursive: true, force: true });
    await fleet.stop();
  }
}

const rows: { label: string; jetvault: number; baseline: number; jetvaultRuns: number[]; baselineRuns: number[]; steps: Map<string, number[]>; notes: string[]; bytes: number }[] = [];
await scenario('loopback: 10% of files changed, every model deleted, 20k rows deleted', damage, false);
await scenario('loopback: 4 KiB of the largest model overwritten in place', damageModel, false);
await scenario('loopback: an update moved the models folder aside', moveModels, false);
const netns = netnsSupport();
const shapedSkipped = process.env.BENCH_SHAPED === '0' ? 'BENCH_SHAPED=0' : netns.ok ? null : netns.reason;
const field = `field link (${FIELD_LINK.kbit / 1000} Mbit/s, ${FIELD_LINK.delayMs} ms each way, ${FIELD_LINK.lossPercent}% loss)`;
if (!shapedSkipped) await scenario(`${field}: 4 KiB of the largest model overwritten in place`, damageModel, true);
if (!shapedSkipped) await scenario(`${field}: an update moved the models folder aside`, moveModels, true);
if (!shapedSkipped) await scenario(`${field}: every model deleted, the restore cut off half-way, then run again (the rerun timed; rsync with --partial)`, deleteModels, true, { cutHalfway: true });

console.log(`\nDevice: ${MODELS_MB} MB of models, ${SMALL_FILES} small files, PostgreSQL ~200k rows (${((rows[0]?.bytes ?? 0) / 2 ** 20).toFixed(0)} MiB in the run)${shapedSkipped ? ` (field link skipped: ${shapedSkipped})` : ''}\n`);
console.log('| restore after | Jetvault s | rsync --delete push + pg_restore --clean s | Jetvault / baseline |');
console.log('|---|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.label} | ${r.jetvault.toFixed(1)} | ${r.baseline.toFixed(1)} | ${(r.jetvault / r.baseline).toFixed(2)}× |`);
for (const r of rows) {
  console.log(`\n${r.label}, each run (s): Jetvault ${r.jetvaultRuns.map((x) => x.toFixed(1)).join(', ')}; baseline ${r.baselineRuns.map((x) => x.toFixed(1)).join(', ')} (the table shows medians)`);
  if (r.steps.size > 0) console.log(`  Jetvault's steps, median ms (two files sources at a time, each database beside them): ${[...r.steps].map(([step, ms]) => `${step} ${median(ms)}`).join(', ')}`);
  if (r.notes.length > 0) console.log(`  Jetvault noted: ${r.notes.join(' / ')}`);
}
console.log(`\n(load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; Jetvault stages, verifies by sha256 on the device, swaps and checks row counts; the baseline does none of that)`);
