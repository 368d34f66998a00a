import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors';
import { AuditQuerySchema } from '../../shared/schemas/fleet';
import type { Dashboard } from '../../shared/schemas/fleet';
import { effectiveRpo } from '../../shared/tiers';
import { EventBus } from '../event-bus';
import { openHistoryDatabase } from '../history/database';
import { HistoryStore } from '../history/history-store';
import { MIGRATIONS } from '../history/migrations';
import { prepareSeedStatements } from '../history/statements';
import { JobManager } from '../jobs/job-manager';
import { silentLogger } from '../log';
import { SecretStore } from '../secrets/secret-store';
import { DeviceService } from '../devices/device-service';
import { SettingsService } from '../services/settings-service';
import { tempDir } from '../testing/temp-dir';
import { seedBackupRun } from '../testing/seed-runs';
import type { SeededRun } from '../testing/seed-runs';
import { AuditService, csvField } from './audit-service';
import { DashboardService } from './dashboard-service';
import { OverviewService } from './overview-service';
import { deviceReport } from './report';
import { recordDiskSamples, recordStorageSamples, sampleStorageAfterBackups } from './samples';
import { seedDeviceName, seedFleet } from './seed';

const T0 = Date.parse('2026-06-01T12:00:00.000Z');
const MIN = 60_000;

/** A store with a clock the test moves. */
function open(dir = tempDir()) {
  const store = new HistoryStore(dir);
  const clock = { now: T0 };
  const now = () => clock.now;
  const bus = new EventBus();
  const settings = new SettingsService(store, bus, silentLogger);
  const devices = new DeviceService(store, new SecretStore(store, SecretStore.passphraseCipher(store, 'a test passphrase')));
  return {
    store,
    clock,
    settings,
    devices,
    jobs: new JobManager(store, bus, silentLogger, now),
    overview: new OverviewService(store, settings, now),
    dashboards: new DashboardService(store, settings, now),
    audit: new AuditService(store, now),
  };
}

/** A device added long before the test's clock (the service stamps the real time), unless `addedAt` says when. */
function addDevice(ctx: ReturnType<typeof open>, name: string, extra: Record<string, unknown> = {}, addedAt = T0 - 400 * 24 * 3_600_000) {
  const device = ctx.devices.add({ name, host: '127.0.0.9', user: 'jetson', site: 'Depot North', sources: [{ name: 'db', kind: 'postgres', database: 'app' }], ...extra }, {}, 'test');
  ctx.store.db.prepare('UPDATE devices SET created_at = ? WHERE id = ?').run(new Date(addedAt).toISOString(), device.id);
  return device;
}

/** Inserts a finished backup run as the job manager records one. */
function run(ctx: ReturnType<typeof open>, deviceId: string, startedAt: number, opts: SeededRun = {}) {
  seedBackupRun(ctx.store.db, deviceId, startedAt, opts);
}

const rowOf = (ctx: ReturnType<typeof open>, name: string) => ctx.overview.overview().devices.find((d) => d.name === name)!;

describe('tiers', () => {
  it("takes the device's own RPO, else its tier tag, else the default", () => {
    expect(effectiveRpo({ rpoMinutes: 30, tags: ['tier:critical'] }, 60)).toEqual({ rpoMinutes: 30, tier: 'critical', from: 'device' });
    expect(effectiveRpo({ rpoMinutes: 30, tags: [] }, 60)).toEqual({ rpoMinutes: 30, tier: 'important', from: 'device' });
    expect(effectiveRpo({ tags: ['Critical'] }, 60)).toEqual({ rpoMinutes: 15, tier: 'critical', from: 'tier' });
    expect(effectiveRpo({ tags: ['tier:standard'] }, 60)).toEqual({ rpoMinutes: 1440, tier: 'standard', from: 'tier' });
    expect(effectiveRpo({ tags: ['camera'] }, 240)).toEqual({ rpoMinutes: 240, tier: 'standard', from: 'default' });
    expect(effectiveRpo({ tags: [] }, 10)).toEqual({ rpoMinutes: 10, tier: 'critical', from: 'default' });
  });
});

