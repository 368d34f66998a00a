/**
 * Device restore benchmark (not a test): one fleet device (models, many small files, PostgreSQL and
 * SQLite) is backed up, then damaged (a tenth of its files changed, the model files deleted, rows
 * deleted) and restored whole — by Jetvault's on-device restore (stage, verify, swap, check), and by
 * what an operator would script: `rsync -a --delete` pushing a local copy back plus `pg_restore
 * --clean` of a dump, over OpenSSH. Same damage before each. Target: Jetvault ≤ 1.2× the baseline.
 *
 *   npx tsx bench/device-restore.ts          BENCH_MODELS_MB (default 200), BENCH_SMALL_FILES (default 5000),
 *                                            BENCH_RUNS (default 3: alternating pairs, medians shown)
 */
import { mkdtempSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFleet } from '../fleet/index';
import { addSmallFiles, median, opensshCommand, runAsync, settle } from './device-helpers';
import type { Device } from '../fleet/index';
import { startConsole } from './console-process';

const MODELS_MB = Number(process.env.BENCH_MODELS_MB ?? 200);
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 5000);

async function damage(device: Device): Promise<void> {
  device.mutate.changeFiles(0.1);
  const models = path.join(device.root, 'opt', device.app, 'models');
  for (const f of readdirSync(models)) unlinkSync(path.join(models, f));
  await device.mutate.pgDeleteRows(20_000);
}

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const fleet = await startFleet({ devices: 1, sharedModelMB: Math.round(MODELS_MB * 0.7), uniqueModelMB: Math.round(MODELS_MB * 0.3) });
const device = fleet.devices[0]!;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-bench-restore-'));
const copy = mkdtempSync(path.join(os.tmpdir(), 'jetvault-bench-restore-copy-'));
// Jetvault in a process of its own that never forks, as the app's main process (bench/console-process.ts).
const jetvaultConsole = startConsole();
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

  // Alternating pairs, each after the same damage: on a shared machine one pair says little, the
  // medians of several say more.
  const jetvaultRuns: number[] = [];
  const baselineRuns: number[] = [];
  const steps = new Map<string, number[]>();
  const jetvaultRun = async () => {
    // Jetvault: the whole device back to the run, then kept.
    await damage(device);
    await settle();
    const restored = await jetvaultConsole.restoreDevice(device.name);
    jetvaultRuns.push(restored.seconds);
    for (const t of restored.timings) steps.set(t.step, [...(steps.get(t.step) ?? []), t.ms]);
    await jetvaultConsole.confirmRestore(restored.restoreId);
  };
  const baselineRun = async () => {
    // The baseline: push the copy back with --delete, and pg_restore --clean the dump.
    await damage(device);
    await settle();
    const started = process.hrtime.bigint();
    const push = await runAsync('sh', ['-c', `cd ${copy} && rsync -a --relative --delete -e "${ssh}" ${paths.map((p) => `.${p}`).join(' ')} ${device.user}@${device.host}:/`]);
    if (push.status !== 0 && push.status !== 23) throw new Error(`rsync push failed: ${push.stderr}`);
    const restored = await runAsync('sh', ['-c', `${ssh} ${device.user}@${device.host} pg_restore --clean --if-exists --single-transaction ${pgArgs} --dbname=${device.pg.database} < ${copy}/db.pgdump`]);
    if (restored.status !== 0) throw new Error(`pg_restore failed: ${restored.stderr}`);
    baselineRuns.push(seconds(started));
  };
  // Which tool goes first alternates: whatever the machine does in the background lands on both.
  for (let run = 0; run < RUNS; run++) for (const work of run % 2 === 0 ? [jetvaultRun, baselineRun] : [baselineRun, jetvaultRun]) await work();
  const jetvault = median(jetvaultRuns);
  const baseline = median(baselineRuns);

  const bytes = backedUp.bytes;
  console.log(`\nDevice: ${MODELS_MB} MB of models, ${SMALL_FILES} small files, PostgreSQL ~200k rows (${(bytes / 2 ** 20).toFixed(0)} MiB in the run)`);
  console.log('Damage before each restore: 10% of files changed, every model file deleted, 20k rows deleted.\n');
  console.log('| restore | Jetvault s | rsync --delete push + pg_restore --clean s | Jetvault / baseline |');
  console.log('|---|---:|---:|---:|');
  console.log(`| whole device, loopback | ${jetvault.toFixed(1)} | ${baseline.toFixed(1)} | ${(jetvault / baseline).toFixed(2)}× |`);
  console.log(`\nEach run (s): Jetvault ${jetvaultRuns.map((x) => x.toFixed(1)).join(', ')}; baseline ${baselineRuns.map((x) => x.toFixed(1)).join(', ')} (the table shows medians)`);
  if (steps.size > 0) console.log(`Jetvault's steps, median ms (two files sources at a time, each database beside them): ${[...steps].map(([step, ms]) => `${step} ${median(ms)}`).join(', ')}`);
  console.log(`\n(load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; Jetvault stages, verifies by sha256 on the device, swaps and checks row counts; the baseline does none of that)`);
} finally {
  await jetvaultConsole.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(copy, { recursive: true, force: true });
  await fleet.stop();
}
