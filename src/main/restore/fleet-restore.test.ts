/** Restores over SSH onto a real device of the test fleet, including a link cut in the middle. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobProgress } from '../../shared/schemas/jobs';
import { netnsSupport, startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import { describeTree, FAST } from '../repository/testing/fixtures';
import { restore } from '../repository/restorer/restorer';
import { findSnapshot } from '../repository/snapshot/snapshot';
import type { Services } from '../services/index';
import { cliServices, closeTestConsole, openTestConsole } from '../testing/test-console';

const NETNS = netnsSupport();
let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
let appSnapshot: string;

beforeAll(async () => {
  // 8 MB of shared models: the detector (4.8 MB) is large enough to be restored as a block patch.
  fleet = await startFleet({ devices: 1, netns: NETNS.ok, proxy: true, sharedModelMB: 8, uniqueModelMB: 2 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('restore', 'restore test repository password'));
  // A cut link is given up after 10 s of silence, not the default 20: these tests wait for it.
  services.settings.update({ silentLinkSeconds: 10 }, 'test');
  services.devices.import(device.profile(), 'test');
  const run = (await startDeviceBackup(services, device.name, ['app']).done).value!;
  appSnapshot = run.snapshots[0]!.snapshotId;
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

const versionFile = () => path.join(device.root, 'opt', device.app, 'VERSION');
const openServices = () => cliServices(dataDir);

async function finish(jobId: string) {
  const deadline = Date.now() + 90_000;
  while (services.jobs.get(jobId)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return services.jobs.get(jobId)!;
}

describe('restore onto a device over SSH', () => {
  // A test that fails before its keep or rollback leaves a restore waiting: settled here, so the
  // next test starts from a device with none (each asserts what is pending).
  afterEach(async () => {
    for (const waiting of services.restores.pending()) await services.restores.confirm(waiting.restoreId).catch(() => undefined);
  }, 60_000);

  it('previews, restores as a job, and keeps the previous state until confirmed', async () => {
    const original = readFileSync(versionFile(), 'utf8');
    writeFileSync(versionFile(), 'broken-update\n');
    const request = { device: device.name, snapshotId: appSnapshot };
    const plan = await services.restores.plan(request);
    expect(plan.roots[0]).toMatchObject({ replace: 1, remove: 0 });
    expect(readFileSync(versionFile(), 'utf8')).toBe('broken-update\n');
    const { jobId } = services.restores.start(request);
    const deadline = Date.now() + 60_000;
    while (services.jobs.get(jobId)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const record = services.jobs.get(jobId)!;
    expect(record.error).toBeNull();
    expect(record.status).toBe('succeeded');
    expect(readFileSync(versionFile(), 'utf8')).toBe(original);
    // A console opened later still says what was restored to which point, how long it took and how it was sent.
    services.dispose();
    services = openServices();
    await services.repository.unlock('restore test repository password');
    const [pending] = services.restores.pending();
    const repo = await services.repository.open();
    expect(pending).toMatchObject({ snapshotId: appSnapshot, pointInTime: (await findSnapshot(repo, appSnapshot)).time, wireCompression: false });
    expect(pending!.seconds).toBeGreaterThan(0);
    expect(pending!.seconds).toBeLessThanOrEqual((new Date(record.finishedAt!).getTime() - new Date(record.startedAt).getTime()) / 1000 + 0.1);
    await services.restores.confirm(pending!.restoreId);
    expect(services.restores.pending()).toEqual([]);
  }, 120_000);

  it('over a slow link it sends the files gzip\'ed on its own, a damaged model as its damaged blocks, and they arrive byte for byte', async () => {
    writeFileSync(versionFile(), 'slow-link-damage\n');
    device.mutate.changeFiles(0.3);
    const model = device.mutate.patchModel(4096);
    expect(statSync(model).size).toBeGreaterThan(4 * 1024 * 1024);
    const request = { device: device.name, snapshotId: appSnapshot };
    device.proxy!.delayMs = 40; // 80 ms round trips, bandwidth untouched
    let record;
    try {
      record = await finish(services.restores.start(request).jobId);
    } finally {
      device.proxy!.delayMs = 0;
    }
    expect(record.error).toBeNull();
    expect((record.result as { wireCompression: boolean }).wireCompression).toBe(true);
    expect((record.result as { notes: string[] }).notes).toContainEqual(expect.stringMatching(/^1 large file \(.+\) sent as the [\d.]+ KiB of blocks that differed from the device's copy\.$/));
    expect(services.restores.pending()[0]!.wireCompression).toBe(true);
    // Kept: the previous state goes (it shares the unchanged files' inodes until then).
    await services.restores.confirm(services.restores.pending()[0]!.restoreId);
    const repo = await services.repository.open();
    const out = mkdtempSync(path.join(os.tmpdir(), 'jetvault-restore-compare-'));
    try {
      await restore(repo, await findSnapshot(repo, appSnapshot), out);
      const appDir = path.join('opt', device.app);
      const onDevice = Object.entries(await describeTree(path.join(device.root, appDir))).filter(([p]) => !p.startsWith('data/local.db'));
      expect(Object.fromEntries(onDevice)).toEqual(await describeTree(path.join(out, appDir)));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    // On a fast link it does not. A model rewritten all over crosses whole, and the notes say why.
    writeFileSync(versionFile(), 'fast-link-damage\n');
    device.mutate.patchModel(Number.MAX_SAFE_INTEGER);
    const fast = await finish(services.restores.start(request).jobId);
    expect((fast.result as { wireCompression: boolean }).wireCompression).toBe(false);
    expect((fast.result as { notes: string[] }).notes).toContainEqual(expect.stringMatching(/^1 large file \(.+\) sent whole, not as the blocks that differed: more than half of the file differs\.$/));
    expect(readFileSync(versionFile(), 'utf8')).not.toBe('fast-link-damage\n');
    await services.restores.confirm(services.restores.pending()[0]!.restoreId);
  }, 180_000);

  it('under a bandwidth limit its progress follows what the link carries, not whole blobs as they are read', async () => {
    // The app's chunker (blobs of ~1 MiB): counted as they were read, the progress ran a blob or more
    // ahead of the link, and the ETA read "1 s left", then 50 s.
    const home = mkdtempSync(path.join(os.tmpdir(), 'jetvault-restore-rate-'));
    const own = cliServices(home);
    const rate = 512 * 1024;
    try {
      await own.repository.init('restore test repository password', { kdf: FAST.kdf });
      own.devices.import(device.profile(), 'test');
      const run = (await startDeviceBackup(own, device.name, ['app']).done).value!;
      const model = path.join(device.root, 'opt', device.app, 'models', 'detector-v7.onnx');
      const original = readFileSync(model);
      writeFileSync(model, randomBytes(original.length)); // rewritten all over: it crosses whole
      own.settings.update({ bandwidthLimitKiBps: rate / 1024 }, 'test');
      const samples: { at: number; phase: string | null; bytes: number }[] = [];
      own.bus.subscribe((event, payload) => {
        if (event === 'jobs:progress') samples.push({ at: performance.now(), phase: (payload as JobProgress).phase, bytes: (payload as JobProgress).bytesDone });
      });
      const { jobId } = own.restores.start({ device: device.name, snapshotId: run.snapshots[0]!.snapshotId });
      const deadline = Date.now() + 90_000;
      while (own.jobs.get(jobId)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(own.jobs.get(jobId)).toMatchObject({ status: 'succeeded', error: null });
      await own.restores.confirm(own.restores.pending()[0]!.restoreId);
      expect(readFileSync(model).equals(original)).toBe(true);
      const staging = samples.filter((s) => s.phase === 'stage');
      expect(staging.at(-1)!.bytes).toBeGreaterThan(original.length * 0.9); // progress events come ~10 a second
      // From the first bytes counted on: what the count ran ahead of what the limit let through by then.
      const sending = staging.filter((s) => s.bytes > 0);
      const started = sending[0]!.at;
      const ahead = Math.max(...sending.map((s) => s.bytes - (rate * (s.at - started)) / 1000));
      expect(ahead).toBeLessThan(400 * 1024);
    } finally {
      own.settings.update({ bandwidthLimitKiBps: 0 }, 'test');
      own.dispose();
      rmSync(home, { recursive: true, force: true });
    }
  }, 120_000);

  it.skipIf(!NETNS.ok)(`a link cut while staging leaves the device as it was${NETNS.ok ? '' : ` (skipped: ${NETNS.reason})`}`, async () => {
    writeFileSync(versionFile(), 'still-broken\n');
    device.mutate.changeFiles(0.5); // plenty to send again (VERSION may be among them)
    const broken = readFileSync(versionFile(), 'utf8');
    await device.link!.rate(2000);
    const { jobId } = services.restores.start({ device: device.name, snapshotId: appSnapshot });
    try {
      const deadline = Date.now() + 30_000;
      while (!services.jobs.active().some((p) => p.jobId === jobId && p.phase === 'stage' && p.bytesDone > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await device.link!.cut();
      while (services.jobs.get(jobId)?.status === 'running' && Date.now() < deadline + 60_000) await new Promise((r) => setTimeout(r, 200));
      expect(services.jobs.get(jobId)!.status).toBe('failed');
    } finally {
      await device.link!.clear();
    }
    // Untouched: the live tree is as the failed restore found it; the next restore cleans the leftovers.
    expect(readFileSync(versionFile(), 'utf8')).toBe(broken);
    const { jobId: again } = services.restores.start({ device: device.name, snapshotId: appSnapshot });
    const deadline = Date.now() + 60_000;
    while (services.jobs.get(again)?.status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(services.jobs.get(again)!.status).toBe('succeeded');
    await services.restores.confirm(services.restores.pending()[0]!.restoreId);
    expect(existsSync(path.join(device.root, 'opt', device.app))).toBe(true);
  }, 180_000);

  it('restores names that are not UTF-8 byte for byte (Latin-1 file, folder and symlink target)', async () => {
    const app = path.join(device.root, 'opt', device.app);
    const bytes = (name: string) => Buffer.concat([Buffer.from(`${app}/`), Buffer.from(name, 'latin1')]);
    const file = bytes('caf\u00e9-r\u00e9sum\u00e9.txt');
    const folder = bytes('donn\u00e9es');
    const inner = Buffer.concat([folder, Buffer.from('/na\u00efve.cfg', 'latin1')]);
    const link = bytes('lien');
    writeFileSync(file, 'latin-1 name\n');
    mkdirSync(folder);
    writeFileSync(inner, 'inside a latin-1 folder\n');
    symlinkSync(Buffer.from('caf\u00e9-r\u00e9sum\u00e9.txt', 'latin1'), link);
    for (const p of [file, folder, inner]) chownSync(p, device.account.uid, device.account.gid);
    lchownSync(link, device.account.uid, device.account.gid);
    const listing = () => execFileSync('find', [app, '-print0']).toString('latin1').split('\0').sort().join('\n');
    const before = listing();
    expect(before).toContain('caf\u00e9-r\u00e9sum\u00e9.txt');
    const snapshot = (await startDeviceBackup(services, device.name, ['app']).done).value!.snapshots[0]!.snapshotId;

    rmSync(file);
    rmSync(folder, { recursive: true });
    rmSync(link);
    expect(listing()).not.toContain('donn\u00e9es');
    const { jobId, restoreId } = services.restores.start({ device: device.name, snapshotId: snapshot });
    const record = await finish(jobId);
    expect(record.error).toBeNull();
    await services.restores.confirm(restoreId);
    // The device's own view of the names (find -print0), as bytes: exactly what was backed up.
    expect(listing()).toBe(before);
    expect(readFileSync(file, 'utf8')).toBe('latin-1 name\n');
    expect(readFileSync(inner, 'utf8')).toBe('inside a latin-1 folder\n');
    expect(readlinkSync(link, { encoding: 'buffer' }).equals(Buffer.from('caf\u00e9-r\u00e9sum\u00e9.txt', 'latin1'))).toBe(true);
  }, 180_000);

  it('a restore waiting for keep / rollback survives a console restart, and rolls back from the new console', async () => {
    writeFileSync(versionFile(), 'before-restart\n');
    const { jobId, restoreId } = services.restores.start({ device: device.name, snapshotId: appSnapshot });
    expect((await finish(jobId)).error).toBeNull();
    const restored = readFileSync(versionFile(), 'utf8');
    expect(restored).not.toBe('before-restart\n');
    expect(services.restores.pending().map((p) => p.restoreId)).toEqual([restoreId]);

    services.dispose();
    services = openServices();
    const [pending] = services.restores.pending();
    expect(pending).toMatchObject({ restoreId, device: device.name });
    expect(pending!.targets).toEqual([path.join(device.root, 'opt', device.app)]);
    await services.restores.rollback(restoreId);
    expect(readFileSync(versionFile(), 'utf8')).toBe('before-restart\n');
    expect(services.restores.pending()).toEqual([]);

    // And once more after another restart: nothing is left to decide.
    services.dispose();
    services = openServices();
    expect(services.restores.pending()).toEqual([]);
    await services.repository.unlock('restore test repository password');
  }, 180_000);

  it('a whole-source restore restores single-file paths too (.env inside the app folder, the unit file), staged beside, rolled back together', async () => {
    const envFile = path.join(device.root, 'opt', device.app, '.env');
    const unitFile = path.join(device.root, 'etc', 'systemd', 'system', `${device.app}.service`);
    const originals = { env: readFileSync(envFile, 'utf8'), unit: readFileSync(unitFile, 'utf8'), version: readFileSync(versionFile(), 'utf8') };
    expect((await startDeviceBackup(services, device.name, ['app', 'config']).done).record.error).toBeNull();
    const broken = { env: 'LOG_LEVEL=DEBUG\n', unit: '[Service]\nExecStart=/bin/false\n', version: 'broken-again\n' };
    writeFileSync(envFile, broken.env);
    writeFileSync(unitFile, broken.unit);
    writeFileSync(versionFile(), broken.version);
    const current = () => ({ env: readFileSync(envFile, 'utf8'), unit: readFileSync(unitFile, 'utf8'), version: readFileSync(versionFile(), 'utf8') });
    const leftovers = () =>
      [path.join(device.root, 'opt'), path.join(device.root, 'opt', device.app), path.dirname(unitFile), path.join(device.root, 'etc')].flatMap((d) =>
        readdirSync(d).filter((n) => n.startsWith('.jetvault-restore-')),
      );

    const request = { device: device.name, scope: 'source' as const, sources: ['app', 'config'] };
    const plan = await services.restores.plan(request);
    expect(plan.roots.find((r) => r.target === envFile)).toMatchObject({ replace: 1, samples: ['~ .env'] });
    expect(plan.roots.find((r) => r.target === unitFile)).toMatchObject({ replace: 1 });

    const { jobId, restoreId } = services.restores.start(request);
    expect((await finish(jobId)).error).toBeNull();
    expect(current()).toEqual(originals);
    // The .env's previous state waits beside the app folder, not inside it (the app's swap moved the folder).
    expect(readdirSync(path.join(device.root, 'opt')).filter((n) => n.startsWith(`.jetvault-restore-${restoreId}-`)).sort()).toEqual([`.jetvault-restore-${restoreId}-config-.env`, `.jetvault-restore-${restoreId}-${device.app}`]);
    expect(readdirSync(path.join(device.root, 'opt', device.app)).filter((n) => n.startsWith('.jetvault-restore-'))).toEqual([]);

    await services.restores.rollback(restoreId);
    expect(current()).toEqual(broken);
    expect(leftovers()).toEqual([]);

    const again = services.restores.start(request);
    expect((await finish(again.jobId)).error).toBeNull();
    await services.restores.confirm(again.restoreId);
    expect(current()).toEqual(originals);
    expect(leftovers()).toEqual([]);
  }, 180_000);

  it('a folder the device account made read-only, with a changed file inside, is restored with every file and its mode', async () => {
    const models = path.join(device.root, 'opt', device.app, 'models');
    const labels = path.join(models, 'labels.txt');
    const before = await describeTree(models);
    writeFileSync(labels, 'PET\nDAMAGED\n');
    execFileSync('chmod', ['0555', models]);
    try {
      const request = { device: device.name, snapshotId: appSnapshot };
      const { jobId } = services.restores.start(request);
      const record = await finish(jobId);
      expect(record.error).toBeNull();
      expect(record.status).toBe('succeeded');
      const [pending] = services.restores.pending();
      await services.restores.confirm(pending!.restoreId);
      expect(await describeTree(models)).toEqual(before);
      expect(statSync(models).mode & 0o777).toBe(0o755);
      expect(readdirSync(path.dirname(path.dirname(models))).filter((n) => n.startsWith('.jetvault-restore-'))).toEqual([]);

      // Rolled back instead: the read-only folder and the damaged file are as they were.
      writeFileSync(labels, 'PET\nDAMAGED AGAIN\n');
      execFileSync('chmod', ['0555', models]);
      const damaged = await describeTree(models);
      const again = await finish(services.restores.start(request).jobId);
      expect(again.status).toBe('succeeded');
      await services.restores.rollback(services.restores.pending()[0]!.restoreId);
      expect(await describeTree(models)).toEqual(damaged);
      expect(statSync(models).mode & 0o777).toBe(0o555);
      expect(readdirSync(path.dirname(path.dirname(models))).filter((n) => n.startsWith('.jetvault-restore-'))).toEqual([]);
    } finally {
      execFileSync('chmod', ['0755', models]);
    }
  }, 120_000);

  it('the restored folder itself made read-only (0555), or only its mode changed, is restored with its mode; rolled back, it is as it was', async () => {
    const app = path.join(device.root, 'opt', device.app);
    const version = versionFile();
    const mode = () => statSync(app).mode & 0o777;
    const leftovers = () => readdirSync(path.dirname(app)).filter((n) => n.startsWith('.jetvault-restore-'));
    const request = { device: device.name, snapshotId: appSnapshot };
    // The folder as the snapshot has it (earlier tests leave their own changes).
    const toSnapshot = async () => {
      expect((await finish(services.restores.start(request).jobId)).status).toBe('succeeded');
      for (const pending of services.restores.pending()) await services.restores.confirm(pending.restoreId);
    };
    await toSnapshot();
    const snapshotMode = mode();
    const before = await describeTree(app);
    try {
      // Only the folder's mode changed: every entry compares equal, yet the plan restores the mode.
      execFileSync('chmod', ['0700', app]);
      const plan = await services.restores.plan(request);
      expect(plan.roots[0]).toMatchObject({ add: 0, replace: 0, remove: 0, mode: { from: 0o700, to: snapshotMode } });
      const modeOnly = await finish(services.restores.start(request).jobId);
      expect(modeOnly.error).toBeNull();
      await services.restores.confirm(services.restores.pending()[0]!.restoreId);
      expect(mode()).toBe(snapshotMode);
      expect(await describeTree(app)).toEqual(before);
      expect(leftovers()).toEqual([]);
      expect((await services.restores.plan(request)).roots[0]!.mode).toBeNull();

      // Read-only with a damaged file directly inside: the swap must move a folder it cannot write.
      writeFileSync(version, 'broken-update\n');
      execFileSync('chmod', ['0555', app]);
      const readOnly = await finish(services.restores.start(request).jobId);
      expect(readOnly.error).toBeNull();
      expect(readOnly.status).toBe('succeeded');
      await services.restores.confirm(services.restores.pending()[0]!.restoreId);
      expect(mode()).toBe(snapshotMode);
      expect(await describeTree(app)).toEqual(before);
      expect(leftovers()).toEqual([]);

      // Rolled back instead: the read-only folder, with its damaged file, is back as it was.
      execFileSync('chmod', ['0755', app]);
      writeFileSync(version, 'broken-again\n');
      execFileSync('chmod', ['0555', app]);
      const damaged = await describeTree(app);
      const again = await finish(services.restores.start(request).jobId);
      expect(again.status).toBe('succeeded');
      expect(mode()).toBe(snapshotMode);
      await services.restores.rollback(services.restores.pending()[0]!.restoreId);
      expect(mode()).toBe(0o555);
      expect(await describeTree(app)).toEqual(damaged);
      expect(readFileSync(version, 'utf8')).toBe('broken-again\n');
      expect(leftovers()).toEqual([]);
    } finally {
      execFileSync('chmod', [snapshotMode.toString(8), app]);
    }
    await toSnapshot(); // for the tests that follow
    expect(await describeTree(app)).toEqual(before);
  }, 180_000);

  it("signed in as the device's account (not root): a file chowned away from it gets its owner back, another account's is named in a warning, a read-only folder of root's is refused at preflight", async () => {
    const app = path.join(device.root, 'opt', device.app);
    const version = versionFile();
    const { uid, gid, name } = device.account;
    const leftovers = () => readdirSync(path.dirname(app)).filter((n) => n.startsWith('.jetvault-restore-'));
    const request = { device: device.name, snapshotId: appSnapshot };
    const owner = (p: string) => ((st) => `${st.uid}:${st.gid}`)(statSync(p));
    expect((await finish(services.restores.start(request).jobId)).status).toBe('succeeded');
    for (const pending of services.restores.pending()) await services.restores.confirm(pending.restoreId);
    const before = await describeTree(app);

    // A `sudo cp` left the version file root's, its bytes unchanged: the account cannot write it, yet the swap gives it back.
    chownSync(version, 0, 0);
    const plan = await services.restores.plan(request);
    expect(plan.roots[0]).toMatchObject({ replace: 1, owners: 1, add: 0, remove: 0, owner: null, samples: ['~ VERSION'] });
    expect(plan.warnings.join('\n')).not.toContain('owner');
    const record = await finish(services.restores.start(request).jobId);
    expect(record.error).toBeNull();
    await services.restores.confirm(services.restores.pending()[0]!.restoreId);
    expect(owner(version)).toBe(`${uid}:${gid}`);
    expect(await describeTree(app)).toEqual(before);
    expect(leftovers()).toEqual([]);

    // A file root owns in the snapshot: as the account, the restore cannot give it back, and says so.
    const rootsFile = path.join(app, 'calibration.lock');
    writeFileSync(rootsFile, 'written by a root service\n');
    const run = (await startDeviceBackup(services, device.name, ['app']).done).value!;
    const withRootsFile = { device: device.name, snapshotId: run.snapshots[0]!.snapshotId };
    try {
      chownSync(rootsFile, uid, gid);
      const warned = await services.restores.plan(withRootsFile);
      expect(warned.roots[0]).toMatchObject({ replace: 0, owners: 0 });
      expect(warned.warnings).toContain(`1 entry in ${app} will not have its owner (another account's) after the restore: the device's login ${name} is not root, and what it writes or copies is its own. Connect as root to restore owners.`);
    } finally {
      rmSync(rootsFile);
    }

    // The app folder itself root's and 0755: the account cannot move it aside, so nothing is staged.
    writeFileSync(version, 'broken-update\n');
    chownSync(app, 0, 0);
    try {
      const damaged = await describeTree(app);
      const refused = await finish(services.restores.start(request).jobId);
      expect(refused.status).toBe('failed');
      expect(refused.error?.message).toContain(`${app} belongs to another account (0:0) and is read-only for ${name}: it cannot be moved aside for the swap`);
      expect(await describeTree(app)).toEqual(damaged);
      expect(owner(app)).toBe('0:0');
      expect(leftovers()).toEqual([]);
      expect(services.restores.pending()).toEqual([]);
    } finally {
      chownSync(app, uid, gid);
    }
    expect((await finish(services.restores.start(request).jobId)).status).toBe('succeeded');
    await services.restores.confirm(services.restores.pending()[0]!.restoreId);
    expect(await describeTree(app)).toEqual(before);
  }, 180_000);

  it("signed in as the device's account: a keep whose previous state holds root's files in root's folder keeps the restore and names what it could not remove", async () => {
    const app = path.join(device.root, 'opt', device.app);
    const request = { device: device.name, snapshotId: appSnapshot };
    expect((await finish(services.restores.start(request).jobId)).status).toBe('succeeded');
    for (const pending of services.restores.pending()) await services.restores.confirm(pending.restoreId);
    const restored = await describeTree(app);

    // A service running as root left a cache folder of its own in the app folder; an update broke VERSION.
    const cache = path.join(app, 'cache');
    mkdirSync(cache);
    writeFileSync(path.join(cache, 'index.bin'), 'built by a root service\n');
    chownSync(path.join(cache, 'index.bin'), 0, 0);
    chownSync(cache, 0, 0);
    writeFileSync(versionFile(), 'broken-update\n');
    const record = await finish(services.restores.start(request).jobId);
    expect(record.error).toBeNull();
    const [pending] = services.restores.pending();
    const staging = pending!.files[0]!.roots[0]!.staging;
    // The account cannot empty root's folder in the previous state: the keep is done all the same.
    expect(await services.restores.confirm(pending!.restoreId)).toEqual({ leftovers: [staging] });
    try {
      expect(services.restores.pending()).toEqual([]);
      expect(await describeTree(app)).toEqual(restored);
      expect(readFileSync(path.join(staging, 'previous', 'cache', 'index.bin'), 'utf8')).toBe('built by a root service\n');
      // Its markers are gone: no later console offers it for a rollback (its previous state is partial).
      expect([existsSync(path.join(staging, 'target')), existsSync(path.join(staging, 'journal'))]).toEqual([false, false]);
      expect(await services.restores.recover(device.name)).toEqual([]);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }, 180_000);

  it("signed in as the device's account: a failed health check rolls back and names the folder it could not remove, where a root service wrote meanwhile", async () => {
    const app = path.join(device.root, 'opt', device.app);
    const original = readFileSync(versionFile(), 'utf8');
    const staged = () => readdirSync(path.dirname(app)).filter((n) => n.startsWith('.jetvault-restore-'));
    expect(staged()).toEqual([]);
    // The health check waits (at most 30 s) for the root service below to have written.
    const marks = mkdtempSync(path.join(os.tmpdir(), 'jetvault-health-'));
    chmodSync(marks, 0o755);
    const written = path.join(marks, 'written');
    services.devices.import({ ...device.profile(), healthCommand: `for i in $(seq 300); do [ -e '${written}' ] && break; sleep 0.1; done; echo unhealthy >&2; exit 3` }, 'test', { replace: true });
    writeFileSync(versionFile(), 'broken-update\n');
    try {
      const { jobId } = services.restores.start({ device: device.name, snapshotId: appSnapshot });
      // Swapped in: a service running as root starts and writes a cache folder of its own into the restored app folder.
      const deadline = Date.now() + 60_000;
      // (Read between the swap's renames, the folder may be gone for a moment.)
      const version = () => {
        try {
          return readFileSync(versionFile(), 'utf8');
        } catch {
          return null;
        }
      };
      while (version() !== original && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(versionFile(), 'utf8')).toBe(original);
      mkdirSync(path.join(app, 'cache'));
      writeFileSync(path.join(app, 'cache', 'index.bin'), 'built by a root service\n');
      chownSync(path.join(app, 'cache', 'index.bin'), 0, 0);
      chownSync(path.join(app, 'cache'), 0, 0);
      writeFileSync(written, '');
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
      // Rolled back: the previous state is in place; the restored one, with root's folder in it, stays and is named.
      expect(readFileSync(versionFile(), 'utf8')).toBe('broken-update\n');
      expect(existsSync(path.join(app, 'cache'))).toBe(false);
      const [left] = staged();
      expect(left).toBeDefined();
      expect(record.error?.message).toContain('health check: ');
      expect(record.error?.message).toContain(`the device was rolled back to its previous state. A folder of the restore could not be removed from the device — it holds files of another account, and the device's login is not root. Remove it as root: ${path.join(path.dirname(app), left!)}`);
      expect(services.restores.pending()).toEqual([]);
    } finally {
      services.devices.import(device.profile(), 'test', { replace: true });
      for (const left of staged()) rmSync(path.join(path.dirname(app), left), { recursive: true, force: true });
      rmSync(marks, { recursive: true, force: true });
      writeFileSync(versionFile(), original);
    }
  }, 180_000);

  it("signed in as the device's account: the staging copy hard-links every file it may and copies only root's files the kernel will not let it link (a single-file root too); the plan counts them and their bytes", async () => {
    const app = path.join(device.root, 'opt', device.app);
    const { uid, gid, name } = device.account;
    // Ubuntu and L4T turn it on; where it is off, the account may link root's file too and keeps its owner.
    const protectedHardlinks = readFileSync('/proc/sys/fs/protected_hardlinks', 'utf8').trim() !== '0';
    const owner = (p: string) => ((st) => `${st.uid}:${st.gid}`)(statSync(p));
    expect((await finish(services.restores.start({ device: device.name, snapshotId: appSnapshot }).jobId)).status).toBe('succeeded');
    for (const pending of services.restores.pending()) await services.restores.confirm(pending.restoreId);

    // A root service's file, 0644 (the account reads it but cannot write it), backed up as root's.
    const rootsFile = path.join(app, 'calibration.lock');
    const calibration = Buffer.alloc(96 * 1024, 'calibration ');
    writeFileSync(rootsFile, calibration);
    chownSync(rootsFile, 0, 0);
    // And one in a folder the account made read-only, where nothing changes: copied in, the folder keeps its mode.
    const vendor = path.join(app, 'vendor');
    mkdirSync(vendor);
    writeFileSync(path.join(vendor, 'libcal.so'), 'a root-owned library\n');
    chownSync(path.join(vendor, 'libcal.so'), 0, 0);
    chownSync(vendor, uid, gid);
    execFileSync('chmod', ['0555', vendor]);
    const request = { device: device.name, snapshotId: (await startDeviceBackup(services, device.name, ['app']).done).value!.snapshots[0]!.snapshotId };
    const unchanged = readdirSync(app, { withFileTypes: true }).find((e) => e.isFile() && e.name !== 'VERSION' && e.name !== 'calibration.lock')!.name;
    try {
      writeFileSync(versionFile(), 'broken-update\n');
      const plan = await services.restores.plan(request);
      expect(plan.roots[0]).toMatchObject({ replace: 1, add: 0, remove: 0 });
      const warning = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'} in ${app} will not have ${n === 1 ? 'its' : 'their'} owner (another account's) after the restore: the device's login ${name} is not root, and what it writes or copies is its own. Connect as root to restore owners.`;
      if (protectedHardlinks) {
        expect(plan.warnings).toContain(warning(2));
        expect(plan.spaceNeeded).toBe(plan.bytesToSend + calibration.length + statSync(path.join(vendor, 'libcal.so')).size);
      } else {
        expect(plan.warnings.join('\n')).not.toContain('owner');
        expect(plan.spaceNeeded).toBe(plan.bytesToSend);
      }

      const record = await finish(services.restores.start(request).jobId);
      expect(record.error).toBeNull();
      const [pending] = services.restores.pending();
      const previous = path.join(pending!.files[0]!.roots[0]!.staging, 'previous');
      // The account's unchanged file is the same inode as before the swap (a hard link, not a copy)...
      expect(statSync(path.join(app, unchanged)).ino).toBe(statSync(path.join(previous, unchanged)).ino);
      // ...and root's file is a copy, byte for byte, where the kernel refused the link (then the account's).
      expect(readFileSync(rootsFile)).toEqual(calibration);
      expect(statSync(rootsFile).ino === statSync(path.join(previous, 'calibration.lock')).ino).toBe(!protectedHardlinks);
      expect(owner(rootsFile)).toBe(protectedHardlinks ? `${uid}:${gid}` : '0:0');
      expect(readFileSync(path.join(vendor, 'libcal.so'), 'utf8')).toBe('a root-owned library\n');
      expect(statSync(vendor).mode & 0o7777).toBe(0o555);
      expect(readFileSync(versionFile(), 'utf8')).not.toBe('broken-update\n');
      expect(await services.restores.confirm(pending!.restoreId)).toEqual({ leftovers: [] });

      // A single file of root's (the config source's unit file, 0644), damaged: staged as a copy where its link is refused, then replaced.
      const unitFile = path.join(device.root, 'etc', 'systemd', 'system', `${device.app}.service`);
      const unit = readFileSync(unitFile);
      chownSync(unitFile, 0, 0);
      expect((await startDeviceBackup(services, device.name, ['config']).done).record.error).toBeNull();
      writeFileSync(unitFile, '[Service]\nExecStart=/bin/false\n');
      const config = { device: device.name, scope: 'source' as const, sources: ['config'] };
      expect((await services.restores.plan(config)).warnings).toContain(warning(1).replace(app, unitFile));
      const restored = await finish(services.restores.start(config).jobId);
      expect(restored.error).toBeNull();
      expect(readFileSync(unitFile)).toEqual(unit);
      expect(owner(unitFile)).toBe(`${uid}:${gid}`);
      for (const waiting of services.restores.pending()) expect(await services.restores.confirm(waiting.restoreId)).toEqual({ leftovers: [] });

      // A folder of root's the account cannot read: neither the links nor the copies could reach
      // inside, so the preflight refuses, naming it, before anything is staged or sent.
      const secret = path.join(app, 'secret');
      mkdirSync(secret, { mode: 0o700 });
      writeFileSync(path.join(secret, 'key'), 'root only\n');
      chownSync(path.join(secret, 'key'), 0, 0);
      chownSync(secret, 0, 0);
      writeFileSync(versionFile(), 'broken-update\n');
      const damaged = await describeTree(app);
      const unreachable = (entry: string) => `1 entry in ${app} cannot be read by ${name} (${entry}): the restore's staging copy must read all of the folder, so the restore will stop before changing anything. Connect as root, or make it readable for ${name}.`;
      expect((await services.restores.plan(request)).warnings).toContain(unreachable('secret'));
      const refused = await finish(services.restores.start(request).jobId);
      expect(refused.status).toBe('failed');
      expect(refused.error?.message).toContain(`${secret} cannot be read by ${name} (it belongs to 0:0): the restore's staging copy of ${app} must read all of it. Connect as root, or make it readable for ${name}.`);
      expect(await describeTree(app)).toEqual(damaged);
      expect(services.restores.pending()).toEqual([]);
      expect(readdirSync(app + '/..').filter((n) => n.startsWith('.jetvault-restore-'))).toEqual([]);

      // A file of root's it cannot read (0600): a copy cannot read it and, with protected_hardlinks, a link is refused.
      rmSync(secret, { recursive: true });
      const token = path.join(app, 'token');
      writeFileSync(token, 'root only\n', { mode: 0o600 });
      chownSync(token, 0, 0);
      const tokenPlan = await services.restores.plan(request);
      const withToken = await finish(services.restores.start(request).jobId);
      if (protectedHardlinks) {
        expect(tokenPlan.warnings).toContain(unreachable('token'));
        expect(withToken.error?.message).toContain(`${token} cannot be read by ${name} (it belongs to 0:0)`);
        expect(readFileSync(versionFile(), 'utf8')).toBe('broken-update\n');
      } else {
        expect(tokenPlan.warnings.join('\n')).not.toContain('cannot be read');
        expect(withToken.error).toBeNull();
        for (const waiting of services.restores.pending()) await services.restores.confirm(waiting.restoreId);
      }
    } finally {
      execFileSync('chmod', ['0755', vendor]);
      rmSync(vendor, { recursive: true, force: true });
      rmSync(rootsFile, { force: true });
      rmSync(path.join(app, 'token'), { force: true });
      rmSync(path.join(app, 'secret'), { recursive: true, force: true });
    }
  }, 180_000);

  it('a source folder that is a mount point (logs on a partition of their own) is named in the plan and refused at preflight; nothing is staged or changed', async () => {
    const logsRel = path.join('var', 'log', device.app);
    const logs = path.join(device.root, logsRel);
    expect((await startDeviceBackup(services, device.name, ['logs']).done).record.error).toBeNull();
    // A tmpfs of its own over the folder, holding what it held (and a filler file the snapshot does not have).
    await device.mutate.fillDisk(logsRel, { sizeMB: 8, leaveBytes: 6 * 2 ** 20 });
    try {
      const request = { device: device.name, scope: 'source' as const, sources: ['logs'] };
      const message = `${logs} is a mount point (a file system of its own): the restore cannot move it aside for its swap`;
      const plan = await services.restores.plan(request);
      expect(plan.roots[0]).toMatchObject({ target: logs, remove: 1 });
      expect(plan.warnings.join('\n')).toContain(`${message}, so it will stop before changing anything. Restore it into another folder on the device, or download it to this laptop.`);
      const before = await describeTree(logs);
      const record = await finish(services.restores.start(request).jobId);
      expect(record.status).toBe('failed');
      expect(record.error?.message).toContain(message);
      expect(await describeTree(logs)).toEqual(before);
      expect(readdirSync(path.dirname(logs)).filter((n) => n.startsWith('.jetvault-restore-'))).toEqual([]);
      expect(services.restores.pending()).toEqual([]);
    } finally {
      await device.mutate.releaseDisk(logsRel);
    }
  }, 120_000);

  it('a target folder the device account cannot write is refused at preflight, naming the folder; nothing is staged or changed', async () => {
    // Owned by root, 0755: the device account (which runs every command) cannot create anything in it.
    const locked = path.join(device.root, 'srv-locked');
    mkdirSync(locked, { mode: 0o755 });
    const listing = () => execFileSync('find', [device.root, '-path', path.join(device.root, 'var', 'lib'), '-prune', '-o', '-print']).toString().split('\n').sort().join('\n');
    const before = listing();
    try {
      const request = { device: device.name, snapshotId: appSnapshot, targetRoot: path.join(locked, 'inspect') };
      const { jobId } = services.restores.start(request);
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
      expect(record.error?.message).toContain(`cannot write to ${locked}`);
      expect(readdirSync(locked)).toEqual([]);
      expect(listing()).toBe(before);
      expect(services.restores.pending()).toEqual([]);
    } finally {
      rmSync(locked, { recursive: true, force: true });
    }
  }, 120_000);

  it('into another folder, its large models are staged from the live ones on the device: the notes say so, and the copy equals the snapshot', async () => {
    const inspect = path.join(device.root, 'srv', 'inspect');
    const live = path.join(device.root, 'opt', device.app);
    const liveBefore = await describeTree(path.join(live, 'models'));
    const out = mkdtempSync(path.join(os.tmpdir(), 'jetvault-restore-compare-'));
    try {
      const request = { device: device.name, snapshotId: appSnapshot, targetRoot: inspect };
      const plan = await services.restores.plan(request);
      // What the last backup saw on the device: the preview counts the model as one that may not cross.
      expect(plan.patchableBytes).toBeGreaterThan(4 * 2 ** 20);
      const record = await finish(services.restores.start(request).jobId);
      expect(record.error).toBeNull();
      expect((record.result as { notes: string[] }).notes).toContainEqual(
        expect.stringMatching(/^1 large file \(.+\) staged from a copy the device holds at another path(: none of it crossed the link| sent as the .+ of blocks that differed)\.$/),
      );
      for (const waiting of services.restores.pending()) await services.restores.confirm(waiting.restoreId);
      const repo = await services.repository.open();
      await restore(repo, await findSnapshot(repo, appSnapshot), out);
      const appDir = path.join('opt', device.app);
      expect(await describeTree(path.join(inspect, appDir))).toEqual(await describeTree(path.join(out, appDir)));
      expect(await describeTree(path.join(live, 'models'))).toEqual(liveBefore); // only read
    } finally {
      rmSync(path.join(device.root, 'srv'), { recursive: true, force: true });
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
