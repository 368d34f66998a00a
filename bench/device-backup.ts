/**
 * Device backup benchmark (not a test): one fleet device holding models, many small files and a
 * PostgreSQL database, pulled by Jetvault (first run, after 1% of files changed, after 4 KiB of the
 * largest model rewritten in place) and by the
 * baseline an operator would script — `rsync -a` over OpenSSH for the files plus `pg_dump` over
 * `ssh` — first on loopback, then (as root, with namespaces) on a shaped field link.
 *
 *   npx tsx bench/device-backup.ts          BENCH_MODELS_MB=800 BENCH_SMALL_FILES=20000 for the full size,
 *                                           BENCH_SHAPED=0 to skip the shaped-link runs,
 *                                           BENCH_RUNS (default 3) / BENCH_SHAPED_RUNS (default 1):
 *                                           alternating pairs per scenario, medians shown,
 *                                           BENCH_OUT_DIR (default the temp folder): where both tools write;
 *                                           /dev/shm takes the disk out, ext4-ram (root) is ext4 on a
 *                                           memory-backed loop device: the best case of a real disk,
 *                                           BENCH_KEEP_WORKERS=1: Jetvault's chunk workers stay up between its
 *                                           runs, as for a fleet's back-to-back backups (by default each run
 *                                           starts its own, as a console backing up one device now and then)
 *
 * On loopback the console's first backup since it was launched is one pair of its own, shown in its
 * own row: it pays for V8 compiling the backup path (decision 005, twenty-ninth pass), once per launch.
 * The "first backup" pairs after it are first backups of the device in a console that is running.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { netnsSupport, startFleet } from '../fleet/index';
import { addSmallFiles, ext4InMemory, FIELD_LINK, fileCreationSeconds, machineCpuSeconds, median, opensshCommand, rsyncBaseline, runAsync, settle, shapeFieldLink, WARM_MB } from './device-helpers';
import type { Device } from '../fleet/index';
import { startConsole } from './console-process';

const MODELS_MB = Number(process.env.BENCH_MODELS_MB ?? 200);
const SMALL_FILES = Number(process.env.BENCH_SMALL_FILES ?? 5000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Where both tools write (Jetvault's repository, rsync's copy): BENCH_OUT_DIR=/dev/shm takes the laptop's disk out of the comparison. */
const ext4 = process.env.BENCH_OUT_DIR === 'ext4-ram' ? ext4InMemory() : null;
const OUT_DIR = ext4?.dir ?? process.env.BENCH_OUT_DIR ?? os.tmpdir();
const SHAPED_RUNS = Number(process.env.BENCH_SHAPED_RUNS ?? 1);
const KEEP_WORKERS = process.env.BENCH_KEEP_WORKERS === '1';
/** Seconds settle() spent warming memory before each timed run (see warmMemory). */
const warmSeconds: number[] = [];

/** Jetvault runs in a process of its own that never forks, as the app's main process (bench/console-process.ts). */
const jetvault = startConsole();

/**
 * What the link really carries for one SSH stream: 32 MiB from /dev/zero through plain `ssh`, in
 * Mbit/s of payload. On a shaped link this is below the nominal rate (IP/TCP/SSH framing, losses).
 */
async function sshCapacity(device: Device): Promise<number> {
  const bytes = 32 * 2 ** 20;
  const started = process.hrtime.bigint();
  const r = await runAsync('sh', ['-c', `${opensshCommand(device)} ${device.user}@${device.host} 'head -c ${bytes} /dev/zero' > /dev/null`]);
  if (r.status !== 0) throw new Error(`ssh capacity probe failed: ${r.stderr}`);
  return (bytes * 8) / (Number(process.hrtime.bigint() - started) / 1e9) / 1e6;
}

/** A fresh Jetvault data folder with an initialised repository and the device imported, in the console process. */
async function freshConsole(device: Device): Promise<{ dispose: () => Promise<void> }> {
  const dataDir = mkdtempSync(path.join(OUT_DIR, 'jetvault-bench-'));
  await jetvault.open(dataDir, device.profile());
  return { dispose: async () => { await jetvault.dispose(); rmSync(dataDir, { recursive: true, force: true }); } };
}

