/**
 * The link to a device lost once a restore's swap has begun (every connection through the device's
 * loopback proxy reset, as a peer that vanished): what the job's error says the device holds is
 * what it holds — its previous state, or the restored one — and the interrupted restore is settled
 * once the device can be reached.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import type { Services } from '../services/index';
import { jobEnded, waitFor } from '../testing/wait';
import { formatBytes } from '../../shared/format-bytes';
import type { JobProgress } from '../../shared/schemas/jobs';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
let backedUpRows = 0;
/** The app's VERSION file as backed up (the tests below damage it and restore it). */
let backedUpVersion = '';

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, proxy: true, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('restore-link', 'restore link test repository password'));
  services.devices.import(device.profile(), 'test');
  backedUpRows = await device.mutate.pgCount('deposits');
  backedUpVersion = readFileSync(versionFile(), 'utf8');
  expect((await startDeviceBackup(services, device.name, ['app', 'db']).done).record.status).toBe('succeeded');
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

const MiB = 1024 * 1024;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const versionFile = () => path.join(device.root, 'opt', device.app, 'VERSION');
const stagings = () => readdirSync(path.join(device.root, 'opt')).filter((n) => n.startsWith('.jetvault-restore-'));
const servicesStopped = () => existsSync(path.join(device.account.home, '.jetvault-restore', 'services-stopped'));

/**
 * Restores `source` with the device's services as given, and cuts the link once `when` holds; the
 * job's error. The device's services are its own again afterwards.
 */
async function cutDuring(source: string, deviceServices: { stop: string[]; start: string[] }, when: () => boolean | Promise<boolean>) {
  services.devices.import({ ...device.profile(), services: deviceServices }, 'test', { replace: true });
  try {
    const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: [source] });
    try {
      await waitFor('the moment to cut the link', when);
      device.proxy!.cut();
      const record = await finish(jobId);
      expect(record.status).toBe('failed');
      return record.error!;
    } finally {
      device.proxy!.restore();
    }
  } finally {
    services.devices.import(device.profile(), 'test', { replace: true });
  }
}

const finish = (jobId: string) => jobEnded(services.jobs, jobId);

// A test that failed before its own recovery leaves the device's services-stopped mark and a staged
// copy behind: the next test's cut would fire at once. Each test starts from a settled device.
afterEach(async () => {
  device.proxy?.restore();
  if (servicesStopped() || stagings().length > 0) await services.restores.recover(device.name).catch(() => undefined);
}, 60_000);

describe('a link lost while a restore stages', () => {
  it("during the staging copy of a large folder: the error says the link was lost and the device holds its previous state (not 'Staging … failed'); recovery removes the staged copy", async () => {
    // 30,000 files the restore removes: the device's hard-link copy of the folder and their unlinking take a while.
    const junk = path.join(device.root, 'opt', device.app, 'junk');
    for (let d = 0; d < 30; d++) {
      mkdirSync(path.join(junk, `d${d}`), { recursive: true });
      for (let i = 0; i < 1000; i++) writeFileSync(path.join(junk, `d${d}`, `f${i}`), '');
    }
    // The device account's, as the app's own files: its login hard-links them into the staging copy.
    execFileSync('chown', ['-R', `${device.account.uid}:${device.account.gid}`, junk]);
    writeFileSync(versionFile(), 'damaged\n');
    try {
      const error = await cutDuring('app', { stop: [], start: [] }, () => stagings().length === 1);
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.message).toMatch(new RegExp(`^The link to ${device.name} was lost while the restore was being staged beside the live data \\(the connection to .+ was lost \\(ECONNRESET\\)\\)\\. Nothing was swapped: ${device.name} holds its previous state\\.`));
      expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
      expect(readdirSync(junk)).toHaveLength(30);
      // The device's shell finishes its copy on its own (no terminal: nothing ends it with the link).
      const [staging] = stagings();
      await waitFor('the copy on the device to end', () => spawnSync('pgrep', ['-u', device.account.name, '-f', staging!]).status !== 0);
      expect(await services.restores.recover(device.name)).toEqual([]);
      expect(stagings()).toEqual([]);
      expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
    } finally {
      rmSync(junk, { recursive: true, force: true });
    }
  }, 240_000);
});

