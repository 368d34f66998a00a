/**
 * A field link cut in the middle of a database restore (device in a network namespace): the live
 * database stays as it was, and the next restore recovers what the cut one left and runs through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport, startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import type { Services } from '../services/index';
import { jobEnded, waitFor } from '../testing/wait';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const NETNS = netnsSupport();
let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
let backedUp = 0;

/**
 * A connection that races the rename transaction of a swap fails with "database … does not exist"
 * (PostgreSQL re-checks the name after locking the database); on a device the app is stopped then.
 */
async function settled<T>(query: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await query();
    } catch (error) {
      if (attempt >= 5 || !/does not exist|renamed|terminating connection/.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

const jvDatabases = () => settled(() => device.mutate.sql(`SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE '%\\_jv\\_%';`));

beforeAll(async () => {
  if (!NETNS.ok) return;
  fleet = await startFleet({ devices: 1, netns: true, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('dbrestore-link', 'db restore link test repository password'));
  // A cut link is given up after 10 s of silence, not the default 20: these tests wait for it.
  services.settings.update({ silentLinkSeconds: 10 }, 'test');
  services.devices.import(device.profile(), 'test');
  backedUp = await device.mutate.pgCount('deposits');
  await startDeviceBackup(services, device.name, ['db']).done;
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

const finish = (jobId: string) => jobEnded(services.jobs, jobId);

describe.skipIf(!NETNS.ok)(`a cut link during a PostgreSQL restore${NETNS.ok ? '' : ` (skipped: ${NETNS.reason})`}`, () => {
  it('while the dump is sent: the live database is untouched; the next restore runs through', async () => {
    await device.mutate.pgDeleteRows(321);
    const damaged = await device.mutate.pgCount('deposits');
    await device.link!.rate(4000);
    const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    try {
      await waitFor('bytes on the way', () => services.jobs.active().some((p) => p.jobId === jobId && p.phase === 'stage' && p.bytesDone > 0));
      await device.link!.cut();
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
    } finally {
      await device.link!.clear();
    }
    expect(await device.mutate.pgCount('deposits')).toBe(damaged);
    const { jobId: again, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    const record = await finish(again);
    expect(record.error).toBeNull();
    expect(await device.mutate.pgCount('deposits')).toBe(backedUp);
    await services.restores.confirm(restoreId);
    expect(await jvDatabases()).toBe('');
  }, 240_000);

  it('while pg_restore loads the new database: the live database is untouched; recovery drops the half-made one', async () => {
    await device.mutate.pgDeleteRows(123);
    const damaged = await device.mutate.pgCount('deposits');
    const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    try {
      await waitFor('the new database to appear', async () => /_jv_new_/.test(await jvDatabases()));
      await device.link!.cut();
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
    } finally {
      await device.link!.clear();
    }
    expect(await device.mutate.pgCount('deposits')).toBe(damaged);
    const { jobId: again, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    expect((await finish(again)).error).toBeNull();
    expect(await device.mutate.pgCount('deposits')).toBe(backedUp);
    // Only the previous database of the finished restore remains, waiting for the decision.
    expect(await jvDatabases()).toMatch(/^myrvm_jv_prev_[a-z0-9]+$/);
    await services.restores.confirm(restoreId);
    expect(await jvDatabases()).toBe('');
  }, 240_000);

  it('while the services are being stopped for the swap: the live database is untouched', async () => {
    services.devices.import({ ...device.profile(), services: { stop: ['sleep 4'], start: ['true'] } }, 'test', { replace: true });
    try {
      await device.mutate.pgDeleteRows(77);
      const damaged = await device.mutate.pgCount('deposits');
      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
      try {
        await waitFor('the swap phase', () => services.jobs.active().some((p) => p.jobId === jobId && p.phase === 'swap'));
        await device.link!.cut();
        expect((await finish(jobId)).status).toBe('failed');
      } finally {
        await device.link!.clear();
      }
      expect(await device.mutate.pgCount('deposits')).toBe(damaged);
      expect(await jvDatabases()).toMatch(/^myrvm_jv_new_/); // left for the next run's recovery
    } finally {
      services.devices.import(device.profile(), 'test', { replace: true });
    }
    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    expect((await finish(jobId)).error).toBeNull();
    expect(await jvDatabases()).toMatch(/^myrvm_jv_prev_[a-z0-9]+$/);
    await services.restores.confirm(restoreId);
    expect(await device.mutate.pgCount('deposits')).toBe(backedUp);
  }, 240_000);

  it('after the swap, while the services start again: the device is fully restored and the restore waits for confirmation', async () => {
    services.devices.import({ ...device.profile(), services: { stop: ['true'], start: ['sleep 4'] } }, 'test', { replace: true });
    try {
      await device.mutate.pgDeleteRows(55);
      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
      try {
        await waitFor('the swap to commit', async () => /_jv_prev_/.test(await jvDatabases()));
        await device.link!.cut();
        expect((await finish(jobId)).status).toBe('failed');
      } finally {
        await device.link!.clear();
      }
      expect(await device.mutate.pgCount('deposits')).toBe(backedUp);
    } finally {
      services.devices.import(device.profile(), 'test', { replace: true });
    }
    // A console that starts again finds the completed swap and offers it for confirmation.
    const found = await services.restores.recover(device.name);
    expect(found.map((p) => p.databases.map((d) => d.target))).toEqual([['myrvm']]);
    expect(found[0]).toMatchObject({ pointInTime: null, seconds: null }); // the device's journal does not say
    expect(await jvDatabases()).toMatch(/^myrvm_jv_prev_[a-z0-9]+$/);
    // The next restore leaves it pending and restores again.
    const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    expect((await finish(jobId)).error).toBeNull();
    const pending = services.restores.pending().filter((p) => p.device === device.name);
    expect(pending).toHaveLength(2);
    for (const p of pending.reverse()) await services.restores.confirm(p.restoreId);
    expect(await jvDatabases()).toBe('');
    expect(await device.mutate.pgCount('deposits')).toBe(backedUp);
  }, 240_000);
});
