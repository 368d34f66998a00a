import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isRoot } from './accounts';
import { isAlive, sleep, waitFor } from './exec';
import { cleanupStale, readRecord, startTimeOf } from './registry';
import type { FleetRecord } from './registry';
import { leftovers, skipReason } from './test-support';
import type { FleetTraces } from './test-support';

const skip = skipReason('fleet cleanup', isRoot() ? null : 'the test fleet needs root; CI runs as root');
const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Starts `npm run fleet` (the CLI) in a child process and waits for its first profile. */
async function startCli(): Promise<{ child: ChildProcess; traces: FleetTraces; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', tsx, path.join(here, 'cli.ts'), '--devices', '1', '--model-mb', '2,1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let out = '';
  let err = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const line = await waitFor('the CLI to print a profile', () => (out.includes('\n') ? out.split('\n')[0] : undefined), { timeoutMs: 90_000, intervalMs: 100 }).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n${err}`);
  });
  const profile = JSON.parse(line) as { user: string; sysroot: string };
  const dir = profile.sysroot.replace(/\/d1\/root$/, '');
  const record = readRecord(dir)!;
  const pids = record.resources.flatMap((r) => (r.kind === 'pid' ? [r.pid] : []));
  expect(pids.length).toBeGreaterThanOrEqual(2);
  return { child, exited, traces: { id: record.id, dir, pids, users: [profile.user], netns: [], dirs: [dir] } };
}

describe.skipIf(skip)('no stray processes, accounts or files', () => {
  it('the CLI stops everything on Ctrl-C (SIGINT)', async () => {
    const { child, exited, traces } = await startCli();
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(await leftovers(traces, 3_000)).toEqual([]);
  }, 120_000);

  it('a fleet whose process is SIGKILLed is cleaned up by its reaper', async () => {
    const { child, exited, traces } = await startCli();
    child.kill('SIGKILL');
    await exited;
    await waitFor('the reaper to clean up', async () => (await leftovers(traces)).length === 0, { timeoutMs: 20_000, intervalMs: 200 }).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${(await leftovers(traces)).join(', ')}`);
    });
  }, 120_000);

  it('cleanupStale() removes what dead fleets left: processes, namespaces, accounts, dirs', async () => {
    const base = mkdtempSync('/tmp/jvf-stale-test-');
    const id = 'fff' + Math.floor(Math.random() * 16).toString(16);
    const dir = path.join(base, `jvf-${id}`);
    mkdirSync(dir);
    const dead = spawnSync('true').pid;
    const sleeper = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    sleeper.unref();
    const user = `jvf-${id}-1`;
    spawnSync('useradd', ['--no-create-home', '--password', '*', user]);
    const netnsOk = spawnSync('ip', ['netns', 'add', `jvf-${id}-1`]).status === 0;
    const record: FleetRecord = {
      id,
      owner: { pid: dead, start: '1' },
      resources: [
        { kind: 'dir', path: dir },
        { kind: 'pid', pid: sleeper.pid!, start: startTimeOf(sleeper.pid!), what: 'stray sleep' },
      ],
    };
    writeFileSync(path.join(dir, 'fleet.json'), JSON.stringify(record));
    try {
      const removed = cleanupStale(base);
      expect(removed).toContain(dir);
      // (A fleet starting in a parallel test file may have removed the orphan account/namespace first.)
      if (netnsOk) expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(`jvf-${id}-1`);
      for (let i = 0; i < 20 && isAlive(sleeper.pid!); i++) await sleep(50);
      expect(await leftovers({ id, dir, pids: [sleeper.pid!], users: [user], netns: [], dirs: [dir] })).toEqual([]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
