/**
 * A real S3-compatible object store for tests: a throwaway single-node Ceph cluster (one monitor,
 * one memstore OSD, radosgw) on 127.0.0.1 with ports of its own, cephx on. Same resource registry
 * as the device fleet, so `stop()`, the exit handlers and the reaper remove it whatever happens.
 * Built from the measured recipe the operators' team keeps (shared/recipes/ceph-rgw-up.sh).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive, run, waitFor } from './exec';
import { spawnReaper } from './fleet';
import { allocateDir, cleanupStale, forget, Registry, track } from './registry';
import { freePort } from './sshd';

export interface S3Store {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  /** Runs `radosgw-admin` (e.g. to inspect or make users). */
  admin(args: string[]): Promise<string>;
  /** SIGKILLs radosgw (the monitor and OSD keep the data), as a crashed gateway; waits until it is gone. */
  killGateway(): Promise<void>;
  /** Starts radosgw again on the same port; resolves when it answers. */
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

const TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'ceph', 'ceph-authtool', 'monmaptool', 'radosgw-admin'];

/** Why this machine cannot run one, or null. */
export function s3Missing(): string | null {
  if (process.getuid?.() !== 0) return 'the Ceph test store runs its daemons as root (CI runs as root)';
  for (const tool of TOOLS) {
    if (!['/usr/bin', '/usr/sbin', '/bin', '/sbin'].some((d) => existsSync(path.join(d, tool)))) return `${tool} is missing (apt-get install ceph-mon ceph-osd radosgw ceph-common)`;
  }
  return null;
}

export async function startS3Store(options: { baseDir?: string; memoryBytes?: number } = {}): Promise<S3Store> {
  const missing = s3Missing();
  if (missing) throw new Error(missing);
  // Its ports are picked free seconds before the daemons bind them (the monitor's map and keyrings are
  // made first), and another process may take one meanwhile — an outgoing connection's local port comes
  // from the same range: started again on new ports, as the fleet's sshd is (a CI run lost its S3 tests so).
  for (let attempt = 0; ; attempt++) {
    try {
      return await startS3StoreOnce(options);
    } catch (error) {
      if (attempt >= 3 || !/Address already in use/.test((error as Error).message)) throw error;
    }
  }
}

