/**
 * A process stopped on purpose while it backs a device up — the test host on SIGTERM (as the app
 * quitting), `run-scheduler --once` stopped by systemd — cancels the run and records it cancelled.
 * "Interrupted" is for a process that died; these were stopped, and said so nowhere.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../fleet/index';
import type { Fleet } from '../../fleet/index';
import { TOKEN_PROTOCOL_PREFIX, WIRE_PROTOCOL } from '../main/host/test-host';
import { JobManager } from '../main/jobs/job-manager';
import { EventBus } from '../main/event-bus';
import { HistoryStore } from '../main/history/history-store';
import { silentLogger } from '../main/log';
import { spawnTestHost } from '../main/testing/host-process';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const root = fileURLToPath(new URL('../..', import.meta.url));
const PASSWORD = 'stopped mid-backup test password';

let fleet: Fleet;
beforeAll(async () => {
  fleet = await startFleet({ devices: 1, sharedModelMB: 2, uniqueModelMB: 1 });
}, 240_000);
afterAll(async () => {
  await fleet?.stop();
}, 120_000);

/** A data folder with the device and a repository, backups slowed to 1 MiB/s so one can be stopped mid-run. */
async function prepared(name: string): Promise<{ home: string; env: NodeJS.ProcessEnv }> {
  const home = tempDir();
  const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: PASSWORD };
  const run = cliRunner(env);
  const file = path.join(tempDir(), 'profile.json');
  writeFileSync(file, JSON.stringify({ ...fleet.devices[0]!.profile(), name }));
  expect((await run('device', 'import', file)).code).toBe(0);
  expect((await run('init')).code).toBe(0);
  expect((await run('settings', 'set', 'bandwidthLimitKiBps', '1024')).code).toBe(0);
  return { home, env };
}

function backups(home: string): { status: string; error: string | null }[] {
  const db = new Database(path.join(home, 'history.sqlite3'), { readonly: true });
  try {
    return db.prepare("SELECT status, error FROM jobs WHERE kind = 'backup' ORDER BY started_at").all() as { status: string; error: string | null }[];
  } finally {
    db.close();
  }
}

async function untilRunning(home: string): Promise<void> {
  for (let i = 0; i < 600 && !backups(home).some((b) => b.status === 'running'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect(backups(home)).toEqual([{ status: 'running', error: null }]);
}

/** What the next process to open the history sees: a job left "running" by a dead process is called interrupted. */
function afterRestart(home: string): { status: string; error: string | null }[] {
  const store = new HistoryStore(home);
  const jobs = new JobManager(store, new EventBus(), silentLogger);
  jobs.dispose();
  store.close();
  return backups(home);
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('a process stopped during a backup', () => {
  it('the test host stopped by SIGTERM (the app quitting) records the running backup cancelled, not interrupted', async () => {
    const { home } = await prepared('rvm-host');
    const child = spawnTestHost(home);
    const exited = exitOf(child);
    try {
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      for (let i = 0; i < 600 && !/^JETVAULT_HOST_URL=/m.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      const url = new URL(/^JETVAULT_HOST_URL=(\S+)$/m.exec(out)![1]!);
      const token = url.hash.replace('#token=', '');
      const socket = new WebSocket(`ws://${url.host}/ipc`, [WIRE_PROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`], { origin: url.origin });
      const results = new Map<number, unknown>();
      socket.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString()) as { type: string; id?: number; result?: unknown };
        if (message.type === 'result' && message.id !== undefined) results.set(message.id, message.result);
      });
      await new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      const invoke = async (id: number, channel: string, input: unknown): Promise<unknown> => {
        socket.send(JSON.stringify({ type: 'invoke', id, channel, input }));
        for (let i = 0; i < 600 && !results.has(id); i++) await new Promise((resolve) => setTimeout(resolve, 50));
        return results.get(id);
      };
      expect(await invoke(1, 'repository:unlock', { password: PASSWORD })).toMatchObject({ ok: true });
      expect(await invoke(2, 'backups:start', { device: 'rvm-host' })).toMatchObject({ ok: true });
      await untilRunning(home);
      socket.close();

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).not.toMatch(/database connection is not open|TypeError/);
      const cancelled = [{ status: 'cancelled', error: JSON.stringify({ code: 'CANCELLED', message: 'Back up rvm-host was cancelled: Jetvault stopped while it ran' }) }];
      expect(backups(home)).toEqual(cancelled);
      expect(afterRestart(home)).toEqual(cancelled);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);

  it('run-scheduler --once stopped by SIGTERM cancels the backup its tick started, records it cancelled and says so', async () => {
    const { home, env } = await prepared('rvm-once');
    const child = spawn(process.execPath, [path.join(root, 'bin/jetvault.js'), 'run-scheduler', '--once'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = exitOf(child);
    try {
      let err = '';
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      await untilRunning(home);
      child.kill('SIGTERM');
      expect(await exited).toBe(1);
      expect(err).toMatch(/^Back up rvm-once: cancelled$/m);
      const cancelled = [{ status: 'cancelled', error: JSON.stringify({ code: 'CANCELLED', message: 'Back up rvm-once was cancelled: Jetvault stopped while it ran' }) }];
      expect(backups(home)).toEqual(cancelled);
      expect(afterRestart(home)).toEqual(cancelled);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);

  it('run-scheduler whose terminal closed (SIGHUP) cancels the running backup as on SIGTERM: recorded cancelled, exit 0', async () => {
    const { home, env } = await prepared('rvm-hup');
    const child = spawn(process.execPath, [path.join(root, 'bin/jetvault.js'), 'run-scheduler'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = exitOf(child);
    try {
      await untilRunning(home);
      child.kill('SIGHUP');
      expect(await exited).toBe(0);
      const cancelled = [{ status: 'cancelled', error: JSON.stringify({ code: 'CANCELLED', message: 'Back up rvm-hup was cancelled: Jetvault stopped while it ran' }) }];
      expect(backups(home)).toEqual(cancelled);
      expect(afterRestart(home)).toEqual(cancelled);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});
