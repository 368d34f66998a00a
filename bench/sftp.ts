/**
 * Remote repository benchmark (not a test), two parts:
 *
 * 1. SFTP throughput on loopback against the same OpenSSH server (fleet/sftp.ts, sshd's own address,
 *    no proxy): one file up and down through Jetvault's SFTP backend, OpenSSH's `sftp` and `scp`,
 *    and ssh2's own fastPut/fastGet; then 500 sequential stats with Nagle on and off (why the backend turns it off).
 * 2. The metadata cache: `jetvault snapshots` on a repository with N snapshots on S3 (a throwaway
 *    Ceph radosgw) and on SFTP, cold (empty cache) and warm, as a process and in-process.
 *
 *   npm run bench:remote        (BENCH_MB=128 file size, BENCH_ROUNDS=3, BENCH_SNAPSHOTS=200)
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'ssh2';
import type { SFTPWrapper } from 'ssh2';
import { s3Missing, startS3Store } from '../fleet/s3';
import { startSftpServer } from '../fleet/sftp';
import type { SftpServer } from '../fleet/sftp';
import { backendFor, backendForInit } from '../src/main/repository/backend/open-backend';
import { SftpBackend } from '../src/main/repository/backend/sftp-backend';
import { Repository } from '../src/main/repository/repo/repository';
import { listSnapshots, newSnapshot, saveSnapshot } from '../src/main/repository/snapshot/snapshot';

const MB = Number(process.env.BENCH_MB ?? 128);
const SNAPSHOTS = Number(process.env.BENCH_SNAPSHOTS ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const root = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'jv-bench-sftp-'));
const PASSWORD = 'bench-password';

const seconds = async (what: () => unknown): Promise<number> => {
  const started = process.hrtime.bigint();
  await what();
  return Number(process.hrtime.bigint() - started) / 1e9;
};
const rate = (s: number): string => `${(MB / s).toFixed(0)} MiB/s`;
const row = (cells: (string | number)[]): void => console.log(`| ${cells.join(' | ')} |`);
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function openssh(tool: 'sftp' | 'scp', server: SftpServer, args: string[], input?: string): void {
  const common = ['-i', server.identityFile, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR'];
  const argv = tool === 'sftp' ? [...common, '-P', String(server.direct.port), '-b', '-', `${server.user}@${server.direct.host}`] : [...common, '-P', String(server.direct.port), ...args];
  const r = spawnSync(tool, argv, { input: input ?? '', stdio: ['pipe', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr.toString()}`);
}

/** ssh2 directly: its own parallel fastPut/fastGet (64 × 32 KiB), and 500 stats one after another, with Nagle on or off. */
function ssh2Transfer(server: SftpServer, noDelay: boolean, local: string, remote: string, back: string): Promise<{ put: number; get: number; stats: number }> {
  return new Promise((resolveTimes, reject) => {
    const client = new Client();
    client.on('error', reject);
    client.on('ready', () => {
      client.setNoDelay(noDelay);
      client.sftp((error, sftp) => {
        if (error) return reject(error);
        void measureOn(sftp);
      });
      const measureOn = async (sftp: SFTPWrapper): Promise<void> => {
        const put = await seconds(() => new Promise<void>((ok, fail) => sftp.fastPut(local, remote, (e) => (e ? fail(e) : ok()))));
        const get = await seconds(() => new Promise<void>((ok, fail) => sftp.fastGet(remote, back, (e) => (e ? fail(e) : ok()))));
        const stats = await seconds(async () => {
          for (let i = 0; i < 500; i++) await new Promise<void>((ok, fail) => sftp.stat(remote, (e) => (e ? fail(e) : ok())));
        });
        client.end();
        resolveTimes({ put, get, stats });
      };
    });
    client.connect({ host: server.direct.host, port: server.direct.port, username: server.user, privateKey: readFileSync(server.identityFile) });
  });
}