describe('fleet overview', () => {
  it('turns a device red once its newest good backup is older than its RPO (controllable clock)', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-017', { tags: ['tier:critical'] });
    expect(rowOf(ctx, 'rvm-017')).toMatchObject({ status: 'at-risk', rpoState: 'never', rpoMinutes: 15, tier: 'critical', lastGoodAt: null });

    run(ctx, device.id, T0 - 2 * MIN, { durationMs: 60_000 }); // finished at T0 - 1 min
    expect(rowOf(ctx, 'rvm-017')).toMatchObject({ status: 'protected', rpoState: 'ok' });

    ctx.clock.now = T0 + 14 * MIN; // 15 min after the backup finished: still within
    expect(rowOf(ctx, 'rvm-017').status).toBe('protected');
    ctx.clock.now = T0 + 14 * MIN + 1000;
    const late = rowOf(ctx, 'rvm-017');
    expect(late).toMatchObject({ status: 'at-risk', rpoState: 'breached' });
    expect(late.ageMinutes).toBeGreaterThan(15);
    expect(ctx.overview.overview().summary).toEqual({ total: 1, protected: 0, atRisk: 1, unreachable: 0 });

    // A failed attempt does not reset the age; the next good backup does.
    run(ctx, device.id, T0 + 10 * MIN, { status: 'failed', error: { code: 'REMOTE_COMMAND_FAILED', message: 'pg_dump exited with 1' } });
    expect(rowOf(ctx, 'rvm-017')).toMatchObject({ status: 'at-risk', lastAttemptStatus: 'failed', lastAttemptError: 'pg_dump exited with 1', lastAttemptErrorCode: 'REMOTE_COMMAND_FAILED', reachability: 'reachable' });
    // A refused host key is its own case (the page shows it): the device answered, nothing was sent.
    run(ctx, device.id, T0 + 11 * MIN, { status: 'failed', error: { code: 'HOST_KEY_MISMATCH', message: 'The host key … has CHANGED' } });
    expect(rowOf(ctx, 'rvm-017')).toMatchObject({ lastAttemptErrorCode: 'HOST_KEY_MISMATCH', reachability: 'reachable' });
    run(ctx, device.id, T0 + 14 * MIN);
    expect(rowOf(ctx, 'rvm-017').status).toBe('protected');
    ctx.store.close();
  });

  it('counts only runs that covered every source, as the scheduler does', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-030', {
      tags: ['tier:important'],
      sources: [
        { name: 'db', kind: 'postgres', database: 'app' },
        { name: 'logs', kind: 'files', paths: ['/var/log/app'] },
      ],
    });
    run(ctx, device.id, T0 - 90 * MIN, { sources: ['db', 'logs'] });
    run(ctx, device.id, T0 - 10 * MIN, { sources: ['logs'] }); // a source on its own schedule
    const row = rowOf(ctx, 'rvm-030');
    expect(row.lastGoodAt).toBe(new Date(T0 - 90 * MIN + 30_000).toISOString());
    expect(row).toMatchObject({ rpoState: 'breached', status: 'at-risk', lastAttemptStatus: 'succeeded' });
    run(ctx, device.id, T0 - 5 * MIN, { sources: ['logs', 'db'] });
    expect(rowOf(ctx, 'rvm-030')).toMatchObject({ rpoState: 'ok', status: 'protected' });
    ctx.store.close();
  });

  it('follows a changed RPO and the default RPO setting', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-002');
    run(ctx, device.id, T0 - 31 * MIN);
    expect(rowOf(ctx, 'rvm-002')).toMatchObject({ status: 'protected', rpoMinutes: 60, rpoFrom: 'default' });
    ctx.settings.update({ defaultRpoMinutes: 20 }, 'test');
    expect(rowOf(ctx, 'rvm-002')).toMatchObject({ status: 'at-risk', rpoMinutes: 20, tier: 'important' });
    ctx.devices.update('rvm-002', { ...ctx.devices.get('rvm-002').profile, rpoMinutes: 45 }, {}, 'test');
    expect(rowOf(ctx, 'rvm-002')).toMatchObject({ status: 'protected', rpoMinutes: 45, rpoFrom: 'device' });
    ctx.store.close();
  });

  it('does not count a run stamped in the future (a clock that was ahead) as protecting the device', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-041', { rpoMinutes: 60 });
    run(ctx, device.id, T0 - 3 * 24 * 60 * MIN);
    run(ctx, device.id, T0 + 365 * 24 * 60 * MIN); // backed up while the laptop's clock was a year ahead
    expect(rowOf(ctx, 'rvm-041')).toMatchObject({ status: 'at-risk', rpoState: 'breached', lastGoodAt: new Date(T0 - 3 * 24 * 60 * MIN + 30_000).toISOString() });
    expect(ctx.overview.overview().summary).toMatchObject({ protected: 0, atRisk: 1 });
    run(ctx, device.id, T0 - 5 * MIN);
    expect(rowOf(ctx, 'rvm-041')).toMatchObject({ status: 'protected', rpoState: 'ok' });
    ctx.store.close();
  });

  it('marks a device unreachable when its last job could not reach it, until it is reached again', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-003');
    expect(rowOf(ctx, 'rvm-003').reachability).toBe('unknown');
    run(ctx, device.id, T0 - 20 * MIN);
    run(ctx, device.id, T0 - 5 * MIN, { status: 'failed', durationMs: 15_000, error: { code: 'UNAVAILABLE', message: '127.0.0.9:22 is unreachable (EHOSTUNREACH)' } });
    expect(rowOf(ctx, 'rvm-003')).toMatchObject({ reachability: 'unreachable', status: 'unreachable', rpoState: 'ok' });
    expect(ctx.overview.overview().summary.unreachable).toBe(1);
    // Facts read after the failure: reached again.
    ctx.clock.now = T0 + MIN;
    ctx.devices.setFacts('rvm-003', {
      collectedAt: new Date().toISOString(),
      hostname: 'rvm-003',
      kernel: '5.15',
      arch: 'aarch64',
      l4t: null,
      model: null,
      disks: [{ mount: '/', filesystem: '/dev/nvme0n1p1', sizeBytes: 100, usedBytes: 95, availableBytes: 5 }],
      tools: {},
      services: [],
      postgresDatabases: [],
      mysqlDatabases: [],
      databaseErrors: [],
      sqliteFiles: [],
      appDirs: [],
      configPaths: [],
      logDirs: [],
    });
    // (facts_at is the wall clock, after the seeded job): reachable, disk nearly full, the database did not answer.
    expect(rowOf(ctx, 'rvm-003')).toMatchObject({ reachability: 'reachable', status: 'protected', diskFreeBytes: 5, diskFreeFraction: 0.05, databaseUp: false });
    // Reading facts also sampled the disk for the trend charts.
    expect(ctx.store.db.prepare('SELECT metric, value FROM metric_samples WHERE device_id = ? ORDER BY metric').all(device.id)).toEqual([
      { metric: 'device_disk_permille', value: 950 },
      { metric: 'device_disk_used', value: 95 },
    ]);
    ctx.store.close();
  });

  it('estimates RTO from the newest drill against the objective, and says when there is none', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-004', { rtoMinutes: 10 });
    expect(rowOf(ctx, 'rvm-004')).toMatchObject({ rtoEstimateMs: null, rtoState: 'unknown', rtoObjectiveMinutes: 10 });
    const drill = prepareSeedStatements(ctx.store.db).drill;
    drill.run('drl_a', device.id, 'rvm-004', new Date(T0 - 60 * MIN).toISOString(), new Date(T0 - 52 * MIN).toISOString(), 'passed', 8 * MIN, null);
    expect(rowOf(ctx, 'rvm-004')).toMatchObject({ rtoEstimateMs: 8 * MIN, rtoState: 'ok' });
    drill.run('drl_b', device.id, 'rvm-004', new Date(T0 - 30 * MIN).toISOString(), new Date(T0 - 18 * MIN).toISOString(), 'passed', 12 * MIN, null);
    expect(rowOf(ctx, 'rvm-004')).toMatchObject({ rtoEstimateMs: 12 * MIN, rtoState: 'over' });
    drill.run('drl_c', device.id, 'rvm-004', new Date(T0 - 10 * MIN).toISOString(), new Date(T0 - 9 * MIN).toISOString(), 'failed', null, 'validation failed');
    expect(rowOf(ctx, 'rvm-004')).toMatchObject({ rtoEstimateMs: 12 * MIN, rtoState: 'failed' });
    // A drill that skipped sources it cannot drill measured the rest: within the objective, but partial.
    drill.run('drl_d', device.id, 'rvm-004', new Date(T0 - 8 * MIN).toISOString(), new Date(T0 - 5 * MIN).toISOString(), 'partial', 3 * MIN, null);
    expect(rowOf(ctx, 'rvm-004')).toMatchObject({ rtoEstimateMs: 3 * MIN, rtoState: 'partial' });
    drill.run('drl_e', device.id, 'rvm-004', new Date(T0 - 4 * MIN).toISOString(), new Date(T0 - 3 * MIN).toISOString(), 'passed', 4 * MIN, null);
    expect(rowOf(ctx, 'rvm-004')).toMatchObject({ rtoEstimateMs: 4 * MIN, rtoState: 'ok' });
    ctx.store.close();
  });

  it('counts the drills of each bucket over their own device\'s RTO objective, not the default one', () => {
    const ctx = open();
    // Default objective 60 min; rvm-041 has its own of 10 min, rvm-042 the default.
    const tight = addDevice(ctx, 'rvm-041', { rtoMinutes: 10 });
    const usual = addDevice(ctx, 'rvm-042');
    const drill = prepareSeedStatements(ctx.store.db).drill;
    const at = (minutesAgo: number) => new Date(T0 - minutesAgo * MIN).toISOString();
    drill.run('drl_t1', tight.id, 'rvm-041', at(120), at(100), 'passed', 20 * MIN, null); // over its 10 min
    drill.run('drl_t2', tight.id, 'rvm-041', at(90), at(82), 'passed', 8 * MIN, null);
    drill.run('drl_u1', usual.id, 'rvm-042', at(80), at(50), 'passed', 30 * MIN, null); // within 60 min
    drill.run('drl_u2', usual.id, 'rvm-042', at(40), at(39), 'failed', null, 'validation failed');
    const fleet = ctx.dashboards.dashboard({ range: '24h' });
    expect(fleet.drills.reduce((n, d) => n + d.count, 0)).toBe(4);
    expect(fleet.drills.reduce((n, d) => n + d.over, 0)).toBe(1);
    expect(fleet.drills.reduce((n, d) => n + d.failed, 0)).toBe(1);
    expect(fleet.drills.every((d) => d.objectiveMs === 60 * MIN)).toBe(true);
    const one = ctx.dashboards.dashboard({ range: '24h', device: 'rvm-041' });
    expect(one.drills.map((d) => [d.over, d.objectiveMs])).toEqual([
      [1, 10 * MIN],
      [0, 10 * MIN],
    ]);
    ctx.store.close();
  });

  it('keeps the last finished verification while another runs, and does not count a cancelled one', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-050');
    const job = prepareSeedStatements(ctx.store.db).job;
    const at = (hoursAgo: number) => new Date(T0 - hoursAgo * 3_600_000).toISOString();
    job.run('job_v1', 'verify', 'Verify rvm-050', device.id, 'succeeded', '["check"]', 'check', at(30), at(29), 0, 0, null, null);
    // A repository-wide check cancelled half-way, and one of the device's verifications under way now.
    job.run('job_v2', 'verify', 'Verify the repository', null, 'cancelled', '["check"]', 'check', at(5), at(4), 0, 0, null, null);
    job.run('job_v3', 'verify', 'Verify rvm-050', device.id, 'running', '["check"]', 'check', at(0.1), null, 0, 0, null, null);
    expect(rowOf(ctx, 'rvm-050')).toMatchObject({ lastVerifyAt: at(29), lastVerifyStatus: 'succeeded' });
    // One of the device's own cancelled: still the one of 29 hours ago.
    ctx.store.db.prepare("UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE id = 'job_v3'").run(at(0));
    expect(rowOf(ctx, 'rvm-050')).toMatchObject({ lastVerifyAt: at(29), lastVerifyStatus: 'succeeded' });
    ctx.store.close();
  });

  it('counts open alerts per device until they resolve', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-005');
    addDevice(ctx, 'rvm-006');
    expect(ctx.overview.overview().alertsAvailable).toBe(true);
    expect(rowOf(ctx, 'rvm-005').openAlerts).toBe(0);
    const at = new Date(T0).toISOString();
    const first = ctx.store.sql.alertInsert.run('backup-failed', device.id, 'rvm-005', 'critical', 'Backup failed', at, at).lastInsertRowid;
    ctx.store.sql.alertInsert.run('rpo-breached', device.id, 'rvm-005', 'warning', 'RPO breached', at, at);
    ctx.store.sql.alertInsert.run('repository-low', null, 'repository', 'warning', 'Repository storage low', at, at);
    expect(rowOf(ctx, 'rvm-005').openAlerts).toBe(2);
    expect(rowOf(ctx, 'rvm-006').openAlerts).toBe(0);
    ctx.store.sql.alertResolve.run(at, Number(first));
    expect(rowOf(ctx, 'rvm-005').openAlerts).toBe(1);
    ctx.store.close();
  });

  it('matches a per-device recomputation on a seeded fleet, in one statement', () => {
    const ctx = open();
    const seeded = seedFleet(ctx.store, { devices: 40, days: 30, now: T0, failureRate: 0.2, unreachableEvery: 10, staleEvery: 8 });
    expect(seeded.devices).toHaveLength(40);
    const overview = ctx.overview.overview();
    expect(overview.devices).toHaveLength(40);
    expect(overview.summary.protected + overview.summary.atRisk + overview.summary.unreachable).toBe(40);
    expect(new Set(overview.devices.map((d) => d.tier))).toEqual(new Set(['critical', 'important', 'standard']));
    const jobs = ctx.store.db.prepare<[], { device_id: string; status: string; finished_at: string; error: string | null }>("SELECT device_id, status, finished_at, error FROM jobs WHERE kind = 'backup'").all();
    for (const row of overview.devices) {
      const mine = jobs.filter((j) => j.device_id === row.id);
      const good = mine.filter((j) => j.status === 'succeeded').map((j) => j.finished_at).sort().at(-1) ?? null;
      expect(row.lastGoodAt).toBe(good);
      const expected = good && (T0 - Date.parse(good)) / MIN <= row.rpoMinutes ? 'ok' : 'breached';
      expect(row.rpoState).toBe(expected);
      expect(row.rtoEstimateMs).not.toBeNull();
      expect(row.lastVerifyAt).not.toBeNull();
    }
    // Devices 7, 17, 37 went off the network (27 too, but it had stopped backing up before); 3, 11, 19, 27, 35 stopped backing up two days ago.
    const unreachable = overview.devices.filter((d) => d.status === 'unreachable').map((d) => d.name);
    expect(unreachable).toEqual(expect.arrayContaining([7, 17, 37].map(seedDeviceName)));
    for (const name of unreachable) {
      const row = overview.devices.find((d) => d.name === name)!;
      const last = jobs.filter((j) => j.device_id === row.id).sort((a, b) => a.finished_at.localeCompare(b.finished_at)).at(-1)!;
      expect(last.status).toBe('failed');
      expect(JSON.parse(last.error!)).toMatchObject({ code: 'UNAVAILABLE' });
    }
    for (const i of [3, 11, 19, 27, 35]) expect(overview.devices.find((d) => d.name === seedDeviceName(i))).toMatchObject({ rpoState: 'breached' });
    ctx.store.close();
  });
});

