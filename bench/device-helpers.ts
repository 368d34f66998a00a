/** What the device benchmarks share: the small-file set, the OpenSSH command of the baselines, a non-blocking spawn, medians. */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Device } from '../fleet/index';

/** `count` small JSON assets under the device's app folder (500 per folder), owned by the device account. */
export function addSmallFiles(device: Device, count: number): void {
  const dir = path.join(device.root, 'opt', device.app, 'assets');
  for (let i = 0; i < count; i++) {
    const sub = path.join(dir, `set-${Math.floor(i / 500)}`);
    if (i % 500 === 0) mkdirSync(sub, { recursive: true });
    writeFileSync(path.join(sub, `asset-${i}.json`), JSON.stringify({ id: i, label: `item ${i}`, pad: 'x'.repeat(200 + (i % 1500)) }));
  }
  spawnSync('chown', ['-R', `${device.user}:`, dir]);
}

/** Plain OpenSSH to the device, as an operator's script would call it (for `rsync -e` or `sh -c`). */
export function opensshCommand(device: Device): string {
  return `ssh -i ${device.identityFile} -p ${device.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
}

/**
 * Runs a command without blocking this process's event loop: with a field link, the device's delay
 * proxy lives in this process, so a synchronous spawn would stall every byte it should forward.
 */
export function runAsync(cmd: string, args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/** The baseline: rsync -a of the files sources plus pg_dump over ssh, into `dest`. */
export async function rsyncBaseline(device: Device, dest: string): Promise<number> {
  const ssh = opensshCommand(device);
  const profile = device.profile();
  const paths = profile.sources.flatMap((s) => (s.kind === 'files' ? s.paths : []));
  const started = process.hrtime.bigint();
  const rsync = await runAsync('rsync', ['-a', '--relative', '-e', ssh, ...paths.map((p) => `${device.user}@${device.host}:${p}`), dest]);
  if (rsync.status !== 0 && rsync.status !== 23) throw new Error(`rsync failed: ${rsync.stderr}`);
  const pg = await runAsync('sh', ['-c', `${ssh} ${device.user}@${device.host} pg_dump --format=custom --compress=0 --host=${device.pg.socketDir} --port=${device.pg.port} --dbname=${device.pg.database} > ${dest}/db.pgdump`]);
  if (pg.status !== 0) throw new Error(`pg_dump over ssh failed: ${pg.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The field link of the device benchmarks: 20 Mbit/s, 50 ms each way, 1% loss (issue #5, point 10). */
export const FIELD_LINK = { delayMs: 50, lossPercent: 1, kbit: 20_000 };

/** Shapes a device's link (a fleet started with `netns: true`) to FIELD_LINK. */
export async function shapeFieldLink(device: Device): Promise<void> {
  await device.link!.rate(FIELD_LINK.kbit);
  await device.link!.dropPercent(FIELD_LINK.lossPercent);
  device.link!.delayMs(FIELD_LINK.delayMs);
}

/** The middle value (the lower middle for an even count): what a table of several noisy runs shows. */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** settle(): quiet means under a fifth of a core busy over 250 ms; it waits 10 s at most. */
const QUIET_MS = 250;
const QUIET_CORES = 0.2;
const QUIET_POLLS = 40;

/**
 * Before a timed run: flushes dirty pages and waits for a quiet machine, so the previous run's
 * writeback and wind-down are not billed to this one, then warms memory (warmMemory; its seconds
 * are returned).
 */
export async function settle(): Promise<number> {
  spawnSync('sync');
  let last = machineCpuSeconds();
  for (let i = 0; i < QUIET_POLLS; i++) {
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    const now = machineCpuSeconds();
    if (now - last < (QUIET_MS / 1000) * QUIET_CORES) break;
    last = now;
  }
  return warmMemory();
}

/** Memory warmMemory() touches: more than one run of either tool takes (pages written + process memory). */
export const WARM_MB = 2048;

/**
 * Touches WARM_MB of memory (at most a quarter of what is free) in a child process that exits at once, so that the run which follows
 * finds free memory its VM's host has backed. On a VM whose guest hands free memory back to the
 * host (free page reporting: Firecracker here), memory that was free for some seconds costs
 * ~12 µs per 4 KiB page to touch again — writing 1 GB to /dev/shm took 0.4–0.5 s into recently
 * freed memory and 1.6–3.7 s beyond it — and whichever tool needed more fresh pages (Jetvault: the
 * repository's pages plus its heap and piece buffers) was billed for the host's work, not its own:
 * Jetvault's first backup took 5.2 s after a run that freed memory and 7.3–7.6 s after rsync runs
 * that kept their copies. A laptop's free memory is simply free; this gives both tools that.
 * Returns the seconds it took (~0.5 s on warm memory; 1.4–4.9 s seen here when it had gone back to the host).
 */
export function warmMemory(mb = WARM_MB): number {
  const started = performance.now();
  // A quarter of what is free at most: on a small machine this must not push anything out.
  const touched = Math.min(mb, Math.floor(os.freemem() / 4 / 2 ** 20));
  spawnSync(process.execPath, ['-e', `Buffer.alloc(${touched} * 2 ** 20, 1)`]);
  return (performance.now() - started) / 1000;
}

/**
 * CPU seconds the whole machine has spent busy so far (every process, every core, from /proc/stat):
 * the difference across a run is what the run cost, the device's sshd and PostgreSQL included —
 * on a machine that also hosts the device, a run cannot take less wall time than this over the core count.
 */
export function machineCpuSeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ is 100 on Linux
}

/**
 * Seconds to create, write and close `count` files of 2 KB each in a fresh folder under `dir` (then
 * removed): how costly file creation is on this machine right now. The rsync baseline creates one
 * file per device file and Jetvault a few dozen packs, so this moves the baseline far more; on the
 * benchmark's VM it took from 0.5 to 7.7 s for 20,000 files, tries minutes apart (2026-12-01).
 */
export function fileCreationSeconds(dir: string, count = 20_000): number {
  const folder = mkdtempSync(path.join(dir, 'jetvault-bench-create-'));
  const data = Buffer.alloc(2000, 120);
  const started = performance.now();
  try {
    for (let i = 0; i < count; i++) writeFileSync(path.join(folder, `f${i}`), data);
    return (performance.now() - started) / 1000;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * An ext4 filesystem on a loop device backed by memory (`/dev/shm`): ext4's own per-file work
 * (inodes, extents, journal) without a disk's latency — the best case of a laptop's disk, between
 * tmpfs and this VM's slow `/tmp` (decision 005, fourteenth pass). Needs root; unmounted and its
 * image removed by `close()` (also on exit).
 */
export function ext4InMemory(sizeGiB = 8): { dir: string; close(): void } {
  if (process.getuid?.() !== 0) throw new Error('BENCH_OUT_DIR=ext4-ram needs root (mount -o loop)');
  const image = path.join('/dev/shm', `jetvault-bench-ext4-${process.pid}.img`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-bench-ext4-'));
  const must = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  };
  let mounted = false;
  const close = () => {
    if (mounted) spawnSync('umount', [dir]);
    mounted = false;
    rmSync(image, { force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    must('truncate', ['-s', `${sizeGiB}G`, image]);
    must('mkfs.ext4', ['-q', '-F', image]);
    must('mount', ['-o', 'loop', image, dir]);
    mounted = true;
  } catch (error) {
    close();
    throw error;
  }
  process.once('exit', close);
  return { dir, close };
}