/**
 * `runs` alternating pairs of first backups (each into a fresh repository / fresh rsync folder),
 * then `runs` alternating pairs after 1% of files and 2000 rows changed (each against the previous
 * pair's result), then `runs` pairs after 4 KiB of the largest model was rewritten in place. Dirty pages are flushed before every timed run, so one tool's writeback does not
 * land in the other's time.
 */
async function scenario(label: string, shaped: boolean, runs: number) {
  const fleet = await startFleet({ devices: 1, netns: shaped, sharedModelMB: Math.round(MODELS_MB * 0.7), uniqueModelMB: Math.round(MODELS_MB * 0.3) });
  const device = fleet.devices[0]!;
  let dest = '';
  let jv: Awaited<ReturnType<typeof freshConsole>> | null = null;
  try {
    addSmallFiles(device, SMALL_FILES);
    if (shaped) {
      await shapeFieldLink(device);
    }
    const capacity = shaped ? await sshCapacity(device) : null;
    const results = () => ({ jetvault: [] as number[], baseline: [] as number[], jetvaultCpu: [] as number[], baselineCpu: [] as number[], consoleCpu: [] as number[], consoleFaults: [] as number[], bytes: 0, wire: 0, compressed: false });
    const [launch, first, after, patched] = [results(), results(), results(), results()];
    const pair = async (run: number, into: typeof first) => {
      const jetvaultRun = async () => {
        // Workers kept from the previous run (Repository.poolIdleMs) would start this one warm.
        if (!KEEP_WORKERS) await jetvault.closeIdleWorkers();
        warmSeconds.push(await settle());
        const cpu = machineCpuSeconds();
        const r = await jetvault.backup(device.name);
        into.jetvaultCpu.push(machineCpuSeconds() - cpu);
        into.jetvault.push(r.seconds);
        into.consoleCpu.push(r.cpuSeconds);
        into.consoleFaults.push(r.pageFaults);
        into.bytes = r.bytes;
        into.wire = r.wire;
        into.compressed = r.compressed;
      };
      const baselineRun = async () => {
        warmSeconds.push(await settle());
        const cpu = machineCpuSeconds();
        into.baseline.push(await rsyncBaseline(device, dest));
        into.baselineCpu.push(machineCpuSeconds() - cpu);
      };
      for (const work of run % 2 === 0 ? [jetvaultRun, baselineRun] : [baselineRun, jetvaultRun]) await work();
    };
    // The console's first backup since launch, on loopback (a shaped link's runs come after the
    // loopback ones, in the same console).
    for (let run = shaped ? 1 : 0; run < runs + 1; run++) {
      // Only the last pair's results are kept (the runs after 1% changed start from them): memory
      // held by earlier copies would leave less recently freed memory for later runs (see warmMemory).
      await jv?.dispose();
      if (dest) rmSync(dest, { recursive: true, force: true });
      jv = await freshConsole(device);
      dest = mkdtempSync(path.join(OUT_DIR, 'jetvault-bench-rsync-'));
      await pair(run, run === 0 ? launch : first);
    }
    for (let run = 0; run < runs; run++) {
      device.mutate.changeFiles(0.01);
      await device.mutate.pgUpdateRows(2000);
      await pair(run, after);
    }
    // A large file changed a little: rsync sends a delta; Jetvault the changed blocks (decision 024).
    for (let run = 0; run < runs; run++) {
      device.mutate.patchModel(4096);
      await pair(run, patched);
    }
    const firstJv = median(first.jetvault);
    return [
      ...(shaped ? [] : [{ label: `${label}: first backup, the console's first since launch`, ...launch, linkRate: null, capacity: null }]),
      // What the link carried (compressed bytes when the run compressed) against what it could carry.
      { label: `${label}: first backup`, ...first, linkRate: shaped ? (first.wire * 8) / firstJv / 1e6 : null, capacity },
      { label: `${label}: after 1% changed`, ...after, linkRate: null, capacity: null },
      { label: `${label}: after 4 KiB of a model rewritten`, ...patched, linkRate: null, capacity: null },
    ];
  } finally {
    await jv?.dispose();
    if (dest) rmSync(dest, { recursive: true, force: true });
    await fleet.stop();
  }
}