describe('dashboards', () => {
  it('aggregates runs per bucket to the same totals as the runs themselves, from the roll-up', () => {
    const ctx = open();
    seedFleet(ctx.store, { devices: 12, days: 100, now: T0, failureRate: 0.1 });
    const data = ctx.dashboards.dashboard({ range: '90d' });
    expect(data.bucketSeconds).toBe(86_400);
    expect(data.runs.length).toBeGreaterThanOrEqual(89);
    expect(data.runs.length).toBeLessThanOrEqual(91);
    const from = Date.parse(data.from);
    const raw = ctx.store.db
      .prepare<[string], { n: number; ok: number; bytes: number; added: number }>(
        "SELECT count(*) AS n, sum(status = 'succeeded') AS ok, sum(bytes_done) AS bytes, sum(CASE WHEN status = 'succeeded' THEN json_extract(result, '$.bytesAdded') ELSE 0 END) AS added FROM jobs WHERE kind = 'backup' AND started_at >= ?",
      )
      .get(new Date(from).toISOString())!;
    const sum = (key: 'runs' | 'succeeded' | 'bytesTransferred' | 'bytesAdded') => data.runs.reduce((n, r) => n + r[key], 0);
    expect(sum('runs')).toBe(raw.n);
    expect(sum('succeeded')).toBe(raw.ok);
    expect(sum('bytesTransferred')).toBe(raw.bytes);
    expect(sum('bytesAdded')).toBe(raw.added);
    expect(data.runs.at(-1)!.cumulativeAdded).toBe(raw.added);
    expect(data.rpoCompliance.length).toBeGreaterThan(80);
    expect(data.storage.some((s) => s.diskPermille !== null && s.repositoryBytes !== null)).toBe(true);
    expect(data.drills.length).toBeGreaterThan(5);
    // One device: fewer runs, its own disk and each drill.
    const one = ctx.dashboards.dashboard({ range: '90d', device: seedDeviceName(5) });
    expect(one.runs.reduce((n, r) => n + r.runs, 0)).toBeLessThan(raw.n);
    expect(one.drills.every((d) => d.count === 1)).toBe(true);
    expect(one.storage.some((s) => s.diskUsed !== null)).toBe(true);
    expect(() => ctx.dashboards.dashboard({ range: '90d', device: 'nope' })).toThrow(/No device named "nope"/);
    ctx.store.close();
  });

  it('rolls up a backup the job manager finishes, and counts the hour after it as within RPO, to the second', async () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-010', { rpoMinutes: 60 });
    ctx.clock.now = T0 - 20 * 3_600_000;
    await ctx.jobs.start({ kind: 'backup', title: 'Back up rvm-010', phases: ['connect'], deviceId: device.id }, (job) => {
      job.advance({ bytes: 5000 });
      ctx.clock.now += 90_000;
      return Promise.resolve({ bytesAdded: 700, snapshots: [{ source: 'db' }] });
    }).done;
    ctx.clock.now = T0;
    const day = ctx.dashboards.dashboard({ range: '24h' });
    expect(day.runs.reduce((n, r) => n + r.runs, 0)).toBe(1);
    expect(day.runs.find((r) => r.runs === 1)).toMatchObject({ succeeded: 1, bytesTransferred: 5000, bytesAdded: 700, avgDurationMs: 90_000 });
    const rolled = ctx.dashboards.dashboard({ range: '30d' });
    expect(rolled.runs.reduce((n, r) => n + r.bytesAdded, 0)).toBe(700);
    // Within RPO (60 min) for the hour after the backup finished (T0 - 20 h + 90 s), outside before and after.
    expect(day.rpoCompliance).toHaveLength(23); // [T0 - 23 h, T0): the current hour has not begun
    expect(day.rpoCompliance.every((c) => c.devices === 1)).toBe(true);
    const at = (hoursBefore: number) => day.rpoCompliance.find((c) => c.t * 1000 === T0 - hoursBefore * 3_600_000)!;
    expect(at(20)).toMatchObject({ fraction: (3600 - 90) / 3600, outsideSeconds: 90 });
    expect(at(19)).toMatchObject({ fraction: 90 / 3600, outsideSeconds: 3600 - 90 });
    expect(day.rpoCompliance.filter((c) => c.fraction > 0)).toHaveLength(2);
    ctx.store.close();
  });

  it('counts a device in RPO compliance only from when it was added', () => {
    const ctx = open();
    const DAY = 24 * 3_600_000;
    const old = addDevice(ctx, 'rvm-020', { rpoMinutes: 24 * 60 }, T0 - 60 * DAY);
    const added = addDevice(ctx, 'rvm-021', { rpoMinutes: 24 * 60 }, T0 - 3 * DAY - 3_600_000);
    for (let d = 1; d <= 40; d++) run(ctx, old.id, T0 - d * DAY + MIN);
    for (let d = 1; d <= 3; d++) run(ctx, added.id, T0 - d * DAY + MIN);
    const month = ctx.dashboards.dashboard({ range: '30d' });
    const before = month.rpoCompliance.filter((c) => (c.t + month.bucketSeconds) * 1000 < T0 - 3 * DAY - 3_600_000);
    const after = month.rpoCompliance.filter((c) => (c.t + month.bucketSeconds) * 1000 >= T0 - 3 * DAY + MIN);
    expect(before.length).toBeGreaterThan(20);
    // Before rvm-021 was added the fleet was rvm-020 alone, within its RPO: 100 %, not 50 %.
    expect(before.every((c) => c.devices === 1 && c.fraction === 1 && c.outsideSeconds === 0)).toBe(true);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((c) => c.devices === 2 && c.fraction === 1)).toBe(true);
    ctx.store.close();
  });

  it('counts only runs that covered every source of the device in RPO compliance, like the scheduler', () => {
    const ctx = open();
    const sources = [{ name: 'db', kind: 'postgres', database: 'app' }, { name: 'logs', kind: 'files', paths: ['/var/log/app'] }];
    const partial = addDevice(ctx, 'rvm-011', { rpoMinutes: 60, sources });
    const whole = addDevice(ctx, 'rvm-012', { rpoMinutes: 60, sources });
    // Both back up the logs alone on their own schedule every hour; only rvm-012 also ran whole runs.
    for (let h = 1; h <= 23; h++) run(ctx, partial.id, T0 - h * 3_600_000 + 5 * MIN, { sources: ['logs'], durationMs: 0 });
    for (let h = 1; h <= 23; h++) run(ctx, whole.id, T0 - h * 3_600_000 + 5 * MIN, { sources: h % 2 === 0 ? ['logs'] : ['db', 'logs'], durationMs: 0 });
    const outside = (d: Dashboard) => d.rpoCompliance.reduce((n, c) => n + c.outsideSeconds, 0);
    // rvm-011 is never within its RPO; rvm-012 for the hour after each whole run (every other hour):
    // 11 whole hours and the 55 minutes since the last one, of the window's 23 hours.
    const both = ctx.dashboards.dashboard({ range: '24h', device: 'rvm-011' });
    expect(both.rpoCompliance).toHaveLength(23);
    expect(both.rpoCompliance.every((c) => c.fraction === 0)).toBe(true);
    const alone = ctx.dashboards.dashboard({ range: '24h', device: 'rvm-012' });
    expect(outside(alone)).toBe(23 * 3600 - (11 * 3600 + 55 * 60));
    const day = ctx.dashboards.dashboard({ range: '24h' });
    expect(day.rpoCompliance.every((c) => c.devices === 2)).toBe(true);
    expect(outside(day)).toBe(23 * 3600 + outside(alone));
    ctx.store.close();
  });

  it('counts a breach that began and ended between two bucket ends, which sampling at the ends missed', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-013', { rpoMinutes: 60 });
    // Every 30 minutes at :05 and :35 for the last 23 hours, but for a 105-minute gap from T0 - 10 h + 5 min.
    const minutes: number[] = [];
    for (let m = -1375; m <= -25; m += 30) if (m <= -595 || m > -490) minutes.push(m);
    minutes.push(-490);
    for (const m of minutes) run(ctx, device.id, T0 + m * MIN, { durationMs: 0 });
    const day = ctx.dashboards.dashboard({ range: '24h' });
    const byHour = new Map(day.rpoCompliance.map((c) => [(T0 - c.t * 1000) / 3_600_000, c]));
    // Outside from T0 - 9 h + 5 min (the run before the gap + RPO) to the next run at T0 - 9 h + 50 min.
    expect(byHour.get(9)).toMatchObject({ outsideSeconds: 45 * 60, fraction: 0.25 });
    // The bucket's end, T0 - 8 h, fell 10 minutes after the run that closed the gap: a sample there saw a compliant device.
    // Before the window's first run (T0 - 23 h + 5 min) the device had none since it was added.
    expect(byHour.get(23)).toMatchObject({ outsideSeconds: 5 * 60 });
    expect([...byHour].filter(([h]) => h !== 9 && h !== 23).every(([, c]) => c.fraction === 1)).toBe(true);
    ctx.store.close();
  });

  it('keeps each complete good run with its gap as runs finish, in any order, and back-fills it when the history is migrated', () => {
    const dir = tempDir();
    const old = openHistoryDatabase(dir, MIGRATIONS.slice(0, 18));
    old.prepare("INSERT INTO devices (id, name, profile, created_at, updated_at) VALUES ('d1', 'rvm-030', ?, '2026-06-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z')").run(
      JSON.stringify({ name: 'rvm-030', host: '127.0.0.9', sources: [{ name: 'db', kind: 'postgres', database: 'app' }, { name: 'logs', kind: 'files', paths: ['/var/log'] }] }),
    );
    const at = (h: number) => Date.parse('2026-06-01T00:00:00.000Z') + h * 3_600_000;
    for (const h of [2, 5]) seedBackupRun(old, 'd1', at(h), { sources: ['db', 'logs'], durationMs: 0 });
    seedBackupRun(old, 'd1', at(6), { sources: ['logs'], durationMs: 0 }); // not every source: not a good run
    seedBackupRun(old, 'd1', at(7), { status: 'failed', durationMs: 0 });
    old.close();
    const store = new HistoryStore(dir);
    const gaps = () => store.db.prepare<[], { finished_s: number; gap_s: number }>('SELECT finished_s, gap_s FROM good_runs ORDER BY finished_s').all().map((r) => [(r.finished_s * 1000 - at(0)) / 3_600_000, r.gap_s / 3600]);
    expect(gaps()).toEqual([
      [2, 2],
      [5, 3],
    ]);
    seedBackupRun(store.db, 'd1', at(9), { sources: ['db', 'logs'], durationMs: 0 });
    // One that finished earlier, recorded later (another process's): it splits the gap it falls in.
    seedBackupRun(store.db, 'd1', at(8), { sources: ['db', 'logs'], durationMs: 0 });
    expect(gaps()).toEqual([
      [2, 2],
      [5, 3],
      [8, 3],
      [9, 1],
    ]);
    store.db.prepare("DELETE FROM devices WHERE id = 'd1'").run();
    expect(gaps()).toEqual([]);
    store.close();
  });
});

