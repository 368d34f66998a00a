/**
 * `jetvault run-scheduler --once` without a fleet: a device whose address accepts TCP (the
 * scheduler's probe) but speaks no SSH, so the backup the tick starts fails.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HistoryStore } from '../main/history/history-store';
import { prepareSeedStatements } from '../main/history/statements';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

describe('jetvault run-scheduler --once', () => {
  it("reports the backup it started that failed, not the newest job of another process", async () => {
    // Accepts, says nothing for a second, then hangs up: the SSH handshake fails.
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      setTimeout(() => socket.destroy(), 1500);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const home = tempDir();
      const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'run-scheduler test repository password' });
      const file = path.join(home, 'device.json');
      const key = path.join(home, 'id_ed25519');
      expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]).status).toBe(0);
      const port = (server.address() as AddressInfo).port;
      writeFileSync(file, JSON.stringify({ name: 'rvm-silent', host: '127.0.0.1', port, user: 'jetson', identityFile: key, hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: [{ name: 'config', kind: 'files', paths: ['/etc/app'] }] }));
      expect((await run('device', 'import', file)).code).toBe(0);
      expect((await run('init')).code).toBe(0);

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
      expect(result.code).toBe(1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
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
