/**
 * S3 benchmark (not a test): the repository benchmark's dataset backed up by Jetvault into a local
 * repository, by Jetvault into S3 on a throwaway Ceph radosgw (fleet/s3.ts), and by restic's s3
 * backend into the same radosgw, in one run; each tool then backs the unchanged data up again.
 * Prints wall time, CPU time, peak RSS (GNU time) and the bytes each repository holds.
 *
 *   npx tsx bench/s3.ts        (BENCH_SCALE, default 0.25 ≈ 230 MiB; BENCH_ROUNDS, default 3, each
 *                               with fresh repositories in rotating order; BENCH_DIR to relocate)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startS3Store } from '../fleet/s3';
import { S3Backend } from '../src/main/repository/backend/s3-backend';
import { generate, spec } from './repository-dataset';

const scale = Number(process.env.BENCH_SCALE ?? 0.25);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const base = resolve(process.env.BENCH_DIR ?? '/tmp/jetvault-bench-s3');
const data = join(base, 'data');
const PASSWORD = 'bench-password';
const root = resolve(import.meta.dirname, '..');

interface Sample {
  wall: number;
  cpu: number;
  rssMiB: number;
}

/** Runs a command under GNU time; returns wall, user+sys CPU seconds and max RSS. */
function measure(cmd: string[], env: NodeJS.ProcessEnv): Sample {
  execFileSync('sync');
  const timeFile = join(base, '.time');
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%U %S %M', ...cmd], { cwd: base, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(-2000)}`);
  const [user, sys, rss] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: user! + sys!, rssMiB: rss! / 1024 };
}

/** The CLI bundled by esbuild, as a release runs it (tsx would add ~0.7 s of compiling per start). */
const bundleDir = join(root, 'out/bench-cli-s3');
async function bundleCli(): Promise<string[]> {
  const { build } = await import('esbuild');
  const entry = join(base, 'cli-entry.ts');
  writeFileSync(entry, `import { runCli, processIo } from ${JSON.stringify(join(root, 'src/cli/main.ts'))};\nprocess.exitCode = await runCli(process.argv.slice(2), processIo);\n`);
  rmSync(bundleDir, { recursive: true, force: true });
  await build({ entryPoints: [entry], bundle: true, splitting: true, platform: 'node', format: 'esm', target: 'node20', outdir: bundleDir, packages: 'external', logLevel: 'error' });
  return [process.execPath, join(bundleDir, 'cli-entry.js')];
}

const du = (dir: string): number => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);

