/**
 * `jetvault backup --device` interrupted (Ctrl-C) once its run is kept — every snapshot written,
 * logs being rotated — says so instead of "cancelling", and the run ends as it succeeded. The
 * device is this machine's shell (the connector hands the run a local runner), so the interrupt can
 * be sent exactly as the run commits.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type * as ServicesModule from '../main/services/index';
import type { Services } from '../main/services/index';
import type { DeviceConnection } from '../main/devices/ssh-connection';
import { LocalRunner } from '../main/devices/local-runner';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const control: { hook: ((services: Services) => void) | null } = { hook: null };

vi.mock('../main/services/index', async (original) => {
  const real = await original<typeof ServicesModule>();
  return {
    ...real,
    createServices: (options: Parameters<typeof real.createServices>[0]) => {
      const services = real.createServices(options);
      control.hook?.(services);
      return services;
    },
  };
});

afterEach(() => {
  control.hook = null;
});

describe('jetvault backup --device interrupted once its run is kept', () => {
  it('says the run is kept and finishing, not that it is cancelling, and ends as it succeeded', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'kept run test repository password' });
    expect((await run('init')).code).toBe(0);
    const device = tempDir();
    mkdirSync(path.join(device, 'var/log/app'), { recursive: true });
    writeFileSync(path.join(device, 'var/log/app/app.log'), 'started\n');
    const listening = process.rawListeners('SIGINT');
    let interrupted = false;
    control.hook = (services) => {
      services.devices.import({ name: 'rvm-local', host: '127.0.0.2', user: 'jetson', sysroot: device, sources: [{ name: 'logs', kind: 'files', paths: [path.join(device, 'var/log/app')], rotateAfterBackup: true }] }, 'test', { replace: true });
      services.connector.withDevice = <T>(_name: string, work: (connection: DeviceConnection) => Promise<T>) => work(new LocalRunner() as unknown as DeviceConnection);
      // Ctrl-C as the run commits: its snapshots are written, its logs about to be rotated.
      services.bus.subscribe((event, payload) => {
        if (event !== 'jobs:progress' || (payload as { phase: string }).phase !== 'commit' || interrupted) return;
        interrupted = true;
        const ours = process.rawListeners('SIGINT').filter((l) => !listening.includes(l));
        expect(ours).toHaveLength(1);
        (ours[0] as (name: string) => void)('SIGINT');
      });
    };
    const result = await run('backup', '--device', 'rvm-local');
    expect(interrupted).toBe(true);
    expect(result.err).not.toMatch(/cancelling/);
    expect(result.err).toMatch(/rvm-local: the run is kept already \(every snapshot written\): it finishes first/);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^snapshot [0-9a-f]{8} logs \(files\)/m);
  }, 60_000);
});
