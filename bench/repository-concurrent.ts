/**
 * Concurrent backups benchmark (not a test): eight "devices" sharing their model files, backed up
 * into one repository one after another, then all at once, each in a fresh process. Prints wall
 * time, CPU time, peak RSS and repository size per mode.
 *
 *   npx tsx bench/repository-concurrent.ts      (BENCH_SCALE=0.5 for a quicker run)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { backup } from '../src/main/repository/archiver/archiver';
import { LocalBackend } from '../src/main/repository/backend/local-backend';
import { withLock } from '../src/main/repository/lock/lock';
import { Repository } from '../src/main/repository/repo/repository';
import { LocalSource } from '../src/main/repository/walker/local-walker';

const DEVICES = 8;
const scale = Number(process.env.BENCH_SCALE ?? 1);
const base = '/tmp/jetvault-bench-concurrent';
const devices = Array.from({ length: DEVICES }, (_, d) => join(base, `device${d}`));
const PASSWORD = 'bench-password';

function generate(): void {
  if (existsSync(join(base, 'ready'))) return;
  rmSync(base, { recursive: true, force: true });
  mkdirSync(join(base, 'shared'), { recursive: true });
  for (let m = 0; m < 2; m++) writeFileSync(join(base, 'shared', `model-${m}.engine`), randomBytes(Math.round(48 * 1024 * 1024 * scale)));
  for (const [d, root] of devices.entries()) {
    mkdirSync(join(root, 'models'), { recursive: true });
    for (let m = 0; m < 2; m++) copyFileSync(join(base, 'shared', `model-${m}.engine`), join(root, 'models', `model-${m}.engine`));
    mkdirSync(join(root, 'data'));
    writeFileSync(join(root, 'data', 'own.bin'), randomBytes(Math.round(8 * 1024 * 1024 * scale)));
    for (let i = 0; i < Math.round(1000 * scale); i++) {
      const dir = join(root, 'etc', `d${i % 20}`);
      if (i < 20) mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `conf-${i}.yaml`), `device: ${d}\nindex: ${i}\n${'option: value\n'.repeat(i % 50)}`);
    }
  }
  writeFileSync(join(base, 'ready'), '');
}

/** Child: backs the devices up, one after another or all at once; prints JSON. */
async function child(mode: string, repoDir: string): Promise<void> {
  const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
  const cpu0 = process.cpuUsage();
  const started = Date.now();
  const one = (root: string, d: number) => withLock(repo, false, (lease) => backup(repo, new LocalSource([root]), { device: `device${d}`, lease }));
  if (mode === 'concurrent') await Promise.all(devices.map(one));
  else for (const [d, root] of devices.entries()) await one(root, d);
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ wall: (Date.now() - started) / 1000, cpu: (cpu.user + cpu.system) / 1e6, rssMiB: process.resourceUsage().maxRSS / 1024 }));
}

async function main(): Promise<void> {
  generate();
  const rows: string[] = [];
  for (const mode of ['sequential', 'concurrent']) {
    const repoDir = join(base, `repo-${mode}`);
    rmSync(repoDir, { recursive: true, force: true });
    mkdirSync(repoDir);
    await Repository.init(new LocalBackend(repoDir), PASSWORD);
    execFileSync('sync');
    const r = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, 'child', mode, repoDir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { wall: number; cpu: number; rssMiB: number };
    const size = Number(execFileSync('du', ['-sb', repoDir]).toString().split('\t')[0]) / 1048576;
    rows.push(`| ${mode.padEnd(10)} | ${m.wall.toFixed(2)} | ${m.cpu.toFixed(2)} | ${m.rssMiB.toFixed(0)} | ${size.toFixed(1)} |`);
  }
  console.log(`${DEVICES} devices, 2 shared model files of ${Math.round(48 * scale)} MiB, own ${Math.round(8 * scale)} MiB + ${Math.round(1000 * scale)} small files each\n`);
  console.log('| mode       | wall s | cpu s | peak RSS MiB | repo MiB |');
  console.log('| ---------- | ------ | ----- | ------------ | -------- |');
  for (const row of rows) console.log(row);
}

if (process.argv[2] === 'child') await child(process.argv[3]!, process.argv[4]!);
else await main();
