/**
 * `jetvault run-scheduler` (and `--once`) without a fleet: a device whose address accepts TCP (the
 * scheduler's probe) but speaks no SSH, so the backup the tick starts fails.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HistoryStore } from '../main/history/history-store';
import { prepareSeedStatements } from '../main/history/statements';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

/**
 * A data folder with a repository and one device, due (never backed up), whose address accepts TCP
 * (the scheduler's probe) and hangs up after a second without speaking SSH: its backup fails.
 */
async function silentDevice(): Promise<{ home: string; env: NodeJS.ProcessEnv; run: ReturnType<typeof cliRunner>; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    setTimeout(() => socket.destroy(), 1500);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    const home = tempDir();
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'run-scheduler test repository password' };
    const run = cliRunner(env);
    const file = path.join(home, 'device.json');
    const key = path.join(home, 'id_ed25519');
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]).status).toBe(0);
    const port = (server.address() as AddressInfo).port;
    writeFileSync(file, JSON.stringify({ name: 'rvm-silent', host: '127.0.0.1', port, user: 'jetson', identityFile: key, hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: [{ name: 'config', kind: 'files', paths: ['/etc/app'] }] }));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    return { home, env, run, close };
  } catch (error) {
    await close();
    throw error;
  }
}

describe('jetvault run-scheduler', () => {
  it("--once reports the backup it started that failed (once), not the newest job of another process", async () => {
    const { home, run, close } = await silentDevice();
    try {
      const tick = run('run-scheduler', '--once');
      // Meanwhile the console (another process) starts and finishes a job of its own.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const store = new HistoryStore(home);
      const at = new Date().toISOString();
      prepareSeedStatements(store.db).job.run('job_console', 'verify', 'Verify the repository structure', null, 'succeeded', '["check"]', 'check', at, at, 0, 0, null, '{}');
      store.close();

      const result = await tick;
      expect(result.out).toBe('started: rvm-silent');
      expect(result.err).toMatch(/^Back up rvm-silent: .+/m);
      // Said once: the job manager does not log a foreseen failure at the CLI's level as well.
      expect(result.err).not.toMatch(/\(backup\) failed/);
      expect(result.code).toBe(1);
    } finally {
      await close();
    }
  }, 60_000);

  it('keeps running, prints the end of each job it started, and stops on Ctrl-C with status 0', async () => {
    const { env, close } = await silentDevice();
    const cli = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/jetvault.js');
    const child = spawn(process.execPath, [cli, 'run-scheduler'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      for (let i = 0; i < 600 && !/Back up rvm-silent: /.test(err); i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(out).toMatch(/^scheduler running/);
      expect(err).toMatch(/^Back up rvm-silent: .+/m);
      expect(err).not.toMatch(/\(backup\) failed/);
      // Still running once that work is done (it used to exit, status 13, with nothing left to do).
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(child.exitCode).toBeNull();
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await close();
    }
  }, 60_000);

  it('refuses an argument instead of running the scheduler until it is stopped', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'run-scheduler test repository password' });
    expect((await run('init')).code).toBe(0);
    const outcome = await Promise.race([run('run-scheduler', 'once'), new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 5_000))]);
    expect(outcome).toMatchObject({ code: 2, err: expect.stringMatching(/takes no arguments \("once"; did you mean --once\?\)/) as unknown });
  }, 60_000);
});
