/**
 * `jetvault run-scheduler --once` waits for what its tick started however long it runs (a first
 * backup over a field link, the weekly data check): the tick is replaced by a job the test ends,
 * and the command's polling runs on fake timers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppError } from '../shared/errors';
import type * as ServicesModule from '../main/services/index';
import type { Services } from '../main/services/index';
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
  vi.useRealTimers();
});

describe('jetvault run-scheduler --once', () => {
  it('waits for a backup that runs longer than an hour, and reports how it ended', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: 'run-scheduler wait test password' });
    expect((await run('init')).code).toBe(0);

    let fail: ((error: Error) => void) | null = null;
    control.hook = (services) => {
      const device = services.devices.add({ name: 'rvm-far', host: '127.0.0.1', user: 'jetson', sources: [] }, {}, 'test');
      services.scheduler.tickJobs = () => {
        const job = services.jobs.start({ kind: 'backup', title: 'Back up rvm-far', phases: ['connect'], deviceId: device.id }, () => new Promise((_, reject) => (fail = reject)));
        return Promise.resolve([{ device: 'rvm-far', jobId: job.id }]);
      };
    };
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    let settled = false;
    const result = run('run-scheduler', '--once').finally(() => (settled = true));
    // Opening the repository is real I/O: let the event loop turn (setImmediate is not faked).
    for (const until = performance.now() + 20_000; fail === null && performance.now() < until; ) await new Promise((resolve) => setImmediate(resolve));
    expect(fail).not.toBeNull();
    await vi.advanceTimersByTimeAsync(2 * 3_600_000); // two hours on
    expect(settled).toBe(false); // still waiting: the backup has not ended
    fail!(new AppError('REMOTE_COMMAND_FAILED', 'pg_dump exited with 1'));
    await vi.advanceTimersByTimeAsync(200);
    vi.useRealTimers();
    const { code, out, err } = await result;
    expect(out).toBe('started: rvm-far');
    expect(err).toMatch(/^Back up rvm-far: pg_dump exited with 1$/m);
    expect(code).toBe(1);
  }, 120_000);
});
