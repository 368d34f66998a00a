/**
 * The scheduler against real fleet devices, on a clock the test moves: devices never backed up are
 * started at once but only as many as may run in parallel; a backed-up device waits for its RPO; an
 * unreachable one is marked offline without a failing job, and is caught up as soon as it answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import { silentLogger } from '../log';
import type { Services } from '../services/index';
import { Scheduler } from './scheduler';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const skip = process.getuid?.() !== 0;
if (skip) console.log('scheduler fleet tests skipped: the fleet needs root (device accounts, sshd); CI runs as root');

let fleet: Fleet;
let services: Services;
let dataDir: string;
let offset = 0;
let scheduler: Scheduler;

beforeAll(async () => {
  if (skip) return;
  fleet = await startFleet({ devices: 3, proxy: true, sharedModelMB: 1, uniqueModelMB: 1 });
  ({ services, dataDir } = await openTestConsole('scheduler', 'scheduler test repository password'));
  for (const device of fleet.devices) {
    const profile = device.profile();
    // Small sources keep the runs short; the RPO is 60 minutes.
    services.devices.import({ ...profile, rpoMinutes: 60, sources: profile.sources.filter((s) => s.name === 'config') }, 'test');
  }
  services.settings.update({ maxParallelDevices: 2 }, 'test');
  const { devices, jobs, connector, repository, settings, history } = services;
  scheduler = new Scheduler({ store: history, devices, jobs, settings, log: silentLogger, clock: () => Date.now() + offset, startBackup: (name, only) => startDeviceBackup({ devices, connector, repository, jobs }, name, only) });
}, 240_000);

afterAll(async () => {
  for (let i = 0; i < 300 && services && services.jobs.busyDevices().size > 0; i++) await new Promise((r) => setTimeout(r, 100));
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

async function settle(): Promise<void> {
  for (let i = 0; i < 600 && services.jobs.busyDevices().size > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect(services.jobs.busyDevices().size).toBe(0);
}

const states = () => Object.fromEntries(scheduler.queue().map((e) => [e.device, e.state]));

describe.skipIf(skip)('the scheduler with real devices', () => {
  it('starts what is due, two at a time, then waits for each device RPO', async () => {
    const [a, b, c] = fleet.devices.map((d) => d.name) as [string, string, string];
    expect(states()).toEqual({ [a]: 'due', [b]: 'due', [c]: 'due' });
    const first = await scheduler.tick();
    expect(first).toHaveLength(2);
    expect(Object.values(states()).sort()).toEqual(['due', 'running', 'running']);
    expect(await scheduler.tick()).toEqual([]); // both slots taken
    await settle();
    const second = await scheduler.tick();
    expect(second).toEqual([[a, b, c].find((n) => !first.includes(n))]);
    await settle();
    expect(states()).toEqual({ [a]: 'waiting', [b]: 'waiting', [c]: 'waiting' });
    const due = scheduler.queue()[0]!;
    // Runs of a second or so: the backup starts 6 minutes (10% of the RPO) before the RPO runs out.
    expect(Date.parse(due.dueAt!) - Date.now()).toBeGreaterThan(50 * 60_000);
    expect(Date.parse(due.dueAt!) - Date.now()).toBeLessThan(55 * 60_000);
    expect(services.history.sql.auditRecent.all(10).filter((r) => r.action === 'backup.scheduled')).toHaveLength(3);
  }, 120_000);

  it('marks an unreachable device offline without a failing job, and catches it up when it answers', async () => {
    const [device, ...others] = fleet.devices;
    // Only this device comes due: the others get a long RPO.
    for (const other of others) services.devices.update(other.name, { ...services.devices.get(other.name).profile, rpoMinutes: 7 * 24 * 60 }, {}, 'test');
    const jobsBefore = services.jobs.list(100).length;
    offset = 55 * 60_000;
    expect(scheduler.queue().filter((e) => e.state === 'due').map((e) => e.device)).toEqual([device!.name]);
    device!.proxy!.cut();
    try {
      expect(await scheduler.tick()).toEqual([]);
      expect(scheduler.queue().find((e) => e.device === device!.name)).toMatchObject({ state: 'offline', reason: expect.stringMatching(/unreachable/) as unknown });
      expect(services.jobs.list(100).length).toBe(jobsBefore); // no failed job for the offline device
      expect(await scheduler.tick()).toEqual([]); // not probed again before its time
    } finally {
      device!.proxy!.restore();
    }
    offset += 61_000; // the next probe is due after a minute
    expect(await scheduler.tick()).toEqual([device!.name]);
    await settle();
    const audit = services.history.sql.auditRecent.all(5).find((r) => r.action === 'backup.scheduled' && r.target === device!.name);
    expect(audit?.detail).toMatch(/back online/);
    expect(services.jobs.list(1)[0]).toMatchObject({ status: 'succeeded' });
  }, 120_000);

  it('backs a source with its own schedule up alone, after a whole run covered every source', async () => {
    const device = fleet.devices[2]!;
    const first = fleet.devices[0]!.name;
    services.devices.update(first, { ...services.devices.get(first).profile, rpoMinutes: 7 * 24 * 60 }, {}, 'test'); // only this device comes due
    const profile = device.profile();
    const sources = profile.sources.filter((x) => x.name === 'config' || x.name === 'logs').map((x) => (x.name === 'logs' ? { ...x, schedule: '* * * * *' } : x));
    services.devices.update(device.name, { ...profile, rpoMinutes: 7 * 24 * 60, sources }, {}, 'test');
    // The last run covered only config: the device's RPO needs a whole run first.
    expect(scheduler.queue().find((e) => e.device === device.name)).toMatchObject({ state: 'due', reason: 'no run of every source yet' });
    expect(await scheduler.tick()).toEqual([device.name]);
    await settle();
    expect((services.jobs.list(1)[0]!.result as { snapshots: { source: string }[] }).snapshots.map((x) => x.source)).toEqual(['config', 'logs']);
    offset += 61_000;
    const entry = scheduler.queue().find((e) => e.device === device.name)!;
    expect(entry).toMatchObject({ state: 'due', sources: ['logs'] });
    expect(await scheduler.tick()).toEqual([device.name]);
    await settle();
    expect((services.jobs.list(1)[0]!.result as { snapshots: { source: string }[] }).snapshots.map((x) => x.source)).toEqual(['logs']);
  }, 120_000);
});
