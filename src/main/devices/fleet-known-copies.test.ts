/**
 * A device new to the fleet, over real sshd: the models another device sent already cross as their
 * block hashes and two proof blocks (decision 024, "Copies found elsewhere"), are stored as the same
 * chunks, and the repository checks clean with its data read back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { check } from '../repository/checker/checker';
import { findSnapshot, walkTree } from '../repository/snapshot/snapshot';
import type { Services } from '../services/index';
import { fleetForFile } from '../testing/fleet-suite';
import { startDeviceBackup } from './device-backup';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const MiB = 1024 * 1024;
/** 12 MiB of models every device holds: the fleet's detector (7.2 MiB) and classifier (4.8 MiB), both above DELTA_MIN_BYTES. */
const SHARED_MB = 12;
const { skip, fleet } = fleetForFile('known-copy fleet tests', { devices: 2, sharedModelMB: SHARED_MB, uniqueModelMB: 1 });

let services: Services;
let dataDir: string;

beforeAll(async () => {
  if (skip) return;
  ({ services, dataDir } = await openTestConsole('known-copies', 'known copies test repository password'));
  for (const device of fleet().devices) {
    const profile = device.profile();
    services.devices.import({ ...profile, sources: profile.sources.filter((s) => s.name === 'app') }, 'test');
  }
}, 120_000);

afterAll(() => {
  closeTestConsole(services, dataDir);
});

/** Model file → chunk ids in a snapshot. */
async function models(snapshotId: string): Promise<Record<string, string[] | undefined>> {
  const repo = await services.repository.fresh();
  const out: Record<string, string[] | undefined> = {};
  for await (const { path: p, node } of walkTree(repo, (await findSnapshot(repo, snapshotId)).tree)) if (node.type === 'file' && p.includes('/models/')) out[p.split('/').at(-1)!] = node.content;
  return out;
}

describe.skipIf(skip)('a device new to the fleet', () => {
  it("sends the models another device sent already as their hashes, stored as that device's chunks", async () => {
    const [first, second] = fleet().devices;
    const one = await startDeviceBackup(services, first!.name).done;
    expect(one.record.error).toBeNull();
    const two = await startDeviceBackup(services, second!.name).done;
    expect(two.record.error).toBeNull();

    const [a] = one.value!.snapshots;
    const [b] = two.value!.snapshots;
    expect(a!.deltaFiles).toBeUndefined();
    expect(a!.bytesTransferred).toBeGreaterThan(SHARED_MB * MiB);
    expect(b!.deltaFiles).toBe(2);
    expect(b!.knownFiles).toBe(2);
    expect(b!.deltaBytes).toBe(SHARED_MB * MiB);
    // Everything else of its app folder crossed, the shared models as hashes and proof blocks only.
    expect(b!.bytesTransferred).toBeLessThan(b!.bytes - SHARED_MB * MiB + 1 * MiB);
    expect(b!.sentWhole).toBeUndefined();

    const [modelsA, modelsB] = [await models(a!.snapshotId), await models(b!.snapshotId)];
    expect(modelsB['detector-v7.onnx']).toEqual(modelsA['detector-v7.onnx']);
    expect(modelsB['classifier-v3.onnx']).toEqual(modelsA['classifier-v3.onnx']);
    // Each device's own engine file crossed whole and differs.
    expect(modelsB['detector-v7.engine']).not.toEqual(modelsA['detector-v7.engine']);

    const report = await check(await services.repository.fresh(), { readData: true });
    expect(report.errors).toEqual([]);
  }, 180_000);
});
