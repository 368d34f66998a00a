/**
 * Copying what a real device backup made: a Jetson stand-in from the test fleet (sshd, PostgreSQL,
 * SQLite, files) backed up through the services, then copied as a `copy` job into an offsite
 * repository. The copies keep the run's tags (device, source, kind, run id), the filters select by
 * the device's real source names, and the copy of the PostgreSQL dump and of the files restore
 * byte-identical to what the original snapshots restore.
 */
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport, startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import { LocalBackend } from '../repository/backend/local-backend';
import { check } from '../repository/checker/checker';
import { Repository } from '../repository/repo/repository';
import { restore } from '../repository/restorer/restorer';
import { listSnapshots } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import { describeTree, FAST, tempDir as runTempDir } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import type { Services } from './index';
import { cliServices } from '../testing/test-console';

const PASSWORD = 'fleet copy test repository password';
const OFFSITE = 'fleet copy offsite password';
let fleet: Fleet;
let device: Device;
let services: Services;

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, netns: netnsSupport().ok, sharedModelMB: 4, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  // Under the test run's folder, removed when the run ends (test-tmp.ts).
  const dataDir = await runTempDir('jetvault-copy-fleet-');
  services = cliServices(dataDir, { JETVAULT_PASSWORD: PASSWORD });
  await services.repository.init(PASSWORD, FAST);
  services.devices.import(device.profile(), 'test');
}, 240_000);

afterAll(async () => {
  services?.dispose();
  await fleet?.stop();
}, 120_000);

/** Every file a snapshot restores, by path, as base64. */
async function restored(repo: Repository, snapshot: SnapshotWithId): Promise<Record<string, unknown>> {
  const out = tempDir();
  await restore(repo, snapshot, out);
  return describeTree(out);
}

describe('copying a device backup', () => {
  it('keeps the run tags, filters by source name, and restores the same bytes from the copy', { timeout: 240_000 }, async () => {
    const run = await startDeviceBackup(services, device.name).done;
    expect(run.record.status).toBe('succeeded');
    const sources = run.value!.snapshots.map((s) => s.source);
    expect(sources).toContain('db');
    const offsiteDir = path.join(tempDir(), 'offsite');
    mkdirSync(offsiteDir);
    await Repository.init(new LocalBackend(offsiteDir), OFFSITE, { ...FAST, shareIdsWith: await services.repository.open() });

    // Only the database first, by its source name.
    const onlyDb = await (await services.copies.copyToRepository({ to: offsiteDir, password: OFFSITE, device: device.name, source: 'db' })).done;
    expect(onlyDb.record.status).toBe('succeeded');
    expect(onlyDb.value!.copied.map((c) => c.source)).toEqual(['db']);
    const rest = await (await services.copies.copyToRepository({ to: offsiteDir, password: OFFSITE })).done;
    expect(rest.value!.copied.map((c) => c.source).sort()).toEqual(sources.filter((s) => s !== 'db').sort());
    expect(rest.value!.skipped).toBe(1);

    const repo = await services.repository.open();
    const offsite = await Repository.open(new LocalBackend(offsiteDir), OFFSITE);
    const originals = await listSnapshots(repo);
    const copies = await listSnapshots(offsite);
    expect(copies).toHaveLength(originals.length);
    for (const original of originals) {
      const copy = copies.find((c) => c.copiedFrom === original.id)!;
      expect(copy.tags).toEqual(original.tags);
      expect(copy.tags).toEqual(expect.arrayContaining([`device:${device.name}`, `run:${run.value!.runId}`]));
      expect({ time: copy.time, device: copy.device, source: copy.source, paths: copy.paths, hostname: copy.hostname }).toEqual({
        time: original.time,
        device: original.device,
        source: original.source,
        paths: original.paths,
        hostname: original.hostname,
      });
      expect(await restored(offsite, copy)).toEqual(await restored(repo, original));
    }
    // The database dump restored from the copy is the dump the device produced (non-trivial, same bytes).
    const db = copies.find((c) => c.tags.includes('source:db'))!;
    const out = tempDir();
    await restore(offsite, db, out);
    const files = (function walk(dir: string): string[] {
      return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
    })(out);
    expect(files.reduce((n, f) => n + readFileSync(f).length, 0)).toBeGreaterThan(1_000_000);
    expect((await check(offsite, { readData: true })).errors).toEqual([]);
  });
});
