/**
 * Devices over SSH against the test fleet: real sshd, PostgreSQL and SQLite. Covers trusted
 * connections (pinned, unknown, changed keys; wrong key; unreachable), discovery, a full backup of
 * every source through the services, an incremental run, a failing dump, and a cut link.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSupport, startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { restore } from '../repository/restorer/restorer';
import { findSnapshot, listSnapshots, walkTree } from '../repository/snapshot/snapshot';
import type { Repository } from '../repository/repo/repository';
import type { Services } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { closeTestConsole, openTestConsole } from '../testing/test-console';
import { jobEnded, waitFor } from '../testing/wait';
import { backup } from '../repository/archiver/archiver';
import { DEFAULT_RULES } from '../../shared/schemas/monitoring';
import { evaluateRules } from '../monitoring/rules';
import { startDeviceBackup } from './device-backup';
import { DumpSource } from './sources/dump-source';
import { DeviceConnector } from './device-connector';
import { marked } from './leftovers';
import { sh } from './shell-quote';
import { DeviceConnection } from './ssh-connection';

const NETNS = netnsSupport();
let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
const PASSWORD = 'fleet test repository password';

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, netns: NETNS.ok, proxy: true, sharedModelMB: 6, uniqueModelMB: 2 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('fleet', PASSWORD));
  services.devices.import(device.profile(), 'test');
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

/** Every path a snapshot holds (files, folders, links). */
async function listFiles(repo: Repository, id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { path: p } of walkTree(repo, (await findSnapshot(repo, id)).tree)) out.push(p);
  return out;
}

async function options() {
  return services.devices.connectOptions(device.name);
}