describe('a link lost while a restore sends a model, and the restore run again', () => {
  it('the next restore takes up what had crossed: it sends only the rest, says so, and leaves nothing beside the folder', async () => {
    const opt = path.join(device.root, 'opt');
    const models = path.join(opt, device.app, 'models');
    const model = path.join(models, 'resume.onnx');
    writeFileSync(model, randomBytes(24 * MiB));
    execFileSync('chown', [`${device.account.uid}:${device.account.gid}`, model]);
    const original = sha256(model);
    writeFileSync(versionFile(), backedUpVersion); // as the tests below expect the app's latest snapshot to hold it
    expect((await startDeviceBackup(services, device.name, ['app']).done).record.status).toBe('succeeded');
    rmSync(models, { recursive: true }); // every model goes back, as on a reflashed device
    const staged = () => stagings().map((s) => path.join(opt, s, 'new', 'models', 'resume.onnx')).find((f) => existsSync(f));
    services.settings.update({ bandwidthLimitKiBps: 4096 }, 'test'); // ~6 s for the model
    try {
      const error = await cutDuring('app', { stop: [], start: [] }, () => (staged() ? statSync(staged()!).size > 6 * MiB : false));
      expect(error.message).toMatch(/except the large files: they are kept beside their folder for 24 hours, and a restore of that folder meanwhile sends only what they still lack\.$/);
      const crossed = statSync(staged()!).size;
      await waitFor('the device to see the link gone', () => spawnSync('pgrep', ['-u', device.account.name, '-x', 'tar']).status !== 0);
      const before = device.proxy!.carried.toDevice;
      const samples: JobProgress[] = [];
      const unsubscribe = services.bus.subscribe((event, payload) => {
        if (event === 'jobs:progress') samples.push({ ...(payload as JobProgress) });
      });
      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['app'] });
      const record = await finish(jobId);
      unsubscribe();
      // The rest of the model crosses as one patch (~4 s at the limit): the progress moves as it does,
      // and does not run past the total.
      const ours = samples.filter((p) => p.jobId === jobId && p.bytesTotal !== null);
      const total = ours.at(-1)!.bytesTotal!;
      expect(ours.filter((p) => p.phase === 'stage' && p.bytesDone > 0.3 * total && p.bytesDone < 0.9 * total).length).toBeGreaterThan(2);
      expect(Math.max(...ours.map((p) => p.bytesDone))).toBeLessThanOrEqual(total);
      expect(record).toMatchObject({ status: 'succeeded', error: null });
      const notes = (record.result as { notes: string[] }).notes;
      expect(notes).toContainEqual(expect.stringMatching(/^1 large file \(24\.0 MiB\) taken up from what an earlier restore had staged before its link was cut: only the [\d.]+ MiB it still lacked crossed the link\.$/));
      // What crossed before is not sent again (the other models, the tar stream and SSH add little).
      expect(device.proxy!.carried.toDevice - before).toBeLessThan(24 * MiB - crossed + 4 * MiB);
      await services.restores.confirm(services.restores.pending()[0]!.restoreId);
      expect(sha256(model)).toBe(original);
      expect(readdirSync(opt).filter((n) => n.startsWith('.jetvault-'))).toEqual([]);
    } finally {
      // The model stays: the app's latest snapshot holds it, and the tests below restore that snapshot.
      services.settings.update({ bandwidthLimitKiBps: 0 }, 'test');
    }
  }, 240_000);
});

