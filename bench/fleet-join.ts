/**
 * A device new to the fleet (benchmark, not a test): two fleet devices hold the same shared models
 * (70% of BENCH_MODELS_MB) and models of their own (30%), small files and a PostgreSQL database.
 * The repository holds the first device's backup; timed is the second device's first backup, by
 * Jetvault — the shared models cross as their block hashes and two proof blocks (decision 024,
 * "Copies found elsewhere") — and by the baseline of decision 005, `rsync -a` plus `pg_dump` over
 * OpenSSH into an empty folder (rsync knows nothing of the first device's copy).
 *
 * On loopback, then (as root, with namespaces) with the new device on a shaped field link (20 Mbit/s,
 * 50 ms, 1% loss, as bench/device-backup.ts), where what crosses decides the time.
 *
 *   npx tsx bench/fleet-join.ts     BENCH_MODELS_MB (default 200), BENCH_SMALL_FILES (default 5000),
 *                                   BENCH_RUNS (default 3) / BENCH_SHAPED_RUNS (default 1) alternating
 *                                   pairs, BENCH_SHAPED=0 to skip the field link, BENCH_OUT_DIR (default the temp folder)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netnsSupport, startFleet } from '../fleet/index';
import { startConsole } from './console-process';
import type { BackupResult } from './console-process';
import { addSmallFiles, FIELD_LINK, machineCpuSeconds, median, rsyncBaseline, settle, shapeFieldLink } from './device-helpers';

const MODELS_MB = Number(process.env.BENCH_MODELS_MB ?? 200);
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OUT_DIR = process.env.BENCH_OUT_DIR ?? os.tmpdir();

const SHAPED_RUNS = Number(process.env.BENCH_SHAPED_RUNS ?? 1);

interface Runs {
  label: string;
  jetvault: BackupResult[];
  jetvaultCpu: number[];
  baseline: number[];
  baselineCpu: number[];
}

const jetvault = startConsole();

/** `count` alternating pairs: the joining device's first backup by Jetvault (the first device's stored first, untimed) and by the baseline. */
async function scenario(label: string, shaped: boolean, count: number): Promise<Runs> {
  const fleet = await startFleet({ devices: 2, netns: shaped, sharedModelMB: Math.round(MODELS_MB * 0.7), uniqueModelMB: Math.round(MODELS_MB * 0.3) });
  const [first, joining] = fleet.devices as [(typeof fleet.devices)[number], (typeof fleet.devices)[number]];
  const runs: Runs = { label, jetvault: [], jetvaultCpu: [], baseline: [], baselineCpu: [] };
  try {
    for (const device of fleet.devices) addSmallFiles(device, SMALL_FILES);
    // Only the new device is out in the field; the first was backed up at the depot.
    if (shaped) {
      await shapeFieldLink(joining);
    }
    for (let run = 0; run < count; run++) {
      const jetvaultRun = async () => {
        const dataDir = mkdtempSync(path.join(OUT_DIR, 'jetvault-bench-join-'));
        try {
          await jetvault.open(dataDir, first.profile());
          await jetvault.backup(first.name);
          await jetvault.importDevice(joining.profile());
          await jetvault.closeIdleWorkers();
          await settle();
          const cpu = machineCpuSeconds();
          runs.jetvault.push(await jetvault.backup(joining.name));
          runs.jetvaultCpu.push(machineCpuSeconds() - cpu);
        } finally {
          await jetvault.dispose();
          rmSync(dataDir, { recursive: true, force: true });
        }
      };
      const baselineRun = async () => {
        const dest = mkdtempSync(path.join(OUT_DIR, 'jetvault-bench-join-rsync-'));
        try {
          await settle();
          const cpu = machineCpuSeconds();
          runs.baseline.push(await rsyncBaseline(joining, dest));
          runs.baselineCpu.push(machineCpuSeconds() - cpu);
        } finally {
          rmSync(dest, { recursive: true, force: true });
        }
      };
      for (const work of run % 2 === 0 ? [jetvaultRun, baselineRun] : [baselineRun, jetvaultRun]) await work();
    }
  } finally {
    await fleet.stop();
  }
  return runs;
}

const rows: Runs[] = [];
try {
  rows.push(await scenario('loopback', false, RUNS));
  const ns = netnsSupport();
  if (process.env.BENCH_SHAPED === '0') console.log('(shaped link skipped: BENCH_SHAPED=0)');
  else if (ns.ok) rows.push(await scenario(`field link ${FIELD_LINK.kbit / 1000} Mbit/s, ${FIELD_LINK.delayMs} ms, ${FIELD_LINK.lossPercent}% loss`, true, SHAPED_RUNS));
  else console.log(`(shaped link skipped: ${ns.reason})`);
} finally {
  await jetvault.stop();
}

console.log(`\nTwo devices: ${MODELS_MB} MB of models each (${Math.round(MODELS_MB * 0.7)} MB the same on both), ${SMALL_FILES} small files, PostgreSQL; both tools write to ${OUT_DIR}\n`);
console.log('| first backup of a device new to the fleet | Jetvault s | rsync + pg_dump s | Jetvault / baseline | CPU s (machine) | Jetvault transferred MiB |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const [jv, base] = [median(r.jetvault.map((x) => x.seconds)), median(r.baseline)];
  console.log(`| ${r.label} | ${jv.toFixed(1)} | ${base.toFixed(1)} | ${(jv / base).toFixed(2)}× | ${median(r.jetvaultCpu).toFixed(1)} / ${median(r.baselineCpu).toFixed(1)} | ${(median(r.jetvault.map((x) => x.bytes)) / 2 ** 20).toFixed(1)} |`);
}
console.log('');
for (const r of rows) console.log(`${r.label}, each run (s): Jetvault ${r.jetvault.map((x) => x.seconds.toFixed(2)).join(', ')}; baseline ${r.baseline.map((x) => x.toFixed(2)).join(', ')}`);
console.log(`(medians in the table; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
