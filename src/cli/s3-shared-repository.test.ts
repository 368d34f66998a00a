/**
 * Many consoles, one repository in a real S3 store (a throwaway Ceph radosgw on 127.0.0.1). Every
 * console is a separate `jetvault` process with a JETVAULT_HOME of its own; a console "on another
 * machine" runs in a UTS namespace of its own, so its hostname differs and its lease cannot be
 * judged stale by pid. Covered: two consoles backing up at once, then `check --read-data` and both
 * restores byte-exact; radosgw SIGKILLed mid-upload and restarted; a lease left by a killed console;
 * racing prunes on the store's create-only writes.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../../fleet/exec';
import { NAMES } from '../main/repository/backend/backend';
import { S3Backend } from '../main/repository/backend/s3-backend';
import { sealJson } from '../main/repository/crypto/sealed-object';
import { hasCreateOnly, listLocks, RepositoryLock, STALE_MS } from '../main/repository/lock/lock';
import { Repository } from '../main/repository/repo/repository';
import { useS3Store } from '../main/repository/testing/servers';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const { why, store } = useS3Store();
if (why) console.log(`S3 shared-repository tests skipped: ${why}`);

const BIN = fileURLToPath(new URL('../../bin/jetvault.js', import.meta.url));
const PASSWORD = 's3 shared repository test password';

const awsEnv = () => ({ AWS_ACCESS_KEY_ID: store.accessKeyId, AWS_SECRET_ACCESS_KEY: store.secretAccessKey, AWS_REGION: store.region });
const consoleEnv = () => ({ ...process.env, ...awsEnv(), JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: PASSWORD });
const newLocation = () => `s3:${store.endpoint}/jv-shared-${randomBytes(3).toString('hex')}/fleet`;
const backendAt = (location: string) => new S3Backend(location, { credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey } });

interface Child {
  pid: number;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
  kill(): void;
}

/** `jetvault ARGS` as a separate process; `host` runs it in a UTS namespace with that hostname. */
function console_(env: NodeJS.ProcessEnv, args: string[], host?: string): Child {
  const argv = host ? ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', host, process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return {
    pid: child.pid!,
    done: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, out, err }))),
    kill: () => child.kill('SIGKILL'),
  };
}

function makeTree(root: string, seed: string, models: Buffer[]): void {
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  mkdirSync(path.join(root, 'models'), { recursive: true });
  for (let i = 0; i < 60; i++) writeFileSync(path.join(root, 'etc', `${seed}-${i}.yaml`), `device: ${seed}\nindex: ${i}\n${'threshold: 0.5\n'.repeat(i)}`);
  writeFileSync(path.join(root, 'own.bin'), randomBytes(6 * 1024 * 1024));
  models.forEach((m, i) => writeFileSync(path.join(root, 'models', `shared-${i}.engine`), m));
}

function same(a: string, b: string, rel: string): boolean {
  return readFileSync(path.join(a, rel)).equals(readFileSync(path.join(b, rel)));
}

