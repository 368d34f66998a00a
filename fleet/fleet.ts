/**
 * Starting and stopping a fleet of stand-in Jetsons. The work every device shares (code, shared
 * models, the PostgreSQL cluster with its rows, the SQLite database) is done once per fleet in a
 * template, then each device copies it and starts its own processes, all devices in parallel.
 */
import { spawn } from 'node:child_process';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createAccount, isRoot } from './accounts';
import { writeTemplateRoot } from './content';
import type { ContentOptions } from './content';
import { createDevice } from './device';
import type { Device, FleetContext } from './device';
import { isAlive, sleep, trace } from './exec';
import { netnsSupport } from './link';
import { initdb, pgBin, psql, startCluster, templateSql } from './postgres';
import { allocateDir, cleanupStale, forget, PREFIX, Registry, track } from './registry';
import { sqlite, SQLITE_TEMPLATE } from './sqlite';
import { cacheEnabled, cacheEntry, lookup, store } from './template-cache';

export interface FleetOptions {
  /** Number of devices (default 1). */
  devices?: number;
  /** Put each device in its own network namespace behind a veth pair (root only). */
  netns?: boolean;
  /** Put a DelayProxy in front of every device even without netns (it always is with netns). */
  proxy?: boolean;
  /** Let each device account also log in with a password, as a stock JetPack image does (`device.password`). */
  passwords?: boolean;
  /**
   * sshd's MaxStartups for every device (default `100:30:200`: tests open many connections at once;
   * a stock sshd has `10:30:100`, and drops new connections past it before its banner).
   */
  maxStartups?: string;
  /** Where the fleet dir `jvf-<id>` goes (default /tmp; keep it short: unix socket paths max 107 bytes). */
  baseDir?: string;
  app?: string;
  seed?: string;
  sharedModelMB?: number;
  uniqueModelMB?: number;
  namePrefix?: string;
  site?: string;
  /** Reuse the machine's cached template PostgreSQL data dir (default true; JVF_NO_CACHE=1 turns it off). */
  cache?: boolean;
}