async function startS3StoreOnce(options: { baseDir?: string; memoryBytes?: number }): Promise<S3Store> {
  const baseDir = options.baseDir ?? '/tmp';
  cleanupStale(baseDir);
  const { id, dir } = allocateDir(baseDir, 's3', 0o700);
  const registry = new Registry(dir, id);
  registry.add({ kind: 'dir', path: dir });
  track(registry);
  const reaper = spawnReaper(dir);
  const stop = (): Promise<void> => {
    const problems = registry.cleanup();
    forget(registry);
    if (reaper) {
      try {
        process.kill(reaper, 'SIGTERM');
      } catch {}
    }
    return problems.length > 0 ? Promise.reject(new Error(`S3 store ${id} left: ${problems.join('; ')}`)) : Promise.resolve();
  };

  try {
    for (const sub of ['run', 'log', 'mon.a', 'osd.0', 'rgw.0', 'crash']) mkdirSync(path.join(dir, sub), { recursive: true });
    const [monV2, monV1, rgwPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1'), await freePort('127.0.0.1')];
    const fsid = randomUUID();
    const conf = path.join(dir, 'ceph.conf');
    const keyring = path.join(dir, 'keyring');
    writeFileSync(
      conf,
      `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv4 = true
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${keyring}
run dir = ${dir}/run
admin socket = ${dir}/run/$name.asok
pid file = ${dir}/run/$name.pid
log file = ${dir}/log/$name.log
crash dir = ${dir}/crash
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
paxos propose interval = 0.05
# A test cluster on a shared disk: the mon must not refuse to start when the disk is nearly full
# (its default refuses below 5% free, which a 252 GB disk with 15 GB free is).
mon data avail warn = 1
mon data avail crit = 0
mon warn on insecure global id reclaim allowed = false
client mount timeout = 30
[mon]
mon data = ${dir}/mon.$id
mon cluster log file = ${dir}/log/cluster.$channel.log
[osd]
osd data = ${dir}/osd.$id
osd objectstore = memstore
memstore device bytes = ${options.memoryBytes ?? 2 * 1024 ** 3}
osd class load list = *
osd class default list = *
[client.rgw.0]
rgw data = ${dir}/rgw.0
rgw frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1
rgw dns name = localhost
rgw enable usage log = false
`,
    );
    const env = { ...process.env, CEPH_CONF: conf };
    const ceph = (cmd: string, args: string[], timeoutMs = 60_000) => run(cmd, args, { env, timeoutMs });
    /** A daemon forks into the background and writes its pid file: record it for cleanup. */
    const daemon = async (cmd: string, args: string[], name: string) => {
      await ceph(cmd, args);
      const pidFile = path.join(dir, 'run', `${name}.pid`);
      const pid = await waitFor(`${name} to write its pid file`, () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) || undefined : undefined), { timeoutMs: 30_000, intervalMs: 50, logFile: path.join(dir, 'log', `${name}.log`) });
      registry.addPid(pid, `${name} of S3 store ${id}`, 'SIGTERM');
    };
    await ceph('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]`, path.join(dir, 'monmap')]);
    await ceph('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await ceph('ceph-authtool', [keyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
    await ceph('ceph-authtool', [keyring, '--gen-key', '-n', 'osd.0', '--cap', 'mon', 'allow profile osd', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow profile osd']);
    await ceph('ceph-authtool', [keyring, '--gen-key', '-n', 'client.rgw.0', '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx', '--cap', 'mgr', 'allow rw']);
    await ceph('ceph-mon', ['--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap'), '--keyring', keyring]);
    await daemon('ceph-mon', ['-i', 'a'], 'mon.a');
    await waitFor('the Ceph monitor', async () => (await run('ceph', ['-s', '--connect-timeout', '2'], { env, allowFail: true, timeoutMs: 10_000 })).code === 0, { timeoutMs: 60_000, intervalMs: 200 });
    const osdUuid = randomUUID();
    const osdId = (await ceph('ceph', ['osd', 'new', osdUuid])).stdout.trim();
    await ceph('ceph-osd', ['-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
    await daemon('ceph-osd', ['-i', osdId], `osd.${osdId}`);
    await waitFor('the OSD to come up', async () => new RegExp(`^osd\\.${osdId} up`, 'm').test((await run('ceph', ['osd', 'dump'], { env, allowFail: true, timeoutMs: 10_000 })).stdout), { timeoutMs: 60_000, intervalMs: 200 });
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const rgwPidFile = path.join(dir, 'run', 'client.rgw.0.pid');
    const startGateway = async (): Promise<void> => {
      await daemon('radosgw', ['-n', 'client.rgw.0'], 'client.rgw.0');
      await waitFor('radosgw to answer', async () => (await fetch(endpoint).catch(() => null))?.ok === true, { timeoutMs: 90_000, intervalMs: 200, logFile: path.join(dir, 'log', 'client.rgw.0.log') });
    };
    const killGateway = async (): Promise<void> => {
      const pid = Number(readFileSync(rgwPidFile, 'utf8').trim());
      process.kill(pid, 'SIGKILL');
      // Gone, or a zombie until init reaps it (its port is free either way).
      const gone = (): boolean => {
        try {
          return !isAlive(pid) || readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').startsWith('Z');
        } catch {
          return true;
        }
      };
      await waitFor('radosgw to die', gone, { timeoutMs: 30_000, intervalMs: 50 });
      rmSync(rgwPidFile, { force: true });
      registry.remove((r) => r.kind === 'pid' && r.pid === pid);
    };
    await startGateway();
    const accessKeyId = `JV${randomBytes(8).toString('hex').toUpperCase()}`;
    const secretAccessKey = randomBytes(24).toString('base64url');
    await ceph('radosgw-admin', ['user', 'create', '--uid=jetvault-test', '--display-name=Jetvault test', `--access-key=${accessKeyId}`, `--secret-key=${secretAccessKey}`]);
    return { endpoint, region: 'default', accessKeyId, secretAccessKey, dir, admin: async (args) => (await ceph('radosgw-admin', args)).stdout, killGateway, startGateway, stop };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