/** A command run without blocking this process (the delay proxy lives here and must keep forwarding). */
function spawnTimed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ seconds: number; status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', fail);
    child.on('close', (status) => done({ seconds: Number(process.hrtime.bigint() - started) / 1e9, status, stdout, stderr }));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function throughput(server: SftpServer): Promise<void> {
  const file = join(work, 'payload');
  const payload = randomBytes(MB * 1024 * 1024);
  writeFileSync(file, payload);
  const remote = (name: string) => `${server.storage}/${name}`;
  const backend = new SftpBackend(`sftp:${server.user}@${server.direct.host}:${server.direct.port}:${server.storage}/jv`, {
    hostKey: server.hostKeyFingerprint,
    auth: () => ({ kind: 'key', privateKey: readFileSync(server.identityFile) }),
  });
  await backend.ensureRoot();
  await backend.put('warmup', Buffer.alloc(1024));
  const clients: { name: string; run: () => Promise<{ up: number; down: number }> }[] = [
    {
      name: 'Jetvault SFTP backend (128 KiB × 16 in flight, TCP_NODELAY)',
      run: async () => {
        const up = await seconds(() => backend.put('data/aa/payload', payload));
        let back: Buffer = Buffer.alloc(0);
        const down = await seconds(async () => (back = await backend.get('data/aa/payload')));
        if (!back.equals(payload)) throw new Error('Jetvault read back different bytes');
        return { up, down };
      },
    },
    {
      name: 'OpenSSH sftp',
      run: async () => ({
        up: await seconds(() => openssh('sftp', server, [], `put ${file} ${remote('o-sftp')}\n`)),
        down: await seconds(() => openssh('sftp', server, [], `get ${remote('o-sftp')} ${join(work, 'back-sftp')}\n`)),
      }),
    },
    {
      name: 'OpenSSH scp (SFTP protocol)',
      run: async () => ({
        up: await seconds(() => openssh('scp', server, [file, `${server.user}@${server.direct.host}:${remote('o-scp')}`])),
        down: await seconds(() => openssh('scp', server, [`${server.user}@${server.direct.host}:${remote('o-scp')}`, join(work, 'back-scp')])),
      }),
    },
    {
      name: 'ssh2 fastPut/fastGet (64 × 32 KiB), TCP_NODELAY',
      run: async () => {
        const t = await ssh2Transfer(server, true, file, remote('ssh2'), join(work, 'back-ssh2'));
        return { up: t.put, down: t.get };
      },
    },
  ];
  const times = clients.map(() => ({ up: [] as number[], down: [] as number[] }));
  const loads: string[] = [load()];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, client] of clients.entries()) {
      const t = await client.run();
      times[i]!.up.push(t.up);
      times[i]!.down.push(t.down);
    }
    loads.push(load());
  }
  console.log(`\n## SFTP throughput, loopback, one ${MB} MiB file, median of ${ROUNDS} interleaved rounds (load ${loads.join(' → ')})\n`);
  row(['client', 'upload', 'download']);
  row(['---', '---:', '---:']);
  for (const [i, client] of clients.entries()) row([client.name, rate(median(times[i]!.up)), rate(median(times[i]!.down))]);
  backend.close();
  const nagle: number[] = [];
  const nodelay: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    nagle.push((await ssh2Transfer(server, false, file, remote('ssh2-nagle'), join(work, 'back-nagle'))).stats);
    nodelay.push((await ssh2Transfer(server, true, file, remote('ssh2-nodelay'), join(work, 'back-nodelay'))).stats);
  }
  console.log(`\nssh2, 500 SFTP stats one after another (median of ${ROUNDS}): Nagle on ${(median(nagle) * 1000).toFixed(0)} ms, TCP_NODELAY ${(median(nodelay) * 1000).toFixed(0)} ms.`);
  rmSync(file);
}

async function snapshotsColdWarm(kind: string, location: string, env: NodeJS.ProcessEnv): Promise<void> {
  const repo = await Repository.init(await backendForInit(location, env), PASSWORD, { kdf: { N: 1024, r: 8, p: 1 } });
  await Promise.all(
    Array.from({ length: SNAPSHOTS }, (_, i) =>
      saveSnapshot(repo, newSnapshot({ tree: '0'.repeat(64), paths: [`/opt/myrvm/${i}`], device: `rvm-${String(i % 40).padStart(3, '0')}`, time: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(), summary: { files: i, dirs: 1, bytes: i * 1000, filesRead: i, blobsAdded: 0, bytesAdded: 0, errors: 0, durationMs: 10 } })),
    ),
  );
  repo.backend.close?.();
  const home = mkdtempSync(join(work, 'home-'));
  const cli = async (): Promise<number> => {
    const r = await spawnTimed(process.execPath, [join(root, 'bin/jetvault.js'), 'snapshots', '-r', location, '--json'], { ...process.env, ...env, JETVAULT_HOME: home, JETVAULT_PASSWORD: PASSWORD });
    if (r.status !== 0) throw new Error(`jetvault snapshots failed: ${r.stderr}`);
    if ((JSON.parse(r.stdout) as unknown[]).length !== SNAPSHOTS) throw new Error('wrong snapshot count');
    return r.seconds;
  };
  const inProcess = async (cacheDir: string): Promise<number> =>
    seconds(async () => {
      const opened = await Repository.open(backendFor(location, env), PASSWORD, { cacheDir });
      if ((await listSnapshots(opened)).length !== SNAPSHOTS) throw new Error('wrong snapshot count');
      opened.backend.close?.();
    });
  const coldCli = await cli();
  const warmCli = await cli();
  const cacheDir = mkdtempSync(join(work, 'cache-'));
  const coldIn = await inProcess(cacheDir);
  const warmIn = await inProcess(cacheDir);
  row([`${kind}, \`jetvault snapshots\` (process)`, `${coldCli.toFixed(2)} s`, `${warmCli.toFixed(2)} s`]);
  row([`${kind}, open + list (in-process)`, `${coldIn.toFixed(2)} s`, `${warmIn.toFixed(2)} s`]);
}

const server = await startSftpServer();
try {
  await throughput(server);
  console.log(`\n## Listing ${SNAPSHOTS} snapshots, cold (empty cache) vs warm (load ${load()})\n`);
  row(['repository', 'cold', 'warm']);
  row(['---', '---:', '---:']);
  if (!s3Missing()) {
    const store = await startS3Store();
    try {
      await snapshotsColdWarm('S3 (Ceph radosgw)', `s3:${store.endpoint}/jv-bench/repo`, { AWS_ACCESS_KEY_ID: store.accessKeyId, AWS_SECRET_ACCESS_KEY: store.secretAccessKey, AWS_REGION: store.region });
    } finally {
      await store.stop();
    }
  } else console.log(`(S3 skipped: ${s3Missing()})`);
  const sftpEnv = { JETVAULT_SFTP_HOST_KEY: server.hostKeyFingerprint, JETVAULT_SFTP_IDENTITY: server.identityFile };
  await snapshotsColdWarm('SFTP, loopback', `sftp:${server.user}@${server.direct.host}:${server.direct.port}:${server.storage}/list`, sftpEnv);
  server.proxy.delayMs = 25;
  await snapshotsColdWarm('SFTP, 50 ms round trip', server.location('list-far'), sftpEnv);
} finally {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