export interface Fleet {
  id: string;
  dir: string;
  devices: Device[];
  /** Milliseconds from the call to all devices answering. */
  startMs: number;
  /** The detached watchdog that cleans up if this process dies without stop(). */
  reaperPid: number | undefined;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** A detached watchdog that cleans up if this process dies without calling stop(). */
export function spawnReaper(dir: string): number | undefined {
  try {
    const loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = spawn(process.execPath, ['--import', loader, path.join(here, 'reaper.ts'), dir], { detached: true, stdio: 'ignore' });
    child.unref();
    return child.pid;
  } catch {
    return undefined;
  }
}

// Only for the one-off load: no WAL for tables created in the loading transaction, no fsync. A clean shutdown follows.
const LOAD_SETTINGS = { wal_level: 'minimal', max_wal_senders: '0', fsync: 'off', synchronous_commit: 'off', maintenance_work_mem: '128MB', shared_buffers: '64MB', max_wal_size: '1GB', min_wal_size: '32MB' };

/**
 * The template cluster (initdb, the rows, a clean shutdown), or its copy from the machine's cache.
 * Runs while the files are written; resolves with the data dir devices copy.
 */
async function buildTemplateDatabase(ctx: Omit<FleetContext, 'templateDatabase'>, useCache: boolean): Promise<string> {
  const sql = templateSql(ctx.content.app);
  const entry = cacheEntry(ctx.pgVersion, sql, LOAD_SETTINGS);
  const cached = useCache ? lookup(entry) : null;
  if (cached) {
    trace(`template postgres from cache ${cached}`);
    return cached;
  }
  const tplDir = path.join(ctx.dir, 'template');
  const log = ctx.registry.scoped('template');
  const account = await createAccount(`jvf-${ctx.id}-t`, path.join(tplDir, 'home'), log);
  const socketDir = path.join(tplDir, 'run');
  for (const d of [ctx.templatePgData, socketDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chownSync(d, account.uid, account.gid);
  }
  await initdb(ctx.templatePgData, account);
  trace('template initdb done');
  const cluster = await startCluster({ dataDir: ctx.templatePgData, socketDir, logFile: path.join(tplDir, 'postgres.log'), account, registry: log, what: 'template postgres', settings: LOAD_SETTINGS });
  try {
    await psql(socketDir, 'postgres', sql);
    trace('template rows loaded');
  } finally {
    await cluster.stop(); // a clean shutdown: the data dir can be copied
  }
  ctx.registry.cleanupTagged('template'); // the template account is no longer needed
  trace('template postgres stopped');
  if (useCache) await store(entry, ctx.templatePgData); // never throws: without a cache entry the next fleet builds again
  return ctx.templatePgData;
}

async function buildTemplateFiles(ctx: FleetContext): Promise<void> {
  await sleep(0); // let initdb start first: it runs in its own process while these files are written
  writeTemplateRoot(ctx.templateRoot, ctx.content);
  await sqlite(path.join(ctx.templateRoot, 'opt', ctx.content.app, 'data', 'local.db'), SQLITE_TEMPLATE);
  trace('template files and sqlite written');
}

export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const started = Date.now();
  if (!isRoot()) throw new Error('The test fleet needs root: it creates device accounts and runs sshd as root (CI runs as root; locally: sudo)');
  if (options.netns) {
    const support = netnsSupport();
    if (!support.ok) throw new Error(`Network namespaces are not available: ${support.reason}`);
  }
  const longest = path.join(options.baseDir ?? '/tmp', `${PREFIX}ffff`, `d${options.devices ?? 1}`, 'root/run/postgresql/.s.PGSQL.5432.lock');
  if (Buffer.byteLength(longest) > 107) throw new Error(`baseDir is too long: PostgreSQL's socket path (${longest}) would pass the 107-byte unix socket limit`);
  cleanupStale(options.baseDir ?? '/tmp'); // leftovers of earlier runs that died (never a live fleet's)
  const { id, dir } = allocateDir(options.baseDir ?? '/tmp');
  const registry = new Registry(dir, id);
  registry.add({ kind: 'dir', path: dir });
  track(registry);
  const reaper = spawnReaper(dir);

  const content: ContentOptions = {
    app: options.app ?? 'myrvm',
    seed: options.seed ?? 'jetvault-fleet',
    sharedModelMB: options.sharedModelMB ?? 40,
    uniqueModelMB: options.uniqueModelMB ?? 20,
  };
  const base = {
    id,
    dir,
    registry,
    content,
    templateRoot: path.join(dir, 'template', 'root'),
    templatePgData: path.join(dir, 'template', 'pgdata'),
    pgVersion: pgBin().version,
    netns: options.netns ?? false,
    proxy: options.proxy ?? false,
    passwords: options.passwords ?? false,
    maxStartups: options.maxStartups ?? '100:30:200',
    namePrefix: options.namePrefix ?? 'rvm',
    site: options.site ?? 'Test Depot',
  };
  const templateDatabase = buildTemplateDatabase(base, cacheEnabled(options.cache));
  templateDatabase.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
  const ctx: FleetContext = { ...base, templateDatabase };

  let stopped = false;
  const devices: Device[] = [];
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(devices.map((d) => d.stop().catch(() => {})));
    const problems = registry.cleanup();
    forget(registry);
    if (reaper && isAlive(reaper)) process.kill(reaper, 'SIGTERM');
    if (problems.length > 0) throw new Error(`Fleet ${id} left: ${problems.join('; ')}`);
  };

  try {
    await buildTemplateFiles(ctx);
    const results = await Promise.allSettled([templateDatabase, ...Array.from({ length: options.devices ?? 1 }, (_, i) => createDevice(ctx, i))]);
    for (const r of results) if (r.status === 'fulfilled' && typeof r.value !== 'string') devices.push(r.value);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    rmSync(path.join(dir, 'template'), { recursive: true, force: true });
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
  devices.sort((a, b) => a.index - b.index);
  return { id, dir, devices, startMs: Date.now() - started, reaperPid: reaper, stop };
}

/** One device with its own fleet; `stop()` on the device stops the fleet. */
export async function startDevice(options: Omit<FleetOptions, 'devices'> = {}): Promise<Device & { fleet: Fleet }> {
  const fleet = await startFleet({ ...options, devices: 1 });
  const device = fleet.devices[0]!;
  const stopDevice = device.stop.bind(device);
  device.stop = async () => {
    await stopDevice();
    await fleet.stop();
  };
  return Object.assign(device, { fleet });
}
