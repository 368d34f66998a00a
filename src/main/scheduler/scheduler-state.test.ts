/**
 * The scheduler's view of each device, read from a real history store seeded with runs, on a clock
 * the test sets: no device is contacted (the probe and the backup start are stand-ins).
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../event-bus';
import { OverviewService } from '../fleet/overview-service';
import { AlertService } from '../monitoring/alert-service';
import { evaluateRules } from '../monitoring/rules';
import { seedBackupRun } from '../testing/seed-runs';
import { silentLogger } from '../log';
import { FAST } from '../repository/testing/fixtures';
import type { Services } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { Scheduler } from './scheduler';
import type { SchedulerDeps } from './scheduler';
import { cliServices } from '../testing/test-console';

const MIN = 60_000;
const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const profile = { host: '127.0.0.1', port: 22, user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: [{ name: 'db', kind: 'postgres', database: 'app' }] };

function setup(deps: Partial<SchedulerDeps> = {}): { s: Services; scheduler: Scheduler; overview: OverviewService; clock: { now: number } } {
  const s = cliServices(tempDir());
  const clock = { now: NOW };
  const scheduler = new Scheduler({
    store: s.history,
    devices: s.devices,
    jobs: s.jobs,
    settings: s.settings,
    log: silentLogger,
    clock: () => clock.now,
    probe: () => Promise.resolve(true),
    startBackup: () => {
      throw new Error('not in this test');
    },
    ...deps,
  });
  return { s, scheduler, overview: new OverviewService(s.history, s.settings, () => clock.now), clock };
}

/** A finished backup run (of the `db` source unless told), as the job manager records one. */
function run(s: Services, deviceId: string, startedAt: number, status = 'succeeded', durationMs = 30_000, sources = ['db']) {
  seedBackupRun(s.history.db, deviceId, startedAt, { status, durationMs, sources, added: 1 });
}

