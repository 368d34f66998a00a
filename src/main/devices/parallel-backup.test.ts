/**
 * Eight real devices backed up at once into one repository: the connector's pool lets them all
 * run, their transfers overlap in time, every run commits, shared model files are stored once, and
 * the repository checks clean with its data read back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Fleet } from '../../../fleet/index';
import { check } from '../repository/checker/checker';
import { listSnapshots } from '../repository/snapshot/snapshot';
import type { Services } from '../services/index';
import { startDeviceBackup } from './device-backup';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const DEVICES = 8;
const skip = process.getuid?.() !== 0;
if (skip) console.log('parallel backup tests skipped: the fleet needs root (device accounts, sshd); CI runs as root');

let fleet: Fleet;
let services: Services;
let dataDir: string;

beforeAll(async () => {
  if (skip) return;
  fleet = await startFleet({ devices: DEVICES, sharedModelMB: 4, uniqueModelMB: 1 });
  ({ services, dataDir } = await openTestConsole('parallel', 'parallel test repository password'));
  services.settings.update({ maxParallelDevices: DEVICES }, 'test');
  for (const device of fleet.devices) {
    const profile = device.profile();
    services.devices.import({ ...profile, sources: profile.sources.filter((s) => s.name === 'app' || s.name === 'local') }, 'test');
  }
}, 300_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

describe.skipIf(skip)(`${DEVICES} devices at once`, () => {
  it('back up in parallel into one repository, store shared models once, and check clean', async () => {
    // Devices in transfer at the same time, sampled while the jobs run.
    let maxTransferring = 0;
    const unsubscribe = services.bus.subscribe((event) => {
      if (event !== 'jobs:progress') return;
      maxTransferring = Math.max(maxTransferring, services.jobs.active().filter((p) => p.phase === 'transfer').length);
    });
    const started = fleet.devices.map((d) => startDeviceBackup(services, d.name));
    const results = await Promise.all(started.map((s) => s.done));
    unsubscribe();
    for (const r of results) expect(r.record.error).toBeNull();
    expect(maxTransferring).toBeGreaterThanOrEqual(2);

    const repo = await services.repository.fresh();
    expect((await listSnapshots(repo)).length).toBe(DEVICES * 2);
    // The 4 MB of shared models cross eight links but are added once; unique data once per device.
    const added = results.reduce((n, r) => n + r.value!.bytesAdded, 0);
    const transferred = results.reduce((n, r) => n + r.value!.bytesTransferred, 0);
    expect(transferred).toBeGreaterThan(DEVICES * 4_000_000);
    expect(added).toBeLessThan(transferred / 2);
    const report = await check(repo, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
  }, 300_000);
});