async function main(): Promise<void> {
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const s = spec(scale);
  const approx = s.models * s.modelBytes + s.dumpBytes + s.smallFiles * 2000;
  console.error(`generating ~${(approx / 1048576).toFixed(0)} MiB in ${data} ...`);
  await generate(data, s);
  const jv = await bundleCli();
  // Room for one round's two copies of the dataset (Jetvault's and restic's) in the memstore OSD.
  const store = await startS3Store({ memoryBytes: Math.max(2 * 1024 ** 3, Math.ceil(approx * 3)) });
  try {
    const aws = { AWS_ACCESS_KEY_ID: store.accessKeyId, AWS_SECRET_ACCESS_KEY: store.secretAccessKey, AWS_REGION: store.region };
    const credentials = { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey };
    const bucketBytes = async (bucket: string): Promise<number> => {
      const b = new S3Backend(`s3:${store.endpoint}/${bucket}`, { credentials });
      const n = (await b.list('')).reduce((sum, o) => sum + o.size, 0);
      b.close();
      return n;
    };
    const emptyBucket = async (bucket: string): Promise<void> => {
      const b = new S3Backend(`s3:${store.endpoint}/${bucket}`, { credentials });
      for (const o of await b.list('')) await b.delete(o.name);
      b.close();
    };
    const jvEnv = { ...aws, JETVAULT_PASSWORD: PASSWORD, JETVAULT_HOME: join(base, 'jv-home') };
    const resticEnv = { ...aws, RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: join(base, 'restic-cache') };
    execFileSync('sh', ['-c', `find ${data} -type f -exec cat {} + > /dev/null`]); // warm the page cache for every run alike
    const PHASES = ['initial backup', 'unchanged re-backup'] as const;
    const NAMES = ['jetvault → local', 'jetvault → S3 (radosgw)', 'restic → S3 (radosgw)'] as const;
    const samples = new Map<string, (Sample & { bytes: number })[]>();
    // Rounds in rotating order with fresh repositories: the machine is shared, so one run proves little.
    for (let round = 0; round < rounds; round++) {
      const local = join(base, `repo-local-${round}`);
      const jvBucket = `jetvault-bench-${round}`;
      const resticBucket = `restic-bench-${round}`;
      rmSync(join(base, 'restic-cache'), { recursive: true, force: true });
      execFileSync(jv[0]!, [...jv.slice(1), 'init', '--repo', local], { env: { ...process.env, ...jvEnv }, stdio: 'ignore' });
      execFileSync(jv[0]!, [...jv.slice(1), 'init', '--repo', `s3:${store.endpoint}/${jvBucket}`], { env: { ...process.env, ...jvEnv }, stdio: 'ignore' });
      execFileSync('restic', ['init', '--repo', `s3:${store.endpoint}/${resticBucket}`], { env: { ...process.env, ...resticEnv }, stdio: 'ignore' });
      const runs = [
        { name: NAMES[0], backup: () => measure([...jv, 'backup', '--repo', local, data], jvEnv), bytes: () => Promise.resolve(du(local)) },
        { name: NAMES[1], backup: () => measure([...jv, 'backup', '--repo', `s3:${store.endpoint}/${jvBucket}`, data], jvEnv), bytes: () => bucketBytes(jvBucket) },
        { name: NAMES[2], backup: () => measure(['restic', 'backup', '--repo', `s3:${store.endpoint}/${resticBucket}`, data], resticEnv), bytes: () => bucketBytes(resticBucket) },
      ];
      const order = runs.map((_, i) => runs[(i + round) % runs.length]!);
      for (const phase of PHASES) {
        for (const run of order) {
          const sample = { ...run.backup(), bytes: await run.bytes() };
          const key = `${run.name}/${phase}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          console.error(`round ${round + 1}: ${run.name}, ${phase}: ${sample.wall.toFixed(2)} s wall, ${sample.cpu.toFixed(2)} s cpu, ${sample.rssMiB.toFixed(0)} MiB`);
        }
      }
      rmSync(local, { recursive: true, force: true });
      await emptyBucket(jvBucket);
      await emptyBucket(resticBucket);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const cell = (xs: number[], digits: number): string => (xs.length > 1 ? `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})` : xs[0]!.toFixed(digits));
    const rows: string[][] = [];
    for (const phase of PHASES) {
      for (const name of NAMES) {
        const xs = samples.get(`${name}/${phase}`)!;
        rows.push([name, phase, cell(xs.map((x) => x.wall), 2), cell(xs.map((x) => x.cpu), 2), cell(xs.map((x) => x.rssMiB), 0), (median(xs.map((x) => x.bytes)) / 1048576).toFixed(1)]);
      }
    }
    const header = ['run', 'phase', 'wall s', 'cpu s', 'peak RSS MiB', 'stored MiB'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
    console.log(`\nDataset: ${(du(data) / 1048576).toFixed(0)} MiB (${s.models} models of ${(s.modelBytes / 1048576).toFixed(0)} MiB, ${s.smallFiles} small files, ${(s.dumpBytes / 1048576).toFixed(0)} MiB SQL dump); ${rounds} round(s), median (min–max); load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
    console.log(line(header));
    console.log(line(widths.map((w) => '-'.repeat(w))));
    for (const r of rows) console.log(line(r));
    for (const phase of PHASES) {
      const j = median(samples.get(`${NAMES[1]}/${phase}`)!.map((x) => x.wall));
      const r = median(samples.get(`${NAMES[2]}/${phase}`)!.map((x) => x.wall));
      console.log(`\n${phase}: Jetvault → S3 / restic → S3 median wall = ${(j / r).toFixed(2)} (target ≤ 1.00)`);
    }
  } finally {
    await store.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