describe('the scheduler on seeded history', () => {
  it("backs a device tagged by tier up by its tier's RPO, as the overview judges it", () => {
    const { s, scheduler, overview } = setup();
    try {
      // Default RPO 60 min; tier:critical is 15 min. The last good run finished 20 minutes ago.
      const device = s.devices.add({ ...profile, name: 'rvm-critical', tags: ['tier:critical'] }, {}, 'test');
      run(s, device.id, NOW - 20 * MIN - 30_000);
      expect(overview.overview().devices[0]).toMatchObject({ rpoMinutes: 15, status: 'at-risk' });
      expect(scheduler.queue()[0]).toMatchObject({ device: 'rvm-critical', state: 'due', reason: 'RPO of 15 min' });
    } finally {
      s.dispose();
    }
  });

  it('does not take a run stamped in the future (a clock that was ahead) as a fresh backup', () => {
    const { s, scheduler, overview } = setup();
    try {
      const device = s.devices.add({ ...profile, name: 'rvm-skew', rpoMinutes: 60 }, {}, 'test');
      run(s, device.id, NOW - 3 * 24 * 60 * MIN);
      // Backed up while the laptop's clock was a year ahead; it has been set right since.
      run(s, device.id, NOW + 365 * 24 * 60 * MIN);
      expect(scheduler.queue()[0]).toMatchObject({ device: 'rvm-skew', state: 'due', reason: 'RPO of 60 min' });
      expect(overview.overview().devices[0]).toMatchObject({ status: 'at-risk', rpoState: 'breached', lastGoodAt: new Date(NOW - 3 * 24 * 60 * MIN + 30_000).toISOString() });
      // A failed attempt stamped in the future does not hold the retry back for a year either.
      run(s, device.id, NOW - 10 * MIN);
      run(s, device.id, NOW + 365 * 24 * 60 * MIN + 60 * MIN, 'failed');
      expect(scheduler.queue()[0]).toMatchObject({ device: 'rvm-skew', state: 'waiting', reason: 'RPO of 60 min' });
    } finally {
      s.dispose();
    }
  });

  it('a source added to a device backed up 20 minutes ago: protected and no alert until its RPO runs out, but backed up at once', () => {
    const { s, scheduler, overview, clock } = setup();
    try {
      const alerts = new AlertService({ store: s.history, devices: s.devices, settings: s.settings, bus: new EventBus(), outbox: s.outbox, log: silentLogger, repositoryLocation: () => s.dataDir, clock: () => new Date(clock.now) });
      const rpoAlerts = () => evaluateRules(alerts.input(), s.settings.get().monitoringRules).filter((c) => c.rule === 'rpoBreached');
      const device = s.devices.add({ ...profile, name: 'rvm-new-source', rpoMinutes: 60 }, {}, 'test');
      run(s, device.id, NOW - 20 * MIN - 30_000);
      const lastGoodAt = new Date(NOW - 20 * MIN).toISOString();
      s.devices.update('rvm-new-source', { ...s.devices.get('rvm-new-source').profile, sources: [...profile.sources, { name: 'logs', kind: 'files', paths: ['/var/log/app'] }] }, {}, 'test');
      // The run before the source was added still counts: the device had been "never backed up" at once, with a critical alert.
      expect(overview.overview().devices[0]).toMatchObject({ status: 'protected', rpoState: 'ok', lastGoodAt });
      expect(rpoAlerts()).toEqual([]);
      // The new source is not left for an RPO: the scheduler wants a run of every source now.
      expect(scheduler.queue()[0]).toMatchObject({ device: 'rvm-new-source', state: 'due', reason: 'no run of every source yet' });
      // Its RPO runs out with no run of the new source: at risk, and said so.
      clock.now = NOW + 45 * MIN;
      expect(overview.overview().devices[0]).toMatchObject({ status: 'at-risk', rpoState: 'breached', lastGoodAt });
      expect(rpoAlerts()).toEqual([expect.objectContaining({ message: 'rvm-new-source: the last good backup is 65 min old, over its RPO of 60 min' })]);
      // A run of the new source alone does not make it whole; a run of both does.
      run(s, device.id, clock.now - 2 * MIN, 'succeeded', 30_000, ['logs']);
      expect(overview.overview().devices[0]).toMatchObject({ status: 'at-risk', lastGoodAt });
      run(s, device.id, clock.now - MIN, 'succeeded', 30_000, ['db', 'logs']);
      expect(overview.overview().devices[0]).toMatchObject({ status: 'protected', lastGoodAt: new Date(clock.now - 30_000).toISOString() });
      expect(rpoAlerts()).toEqual([]);
      expect(scheduler.queue()[0]).toMatchObject({ state: 'waiting', reason: 'RPO of 60 min' });
    } finally {
      s.dispose();
    }
  });

  it('finds the last run of every source behind many runs of one source, as the overview does', () => {
    const { s, scheduler, overview } = setup();
    try {
      const sources = [...profile.sources, { name: 'logs', kind: 'files', paths: ['/var/log/app'] }];
      const device = s.devices.add({ ...profile, name: 'rvm-logs', rpoMinutes: 24 * 60, sources }, {}, 'test');
      run(s, device.id, NOW - 3 * 60 * MIN, 'succeeded', 30_000, ['db', 'logs']);
      // The logs alone, every two minutes since (backed up on their own, e.g. `backup --device --source logs`).
      for (let i = 80; i >= 1; i--) run(s, device.id, NOW - i * 2 * MIN, 'succeeded', 10_000, ['logs']);
      expect(overview.overview().devices[0]).toMatchObject({ status: 'protected', lastGoodAt: new Date(NOW - 3 * 60 * MIN + 30_000).toISOString() });
      expect(scheduler.queue()[0]).toMatchObject({ device: 'rvm-logs', state: 'waiting', reason: 'RPO of 1440 min' });
    } finally {
      s.dispose();
    }
  });

  it('starts early enough for a whole-device run as long as the usual ones, not as short as a source run alone', () => {
    const { s, scheduler } = setup();
    try {
      const sources = [...profile.sources, { name: 'logs', kind: 'files', paths: ['/var/log/app'], schedule: '30 3 * * *' }];
      const device = s.devices.add({ ...profile, name: 'rvm-models', rpoMinutes: 60, sources }, {}, 'test');
      // Whole runs take 20 minutes (large models); the logs, also backed up alone, take 5 s.
      for (const start of [180, 120, 61]) run(s, device.id, NOW - start * MIN, 'succeeded', 20 * MIN, ['db', 'logs']);
      for (let m = 40; m >= 5; m -= 5) run(s, device.id, NOW - m * MIN, 'succeeded', 5_000, ['logs']);
      // The last whole run finished 41 minutes ago: 19 left, and a run needs 20 (lead 1.5 × 20 = 30 min).
      const entry = scheduler.queue()[0]!;
      expect(entry).toMatchObject({ device: 'rvm-models', state: 'due', reason: 'RPO of 60 min' });
      expect(entry.sources).toBeUndefined();
      expect(entry.dueAt).toBe(new Date(NOW - 41 * MIN + 60 * MIN - 30 * MIN).toISOString());
    } finally {
      s.dispose();
    }
  });

  it('leaves what its probe found for the overview: a device gone silent since its last good run shows unreachable, then reachable again', async () => {
    let answers = false;
    const { s, scheduler, overview, clock } = setup({ probe: () => Promise.resolve(answers) });
    try {
      const device = s.devices.add({ ...profile, name: 'rvm-field' }, {}, 'test');
      run(s, device.id, NOW - 2 * 60 * MIN); // good two hours ago; RPO 60 min: due
      expect(overview.overview().devices[0]).toMatchObject({ reachability: 'reachable', status: 'at-risk' });
      expect(await scheduler.tick()).toEqual([]);
      expect(overview.overview().devices[0]).toMatchObject({ reachability: 'unreachable', status: 'unreachable', lastContactAt: new Date(NOW).toISOString() });
      // Back on the network: the next probe (after the offline back-off) says so.
      answers = true;
      clock.now += 11 * MIN;
      await scheduler.tick(); // (the backup it then starts is not part of this test)
      expect(overview.overview().devices[0]).toMatchObject({ reachability: 'reachable', status: 'at-risk', lastContactAt: new Date(clock.now).toISOString() });
    } finally {
      s.dispose();
    }
  });

  it('probes an offline device again once the clock that was ahead when it went silent is set back, not a day later', async () => {
    // A real TCP probe: nothing listens on the device's port at first, then its sshd (a listener) is back.
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const started: string[] = [];
    const { s, scheduler, clock } = setup({
      probe: undefined,
      startBackup: (name) => {
        started.push(name);
        return s.jobs.start({ kind: 'backup', title: `Back up ${name}`, phases: ['connect'], deviceId: s.devices.get(name).id }, () => Promise.resolve());
      },
    });
    try {
      s.devices.add({ ...profile, name: 'rvm-dock', port }, {}, 'test');
      clock.now = NOW + 24 * 60 * MIN; // the laptop's clock a day ahead
      expect(await scheduler.tick()).toEqual([]);
      expect(scheduler.queue()[0]).toMatchObject({ state: 'offline' });
      // NTP sets the clock right; the device is back on the network.
      clock.now = NOW + 2 * MIN;
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      // Probed again within the longest back-off (10 min), not once the clock reaches that day again.
      clock.now += 10 * MIN;
      expect(scheduler.queue()[0]).toMatchObject({ state: 'due' });
      expect(await scheduler.tick()).toEqual(['rvm-dock']);
      expect(started).toEqual(['rvm-dock']);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      s.dispose();
    }
  });

  it('probes due devices side by side, so devices that went silent do not hold back the reachable ones', async () => {
    // 30 devices off the network (a probe waits for its timeout) sort before 4 reachable ones.
    let inFlight = 0;
    let most = 0;
    const started: string[] = [];
    const finish: (() => void)[] = [];
    const ended: Promise<unknown>[] = [];
    const { s, scheduler } = setup({
      probe: async (host) => {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 50));
        inFlight--;
        return host === '127.0.0.1';
      },
      startBackup: (name) => {
        started.push(name);
        const { id } = s.devices.get(name);
        const job = s.jobs.start({ kind: 'backup', title: `Back up ${name}`, phases: ['connect'], deviceId: id }, () => new Promise<void>((resolve) => finish.push(resolve)));
        ended.push(job.done);
        return job;
      },
    });
    try {
      s.settings.update({ maxParallelDevices: 2 }, 'test');
      for (let i = 0; i < 30; i++) s.devices.add({ ...profile, name: `a-silent-${String(i).padStart(2, '0')}`, host: '192.0.2.1' }, {}, 'test');
      for (let i = 0; i < 4; i++) s.devices.add({ ...profile, name: `b-online-${i}` }, {}, 'test');
      expect(await scheduler.tick()).toEqual(['b-online-0', 'b-online-1']);
      expect(started).toEqual(['b-online-0', 'b-online-1']); // never more than may run at once
      expect(most).toBeGreaterThanOrEqual(16);
      const states = scheduler.queue().map((e) => e.state);
      expect(states.filter((x) => x === 'offline')).toHaveLength(30);
      expect(states.filter((x) => x === 'running')).toHaveLength(2);
    } finally {
      for (const done of finish) done();
      await Promise.all(ended);
      s.dispose();
    }
  });

  it('does not start again at the next tick a scheduled backup the technician cancelled: it waits a quarter of the RPO', async () => {
    const started: string[] = [];
    const { s, scheduler, clock } = setup({
      startBackup: (name) => {
        started.push(name);
        const { id } = s.devices.get(name);
        // A backup that runs until it is cancelled (as one over a slow link does for a while).
        return s.jobs.start({ kind: 'backup', title: `Back up ${name}`, phases: ['connect'], deviceId: id }, (ctx) => new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error))));
      },
    });
    try {
      clock.now = Date.now(); // the jobs' own times are the real clock's
      s.devices.add({ ...profile, name: 'rvm-field', rpoMinutes: 60 }, {}, 'test');
      expect(await scheduler.tick()).toEqual(['rvm-field']);
      const [job] = s.jobs.active();
      expect(s.jobs.cancel(job!.jobId)).toBe(true);
      for (let i = 0; i < 100 && s.jobs.active().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(s.jobs.get(job!.jobId)?.status).toBe('cancelled');

      clock.now = Date.now() + 30_000; // the next tick
      expect(await scheduler.tick()).toEqual([]);
      expect(scheduler.queue()[0]).toMatchObject({ state: 'waiting', reason: expect.stringMatching(/^the last run was cancelled/) as unknown });
      clock.now += 15 * MIN; // a quarter of its 60-minute RPO
      expect(await scheduler.tick()).toEqual(['rvm-field']);
      expect(started).toEqual(['rvm-field', 'rvm-field']);
      // Cancelled because the console quit (not by a person): caught up at the next tick after the restart.
      await s.jobs.stopAll(5_000);
      expect(s.jobs.list(1)[0]).toMatchObject({ status: 'cancelled', error: { message: 'Back up rvm-field was cancelled: Jetvault stopped while it ran' } });
      clock.now += 30_000;
      expect(await scheduler.tick()).toEqual(['rvm-field']);
    } finally {
      s.jobs.dispose();
      await s.jobs.stopAll(5_000);
      s.dispose();
    }
  });

  it('starts no backup while the repository is locked (the app before the technician unlocks it), and starts it once unlocked', async () => {
    // The device's address answers TCP (the probe) and hangs up: the backup, once started, fails on SSH.
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const s = cliServices(tempDir(), {});
    try {
      await s.repository.init('scheduler lock test password', FAST);
      s.repository.lock(); // as the app starts: no password yet
      s.devices.add({ ...profile, name: 'rvm-depot', port: (server.address() as AddressInfo).port }, {}, 'test');
      expect(await s.scheduler.tick()).toEqual([]);
      expect(s.jobs.list(10)).toEqual([]); // no failed backup, so no "backup failed" alert
      expect(s.alerts.evaluate().raised.map((a) => a.rule)).not.toContain('backupFailed');

      await s.repository.unlock('scheduler lock test password');
      const started = await s.scheduler.tickJobs();
      expect(started.map((x) => x.device)).toEqual(['rvm-depot']);
      for (let i = 0; i < 300 && s.jobs.active().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(s.jobs.get(started[0]!.jobId)?.error?.message).not.toMatch(/repository .* is locked/);
    } finally {
      await s.jobs.stopAll(10_000);
      s.dispose();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('keeps to maxParallelDevices when two schedulers (the app, run-scheduler) tick at the same moment', async () => {
    const dataDir = tempDir();
    const finish: (() => void)[] = [];
    const ended: Promise<unknown>[] = [];
    const started: string[] = [];
    const open = () => {
      const s = cliServices(dataDir);
      const scheduler = new Scheduler({
        store: s.history,
        devices: s.devices,
        jobs: s.jobs,
        settings: s.settings,
        log: silentLogger,
        clock: () => NOW,
        probe: () => new Promise((resolve) => setTimeout(() => resolve(true), 20)),
        startBackup: (name) => {
          const { id } = s.devices.get(name);
          const job = s.jobs.start({ kind: 'backup', title: `Back up ${name}`, phases: ['connect'], deviceId: id }, () => new Promise<void>((resolve) => finish.push(resolve)));
          started.push(name);
          ended.push(job.done);
          return job;
        },
      });
      return { s, scheduler };
    };
    const app = open();
    const headless = open();
    try {
      app.s.settings.update({ maxParallelDevices: 2 }, 'test');
      for (let i = 0; i < 6; i++) app.s.devices.add({ ...profile, name: `rvm-${i}` }, {}, 'test');
      await Promise.all([app.scheduler.tick(), headless.scheduler.tick()]);
      expect(started).toHaveLength(2);
      expect(app.s.jobs.busyDevices().size).toBe(2);
    } finally {
      for (const done of finish) done();
      await Promise.all(ended);
      app.s.dispose();
      headless.s.dispose();
    }
  });
});
