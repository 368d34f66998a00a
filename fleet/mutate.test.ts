import { existsSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot } from './accounts';
import { startDevice } from './fleet';
import type { Device } from './device';
import { leftovers, skipReason, tracesOf } from './test-support';
import type { FleetTraces } from './test-support';

const skip = skipReason('fleet mutations', isRoot() ? null : 'the test fleet needs root (accounts, sshd as root, tmpfs mounts); CI runs as root');

describe.skipIf(skip)('moving a device forward in time', () => {
  let d: Device;
  let traces: FleetTraces;

  beforeAll(async () => {
    const device = await startDevice({ sharedModelMB: 4, uniqueModelMB: 2 });
    d = device;
    traces = tracesOf(device.fleet);
  });

  afterAll(async () => {
    await d?.stop(); // a single device's stop() stops its fleet
    if (traces) expect(await leftovers(traces, 3_000)).toEqual([]);
  });

  it('changes about 1% of the files (at least one), keeping model sizes', () => {
    const files = d.mutate.files();
    expect(files.length).toBeGreaterThan(20);
    const before = new Map(files.map((f) => [f, readFileSync(f)]));
    const changed = d.mutate.changeFiles(0.01);
    expect(changed.length).toBe(Math.max(1, Math.round(files.length * 0.01)));
    for (const f of changed) expect(readFileSync(f).equals(before.get(f)!)).toBe(false);
    const untouched = files.filter((f) => !changed.includes(f));
    for (const f of untouched) expect(readFileSync(f).equals(before.get(f)!)).toBe(true);
    const model = `${d.root}/opt/myrvm/models/detector-v7.engine`;
    const size = statSync(model).size;
    d.mutate.changeFiles(1);
    expect(statSync(model).size).toBe(size);
  });

  it('patches the largest model in place: same size, only those bytes differ', () => {
    const models = d.mutate.files().filter((f) => /\.(onnx|engine)$/.test(f));
    const largest = models.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a));
    const before = readFileSync(largest);
    expect(d.mutate.patchModel(4096)).toBe(largest);
    const after = readFileSync(largest);
    expect(after.length).toBe(before.length);
    let first = -1;
    let last = -1;
    for (let i = 0; i < after.length; i++) {
      if (after[i] === before[i]) continue;
      if (first < 0) first = i;
      last = i;
    }
    expect(first).toBeGreaterThanOrEqual(0);
    expect(last - first).toBeLessThan(4096);
  });

  it('appends log lines and corrupts a file in place', () => {
    const log = `${d.root}/var/log/myrvm/app.log`;
    const size = statSync(log).size;
    d.mutate.appendLogs(50);
    const text = readFileSync(log, 'utf8');
    expect(statSync(log).size).toBeGreaterThan(size);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [A-Z]+ myrvm\.vision: /);

    const model = `${d.root}/opt/myrvm/models/classifier-v3.onnx`;
    const original = readFileSync(model);
    d.mutate.corruptFile('opt/myrvm/models/classifier-v3.onnx', 16);
    const after = readFileSync(model);
    expect(after.length).toBe(original.length);
    expect(after.equals(original)).toBe(false);
  });

  it('rotates logs like logrotate: live → .1 → .2.gz, oldest dropped', () => {
    const dir = `${d.root}/var/log/myrvm`;
    const live = readFileSync(`${dir}/app.log`);
    const one = readFileSync(`${dir}/app.log.1`);
    const four = readFileSync(`${dir}/app.log.4.gz`);
    d.mutate.rotateLogs();
    expect(readFileSync(`${dir}/app.log`).length).toBe(0);
    expect(readFileSync(`${dir}/app.log.1`).equals(live)).toBe(true);
    expect(gunzipSync(readFileSync(`${dir}/app.log.2.gz`)).equals(one)).toBe(true);
    expect(readFileSync(`${dir}/app.log.5.gz`).equals(four)).toBe(true);
    expect(existsSync(`${dir}/app.log.6.gz`)).toBe(false);
    expect(statSync(`${dir}/app.log`).uid).toBe(d.account.uid);
  });

  it('inserts, updates and deletes PostgreSQL rows', async () => {
    const count = await d.mutate.pgCount('deposits');
    expect(await d.mutate.pgInsertRows(500)).toBe(count + 500);
    await d.mutate.pgUpdateRows(100);
    await d.mutate.pgDeleteRows(200);
    expect(await d.mutate.pgCount('deposits')).toBe(count + 300);
  });

  it('inserts, updates and deletes SQLite rows, as the device account', async () => {
    const count = await d.mutate.sqliteCount('scans');
    expect(await d.mutate.sqliteInsertRows(100)).toBe(count + 100);
    await d.mutate.sqliteUpdateRows(10);
    await d.mutate.sqliteDeleteRows(40);
    expect(await d.mutate.sqliteCount('scans')).toBe(count + 60);
    expect(statSync(d.sqlitePath).uid).toBe(d.account.uid);
    const r = await d.exec(`sqlite3 '${d.sqlitePath}' 'PRAGMA integrity_check'`);
    expect(r.stdout.toString().trim()).toBe('ok');
  });

  it('keeps SQLite open in a writer whose rows live only in the WAL, and sqlite3 .backup still has them', async () => {
    const before = await d.mutate.sqliteCount('scans');
    const writer = await d.mutate.sqliteOpenWriter(77);
    try {
      expect(writer.walBytes).toBeGreaterThan(0);
      const r = await d.exec(`sqlite3 '${d.sqlitePath}' ".backup '$HOME/wal.db'" && sqlite3 "$HOME/wal.db" 'SELECT count(*) FROM scans'`);
      expect(Number(r.stdout.toString().trim())).toBe(before + 77);
    } finally {
      await writer.close();
    }
  });

  it('fills a device path to the brim, so writes over SSH fail with ENOSPC, and releases it', async () => {
    const rel = 'var/log/myrvm';
    const { mount, freeBytes } = await d.mutate.fillDisk(rel, { sizeMB: 4 });
    expect(freeBytes).toBe(0);
    expect(readFileSync('/proc/mounts', 'utf8')).toContain(mount);
    const listing = await d.exec(`ls '${mount}'`);
    expect(listing.stdout.toString()).toContain('app.log.2.gz'); // contents kept on the small disk
    const write = await d.exec(`head -c 65536 /dev/zero > '${mount}/more.bin'`);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/No space left on device/);
    await d.mutate.releaseDisk(rel);
    expect(readFileSync('/proc/mounts', 'utf8')).not.toContain(mount);
  });

  it('a filled disk left mounted is unmounted by stop()', async () => {
    await d.mutate.fillDisk('opt/myrvm/data/files', { sizeMB: 1 });
    expect(readFileSync('/proc/mounts', 'utf8')).toContain(`${d.root}/opt/myrvm/data/files`);
    // afterAll's leftovers() checks that no mount under the fleet dir survives stop().
  });
});