describe.skipIf(why)('one S3 repository, many consoles', () => {
  it('two consoles back up different data at once; check --read-data is clean and both restore byte-exact', async () => {
    const repo = newLocation();
    const run = cliRunner({ ...awsEnv(), JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: PASSWORD });
    expect((await run('init', '-r', repo)).code).toBe(0);
    const shared = [randomBytes(20 * 1024 * 1024), randomBytes(3 * 1024 * 1024)]; // the same model on both fleets: stored once
    const [a, b] = [tempDir(), tempDir()];
    makeTree(a, 'north', shared);
    makeTree(b, 'south', shared);
    // Two rounds each, both consoles at once (the second round exercises dedup against the other's fresh index).
    for (let round = 0; round < 2; round++) {
      writeFileSync(path.join(a, `round-${round}.log`), randomBytes(1024 * 1024));
      writeFileSync(path.join(b, `round-${round}.log`), randomBytes(1024 * 1024));
      const results = await Promise.all([console_(consoleEnv(), ['backup', '-r', repo, a, '--json'], 'console-north').done, console_(consoleEnv(), ['backup', '-r', repo, b, '--json'], 'console-south').done]);
      for (const r of results) expect(r, r.err).toMatchObject({ code: 0 });
      // Round 1 may store the shared model twice (two processes, neither yet sees the other's index);
      // round 2 dedups against everything both stored: only the new 1 MiB log (and metadata) is added.
      if (round === 1) for (const r of results) expect((JSON.parse(r.out) as { bytesAdded: number }).bytesAdded).toBeLessThan(1.2 * 1024 * 1024);
    }
    const checked = await run('check', '-r', repo, '--read-data', '--json');
    expect(checked.code, checked.err).toBe(0);
    expect(JSON.parse(checked.out)).toMatchObject({ errors: [] });
    const snaps = JSON.parse((await run('snapshots', '-r', repo, '--json')).out) as { id: string; time: string; paths: string[] }[];
    expect(snaps).toHaveLength(4);
    for (const src of [a, b]) {
      const target = tempDir();
      const latest = snaps.filter((s) => s.paths.includes(src)).sort((x, y) => Date.parse(y.time) - Date.parse(x.time))[0]!;
      expect((await run('restore', '-r', repo, latest.id, '--target', target)).code).toBe(0);
      for (const rel of ['own.bin', 'models/shared-0.engine', 'models/shared-1.engine', 'round-1.log', 'etc/north-59.yaml'].filter((r) => !r.includes('north') || src === a)) {
        expect(same(src, path.join(target, src), rel), rel).toBe(true);
      }
    }
    // At most one copy of the shared model per console, and a prune after both is clean too.
    const stored = (await backendAt(repo).list(NAMES.data)).reduce((n, o) => n + o.size, 0);
    expect(stored).toBeLessThan(2 * (6 + 2 + 23) * 1024 * 1024 + 2 * 1024 * 1024);
    expect((await run('prune', '-r', repo)).code).toBe(0);
    expect(JSON.parse((await run('check', '-r', repo, '--read-data', '--json')).out)).toMatchObject({ errors: [] });
  }, 300_000);

  it('radosgw SIGKILLed mid-upload and restarted: the backup retries or fails clearly, check is clean, the next backup completes and reuses what was stored', async () => {
    const repo = newLocation();
    const env = consoleEnv();
    const run = cliRunner(env);
    expect((await run('init', '-r', repo)).code).toBe(0);
    const src = tempDir();
    for (let i = 0; i < 6; i++) writeFileSync(path.join(src, `model-${i}.engine`), randomBytes(12 * 1024 * 1024));
    const total = 6 * 12 * 1024 * 1024;
    const backend = backendAt(repo);
    const job = console_(env, ['backup', '-r', repo, src, '--json']);
    // Kill the gateway as soon as the first pack is in the store (the job is mid-upload).
    await waitFor('the first pack to be stored', async () => (await backend.list(NAMES.data)).length > 0, { timeoutMs: 120_000, intervalMs: 100 });
    await store.killGateway();
    await new Promise((r) => setTimeout(r, 1500));
    await store.startGateway();
    const outcome = await job.done;
    console.log(`backup while radosgw was killed and restarted: exit ${outcome.code}${outcome.code === 0 ? '' : `, ${outcome.err.trim()}`}`);
    if (outcome.code !== 0) {
      // Failed cleanly: a named S3 operation and cause, no stack trace.
      expect(outcome.err).toMatch(/^jetvault: S3 (upload|listing|create-only upload|stat|download|delete) of .* failed: .*(ECONNREFUSED|ECONNRESET|socket|connect|HTTP 5\d\d)/m);
      expect(outcome.err).not.toMatch(/\n\s+at /);
    }
    const checked = await run('check', '-r', repo, '--read-data', '--json');
    expect(checked.code, checked.err).toBe(0);
    const storedBefore = (await backend.list(NAMES.data)).reduce((n, o) => n + o.size, 0);
    const next = await run('backup', '-r', repo, src, '--json');
    expect(next.code, next.err).toBe(0);
    const added = (JSON.parse(next.out) as { bytesAdded: number }).bytesAdded;
    if (outcome.code !== 0) {
      expect(storedBefore).toBeGreaterThan(0);
      expect(added).toBeLessThan(total - storedBefore * 0.9); // what the failed run stored is reused
    } else expect(added).toBeLessThan(64 * 1024); // the job rode out the outage: only metadata is new
    expect(JSON.parse((await run('check', '-r', repo, '--read-data', '--json')).out)).toMatchObject({ errors: [] });
    const target = tempDir();
    expect((await run('restore', '-r', repo, 'latest', '--target', target)).code).toBe(0);
    for (let i = 0; i < 6; i++) expect(same(src, path.join(target, src), `model-${i}.engine`)).toBe(true);
    backend.close();
  }, 300_000);

  it('a lease left by a killed console blocks backups and prunes with a clear message until stale; unlock removes only stale leases; breaking works', async () => {
    const repo = newLocation();
    const env = consoleEnv();
    const run = cliRunner(env);
    expect((await run('init', '-r', repo)).code).toBe(0);
    const src = tempDir();
    for (let i = 0; i < 4; i++) writeFileSync(path.join(src, `part-${i}.bin`), randomBytes(4 * 1024 * 1024));
    for (let i = 0; i < 3; i++) {
      writeFileSync(path.join(src, 'rev.txt'), `rev ${i}`);
      expect((await run('backup', '-r', repo, src)).code).toBe(0);
    }
    expect((await run('forget', '-r', repo, '--keep-last', '1')).code).toBe(0);
    const backend = backendAt(repo);
    const opened = await Repository.open(backend, PASSWORD);

    // A prune on another machine is killed -9 once its exclusive lease is in the store. It holds
    // that lease for only ~70 ms of its ~1 s, which a poll of the store beside the running prune
    // missed on a busy machine (the prune ended, the wait timed out): the prune is run 10 ms at a
    // time instead, and the store looked at while it is stopped, when its lease cannot come or go.
    const prune = console_(consoleEnv(), ['prune', '-r', repo], 'depot-laptop-2');
    let ended = false;
    void prune.done.then(() => (ended = true));
    for (let step = 0; ; step++) {
      await new Promise((r) => setTimeout(r, 10));
      if (ended) throw new Error('the prune ended before its exclusive lease was seen');
      process.kill(prune.pid, 'SIGSTOP');
      if ((await listLocks(opened)).some((l) => l.exclusive)) break;
      if (step > 6000) throw new Error('no exclusive lease after 6,000 steps of the prune');
      process.kill(prune.pid, 'SIGCONT');
    }
    prune.kill();
    expect((await prune.done).signal).toBe('SIGKILL');
    const [left] = await listLocks(opened);
    expect(left).toMatchObject({ host: 'depot-laptop-2', exclusive: true, stale: false, id: 'exclusive-0000000001' });

    const blocked = await run('backup', '-r', repo, src);
    expect(blocked.code).toBe(11);
    expect(blocked.err).toMatch(/repository is locked exclusively by pid \d+ on depot-laptop-2 since .* turns stale at .*`jetvault unlock` removes stale locks/);
    expect((await run('prune', '-r', repo)).code).toBe(11);
    expect(JSON.parse((await run('unlock', '-r', repo, '--json')).out)).toEqual({ removed: 0, remaining: 1 });

    // Five minutes pass without a refresh (the lease is re-sealed with its refresh time moved back).
    const earlier = new Date(Date.now() - STALE_MS - 60_000).toISOString();
    await backend.put(`${NAMES.locks}${left!.id}`, sealJson(opened.keys.enc, 'lock', { host: left!.host, pid: left!.pid, exclusive: true, created: left!.created, refreshed: earlier }));
    expect((await listLocks(opened))[0]).toMatchObject({ stale: true });
    // A live shared lease of a running backup elsewhere stays when unlock removes the stale one.
    const live = await RepositoryLock.acquire(await Repository.open(backendAt(repo), PASSWORD), false);
    expect(JSON.parse((await run('unlock', '-r', repo, '--json')).out)).toEqual({ removed: 1, remaining: 1 });
    expect((await listLocks(opened)).map((l) => l.id)).toEqual([live.id]);
    await live.release();

    // The next prune proceeds (and cleans up what the killed one may have left half done).
    const pruned = await run('prune', '-r', repo);
    expect(pruned.code, pruned.err).toBe(0);
    expect(JSON.parse((await run('check', '-r', repo, '--read-data', '--json')).out)).toMatchObject({ errors: [] });
    const target = tempDir();
    expect((await run('restore', '-r', repo, 'latest', '--target', target)).code).toBe(0);
    expect(readFileSync(path.join(target, src, 'rev.txt'), 'utf8')).toBe('rev 2');
    backend.close();
  }, 300_000);

  it('racing prunes on radosgw: exactly one proceeds each time (create-only writes), and a backup racing them never runs beside the winner', async () => {
    const repo = newLocation();
    expect((await cliRunner(consoleEnv())('init', '-r', repo)).code).toBe(0);
    const probe = backendAt(repo);
    expect(await hasCreateOnly(probe)).toBe(true); // radosgw answers 412 to a second If-None-Match: * create
    expect(await probe.putIfAbsent('locks/probe-x', Buffer.from('a'))).toBe(true);
    expect(await probe.putIfAbsent('locks/probe-x', Buffer.from('b'))).toBe(false);
    expect((await probe.get('locks/probe-x')).toString()).toBe('a');
    await probe.delete('locks/probe-x');
    for (let round = 0; round < 5; round++) {
      const consoles = await Promise.all(Array.from({ length: 4 }, () => Repository.open(backendAt(repo), PASSWORD)));
      const outcomes = await Promise.allSettled([...consoles.map((r) => RepositoryLock.acquire(r, true)), RepositoryLock.acquire(consoles[0]!, false)]);
      const prunes = outcomes.slice(0, 4);
      const winners = prunes.filter((o): o is PromiseFulfilledResult<RepositoryLock> => o.status === 'fulfilled');
      const backupWon = outcomes[4]!.status === 'fulfilled';
      // At most one prune; never a prune and the backup together (both backing off is allowed).
      expect(winners.length, `round ${round}`).toBeLessThanOrEqual(1);
      expect(winners.length === 1 && backupWon, `round ${round}`).toBe(false);
      for (const o of prunes) if (o.status === 'rejected') expect(o.reason).toMatchObject({ failure: 'locked' });
      for (const w of winners) await w.value.release();
      if (backupWon) await (outcomes[4] as PromiseFulfilledResult<RepositoryLock>).value.release();
    }
    // Without a backup racing: exactly one of four prunes, every time.
    for (let round = 0; round < 5; round++) {
      const consoles = await Promise.all(Array.from({ length: 4 }, () => Repository.open(backendAt(repo), PASSWORD)));
      const outcomes = await Promise.allSettled(consoles.map((r) => RepositoryLock.acquire(r, true)));
      const winners = outcomes.filter((o): o is PromiseFulfilledResult<RepositoryLock> => o.status === 'fulfilled');
      expect(winners, `round ${round}`).toHaveLength(1);
      await winners[0]!.value.release();
    }
    expect(await listLocks(await Repository.open(probe, PASSWORD))).toEqual([]);
  }, 300_000);
});
