/**
 * Repository benchmark (not a test): the same generated dataset backed up by Jetvault, restic and
 * borg into fresh repositories; then an unchanged re-backup, a backup after changing 1%, a second
 * "device" holding the same model files (dedup), and a full restore. Prints wall time, CPU time,
 * peak RSS and repository size per tool and phase, and Jetvault's ratios to restic.
 *
 *   npx tsx bench/repository.ts            (BENCH_SCALE=0.25 for a quick run, BENCH_DIR to relocate)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { changeOnePercent, generate, spec } from './repository-dataset';

const scale = Number(process.env.BENCH_SCALE ?? 1);
const base = resolve(process.env.BENCH_DIR ?? '/tmp/jetvault-bench');
const data = join(base, 'data');
const device2 = join(base, 'device2');
const PASSWORD = 'bench-password';
const root = resolve(import.meta.dirname, '..');

interface Sample {
  wall: number;
  cpu: number;
  rssMiB: number;
}

/**
 * Runs a command under GNU time; returns wall, user+sys CPU seconds and max RSS. Dirty pages are
 * flushed first and the disk left to settle, so no tool pays for the previous one's writeback.
 */
function measure(cmd: string[], env: NodeJS.ProcessEnv = {}, cwd = base): Sample {
  execFileSync('sync');
  execFileSync('sleep', ['2']);
  const timeFile = join(base, '.time');
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-o', timeFile, '-f', '%U %S %M', ...cmd], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0 && !(cmd[0] === 'borg' && r.status === 1)) throw new Error(`${cmd.join(' ')} failed (${r.status}): ${r.stderr.toString().slice(-2000)}`);
  const [user, sys, rss] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wall, cpu: user! + sys!, rssMiB: rss! / 1024 };
}

const du = (dir: string): number => Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
const has = (bin: string): boolean => spawnSync('which', [bin]).status === 0;

interface Tool {
  name: string;
  repo: string;
  init(): void;
  backup(paths: string[], label: string): Sample;
  restore(target: string): Sample;
}

const jvEnv = { JETVAULT_PASSWORD: PASSWORD, JETVAULT_HOME: join(base, 'jv-home') };
/**
 * The CLI bundled by esbuild, as a release build runs it: `npx jetvault` through tsx spends ~0.7 s
 * compiling and loading TypeScript at every start, which is not the engine's cost (printed below).
 * Code splitting keeps the CLI's lazy command loading: a local backup loads neither SSH nor the
 * history database nor zod. Built under out/ so the bundle resolves the project's node_modules.
 */
const bundleDir = join(root, 'out/bench-cli');
const bundled = join(bundleDir, 'cli-entry.js');
const jvBin = [process.execPath, bundled];

async function bundleCli(): Promise<void> {
  const { build } = await import('esbuild');
  const entry = join(base, 'cli-entry.ts');
  writeFileSync(entry, `import { runCli, processIo } from ${JSON.stringify(join(root, 'src/cli/main.ts'))};\nprocess.exitCode = await runCli(process.argv.slice(2), processIo);\n`);
  rmSync(bundleDir, { recursive: true, force: true });
  await build({ entryPoints: [entry], bundle: true, splitting: true, platform: 'node', format: 'esm', target: 'node20', outdir: bundleDir, packages: 'external', logLevel: 'error' });
}
const jetvault: Tool = {
  name: 'jetvault',
  repo: join(base, 'repo-jetvault'),
  init() {
    execFileSync(jvBin[0]!, [...jvBin.slice(1), 'init', '--repo', this.repo], { env: { ...process.env, ...jvEnv }, stdio: 'ignore' });
  },
  backup(paths, label) {
    return measure([...jvBin, 'backup', '--repo', this.repo, '--device', label, ...paths], jvEnv);
  },
  restore(target) {
    return measure([...jvBin, 'restore', '--repo', this.repo, 'latest', '--device', 'device1', '--target', target], jvEnv);
  },
};

const resticEnv = { RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: join(base, 'restic-cache') };
const restic: Tool = {
  name: 'restic',
  repo: join(base, 'repo-restic'),
  init() {
    execFileSync('restic', ['init', '--repo', this.repo], { env: { ...process.env, ...resticEnv }, stdio: 'ignore' });
  },
  backup(paths, label) {
    return measure(['restic', 'backup', '--repo', this.repo, '--host', label, ...paths], resticEnv);
  },
  restore(target) {
    return measure(['restic', 'restore', '--repo', this.repo, 'latest', '--host', 'device1', '--target', target], resticEnv);
  },
};