describe('a link lost while a restore into another folder sends a model', () => {
  it('Look for interrupted restores settles it there too: the staged copy goes, the large file kept for a rerun expires after 24 hours, and the place is forgotten', async () => {
    const models = path.join(device.root, 'opt', device.app, 'models');
    const model = path.join(models, 'elsewhere.onnx');
    writeFileSync(model, randomBytes(16 * MiB));
    execFileSync('chown', [`${device.account.uid}:${device.account.gid}`, model]);
    expect((await startDeviceBackup(services, device.name, ['app']).done).record.status).toBe('succeeded');
    // Not on the device (as on a reflashed one): it crosses the link, and the link is cut on its way.
    const saved = path.join(device.root, 'elsewhere.onnx.saved');
    renameSync(model, saved);
    const inspect = path.join(device.root, 'srv', 'inspect');
    const opt = path.join(inspect, 'opt');
    const ours = () => (existsSync(opt) ? readdirSync(opt).filter((n) => n.startsWith('.jetvault-')) : []);
    const staged = () => ours().map((s) => path.join(opt, s, 'new', 'models', 'elsewhere.onnx')).find((f) => existsSync(f));
    const places = () => services.history.db.prepare<[], { dir: string }>('SELECT dir FROM restore_places').all().map((r) => r.dir);
    services.settings.update({ bandwidthLimitKiBps: 4096 }, 'test');
    try {
      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['app'], targetRoot: inspect });
      try {
        await waitFor('a third of the model staged', () => (staged() ? statSync(staged()!).size > 5 * MiB : false));
        device.proxy!.cut();
        expect(await finish(jobId)).toMatchObject({ status: 'failed', error: { code: 'UNAVAILABLE' } });
      } finally {
        device.proxy!.restore();
      }
      expect(places()).toEqual([opt]);
      await waitFor('the device to see the link gone', () => spawnSync('pgrep', ['-u', device.account.name, '-x', 'tar']).status !== 0);
      // Not beside one of the device's sources: before, only a rerun of this very restore looked there.
      const { pending, settled } = await services.restores.recoverReport(device.name);
      expect(pending).toEqual([]);
      expect(ours()).toEqual([`.jetvault-resume-${device.app}`]);
      // It says what it did, and what it kept where, how large, until when. (The part of the model that
      // crossed; also the app's other large model when the restore had staged it from the live one first.)
      const keptFiles = readdirSync(path.join(opt, ours()[0]!), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(keptFiles.map((e) => e.name)).toContain('elsewhere.onnx');
      const kept = keptFiles.reduce((n, e) => n + statSync(path.join(e.parentPath, e.name)).size, 0);
      const until = new Date(statSync(path.join(opt, ours()[0]!)).mtimeMs + 24 * 3600_000).toISOString().slice(0, 16).replace('T', ' ');
      expect(settled).toEqual([
        expect.stringMatching(new RegExp(`^Rolled back the restore of ${opt}/${device.app} \\(\\w+\\), cut off before its swap: ${opt}/${device.app} holds what it held before, and what had been staged is removed\\.$`)),
        `Kept ${keptFiles.length} large file${keptFiles.length === 1 ? '' : 's'} (${formatBytes(kept)}) a restore cut off had staged, in ${opt}/.jetvault-resume-${device.app} until ${until} UTC: a restore of ${opt}/${device.app} before then sends only what they still lack.`,
      ]);
      expect(places()).toEqual([opt]); // it still holds what the next restore there may take up
      // A day later no restore has taken it up: the next recovery removes it, and forgets the place.
      const dayAgo = new Date(Date.now() - 25 * 3600_000);
      utimesSync(path.join(opt, ours()[0]!), dayAgo, dayAgo);
      expect(await services.restores.recover(device.name)).toEqual([]);
      expect(ours()).toEqual([]);
      expect(places()).toEqual([]);
    } finally {
      services.settings.update({ bandwidthLimitKiBps: 0 }, 'test');
      renameSync(saved, model); // as the app's latest snapshot holds it, for the tests below
      rmSync(path.join(device.root, 'srv'), { recursive: true, force: true });
    }
  }, 240_000);
});