describe('fleet disk usage', () => {
  it('is the mean over devices, not over samples: a device backed up every 10 minutes does not outweigh one backed up every 6 hours', () => {
    const ctx = open();
    const busy = addDevice(ctx, 'rvm-040', { rpoMinutes: 15 });
    const quiet = addDevice(ctx, 'rvm-041');
    const GIB = 1024 ** 3;
    const disks = (used: number) => [{ mount: '/', filesystem: '/dev/nvme0n1p1', sizeBytes: 100 * GIB, usedBytes: used * GIB, availableBytes: (100 - used) * GIB }];
    // Yesterday (UTC): rvm-040, 90 % full, sampled at each of its 144 backups; rvm-041, 10 % full, at its 4.
    const day = Math.floor(T0 / 86_400_000) * 86_400_000 - 86_400_000;
    for (let i = 0; i < 144; i++) recordDiskSamples(ctx.store, busy.id, { disks: disks(90) }, new Date(day + i * 10 * MIN));
    for (let i = 0; i < 4; i++) recordDiskSamples(ctx.store, quiet.id, { disks: disks(10) }, new Date(day + i * 6 * 60 * MIN));
    const month = ctx.dashboards.dashboard({ range: '30d' });
    const bucket = month.storage.find((s) => s.t * 1000 === day)!;
    expect(bucket).toMatchObject({ diskPermille: 500, diskPermilleMax: 900 });
    ctx.store.close();
  });
});

