/**
 * One device of a fleet: a copy of the fleet's template root made its own (identity, engine file,
 * logs, database rows), owned by its own account, with its own PostgreSQL and sshd, optionally in its
 * own network namespace, and a profile in the shape the console imports.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount } from './accounts';
import type { Account } from './accounts';
import type { ContentOptions } from './content';
import { writeDeviceFiles } from './content';
import { run, trace } from './exec';
import { createNetns, Link } from './link';
import type { Netns } from './link';
import { Mutator } from './mutate';
import { deviceSql, PG_PORT, psql, startCluster } from './postgres';
import type { Cluster } from './postgres';
import { startMysql } from './mysql';
import type { MysqlServer } from './mysql';
import { DelayProxy } from './proxy';
import type { Endpoint } from './proxy';
import type { Registry } from './registry';
import { Rng } from './random';
import { sqlite, sqliteDeviceSql } from './sqlite';
import { fingerprint, freePort, keygen, startSshd } from './sshd';
import { sshExec } from './ssh';
import type { SshOptions, SshResult } from './ssh';

export interface FleetContext {
  id: string;
  dir: string;
  registry: Registry;
  content: ContentOptions;
  templateRoot: string;
  templatePgData: string;
  /** The template cluster's data dir, once built (or found in the cache) and cleanly stopped. */
  templateDatabase: Promise<string>;
  pgVersion: string;
  netns: boolean;
  proxy: boolean;
  /** Password login on as well as keys (see FleetOptions.passwords). */
  passwords: boolean;
  /** sshd's MaxStartups (see FleetOptions.maxStartups). */
  maxStartups: string;
  namePrefix: string;
  site: string;
}

export type SourceProfile =
  | { name: string; kind: 'postgres'; database: string; host: string; port: number }
  | { name: string; kind: 'sqlite'; path: string }
  | { name: string; kind: 'files'; paths: string[]; exclude?: string[] };

export interface DeviceProfileJson {
  name: string;
  host: string;
  port: number;
  user: string;
  identityFile: string;
  hostKey: string;
  site: string;
  tags: string[];
  rpoMinutes: number;
  sysroot: string;
  sources: SourceProfile[];
}