const borgEnv = { BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: join(base, 'borg-home'), BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes' };
let borgN = 0;
const borg: Tool = {
  name: 'borg',
  repo: join(base, 'repo-borg'),
  init() {
    execFileSync('borg', ['init', '--encryption', 'repokey-blake2', this.repo], { env: { ...process.env, ...borgEnv }, stdio: 'ignore' });
  },
  backup(paths, label) {
    return measure(['borg', 'create', '--compression', 'lz4', `${this.repo}::${label}-${borgN++}`, ...paths], borgEnv);
  },
  restore(target) {
    mkdirSync(target, { recursive: true });
    return measure(['borg', 'extract', `${this.repo}::device1-2`], borgEnv, target);
  },
};

/** A plain copy, as the floor for what reading and writing the data costs on this disk. */
const rsync: Tool = {
  name: 'rsync',
  repo: join(base, 'copy-rsync'),
  init() {
    mkdirSync(this.repo, { recursive: true });
  },
  backup(paths, label) {
    return measure(['rsync', '-a', '--delete', ...paths.map((p) => `${p}/`), join(this.repo, label)]);
  },
  restore(target) {
    return measure(['rsync', '-a', `${join(this.repo, 'device1')}/`, target]);
  },
};

function row(tool: string, phase: string, s: Sample, repoBytes: number): string[] {
  return [tool, phase, s.wall.toFixed(2), s.cpu.toFixed(2), s.rssMiB.toFixed(0), (repoBytes / 1048576).toFixed(1)];
}

async function main(): Promise<void> {
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const s = spec(scale);
  console.error(`generating ~${((s.models * s.modelBytes + s.dumpBytes + s.smallFiles * 2000) / 1048576).toFixed(0)} MiB in ${data} ...`);
  await generate(data, s);
  await bundleCli();
  const startup = measure([...jvBin, '--version']);
  const tsxStartup = measure([process.execPath, join(root, 'bin/jetvault.js'), '--version']);
  const dataBytes = du(data);
  const tools = [jetvault, restic, ...(has('borg') ? [borg] : []), ...(has('rsync') ? [rsync] : [])];
  if (!has('borg')) console.error('borg not installed (apt-get install borgbackup): skipped');
  const rows: string[][] = [];
  const results = new Map<string, Sample & { repo: number }>();
  const record = (tool: Tool, phase: string, sample: Sample): void => {
    const repo = du(tool.repo);
    results.set(`${tool.name}/${phase}`, { ...sample, repo });
    rows.push(row(tool.name, phase, sample, repo));
    console.error(rows.at(-1)!.join('  '));
  };
  execFileSync('sh', ['-c', `find ${data} -type f -exec cat {} + > /dev/null`]); // warm the page cache for every tool alike
  for (const tool of tools) {
    tool.init();
    record(tool, '1 initial backup', tool.backup([data], 'device1'));
    record(tool, '2 unchanged re-backup', tool.backup([data], 'device1'));
  }
  await changeOnePercent(data, s);
  cpSync(join(data, 'models'), join(device2, 'models'), { recursive: true });
  writeFileSync(join(device2, 'hostname'), 'device2\n');
  for (const tool of tools) {
    record(tool, '3 backup after 1% change', tool.backup([data], 'device1'));
    record(tool, '4 device2, same models', tool.backup([device2], 'device2'));
  }
  for (const tool of tools) {
    const target = join(base, `restore-${tool.name}`);
    record(tool, '5 restore', tool.restore(target));
    rmSync(target, { recursive: true, force: true });
  }
  const header = ['tool', 'phase', 'wall s', 'cpu s', 'peak RSS MiB', 'repo MiB'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`\nDataset: ${(dataBytes / 1048576).toFixed(0)} MiB (${s.models} models of ${(s.modelBytes / 1048576).toFixed(0)} MiB, ${s.smallFiles} small files, ${(s.dumpBytes / 1048576).toFixed(0)} MiB SQL dump)\n`);
  console.log(line(header));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of [...rows].sort((a, b) => a[1]!.localeCompare(b[1]!) || a[0]!.localeCompare(b[0]!))) console.log(line(r));
  console.log(`\nJetvault CLI start-up: ${startup.wall.toFixed(2)} s bundled (used above), ${tsxStartup.wall.toFixed(2)} s through tsx (npx jetvault).`);
  console.log('\nJetvault / restic ratios (lower is better):');
  for (const phase of ['1 initial backup', '2 unchanged re-backup', '3 backup after 1% change', '4 device2, same models', '5 restore']) {
    const j = results.get(`jetvault/${phase}`);
    const r = results.get(`restic/${phase}`);
    if (!j || !r) continue;
    console.log(`  ${phase.padEnd(26)} wall ${(j.wall / r.wall).toFixed(2)}  cpu ${(j.cpu / r.cpu).toFixed(2)}  rss ${(j.rssMiB / r.rssMiB).toFixed(2)}  repo ${(j.repo / r.repo).toFixed(2)}`);
  }
  await responsiveness();
  if (!existsSync(join(base, 'keep'))) rmSync(base, { recursive: true, force: true });
}

/** The engine in this process, as the app runs it: how long is the event loop ever blocked? */
async function responsiveness(): Promise<void> {
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const { LocalBackend } = await import('../src/main/repository/backend/local-backend');
  const { Repository } = await import('../src/main/repository/repo/repository');
  const { backup } = await import('../src/main/repository/archiver/archiver');
  const { LocalSource } = await import('../src/main/repository/walker/local-walker');
  const dir = join(base, 'repo-inprocess');
  mkdirSync(dir);
  const repo = await Repository.init(new LocalBackend(dir), PASSWORD);
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  const started = Date.now();
  await backup(repo, new LocalSource([data]));
  histogram.disable();
  const ms = (ns: number): string => (ns / 1e6).toFixed(0);
  console.log(`\nMain-thread responsiveness during an in-process initial backup (${((Date.now() - started) / 1000).toFixed(1)} s):`);
  console.log(`  event-loop delay p50 ${ms(histogram.percentile(50))} ms, p99 ${ms(histogram.percentile(99))} ms, max ${ms(histogram.max)} ms`);
}

await main();