describe('storage samples', () => {
  it('records laptop free space and repository size after each finished backup', async () => {
    const ctx = open();
    const repo = tempDir();
    writeFileSync(path.join(repo, 'config'), 'x'.repeat(1000));
    mkdirSync(path.join(repo, 'data', '00'), { recursive: true });
    writeFileSync(path.join(repo, 'data', '00', 'pack'), 'y'.repeat(4096));
    const bus = new EventBus();
    const sampling = sampleStorageAfterBackups(bus, ctx.store, () => repo, silentLogger);
    const jobs = new JobManager(ctx.store, bus, silentLogger);
    await jobs.start({ kind: 'restore', title: 'not a backup', phases: ['x'] }, () => Promise.resolve(1)).done;
    await jobs.start({ kind: 'backup', title: 'a backup', phases: ['x'] }, () => Promise.resolve(1)).done;
    const read = () => ctx.store.db.prepare<[], { metric: string; value: number }>('SELECT metric, value FROM metric_samples ORDER BY metric').all();
    await expect.poll(read).toHaveLength(2);
    const [free, size] = read();
    expect(free).toMatchObject({ metric: 'laptop_free' });
    expect(free!.value).toBeGreaterThan(0);
    expect(size).toEqual({ metric: 'repository_bytes', value: 5096 });
    sampling.stop();
    ctx.store.close();
  });
});

