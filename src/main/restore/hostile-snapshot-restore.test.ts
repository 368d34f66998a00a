/**
 * A snapshot taken while a device was compromised (its listing named `..` components, stored before
 * listings were checked) restored onto the device once it is reflashed clean: the restore must never
 * touch anything outside the folder it restores. Real sshd device, real restore job.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDeviceBackup } from '../devices/device-backup';
import { backup } from '../repository/archiver/archiver';
import type { Source, SourceEntry } from '../repository/archiver/source';
import { findSnapshot } from '../repository/snapshot/snapshot';
import type { NodeMeta } from '../repository/snapshot/tree';
import type { Services } from '../services/index';
import { fleetForFile } from '../testing/fleet-suite';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const { skip, fleet } = fleetForFile('hostile snapshot restore tests', { devices: 1 });
let services: Services | undefined;
let dataDir: string | undefined;
afterAll(() => closeTestConsole(services, dataDir));

async function* asyncOf<T>(items: T[]): AsyncIterable<T> {
  for (const item of items) yield await Promise.resolve(item);
}

describe.skipIf(skip)('restoring a snapshot with hostile names onto a device', () => {
  it('removes and writes nothing outside the restored folder', async () => {
    const device = fleet().devices[0]!;
    ({ services, dataDir } = await openTestConsole('hostile', 'hostile restore test password'));
    services.devices.import(device.profile(), 'test');
    const run = (await startDeviceBackup(services, device.name, ['app']).done).value!;
    const repo = await services.repository.open();
    const good = await findSnapshot(repo, run.snapshots[0]!.snapshotId);
    const app = good.paths[0]!;
    expect(app).toBe(`opt/${device.app}`);

    // Something of the device's own outside the app folder, that its account could remove.
    const canary = path.join(device.root, 'etc', 'jetvault-canary');
    mkdirSync(canary, { recursive: true });
    writeFileSync(path.join(canary, 'keep.txt'), 'keep\n');
    chownSync(canary, device.account.uid, device.account.gid);
    chownSync(path.join(canary, 'keep.txt'), device.account.uid, device.account.gid);

    // The snapshot the compromised device's listing made: its app, plus a path up and out of it.
    const T = '1700000000000000000';
    const meta = (type: 'dir' | 'file', size = 0): NodeMeta => ({ type, mode: type === 'dir' ? 0o755 : 0o644, uid: device.account.uid, gid: device.account.gid, mtime: T, size });
    const up = `${'../'.repeat(24)}${canary.slice(1)}`;
    const entries: SourceEntry[] = [
      { path: 'opt', meta: meta('dir') },
      { path: app, meta: meta('dir') },
      { path: `${app}/VERSION`, meta: meta('file', 8), open: () => asyncOf([Buffer.from('hostile\n')]) },
      { path: `${app}/${up}/planted.txt`, meta: meta('file', 8), open: () => asyncOf([Buffer.from('planted\n')]) },
    ];
    const source: Source = { paths: good.paths, kind: 'files', warnings: [], entries: () => asyncOf(entries) };
    const tags = [...good.tags.filter((t) => !t.startsWith('run:')), 'run:hostile'];
    const hostile = await backup(repo, source, { device: device.name, tags });

    const { jobId } = services.restores.start({ device: device.name, snapshotId: hostile.id });
    const deadline = Date.now() + 90_000;
    while (services.jobs.get(jobId)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const record = services.jobs.get(jobId)!;
    // The app folder is restored as the snapshot has it; the path up and out of it is not followed:
    // it had the staging make folders up to / writable ('chmod: changing permissions of …/d1') and
    // would have unlinked them, as root would have.
    expect(record.error).toBeNull();
    expect(record.status).toBe('succeeded');
    expect(readFileSync(path.join(device.root, app, 'VERSION'), 'utf8')).toBe('hostile\n');
    expect(existsSync(path.join(canary, 'planted.txt'))).toBe(false);
    expect(readFileSync(path.join(canary, 'keep.txt'), 'utf8')).toBe('keep\n');
    expect(existsSync(path.join(device.root, 'etc', 'hostname'))).toBe(true);
  }, 240_000);
});