const best = (xs: number[]): number => Math.min(...xs);
const createdBefore = fileCreationSeconds(OUT_DIR);
const rows = await scenario('loopback', false, RUNS);
const createdAfter = fileCreationSeconds(OUT_DIR);
const ns = netnsSupport();
if (process.env.BENCH_SHAPED === '0') console.log('(shaped link skipped: BENCH_SHAPED=0)');
else if (ns.ok) rows.push(...(await scenario(`field link ${FIELD_LINK.kbit / 1000} Mbit/s, ${FIELD_LINK.delayMs} ms, ${FIELD_LINK.lossPercent}% loss`, true, SHAPED_RUNS)));
else console.log(`(shaped link skipped: ${ns.reason})`);

console.log(`\nDevice: ${MODELS_MB} MB of models, ${SMALL_FILES} small files, PostgreSQL ~200k rows\n`);
console.log('Link use: the rate of what Jetvault put on the link (compressed when it compressed) against the nominal link rate, and against one plain `ssh` stream on the same link (its capacity).\n');
console.log('Transferred: file and dump bytes read from the device; on the wire: what crossed the link for them (less when the run compressed: a slow link, decision 019).\n');
console.log('CPU: seconds the whole machine was busy during the run (both tools\' device side included), Jetvault / baseline.\n');
console.log('| scenario | Jetvault s | rsync + pg_dump s | Jetvault / baseline | best of each | CPU s | transferred MiB | on the wire MiB | link use (nominal) | link use (ssh capacity) |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const [jetvault, base] = [median(r.jetvault), median(r.baseline)];
  console.log(`| ${r.label} | ${jetvault.toFixed(1)} | ${base.toFixed(1)} | ${(jetvault / base).toFixed(2)}× | ${best(r.jetvault).toFixed(1)} / ${best(r.baseline).toFixed(1)} = ${(best(r.jetvault) / best(r.baseline)).toFixed(2)}× | ${median(r.jetvaultCpu).toFixed(1)} / ${median(r.baselineCpu).toFixed(1)} | ${(r.bytes / 2 ** 20).toFixed(1)} | ${(r.wire / 2 ** 20).toFixed(1)}${r.compressed ? ' (gzip)' : ''} | ${r.linkRate === null ? '' : `${r.linkRate.toFixed(1)} Mbit/s = ${Math.round((r.linkRate * 1000 * 100) / FIELD_LINK.kbit)}%`} | ${r.linkRate === null || r.capacity === null ? '' : `${Math.round((r.linkRate / r.capacity) * 100)}% of ${r.capacity.toFixed(1)} Mbit/s`} |`);
}
console.log('');
for (const r of rows) console.log(`${r.label}, each run (s): Jetvault ${r.jetvault.map((x) => x.toFixed(2)).join(', ')}; baseline ${r.baseline.map((x) => x.toFixed(2)).join(', ')}; Jetvault's process CPU s ${r.consoleCpu.map((x) => x.toFixed(2)).join(', ')} and minor page faults ${r.consoleFaults.map((x) => Math.round(x / 1000)).join('k, ')}k`);
console.log(`Both tools wrote to ${ext4 ? `${OUT_DIR} (ext4 on a memory-backed loop device)` : OUT_DIR}. Creating 20,000 files of 2 KB there took ${createdBefore.toFixed(1)} s before the loopback runs and ${createdAfter.toFixed(1)} s after (the baseline creates a file per device file; Jetvault writes a few dozen packs).`);
console.log(`Before every timed run, ${WARM_MB / 1024} GiB of memory (at most a quarter of what was free) was touched and freed so that both tools start on memory this VM's host has backed (warmMemory in bench/device-helpers.ts): ${Math.min(...warmSeconds).toFixed(1)}–${Math.max(...warmSeconds).toFixed(1)} s each, the longer ones where the memory had gone back to the host.`);
console.log(KEEP_WORKERS ? "Jetvault's chunk workers stayed up between its runs (BENCH_KEEP_WORKERS=1: a fleet's back-to-back backups)." : 'Each Jetvault run started its own chunk workers (a console backing up one device now and then; BENCH_KEEP_WORKERS=1 keeps them, as for back-to-back backups).');
console.log(`(the table shows medians; load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
ext4?.close();
await jetvault.stop();