describe('storage samples of a repository not on this laptop', () => {
  it('records no repository size for S3, SFTP or a folder that is not there, instead of 0 B', async () => {
    const ctx = open();
    for (const location of ['s3:http://127.0.0.1:9000/backups', 'sftp:backup@127.0.0.1:/srv/jetvault', path.join(tempDir(), 'usb-disk-unplugged')]) {
      await recordStorageSamples(ctx.store, location);
    }
    expect(ctx.store.db.prepare("SELECT count(*) AS n FROM metric_samples WHERE metric = 'repository_bytes'").get()).toEqual({ n: 0 });
    // An empty local repository folder is 0 B, and is recorded.
    await recordStorageSamples(ctx.store, tempDir());
    expect(ctx.store.db.prepare("SELECT value FROM metric_samples WHERE metric = 'repository_bytes'").all()).toEqual([{ value: 0 }]);
    ctx.store.close();
  });
});

describe('history migration 8', () => {
  it('back-fills the daily roll-up from runs recorded before it', () => {
    const dir = tempDir();
    const before = openHistoryDatabase(dir, MIGRATIONS.filter((m) => m.id < 8));
    const insert = before.prepare('INSERT INTO jobs (id, kind, title, device_id, status, phases, phase, started_at, finished_at, bytes_done, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    insert.run('job_old001', 'backup', 'b', 'dev1', 'succeeded', '[]', 'commit', '2026-05-01T10:00:00.000Z', '2026-05-01T10:01:00.000Z', 10, '{"bytesAdded":4}');
    insert.run('job_old002', 'backup', 'b', 'dev1', 'failed', '[]', 'commit', '2026-05-01T11:00:00.000Z', '2026-05-01T11:00:05.000Z', 3, null);
    insert.run('job_old003', 'restore', 'r', 'dev1', 'succeeded', '[]', 'commit', '2026-05-01T12:00:00.000Z', '2026-05-01T12:00:05.000Z', 99, null);
    before.close();
    const store = new HistoryStore(dir);
    expect(store.db.prepare('SELECT * FROM backup_days').all()).toEqual([
      { day_s: Date.parse('2026-05-01T00:00:00Z') / 1000, device_id: 'dev1', runs: 2, succeeded: 1, failed: 1, duration_ms_sum: 60_000, duration_ms_max: 60_000, bytes_transferred: 13, bytes_added: 4 },
    ]);
    store.close();
  });
});

describe('audit log', () => {
  it('filters in SQL and exports CSV that a spreadsheet cannot run', () => {
    const ctx = open();
    addDevice(ctx, 'rvm-017');
    addDevice(ctx, 'rvm-018');
    ctx.store.audit('console:websocket', 'device.update', 'rvm-017', { note: 'says "hi", twice\nthen =cmd()' });
    ctx.store.audit('console:websocket', 'device.remove', '=HYPERLINK("x")');
    expect(ctx.audit.list({ action: 'device.add' }).map((e) => e.target)).toEqual(['rvm-018', 'rvm-017']);
    expect(ctx.audit.list({ target: 'rvm-017' }).map((e) => e.action)).toEqual(['device.update', 'device.add']);
    expect(ctx.audit.list({ text: 'TWICE' })).toHaveLength(1);
    expect(ctx.audit.list({ from: '2999-01-01T00:00:00Z' })).toEqual([]);
    expect(ctx.audit.actions()).toEqual(['device.add', 'device.remove', 'device.update']);

    const file = ctx.audit.csv({});
    expect(file.mimeType).toBe('text/csv');
    const lines = file.text.split('\r\n');
    expect(lines[0]).toBe('at,actor,action,target,result,message,detail');
    expect(file.text).toContain(`"'=HYPERLINK(""x"")"`);
    expect(file.text).toContain('"{""note"":""says \\""hi\\"", twice\\nthen =cmd()""}"');
    expect(lines.filter(Boolean)).toHaveLength(5);
    expect(csvField('-1+1')).toBe("'-1+1");
    expect(csvField('plain')).toBe('plain');
    ctx.store.close();
  });

  it('exports more than a page of entries as the console asks (its query comes with the list\'s limit of 500), and counts what matches', () => {
    const ctx = open();
    ctx.store.db.transaction(() => {
      for (let i = 0; i < 700; i++) ctx.store.audit('scheduler', 'backup.scheduled', i % 2 ? 'rvm-001' : 'rvm-002', { reason: 'RPO due' });
    })();
    // As the IPC router hands it over: validated, the defaults filled in.
    const asSent = AuditQuerySchema.parse({});
    expect(asSent.limit).toBe(500);
    expect(ctx.audit.list(asSent)).toHaveLength(500);
    expect(ctx.audit.count(asSent)).toBe(700);
    expect(ctx.audit.count({ target: 'rvm-001' })).toBe(350);
    expect(ctx.audit.csv(asSent).text.split('\r\n').filter(Boolean)).toHaveLength(1 + 700);
    expect(ctx.audit.csv(AuditQuerySchema.parse({ target: 'rvm-002' })).text.split('\r\n').filter(Boolean)).toHaveLength(1 + 350);
    ctx.store.close();
  });

  it('records the result of every job (ok, failed with its message, cancelled), filters by it and exports it', async () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-030');
    await ctx.jobs.start({ kind: 'backup', title: 'Back up rvm-030', phases: ['connect'], deviceId: device.id, actor: 'console:websocket' }, () => Promise.resolve({ ok: true })).done;
    await ctx.jobs.start({ kind: 'backup', title: 'Back up rvm-030', phases: ['connect'], deviceId: device.id }, () => Promise.reject(new AppError('UNAVAILABLE', 'rvm-030 is unreachable (EHOSTUNREACH)'))).done;
    const slow = ctx.jobs.start({ kind: 'verify', title: 'Verify the repository structure', phases: ['check'] }, (job) => new Promise((_resolve, reject) => job.signal.addEventListener('abort', () => reject(new Error('aborted')))));
    ctx.jobs.cancel(slow.id);
    await slow.done;

    const jobs = ctx.audit.list({ text: 'job.' });
    expect(jobs.map((e) => [e.action, e.target, e.actor, e.result, e.message])).toEqual([
      ['job.verify', null, 'console', 'cancelled', 'Verify the repository structure was cancelled'],
      ['job.backup', 'rvm-030', 'console', 'failed', 'rvm-030 is unreachable (EHOSTUNREACH)'],
      ['job.backup', 'rvm-030', 'console:websocket', 'ok', null],
    ]);
    expect(ctx.audit.list({ result: 'failed' }).map((e) => e.action)).toEqual(['job.backup']);
    expect(ctx.audit.list({ result: 'cancelled' }).map((e) => e.action)).toEqual(['job.verify']);
    expect(ctx.audit.list({ result: 'ok', action: 'device.add' })).toHaveLength(1);
    expect(ctx.audit.list({ text: 'EHOSTUNREACH' })).toHaveLength(1); // the message is searched too

    const csv = ctx.audit.csv({ result: 'failed' }).text.split('\r\n').filter(Boolean);
    expect(csv).toHaveLength(2);
    expect(csv[1]).toMatch(/^[^,]+,console,job\.backup,rvm-030,failed,rvm-030 is unreachable \(EHOSTUNREACH\),/);
    ctx.store.close();
  });

  it('migration 9 keeps the entries written before it as succeeded', () => {
    const dir = tempDir();
    const before = openHistoryDatabase(dir, MIGRATIONS.filter((m) => m.id < 9));
    before.prepare('INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)').run('2026-05-01T12:00:00.000Z', 'cli', 'device.add', 'rvm-001', null);
    before.close();
    const store = new HistoryStore(dir);
    expect(new AuditService(store).list()).toEqual([{ id: 1, at: '2026-05-01T12:00:00.000Z', actor: 'cli', action: 'device.add', target: 'rvm-001', detail: null, result: 'ok', message: null }]);
    expect(() => store.db.prepare("UPDATE audit_log SET result = 'maybe'").run()).toThrow(/CHECK/);
    store.close();
  });
});