export class Device {
  stopped = false;
  /** Helpers that move the device forward in time (files, logs, rows, corruption, full disks). */
  readonly mutate: Mutator;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly app: string,
    readonly site: string,
    readonly serial: string,
    /** Where the console connects (the delay proxy when there is one, else sshd itself). */
    readonly endpoint: Endpoint,
    /** sshd's own address. */
    readonly direct: Endpoint,
    readonly account: Account,
    readonly identityFile: string,
    readonly hostKeyPublic: string,
    readonly root: string,
    readonly dir: string,
    readonly pg: { socketDir: string; port: number; database: string; dataDir: string; pid: number; logFile: string },
    readonly sshd: { pid: number; logFile: string },
    readonly proxy: DelayProxy | undefined,
    readonly netns: Netns | undefined,
    readonly link: Link | undefined,
    private readonly cluster: Cluster,
    private readonly registry: Registry,
    /** The account's password when the fleet was started with `passwords` (else key-only: null). */
    readonly password: string | null = null,
  ) {
    this.mutate = new Mutator(this, registry.scoped(name));
  }

  get host(): string {
    return this.endpoint.host;
  }
  get port(): number {
    return this.endpoint.port;
  }
  get user(): string {
    return this.account.name;
  }
  get hostKeyFingerprint(): string {
    return fingerprint(this.hostKeyPublic);
  }
  get sqlitePath(): string {
    return path.join(this.root, 'opt', this.app, 'data', 'local.db');
  }

  /** The profile as the console imports it: paths are absolute host paths under `root` (= `sysroot`). */
  profile(): DeviceProfileJson {
    const r = (p: string) => path.join(this.root, p);
    return {
      name: this.name,
      host: this.host,
      port: this.port,
      user: this.user,
      identityFile: this.identityFile,
      hostKey: this.hostKeyFingerprint,
      site: this.site,
      tags: ['test-fleet', this.netns ? 'netns' : 'loopback'],
      rpoMinutes: 60,
      sysroot: this.root,
      sources: [
        { name: 'db', kind: 'postgres', database: this.app, host: this.pg.socketDir, port: this.pg.port },
        { name: 'local', kind: 'sqlite', path: this.sqlitePath },
        { name: 'config', kind: 'files', paths: [r(`etc/${this.app}`), r(`opt/${this.app}/.env`), r(`etc/systemd/system/${this.app}.service`)] },
        { name: 'logs', kind: 'files', paths: [r(`var/log/${this.app}`)] },
        { name: 'app', kind: 'files', paths: [r(`opt/${this.app}`)], exclude: ['data/local.db*'] },
      ],
    };
  }

  /** Runs a command over SSH as the device account, verifying the host key. */
  exec(command: string, options: SshOptions = {}): Promise<SshResult> {
    return sshExec({ ...this.endpoint, user: this.user, identityFile: this.identityFile, hostKeyFingerprint: this.hostKeyFingerprint }, command, options);
  }

  /** The device's long-running processes: sshd (listener) and the postmaster. */
  pids(): number[] {
    return [this.sshd.pid, this.pg.pid];
  }

  /**
   * Processes running as the device account apart from its database servers: SSH sessions and what
   * they started (only those called `named`, when given). A script a killed console left running on
   * the device goes on under this account. Zombies have ended: one whose parent went too waits for
   * init to reap it, which this VM's init is slow to do.
   */
  sessionProcesses(named?: string): number[] {
    const out: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const status = readFileSync(`/proc/${entry}/status`, 'utf8');
        const name = /^Name:\s+(.*)$/m.exec(status)?.[1];
        if (/^State:\s+Z/m.test(status) || (named !== undefined && name !== named)) continue;
        if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) === this.account.uid && name !== 'postgres' && name !== 'mariadbd') out.push(Number(entry));
      } catch {} // the process ended while it was read
    }
    return out;
  }

  /**
   * Waits (bounded) until every process of the device account that was not in `before` has ended:
   * the device at rest after a console was killed, with what it left running there finished.
   */
  async sessionsEnded(before: ReadonlySet<number>, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = this.sessionProcesses().filter((pid) => !before.has(pid));
      if (left.length === 0) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: processes still running after ${timeoutMs} ms: ${left.join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Memory of sshd + every postgres process of this device, in KiB: RSS (counts shared pages fully) and PSS (shares them out). */
  memory(): { rssKiB: number; pssKiB: number } {
    let rssKiB = 0;
    let pssKiB = 0;
    for (const pid of [this.sshd.pid, ...childrenOf(this.pg.pid), this.pg.pid]) {
      try {
        const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
        rssKiB += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
        pssKiB += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0);
      } catch {}
    }
    return { rssKiB, pssKiB };
  }

  #mysql: Promise<MysqlServer> | undefined;

  /**
   * Starts MariaDB on this device (once; later calls return the same server) with a `myrvm`-style
   * schema of `rows` deposits. Stopped with the device like everything else it owns.
   */
  mysql(rows = 20_000): Promise<MysqlServer> {
    this.#mysql ??= startMysql({ root: this.root, dir: this.dir, account: this.account, registry: this.registry.scoped(this.name), what: `mariadb of ${this.name}`, database: this.app, rows });
    return this.#mysql;
  }

  /** Stops this device alone: proxy, postgres (clean shutdown), sshd, namespace, account, files. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.proxy?.close();
    await this.cluster.stop().catch(() => {});
    const problems = this.registry.cleanupTagged(this.name);
    if (problems.length > 0) throw new Error(`Stopping ${this.name} left: ${problems.join('; ')}`);
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function createDevice(ctx: FleetContext, index: number): Promise<Device> {
  const n = index + 1;
  const name = `${ctx.namePrefix}-${String(n).padStart(3, '0')}`;
  const log = ctx.registry.scoped(name);
  const dir = path.join(ctx.dir, `d${n}`);
  const root = path.join(dir, 'root');
  log.add({ kind: 'dir', path: dir });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const rng = new Rng(`${ctx.content.seed}:${name}:identity`);
  const serial = `1421${String(n).padStart(3, '0')}${rng.hex(6)}`;
  const app = ctx.content.app;

  // Files: the template copied (reflinked where the filesystem can), then this device's own parts.
  await run('cp', ['-a', '--reflink=auto', ctx.templateRoot, root]);
  writeDeviceFiles(root, { name, index, site: ctx.site }, ctx.content);
  trace(`${name}: files copied`);
  const account = await createAccount(`jvf-${ctx.id}-${n}`, path.join(root, 'home', `jvf-${ctx.id}-${n}`), log);
  trace(`${name}: account`);
  const hostKey = await keygen(path.join(dir, 'ssh_host_ed25519_key'), `${name} host key`);
  const client = await keygen(path.join(dir, 'id_ed25519'), `jetvault-fleet@${name}`);
  // Under `sudo npm run fleet`, the console runs as the invoking user: let it read the client key.
  if (process.env.SUDO_UID && process.env.SUDO_GID) chownSync(client.privateKeyFile, Number(process.env.SUDO_UID), Number(process.env.SUDO_GID));
  const password = ctx.passwords ? randomBytes(12).toString('base64url') : null;
  if (password) await run('chpasswd', [], { input: `${account.name}:${password}\n` });
  const authorizedKeys = path.join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, `${client.publicKey}\n`, { mode: 0o644 });
  const netns = ctx.netns ? await createNetns(`jvf-${ctx.id}-${n}`, `jvf${ctx.id}${n}`, log) : undefined;
  const listen = netns ? netns.deviceAddress : `127.0.0.${10 + (index % 240)}`;
  trace(`${name}: keys, netns`);

  const templatePgData = await ctx.templateDatabase;
  const dataDir = path.join(root, 'var/lib/postgresql', ctx.pgVersion, 'main');
  mkdirSync(path.dirname(dataDir), { recursive: true });
  await run('cp', ['-a', '--reflink=auto', templatePgData, dataDir]);
  const socketDir = path.join(root, 'run/postgresql');
  if (Buffer.byteLength(path.join(socketDir, `.s.PGSQL.${PG_PORT}.lock`)) > 107) {
    throw new Error(`PostgreSQL's socket path under ${socketDir} would pass the 107-byte unix socket limit: use a shorter baseDir`);
  }
  mkdirSync(socketDir, { recursive: true });
  await run('chown', ['-R', '-h', `${account.uid}:${account.gid}`, root]);
  chmodSync(dataDir, 0o700);
  chmodSync(socketDir, 0o2775);
  trace(`${name}: pg data copied, chown`);

  const pgLog = path.join(dir, 'postgres.log');
  const clusterPromise = startCluster({ dataDir, socketDir, logFile: pgLog, account, registry: log, what: `postgres of ${name}` });
  const sshdPromise = (async () => {
    for (let attempt = 0; ; attempt++) {
      const port = netns ? 22 : await freePort(listen);
      try {
        return { port, sshd: await startSshd({ dir, listen, port, user: account.name, hostKeyFile: hostKey.privateKeyFile, authorizedKeysFile: authorizedKeys, passwordAuth: password !== null, maxStartups: ctx.maxStartups, registry: log, what: `sshd of ${name}`, hostname: name, ...(netns ? { netns: netns.name } : {}) }) };
      } catch (error) {
        if (netns || attempt >= 3 || !/Address already in use/.test((error as Error).message)) throw error;
      }
    }
  })();
  const [cluster, { port, sshd }] = await Promise.all([clusterPromise, sshdPromise]);

  trace(`${name}: postgres + sshd up`);
  await psql(socketDir, 'postgres', deviceSql(app, { name, serial, site: ctx.site, osUser: account.name }));
  await sqlite(path.join(root, 'opt', app, 'data', 'local.db'), sqliteDeviceSql({ name, serial }), account);

  trace(`${name}: device rows`);
  const direct = { host: listen, port };
  let proxy: DelayProxy | undefined;
  let endpoint: Endpoint = direct;
  if (ctx.proxy || netns) {
    proxy = new DelayProxy(direct);
    endpoint = await proxy.listen(`127.0.0.${10 + (index % 240)}`);
  }
  const link = netns && proxy ? new Link(netns, proxy) : undefined;
  return new Device(
    name,
    index,
    app,
    ctx.site,
    serial,
    endpoint,
    direct,
    account,
    client.privateKeyFile,
    hostKey.publicKey,
    root,
    dir,
    { socketDir, port: PG_PORT, database: app, dataDir, pid: cluster.pid, logFile: pgLog },
    sshd,
    proxy,
    netns,
    link,
    cluster,
    ctx.registry,
    password,
  );
}