describe('a link lost once the swap of a files restore has begun', () => {
  it('while the services stop for the swap: the error says nothing was swapped, and the device holds its previous state; recovery starts its services and removes the staged copy', async () => {
    writeFileSync(versionFile(), 'damaged\n');
    const error = await cutDuring('app', { stop: ['sleep 5'], start: ['true'] }, servicesStopped);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(new RegExp(`^The link to ${device.name} was lost while its services were being stopped for the swap \\(the connection to .+ was lost \\(ECONNRESET\\)\\)\\. Nothing was swapped: ${device.name} holds its previous state, the restored copy staged beside it\\. Its services may be left stopped`));
    expect(error.message).not.toMatch(/exit null|is closed|may hold the restored state/);
    expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
    expect(stagings()).toHaveLength(1);
    expect(servicesStopped()).toBe(true);
    // Once the device can be reached: nothing waits for a decision, the staged copy goes, the services start.
    expect(await services.restores.recover(device.name)).toEqual([]);
    expect(stagings()).toEqual([]);
    expect(servicesStopped()).toBe(false);
    expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
  }, 120_000);

  it('while the services start again after the swap: the error says the device holds the restored state (not that a start command failed), and recovery offers it to keep or roll back', async () => {
    writeFileSync(versionFile(), 'damaged\n');
    const started = path.join(device.root, 'start-began');
    rmSync(started, { force: true });
    const error = await cutDuring('app', { stop: ['true'], start: [`touch ${started}; sleep 5`] }, () => existsSync(started));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(new RegExp(`^The link to ${device.name} was lost after the swap, while its services were being started again \\(the connection to .+ was lost \\(ECONNRESET\\)\\)\\. ${device.name} holds the restored state, its previous state kept beside it; its services may be left stopped`));
    expect(error.message).not.toMatch(/command "|failed/);
    const restored = readFileSync(versionFile(), 'utf8');
    expect(restored).not.toBe('damaged\n');
    const found = await services.restores.recover(device.name);
    expect(found).toHaveLength(1);
    expect(servicesStopped()).toBe(false);
    await services.restores.rollback(found[0]!.restoreId);
    expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
    expect(stagings()).toEqual([]);
  }, 120_000);
});

describe('a link lost once the swap of a database restore has begun', () => {
  it('while the services stop for the swap: the live database is as it was, and the error says so; recovery drops the staged database', async () => {
    await device.mutate.pgDeleteRows(40);
    const damaged = await device.mutate.pgCount('deposits');
    const error = await cutDuring('db', { stop: ['sleep 5'], start: ['true'] }, servicesStopped);
    expect(error.message).toMatch(new RegExp(`^The link to ${device.name} was lost while its services were being stopped for the swap .*Nothing was swapped: ${device.name} holds its previous state`));
    expect(await device.mutate.pgCount('deposits')).toBe(damaged);
    expect(await services.restores.recover(device.name)).toEqual([]);
    expect(servicesStopped()).toBe(false);
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_jv\\_%';`)).toBe('0');
    expect(await device.mutate.pgCount('deposits')).toBe(damaged);
    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'] });
    expect((await finish(jobId)).error).toBeNull();
    await services.restores.confirm(restoreId);
    expect(await device.mutate.pgCount('deposits')).toBe(backedUpRows);
  }, 120_000);
});

describe("a service command of the device's that fails around the swap (the link is there)", () => {
  it('a stop command: the error says nothing was swapped and the device was left as it was, which it is', async () => {
    writeFileSync(versionFile(), 'damaged\n');
    services.devices.import({ ...device.profile(), services: { stop: ['echo cannot stop >&2; exit 3'], start: ['true'] } }, 'test', { replace: true });
    try {
      const record = await finish(services.restores.start({ device: device.name, scope: 'source', sources: ['app'] }).jobId);
      expect(record.error?.message).toMatch(new RegExp(`^Stop command "echo cannot stop >&2; exit 3" failed: .*\\(exit 3\\): cannot stop\\. Nothing was swapped: ${device.name} was left as it was \\(the staged copy removed, its start commands run\\)$`));
    } finally {
      services.devices.import(device.profile(), 'test', { replace: true });
    }
    expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
    expect(stagings()).toEqual([]);
    expect(servicesStopped()).toBe(false);
    expect(services.restores.pending()).toEqual([]);
  }, 120_000);

  it('a start command after the swap: the error says the restore is done and holds the restored state, and it waits for keep or rollback at once (not "may hold", not unlisted)', async () => {
    writeFileSync(versionFile(), 'damaged\n');
    services.devices.import({ ...device.profile(), services: { stop: ['true'], start: ['echo cannot start >&2; exit 4'] } }, 'test', { replace: true });
    let restoreId: string;
    try {
      const started = services.restores.start({ device: device.name, scope: 'source', sources: ['app'] });
      restoreId = started.restoreId;
      const record = await finish(started.jobId);
      expect(record.error?.message).toMatch(/^Start command "echo cannot start >&2; exit 4" failed: .*\(exit 4\): cannot start\. The restore itself is done: .+ holds the restored state \(checked\), its previous state kept beside it, but its services did not start again\./);
      expect(record.error?.message).not.toMatch(/may hold/);
    } finally {
      services.devices.import(device.profile(), 'test', { replace: true });
    }
    const restored = readFileSync(versionFile(), 'utf8');
    expect(restored).not.toBe('damaged\n');
    expect(services.restores.pending().map((p) => p.restoreId)).toEqual([restoreId]);
    // Looking for interrupted restores finds nothing more, and starts the services (now startable).
    expect((await services.restores.recover(device.name)).map((p) => p.restoreId)).toEqual([restoreId]);
    expect(servicesStopped()).toBe(false);
    await services.restores.rollback(restoreId);
    expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
    expect(services.restores.pending()).toEqual([]);
    expect(stagings()).toEqual([]);
  }, 120_000);

  it('a start command when rolled back on demand: the error says the device holds its previous state again, and the restore no longer waits (not "kept already" on a second try)', async () => {
    writeFileSync(versionFile(), 'damaged\n');
    const { jobId, restoreId } = services.restores.start({ device: device.name, scope: 'source', sources: ['app'] });
    expect((await finish(jobId)).error).toBeNull();
    services.devices.import({ ...device.profile(), services: { stop: ['true'], start: ['echo cannot start >&2; exit 4'] } }, 'test', { replace: true });
    try {
      const failed = services.restores.rollback(restoreId);
      await expect(failed).rejects.toThrow(new RegExp(`^Start command "echo cannot start >&2; exit 4" failed: .*\\(exit 4\\): cannot start\\. The rollback itself is done: ${device.name} holds its previous state again, but its services did not start\\.`));
    } finally {
      services.devices.import(device.profile(), 'test', { replace: true });
    }
    expect(readFileSync(versionFile(), 'utf8')).toBe('damaged\n');
    expect(stagings()).toEqual([]);
    expect(services.restores.pending()).toEqual([]);
    // The services left stopped are started by the next recovery.
    expect(servicesStopped()).toBe(true);
    expect(await services.restores.recover(device.name)).toEqual([]);
    expect(servicesStopped()).toBe(false);
  }, 120_000);
});