describe('trusted connections to a real sshd', () => {
  it('connects with the pinned host key and runs quoted commands', async () => {
    const connection = await DeviceConnection.open(await options());
    try {
      expect(connection.fingerprint).toBe(device.hostKeyFingerprint);
      expect(await connection.run(sh`printf '%s' ${"it's $(not) run"}`)).toBe("it's $(not) run");
      await expect(connection.run(sh`exit 3`)).rejects.toMatchObject({ code: 'REMOTE_COMMAND_FAILED' });
    } finally {
      connection.close();
    }
  });

  it('shows the fingerprint of an unknown key instead of trusting it, and probes it without logging in', async () => {
    const { hostKey: _pinned, ...unpinned } = await options();
    await expect(DeviceConnection.open(unpinned)).rejects.toMatchObject({ code: 'HOST_KEY_UNKNOWN', issues: [{ path: 'hostKey', message: device.hostKeyFingerprint }] });
    expect(await DeviceConnector.probeHostKey(device.host, device.port)).toBe(device.hostKeyFingerprint);
    const accepted = await DeviceConnection.open({ ...unpinned, confirmHostKey: (fp) => fp === device.hostKeyFingerprint });
    accepted.close();
  });

  it('refuses a changed host key before authenticating', async () => {
    const wrong = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
    await expect(DeviceConnection.open({ ...(await options()), hostKey: wrong })).rejects.toMatchObject({ code: 'HOST_KEY_MISMATCH', message: expect.stringMatching(/has CHANGED.*Nothing was sent/s) as unknown });
  });

  it('says so when the key is wrong or nothing listens', async () => {
    const { privateKey } = generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const other = (await import('node:crypto')).createPrivateKey(privateKey).export({ type: 'pkcs8', format: 'pem' });
    await expect(DeviceConnection.open({ ...(await options()), auth: { kind: 'key', privateKey: other as string } })).rejects.toMatchObject({ code: expect.stringMatching(/AUTH_FAILED/) as unknown });
    await expect(DeviceConnection.open({ ...(await options()), host: '127.0.0.1', port: 1, readyTimeoutMs: 3000 })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

describe('a backup cancelled before its device answers', () => {
  it('ends at once — queued behind a device that does not answer, waiting for a free connection slot, or in its own login — and leaves no snapshot', async () => {
    const repo = await services.repository.open();
    const before = (await listSnapshots(repo)).length;
    // A console with one device connection at a time, and a second device name for the same box.
    const connector = new DeviceConnector(services.devices, 1);
    const deps = { devices: services.devices, connector, repository: services.repository, jobs: services.jobs };
    services.devices.import({ ...device.profile(), name: 'rvm-second' }, 'test');
    // The link is silent: the SSH handshake waits until its 20 s ready timeout.
    device.proxy!.stall();
    try {
      const first = startDeviceBackup(deps, device.name);
      const again = startDeviceBackup(deps, device.name); // the same device: waits for the first
      const other = startDeviceBackup(deps, 'rvm-second'); // another device: waits for the slot
      await new Promise((resolve) => setTimeout(resolve, 500));
      const ended = async (job: typeof first) => {
        const at = Date.now();
        expect(services.jobs.cancel(job.id)).toBe(true);
        const { record } = await job.done;
        return { status: record.status, phase: record.phase, error: record.error?.code, ms: Date.now() - at };
      };
      for (const job of [again, other, first]) {
        const outcome = await ended(job);
        expect(outcome).toMatchObject({ status: 'cancelled', phase: 'connect', error: 'CANCELLED' });
        expect(outcome.ms).toBeLessThan(3_000);
      }
    } finally {
      device.proxy!.restore();
      services.devices.remove('rvm-second', 'test');
    }
    expect((await listSnapshots(repo)).length).toBe(before);
    // The device is not left waiting on a cancelled queue: the next backup runs.
    const next = await startDeviceBackup(deps, device.name, ['config']).done;
    expect(next.record.status).toBe('succeeded');
  }, 90_000);
});

describe('a link that goes silent mid-transfer', () => {
  /**
   * Backs up app and db over a link that stalls mid-transfer; how long until the run ended, and its
   * record. `dead`: the link died — the device never hears the console give up (until releaseDead()).
   */
  async function stalledRun({ dead = false } = {}) {
    const { rmSync, writeFileSync } = await import('node:fs');
    const { randomBytes } = await import('node:crypto');
    const repo = await services.repository.open();
    const before = (await listSnapshots(repo)).length;
    const model = path.join(device.root, 'opt', device.app, 'models', 'silent-link.bin');
    writeFileSync(model, randomBytes(32 * 1024 * 1024));
    device.proxy!.delayMs = 30;
    try {
      const started = startDeviceBackup(services, device.name, ['app', 'db']);
      const deadline = Date.now() + 30_000;
      while (!services.jobs.active().some((p) => p.jobId === started.id && p.phase === 'transfer' && p.bytesDone > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      device.proxy!.stall({ deviceHearsNothing: dead });
      const stalled = Date.now();
      const { record } = await started.done;
      expect((await listSnapshots(repo)).length).toBe(before);
      return { waited: Date.now() - stalled, record };
    } finally {
      device.proxy!.delayMs = 0;
      device.proxy!.restore();
      rmSync(model, { force: true });
    }
  }

  it('ends the run once the device has been silent for as long as the console allows, saying the device stopped answering (not that a command failed), with no snapshot', async () => {
    // Shorter than the 20 s default: the run must end by this setting, not by ssh2's own default.
    services.settings.update({ silentLinkSeconds: 10 }, 'test');
    try {
      const { waited, record } = await stalledRun();
      // 10 s, checked every 2.5 s: 10–12.5 s (the default would take 20–25 s).
      expect(waited).toBeLessThan(17_000);
      expect(record.status).toBe('failed');
      expect(record.error?.code).toBe('UNAVAILABLE');
      expect(record.error?.message).toMatch(/(tar|dump of "db") on .* was cut off: .* stopped answering \(nothing heard from it for 10 s: .*raise "Give up on a silent device after" in Settings, or silentLinkSeconds with jetvault settings set\)/);
      expect(record.error?.message).not.toMatch(/exit (null|CONNECTION_LOST)/);
    } finally {
      services.settings.update({ silentLinkSeconds: 20 }, 'test');
    }
  }, 90_000);

  it('what the cut run left running on the device, blocked on the dead link, is stopped by the next backup, which says so', async () => {
    services.settings.update({ silentLinkSeconds: 10 }, 'test');
    try {
      const { record } = await stalledRun({ dead: true });
      expect(record.status).toBe('failed');
      // The device's sshd never heard the console leave: the run's tar is still there, blocked.
      expect(device.sessionProcesses('tar').length).toBeGreaterThan(0);
      const next = await startDeviceBackup(services, device.name, ['config']).done;
      expect(next.record.status).toBe('succeeded');
      expect(next.value!.leftoversStopped).toContain('tar');
      expect(device.sessionProcesses('tar')).toEqual([]);
      const after = await startDeviceBackup(services, device.name, ['config']).done;
      expect(after.record.status).toBe('succeeded');
      expect(after.value!.leftoversStopped).toBeUndefined();
    } finally {
      device.proxy!.releaseDead();
      services.settings.update({ silentLinkSeconds: 20 }, 'test');
    }
  }, 90_000);

  it('a restore also first stops what an earlier run of this console left running on the device, and notes it', async () => {
    const { rmSync } = await import('node:fs');
    // An earlier run's command as a dead link leaves it (marked by this console, its link gone).
    const earlier = await DeviceConnection.open(await services.devices.connectOptions(device.name));
    const held = await earlier.exec(marked(sh`sleep 300 | cat`, services.devices.marksScope(device.name)));
    held.stdout.resume();
    await waitFor('the command to run', () => device.sessionProcesses('sleep').length > 0, 5_000);
    device.proxy!.stall({ deviceHearsNothing: true });
    earlier.close();
    device.proxy!.restore();
    const inspect = path.join(device.root, 'srv', 'leftovers-inspect');
    try {
      expect(device.sessionProcesses('sleep')).toHaveLength(1);
      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['config'], targetRoot: inspect });
      const record = await jobEnded(services.jobs, jobId);
      expect(record.status).toBe('succeeded');
      expect((record.result as { notes: string[] }).notes.join('\n')).toMatch(/^First stopped what an earlier backup or drill had left running on the device \((sleep, cat|cat, sleep)\)\.$/m);
      expect(device.sessionProcesses('sleep')).toEqual([]);
    } finally {
      device.proxy!.releaseDead();
      rmSync(inspect, { recursive: true, force: true });
    }
  }, 90_000);

  it('a second device of the inventory on the same login (one Jetson under two names) leaves the first one\'s running commands alone', async () => {
    // Its LAN and its VPN address, say: each inventory device runs one job at a time, but the two
    // may run at once (the Fleet page backs both up) — a run must not take the other's for leftovers.
    const twin = `${device.name}-vpn`;
    services.devices.import({ ...device.profile(), name: twin }, 'test');
    const running = await DeviceConnection.open(await services.devices.connectOptions(device.name));
    try {
      const held = await running.exec(marked(sh`sleep 300 | cat`, services.devices.marksScope(device.name)));
      held.stdout.resume();
      await waitFor('the command to run', () => device.sessionProcesses('sleep').length > 0, 5_000);
      const twinRun = await startDeviceBackup(services, twin, ['config']).done;
      expect(twinRun.record.status).toBe('succeeded');
      expect(twinRun.value!.leftoversStopped).toBeUndefined();
      expect(device.sessionProcesses('sleep')).toHaveLength(1);
      // The device's own next run does take it for a cut run's leftover, and stops it.
      const ownRun = await startDeviceBackup(services, device.name, ['config']).done;
      expect(ownRun.record.status).toBe('succeeded');
      expect(ownRun.value!.leftoversStopped).toEqual(expect.arrayContaining(['sleep']));
      expect(device.sessionProcesses('sleep')).toEqual([]);
    } finally {
      running.close();
      services.devices.remove(twin, 'test');
    }
  }, 90_000);

  it('a device with a limit of its own is given up by that one, and the message points at the device\'s settings', async () => {
    // The console would wait 10 minutes; the device's profile says 10 s.
    services.settings.update({ silentLinkSeconds: 600 }, 'test');
    const profile = services.devices.get(device.name).profile;
    services.devices.update(device.name, { ...profile, silentLinkSeconds: 10 }, {}, 'test');
    try {
      const { waited, record } = await stalledRun();
      expect(waited).toBeLessThan(17_000);
      expect(record.status).toBe('failed');
      expect(record.error?.message).toMatch(/stopped answering \(nothing heard from it for 10 s: .*raise "Give up when silent for" in the device's settings \(silentLinkSeconds in its profile\)\)/);
    } finally {
      services.settings.update({ silentLinkSeconds: 20 }, 'test');
      services.devices.update(device.name, profile, {}, 'test');
    }
  }, 90_000);
});

describe('a backup cancelled while it lists', () => {
  it('ends at once when the link has gone silent under its first command, with no snapshot', async () => {
    const repo = await services.repository.open();
    const before = (await listSnapshots(repo)).length;
    // A slow field link: the run's first command (platform, disks, gzip) takes a few round trips.
    device.proxy!.delayMs = 300;
    try {
      const started = startDeviceBackup(services, device.name, ['config']);
      const deadline = Date.now() + 30_000;
      while (!services.jobs.active().some((p) => p.jobId === started.id && p.phase === 'list') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      device.proxy!.stall();
      expect(services.jobs.cancel(started.id)).toBe(true);
      const ended = await Promise.race([started.done.then(({ record }) => record), new Promise<null>((resolve) => setTimeout(() => resolve(null), 3_000))]);
      expect(ended).toMatchObject({ status: 'cancelled', phase: 'list' });
      await started.done;
    } finally {
      device.proxy!.delayMs = 0;
      device.proxy!.restore();
    }
    expect((await listSnapshots(repo)).length).toBe(before);
  }, 60_000);
});

describe('a backup that waits for a prune of this console', () => {
  it('ends at once when cancelled, and the prune goes on alone', async () => {
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let pruneRan = false;
    // Exclusive work (a prune) holds the repository; the backup waits for it before it connects.
    const prune = services.repository.exclusive(async () => {
      await holding;
      pruneRan = true;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const waiting = startDeviceBackup(services, device.name, ['config']);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(services.jobs.cancel(waiting.id)).toBe(true);
      const ended = await Promise.race([waiting.done.then(({ record }) => record), new Promise<null>((resolve) => setTimeout(() => resolve(null), 3_000))]);
      expect(ended).toMatchObject({ status: 'cancelled', phase: 'connect' });
      expect(pruneRan).toBe(false);
    } finally {
      release();
      await prune;
    }
    expect(pruneRan).toBe(true);
    // The repository takes writers again.
    expect((await startDeviceBackup(services, device.name, ['config']).done).record.status).toBe('succeeded');
  }, 60_000);
});

describe('Settings → Devices backed up in parallel', () => {
  it('holds the console to the number set now: lowered, a second device waits for a free slot; raised, it starts at once', async () => {
    const before = services.settings.get().maxParallelDevices;
    // A second device reached directly, while the first one's link is silent (its login hangs, holding a slot).
    services.devices.import({ ...device.profile(), name: 'rvm-direct', host: device.direct.host, port: device.direct.port }, 'test');
    services.settings.update({ maxParallelDevices: 1 }, 'test');
    device.proxy!.stall();
    const hung = startDeviceBackup(services, device.name, ['config']);
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const direct = startDeviceBackup(services, 'rvm-direct', ['config']);
      let ended = false;
      void direct.done.then(() => (ended = true));
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(ended).toBe(false);
      expect(services.jobs.active().find((p) => p.jobId === direct.id)?.phase).toBe('connect');
      // Raised: the waiting backup takes the new slot without waiting for the hung one.
      services.settings.update({ maxParallelDevices: 2 }, 'test');
      const { record } = await direct.done;
      expect(record.status).toBe('succeeded');
      expect(services.jobs.active().map((p) => p.jobId)).toContain(hung.id);
    } finally {
      services.jobs.cancel(hung.id);
      expect((await hung.done).record.status).toBe('cancelled');
      device.proxy!.restore();
      services.settings.update({ maxParallelDevices: before }, 'test');
      services.devices.remove('rvm-direct', 'test');
    }
  }, 90_000);
});

describe('discovery and backups of a device', () => {
  it('reads facts and proposes the sources that exist on the device', async () => {
    const facts = await services.connector.refreshFacts(device.name);
    expect(facts.l4t?.release).toMatch(/^R3[56]$/);
    expect(facts.tools).toHaveProperty('pg_dump');
    expect(facts.sqliteFiles).toContain(device.sqlitePath);
    expect(facts.postgresDatabases.some((line) => line.endsWith(`\t${device.pg.database}`))).toBe(true);
  });

  it('says which database server the login could not list, and why, beside the databases it could', async () => {
    const { createServer } = await import('node:net');
    const { chmodSync } = await import('node:fs');
    // A second PostgreSQL socket whose server hangs up on every connection.
    const socket = path.join(device.pg.socketDir, '.s.PGSQL.5999');
    const server = createServer((connection) => connection.destroy());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    chmodSync(socket, 0o777);
    try {
      const facts = await services.connector.refreshFacts(device.name);
      expect(facts.postgresDatabases.some((line) => line.endsWith(`\t${device.pg.database}`))).toBe(true);
      expect(facts.databaseErrors).toEqual([{ engine: 'postgres', where: `${device.pg.socketDir}:5999`, message: expect.stringMatching(/^psql: error: .*5999/) as unknown }]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect((await services.connector.refreshFacts(device.name)).databaseErrors).toEqual([]);
  });

  it('backs up every source, byte-exact for odd names, then only changes; a failing dump leaves no snapshot', async () => {
    const first = await startDeviceBackup(services, device.name).done;
    expect(first.record.error).toBeNull();
    expect(first.record.status).toBe('succeeded');
    const run = first.value!;
    expect(run.snapshots.map((s) => s.source)).toEqual(['db', 'local', 'config', 'logs', 'app']);
    expect(run.snapshots.find((s) => s.source === 'db')!.bytes).toBeGreaterThan(1_000_000);

    // Files with awkward names come back exactly as they are on the device.
    const repo = await services.repository.open();
    const app = await findSnapshot(repo, run.snapshots.find((s) => s.source === 'app')!.snapshotId);
    const out = tempDir();
    await restore(repo, app, out);
    const relative = path.relative(device.root, path.join(device.root, 'opt', device.app, 'data', 'files'));
    const original = path.join(device.root, relative);
    const { describeTree } = await import('../repository/testing/fixtures');
    expect(await describeTree(path.join(out, relative))).toEqual(await describeTree(original));
    expect(existsSync(path.join(out, 'opt', device.app, 'data', 'local.db'))).toBe(false);

    // Incremental: only the changed files cross the link.
    const changed = device.mutate.changeFiles(0.01);
    const changedBytes = changed.reduce((n, f) => n + statSync(f).size, 0);
    const second = (await startDeviceBackup(services, device.name, ['config', 'logs', 'app']).done).value!;
    const filesTransferred = second.snapshots.reduce((n, s) => n + s.bytesTransferred, 0);
    expect(filesTransferred).toBeLessThanOrEqual(changedBytes);
    expect(second.snapshots.reduce((n, s) => n + s.filesRead, 0)).toBe(changed.length);

    // A dump that fails ends the job with its error and writes nothing.
    const before = (await listSnapshots(repo)).length;
    const profile = { ...device.profile(), sources: [...device.profile().sources, { name: 'gone', kind: 'postgres' as const, database: 'no_such_db', host: device.pg.socketDir, port: device.pg.port }] };
    services.devices.update(device.name, profile, {}, 'test');
    const failed = await startDeviceBackup(services, device.name, ['config', 'gone']).done;
    expect(failed.record.status).toBe('failed');
    expect(failed.record.error?.message).toMatch(/no_such_db/);
    expect((await listSnapshots(repo)).length).toBe(before);
    services.devices.update(device.name, device.profile(), {}, 'test');
  });

  it('skips what the login cannot read, names it in the run, and keeps everything else', async () => {
    const { chmodSync, mkdirSync, rmSync, writeFileSync } = await import('node:fs');
    const config = path.join(device.root, 'etc', device.app);
    // Root's own, as on a stock image: a key file, and a folder the login cannot enter.
    writeFileSync(path.join(config, 'tls.key'), 'private\n', { mode: 0o600 });
    mkdirSync(path.join(config, 'private'), { mode: 0o700 });
    writeFileSync(path.join(config, 'private', 'token'), 'secret\n');
    chmodSync(path.join(config, 'private'), 0o700);
    try {
      const { record, value } = await startDeviceBackup(services, device.name, ['config']).done;
      expect(record.status).toBe('succeeded');
      const [config] = value!.snapshots;
      // Each named once, relative as in the snapshot, with the reason (not tar's or find's raw line).
      expect(config!.warnings).toBe(2);
      expect(config!.skipped).toEqual([
        { path: `etc/${device.app}/private`, message: "Permission denied: the device's login cannot read this folder, nothing in it was copied" },
        { path: `etc/${device.app}/tls.key`, message: "Cannot open: Permission denied (the device's login cannot read it)" },
      ]);
      // The job history keeps the list; the snapshot holds everything else.
      expect(services.jobs.get(record.id)!.result).toMatchObject({ snapshots: [{ skipped: config!.skipped }] });
      const repo = await services.repository.fresh();
      const files = await listFiles(repo, config!.snapshotId);
      expect(files).toContain(`etc/${device.app}/${device.app}.yaml`);
      expect(files.filter((f) => /tls\.key|private/.test(f))).toEqual([`etc/${device.app}/private`]);
    } finally {
      rmSync(path.join(config, 'tls.key'));
      rmSync(path.join(config, 'private'), { recursive: true });
    }
  });

  it('a device imported and never discovered gets its disks from its backups: the fleet shows its free space, the low-disk alert looks at it', async () => {
    // As a profile imported from a shared file leaves it (no facts read yet).
    services.history.db.prepare('UPDATE devices SET facts = NULL, facts_at = NULL, disks = NULL, disks_at = NULL WHERE name = ?').run(device.name);
    const row = () => services.overview.overview().devices.find((d) => d.name === device.name)!;
    expect(row().diskFreeBytes).toBeNull();
    expect(services.devices.detail(services.devices.get(device.name)).disks).toBeNull();
    // Any disk is less than 100% free: the rule raises for a device whose disks it sees.
    const input = () => {
      const current = services.alerts.input();
      return { ...current, devices: current.devices.filter((d) => d.name === device.name) };
    };
    const withAll = { ...DEFAULT_RULES, deviceDiskLow: { enabled: true, threshold: 100 } };
    expect(evaluateRules(input(), withAll).filter((c) => c.rule === 'deviceDiskLow')).toEqual([]);

    const { record } = await startDeviceBackup(services, device.name, ['config']).done;
    expect(record.status).toBe('succeeded');
    const after = services.devices.get(device.name);
    expect(after.facts).toBeNull(); // what discovery reads (databases, tools) is not guessed
    const root = after.disks!.disks.find((d) => d.mount === '/')!;
    expect(root.sizeBytes).toBeGreaterThan(0);
    expect(Date.parse(after.disks!.at)).toBeGreaterThan(Date.now() - 60_000);
    expect(services.devices.detail(after).disks).toEqual(after.disks);
    expect(row().diskFreeBytes).toBeGreaterThan(0);
    expect(evaluateRules(input(), withAll).filter((c) => c.rule === 'deviceDiskLow')).toHaveLength(1);
  });

  it("each backup reads the device's disks again: the page and the low-disk alert follow the device between discoveries", async () => {
    const facts = await services.connector.refreshFacts(device.name);
    expect(facts.disks.length).toBeGreaterThan(0);
    // As if discovery had found the disks full, and nothing had read them since.
    services.devices.setFacts(device.name, { ...facts, disks: facts.disks.map((d) => ({ ...d, usedBytes: d.sizeBytes - 1, availableBytes: 1 })) });
    // Followed on `/`: a stand-in device shares this machine's mounts, where test files running
    // beside this one mount and fill small disks of their own.
    const rootDisk = (disks: typeof facts.disks) => disks.find((d) => d.mount === '/')!;
    expect(rootDisk(facts.disks).availableBytes).toBeGreaterThan(1);
    const rootFull = () => services.alerts.list('open').filter((a) => a.rule === 'deviceDiskLow' && /(on|,) \/ \(0\.0% free\)/.test(a.message));
    services.alerts.evaluate();
    expect(rootFull()).toHaveLength(1);

    const { record } = await startDeviceBackup(services, device.name, ['config']).done;
    expect(record.status).toBe('succeeded');
    const stored = services.devices.get(device.name);
    const after = stored.facts!;
    expect(after.collectedAt).toBe(facts.collectedAt); // the rest stays as discovered
    expect(stored.factsAt! < stored.disks!.at).toBe(true);
    expect(after.disks).toEqual(stored.disks!.disks); // one copy: the facts show the newest read's
    expect(rootDisk(after.disks).sizeBytes).toBe(rootDisk(facts.disks).sizeBytes);
    expect(rootDisk(after.disks).availableBytes).toBeGreaterThan(1);
    const row = services.history.db.prepare<[string], { facts: string }>('SELECT facts FROM devices WHERE name = ?').get(device.name)!;
    expect(JSON.parse(row.facts)).not.toHaveProperty('disks');
    services.alerts.evaluate();
    expect(rootFull()).toEqual([]);
  });

  it('a dump behind a table another session holds locked fails after the lock wait, saying why, with no snapshot', async () => {
    const config = device.profile().sources.find((s) => s.kind === 'postgres')!;
    // A migration's lock, held 5 s; the dump waits 1 s for it.
    const holder = device.mutate.sql('BEGIN; LOCK TABLE deposits IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(5); COMMIT;');
    const held = "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND relation = 'deposits'::regclass;";
    for (let i = 0; i < 100 && (await device.mutate.sql(held)) !== '1'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const repo = await services.repository.open();
    const before = (await listSnapshots(repo)).length;
    const connection = await DeviceConnection.open(await options());
    try {
      const dump = new DumpSource(connection, config, null, { lockWaitMs: 1000 });
      await expect(backup(repo, dump, { device: device.name })).rejects.toThrow(
        new RegExp(`lock timeout.*No snapshot was written\\. Another session held a table of "${config.kind === 'postgres' ? config.database : ''}" locked for more than 1 s`, 's'),
      );
    } finally {
      connection.close();
      await holder;
    }
    expect(await listSnapshots(await services.repository.fresh())).toHaveLength(before);
  }, 30_000);

  it('holds each command to the bandwidth limit, both ways, and the setting reaches device backups', async () => {
    const MiB = 1024 * 1024;
    const connection = await DeviceConnection.open({ ...(await options()), rateLimit: () => MiB });
    try {
      let started = performance.now();
      const down = await connection.exec(sh`head -c ${3 * MiB} /dev/zero`);
      down.stdin.end();
      let bytes = 0;
      for await (const chunk of down.stdout) bytes += (chunk as Buffer).length;
      expect((await down.done).code).toBe(0);
      expect(bytes).toBe(3 * MiB);
      // 3 MiB at 1 MiB/s, less a 100 ms burst: a slower machine only takes longer.
      expect(performance.now() - started).toBeGreaterThan(2800);

      started = performance.now();
      const up = await connection.exec(sh`wc -c`);
      let counted = '';
      up.stdout.on('data', (chunk: Buffer) => (counted += chunk.toString()));
      up.stdin.end(Buffer.alloc(3 * MiB, 1)); // one write: sent in slices, not held and then sent at once
      expect((await up.done).code).toBe(0);
      expect(counted.trim()).toBe(String(3 * MiB));
      expect(performance.now() - started).toBeGreaterThan(2800);
    } finally {
      connection.close();
    }

    // Settings → device backups: 1.5 MiB of new log at 512 KiB/s takes its seconds, then unlimited again.
    const { randomBytes } = await import('node:crypto');
    const { rmSync, writeFileSync } = await import('node:fs');
    const log = path.join(device.root, 'var', 'log', device.app, 'burst.log');
    writeFileSync(log, randomBytes(1.5 * MiB));
    services.settings.update({ bandwidthLimitKiBps: 512 }, 'test');
    try {
      const { record, value } = await startDeviceBackup(services, device.name, ['logs']).done;
      expect(record.status).toBe('succeeded');
      expect(value!.snapshots[0]!.bytesTransferred).toBeGreaterThanOrEqual(1.5 * MiB);
      expect(value!.durationMs).toBeGreaterThan(2500);
    } finally {
      services.settings.update({ bandwidthLimitKiBps: 0 }, 'test');
      rmSync(log);
    }
  }, 60_000);

  it('compresses on its own over a slow link: the same files and dump, a fraction of the bytes on the wire', async () => {
    const repo = await services.repository.open();
    const fast = (await startDeviceBackup(services, device.name, ['db']).done).value!;
    expect(fast.wireCompression).toBe(false);
    device.mutate.changeFiles(0.05);
    device.proxy!.delayMs = 40; // 80 ms round trips, bandwidth untouched
    try {
      const slow = await startDeviceBackup(services, device.name, ['db', 'app']).done;
      expect(slow.record.error).toBeNull();
      const run = slow.value!;
      expect(run.wireCompression).toBe(true);
      const [db, app] = [run.snapshots.find((s) => s.source === 'db')!, run.snapshots.find((s) => s.source === 'app')!];
      // The same dump (pg_dump's custom format of unchanged data has the same size), in a fraction of the bytes.
      expect(db.bytes).toBe(fast.snapshots[0]!.bytes);
      expect(db.bytesOnWire).toBeLessThan(db.bytesTransferred / 2);
      expect(app.filesRead).toBeGreaterThan(0);
      expect(app.bytesOnWire).toBeGreaterThan(0);
      const out = tempDir();
      await restore(repo, await findSnapshot(repo, app.snapshotId), out);
      const { describeTree } = await import('../repository/testing/fixtures');
      const appDir = path.join('opt', device.app);
      const onDevice = Object.entries(await describeTree(path.join(device.root, appDir))).filter(([p]) => !p.startsWith('data/local.db'));
      expect(await describeTree(path.join(out, appDir))).toEqual(Object.fromEntries(onDevice));
    } finally {
      device.proxy!.delayMs = 0;
    }
  }, 120_000);

  it('a large model patched in place crosses as the blocks that changed, over a fast link and a slow compressing one', async () => {
    const { chownSync, closeSync, openSync, rmSync, writeFileSync, writeSync } = await import('node:fs');
    const { createHash, randomBytes } = await import('node:crypto');
    const MiB = 1024 * 1024;
    const repo = await services.repository.open();
    const relative = path.join('opt', device.app, 'models', 'tuned.engine');
    const model = path.join(device.root, relative);
    writeFileSync(model, randomBytes(12 * MiB));
    chownSync(model, device.account.uid, device.account.gid);
    const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
    try {
      expect((await startDeviceBackup(services, device.name, ['app']).done).record.status).toBe('succeeded');
      for (const delayMs of [0, 40]) {
        const fd = openSync(model, 'r+');
        writeSync(fd, randomBytes(4096), 0, 4096, Math.floor(Math.random() * (12 * MiB - 4096)));
        closeSync(fd);
        device.proxy!.delayMs = delayMs;
        try {
          const { record, value } = await startDeviceBackup(services, device.name, ['app']).done;
          expect(record.error).toBeNull();
          expect(value!.wireCompression).toBe(delayMs > 0);
          const [app] = value!.snapshots;
          expect(app!.filesRead).toBe(1);
          expect(app!.deltaFiles).toBe(1);
          // One or two 64 KiB blocks and ~12 KB of hashes, where the whole model is 12 MiB.
          expect(app!.bytesTransferred).toBeLessThan(MiB);
          expect(app!.bytesOnWire).toBeLessThan(MiB);
          const out = tempDir();
          await restore(repo, await findSnapshot(repo, app!.snapshotId), out);
          expect(sha(path.join(out, relative))).toBe(sha(model));
        } finally {
          device.proxy!.delayMs = 0;
        }
      }
    } finally {
      rmSync(model, { force: true });
    }
  }, 120_000);

  for (const wireCompression of ['off', 'on'] as const) {
    it.skipIf(!NETNS.ok)(`a link cut mid-transfer ends the job with a clear error and no snapshot (compression ${wireCompression})${NETNS.ok ? '' : ` (skipped: ${NETNS.reason})`}`, async () => {
      services.devices.update(device.name, { ...device.profile(), wireCompression }, {}, 'test');
      const repo = await services.repository.open();
      const before = (await listSnapshots(repo)).length;
      await device.link!.rate(4000); // 4 Mbit/s: the app source takes seconds
      device.mutate.changeFiles(0.5);
      try {
        const started = startDeviceBackup(services, device.name, ['app']);
        const deadline = Date.now() + 30_000;
        while (!services.jobs.active().some((p) => p.jobId === started.id && p.phase === 'transfer') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        await new Promise((r) => setTimeout(r, 500));
        await device.link!.cut();
        const { record } = await started.done;
        expect(record.status).toBe('failed');
        expect(record.error?.code).toMatch(/TIMEOUT|UNAVAILABLE|REMOTE_COMMAND_FAILED|INTERNAL/);
        expect((await listSnapshots(repo)).length).toBe(before);
      } finally {
        await device.link!.clear();
        services.devices.update(device.name, device.profile(), {}, 'test');
      }
      // The device is usable again right after.
      const again = await startDeviceBackup(services, device.name, ['config']).done;
      expect(again.record.status).toBe('succeeded');
    }, 120_000);
  }
});

describe('profile files', () => {
  it('the fleet profile reads back exactly as exported', async () => {
    const exported = services.devices.export([device.name]).devices[0]!;
    expect(exported).toMatchObject({ name: device.name, hostKey: device.hostKeyFingerprint, sysroot: device.root });
    expect(readFileSync(device.identityFile, 'utf8')).toMatch(/PRIVATE KEY/);
    expect(await readFile(device.identityFile)).toBeInstanceOf(Buffer);
  });
});