describe('device report', () => {
  it('is one printable page with the protection status, runs and drills, escaped', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-020', { site: '<b>Depot</b>', tags: ['tier:important'], rtoMinutes: 30 });
    run(ctx, device.id, T0 - 10 * MIN, { bytes: 2048 });
    run(ctx, device.id, T0 - 5 * MIN, { status: 'failed', error: { code: 'REMOTE_COMMAND_FAILED', message: 'pg_dump <failed>' } });
    prepareSeedStatements(ctx.store.db).drill.run('drl_r', device.id, 'rvm-020', new Date(T0 - 60 * MIN).toISOString(), new Date(T0 - 50 * MIN).toISOString(), 'passed', 10 * MIN, null);
    const report = deviceReport(ctx.store, ctx.overview, 'rvm-020', new Date(T0));
    expect(report.filename).toBe('jetvault-report-rvm-020-2026-06-01.html');
    expect(report.text).toMatch(/^<!doctype html>/);
    expect(report.text).not.toMatch(/<script|<link|src=/i);
    expect(report.text).toContain('&lt;b&gt;Depot&lt;/b&gt;');
    expect(report.text).toContain('pg_dump &lt;failed&gt;');
    expect(report.text).toMatch(/id="status">protected</);
    expect(report.text).toContain('10 min 00 s</span> measured against an objective of 30 min');
    expect(report.text).toContain('2.0 KiB');
    expect(report.text).toContain(`<tr><td>db</td><td>postgres</td><td>PostgreSQL database app</td><td>${new Date(T0 - 10 * MIN + 30_000).toISOString()}</td></tr>`);
    expect(() => deviceReport(ctx.store, ctx.overview, 'nope')).toThrow(/No device named/);
    // A source added since: named as not backed up yet, while the device is still within its RPO.
    const sources = [...ctx.devices.get('rvm-020').profile.sources, { name: 'logs', kind: 'files' as const, paths: ['/var/log/<app>'], exclude: ['*.gz'] }];
    ctx.devices.update('rvm-020', { ...ctx.devices.get('rvm-020').profile, sources }, {}, 'test');
    const added = deviceReport(ctx.store, ctx.overview, 'rvm-020', new Date(T0)).text;
    expect(added).toContain('<tr><td>logs</td><td>files</td><td>/var/log/&lt;app&gt; (except *.gz)</td><td class="warn">not backed up yet</td></tr>');
    expect(added).toMatch(/id="status">protected</);
    // A newer drill that skipped sources: amber, and the report says what it left out.
    prepareSeedStatements(ctx.store.db).drill.run('drl_p', device.id, 'rvm-020', new Date(T0 - 40 * MIN).toISOString(), new Date(T0 - 35 * MIN).toISOString(), 'partial', 5 * MIN, null);
    expect(deviceReport(ctx.store, ctx.overview, 'rvm-020', new Date(T0)).text).toContain(
      '<span class="warn">5 min 00 s</span> measured against an objective of 30 min (by a drill that skipped sources it cannot drill: they are not in it)',
    );
    ctx.store.close();
  });

  it('says how much of the last 30 days the device was within its RPO, to the second, and since when a new one was added', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-023', { rpoMinutes: 60 });
    // Every 30 minutes for 30 days, but for a 13-hour gap ten days ago: 12 hours outside the RPO of 1 h.
    for (let m = 30; m <= 30 * 24 * 60; m += 30) if (m <= 10 * 24 * 60 || m >= 10 * 24 * 60 + 13 * 60) run(ctx, device.id, T0 - m * MIN, { durationMs: 0 });
    const text = deviceReport(ctx.store, ctx.overview, 'rvm-023', new Date(T0)).text;
    // 12 h of 720 h: 98.3 %, not 100 % (the newest run is 30 minutes old) and not a whole number.
    expect(text).toMatch(/id="rpo-compliance"><span class="bad">98\.3 %<\/span> of the time within its RPO over the last 30 days \(12 h outside it\)/);
    const fresh = addDevice(ctx, 'rvm-024', { rpoMinutes: 60 }, T0 - 3 * 24 * 3_600_000);
    for (let m = 30; m <= 3 * 24 * 60; m += 30) run(ctx, fresh.id, T0 - m * MIN, { durationMs: 0 });
    expect(deviceReport(ctx.store, ctx.overview, 'rvm-024', new Date(T0)).text).toContain('<span class="ok">100 %</span> of the time within its RPO over the 3 days since it was added');
    ctx.store.close();
  });

  it('says a device whose drills all failed was drilled: not "no drill yet" above its failed drills', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-022');
    run(ctx, device.id, T0 - 10 * MIN);
    prepareSeedStatements(ctx.store.db).drill.run('drl_f', device.id, 'rvm-022', new Date(T0 - 60 * MIN).toISOString(), new Date(T0 - 58 * MIN).toISOString(), 'failed', null, 'validation failed');
    const report = deviceReport(ctx.store, ctx.overview, 'rvm-022', new Date(T0));
    expect(report.text).toContain('<span class="bad">the newest drill failed</span>, and none has measured a recovery time yet — objective 1 h');
    expect(report.text).not.toContain('no drill yet');
    expect(report.text).toContain('validation failed');
    ctx.store.close();
  });

  it('says how much of a nearly full disk is free: 0.4 %, not 0 % (a full disk)', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-023');
    const GIB = 1024 ** 3;
    const disks = [{ mount: '/', filesystem: '/dev/nvme0n1p1', sizeBytes: 100 * GIB, usedBytes: 100 * GIB - 0.4 * GIB, availableBytes: 0.4 * GIB }];
    ctx.store.db.prepare('UPDATE devices SET disks = ?, disks_at = ? WHERE id = ?').run(JSON.stringify(disks), new Date(T0).toISOString(), device.id);
    const report = deviceReport(ctx.store, ctx.overview, 'rvm-023', new Date(T0));
    expect(report.text).toContain('<dt>Disk free</dt><dd>410 MiB (0.4 %)</dd>');
    ctx.store.close();
  });

  it('reads its ages, durations and sizes as the console does: never as old as the RPO while within it, no "60 min", no "1024.0 KiB"', () => {
    const ctx = open();
    const device = addDevice(ctx, 'rvm-021', { rpoMinutes: 24 * 60 });
    // The last good backup finished 23 h 59 min 36 s ago, within its 24 h RPO; it took 1 h 59 min 50 s
    // and moved 1,048,570 bytes.
    const took = (119 * 60 + 50) * 1000;
    run(ctx, device.id, T0 - (1439.6 * MIN) - took, { durationMs: took, bytes: 1_048_570, added: 1_048_570 });
    const report = deviceReport(ctx.store, ctx.overview, 'rvm-021', new Date(T0));
    expect(report.text).toMatch(/id="status">protected</);
    expect(report.text).toContain('<span class="ok">23 h since the last good backup</span> against an RPO of 24 h');
    expect(report.text).toContain('<td>1 h 59 min</td><td>1.0 MiB</td><td>1.0 MiB</td>');
    expect(report.text).not.toMatch(/60 min|1024\.0 KiB|24 h since/);
    ctx.store.close();
  });
});
