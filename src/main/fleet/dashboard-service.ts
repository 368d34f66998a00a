/**
 * Dashboard data, aggregated in SQL by time bucket so a year of 500 devices stays a few hundred
 * points on the wire: backup runs (count, success, duration, bytes transferred vs added), RPO
 * compliance as the share of device-time within RPO, storage samples, and measured RTO per drill.
 */
import { AppError } from '../../shared/errors';
import type { DeviceProfile } from '../../shared/schemas/devices';
import { DashboardRequestSchema } from '../../shared/schemas/fleet';
import type { Dashboard, DashboardRequest, Range } from '../../shared/schemas/fleet';
import { effectiveRpo } from '../../shared/tiers';
import type { HistoryStore } from '../history/history-store';
import type { SettingsService } from '../services/settings-service';
import { rpoCompliance as complianceOf } from './rpo-compliance';

const HOUR = 3600;
const DAY = 24 * HOUR;

/** Range length and bucket size: 24 to 90 buckets whatever the range. */
export const RANGE_BUCKETS: Record<Range, { seconds: number; bucket: number }> = {
  '24h': { seconds: DAY, bucket: HOUR },
  '7d': { seconds: 7 * DAY, bucket: 6 * HOUR },
  '30d': { seconds: 30 * DAY, bucket: DAY },
  '90d': { seconds: 90 * DAY, bucket: DAY },
  '365d': { seconds: 365 * DAY, bucket: 7 * DAY },
};

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

export class DashboardService {
  readonly #store: HistoryStore;
  readonly #settings: SettingsService;
  readonly #now: () => number;

  constructor(store: HistoryStore, settings: SettingsService, now: () => number = Date.now) {
    this.#store = store;
    this.#settings = settings;
    this.#now = now;
  }

  dashboard(request: DashboardRequest = {}): Dashboard {
    const { range, device: deviceName } = DashboardRequestSchema.parse(request);
    const { seconds, bucket } = RANGE_BUCKETS[range];
    // Buckets are aligned to the bucket size, the last one holds "now".
    const to = (Math.floor(this.#now() / 1000 / bucket) + 1) * bucket;
    const from = to - Math.ceil(seconds / bucket) * bucket;
    const sql = this.#store.sql;
    const rows = deviceName === undefined ? sql.devicesAll.all() : [sql.deviceByName.get(deviceName)].filter((r) => r !== undefined);
    if (deviceName !== undefined && rows.length === 0) throw new AppError('NOT_FOUND', `No device named "${deviceName}"`);
    const deviceId = deviceName === undefined ? null : rows[0]!.id;
    const settings = this.#settings.get();
    const profiles = new Map(rows.map((r) => [r.id, JSON.parse(r.profile) as DeviceProfile]));

    let cumulative = 0;
    // Whole-day buckets read the daily roll-up; shorter ones the runs themselves (a few days at most).
    const runsQuery = bucket % DAY === 0 ? sql.dashboardRunsDaily : sql.dashboardRuns;
    const runs = runsQuery.all({ from, to, bucket, device: deviceId }).map((r) => {
      cumulative += r.bytes_added;
      return {
        t: r.t,
        runs: r.runs,
        succeeded: r.succeeded,
        failed: r.failed,
        avgDurationMs: r.avg_duration_ms === null ? null : Math.round(r.avg_duration_ms),
        maxDurationMs: r.max_duration_ms,
        bytesTransferred: r.bytes_transferred,
        bytesAdded: r.bytes_added,
        cumulativeAdded: cumulative,
      };
    });

    // Each device with the RPO that applies to it (its own, its tier tag's, or the default).
    const rpoDevices = rows.map((r) => {
      const p = profiles.get(r.id)!;
      return { id: r.id, rpoMinutes: effectiveRpo({ rpoMinutes: p.rpoMinutes, tags: p.tags ?? [] }, settings.defaultRpoMinutes).rpoMinutes, createdAt: r.created_at };
    });
    const rpoCompliance = complianceOf(sql, rpoDevices, { from, to, bucket, now: Math.floor(this.#now() / 1000) });

    const storage = new Map<number, Dashboard['storage'][number]>();
    const slot = (t: number) => {
      let s = storage.get(t);
      if (!s) storage.set(t, (s = { t, laptopFree: null, repositoryBytes: null, diskUsed: null, diskPermille: null, diskPermilleMax: null }));
      return s;
    };
    for (const s of sql.dashboardLaptopSamples.all({ from, to, bucket })) {
      if (s.metric === 'laptop_free') slot(s.t).laptopFree = s.value;
      else slot(s.t).repositoryBytes = s.value;
    }
    if (deviceId === null) {
      for (const s of sql.dashboardFleetDisks.all({ from, to, bucket })) Object.assign(slot(s.t), { diskPermille: Math.round(s.avg), diskPermilleMax: s.max });
    } else {
      for (const s of sql.dashboardDeviceDisk.all({ from, to, bucket, device: deviceId })) {
        if (s.metric === 'device_disk_used') slot(s.t).diskUsed = s.value;
        else Object.assign(slot(s.t), { diskPermille: s.value, diskPermilleMax: s.value });
      }
    }

    const drills =
      deviceId === null
        ? sql.dashboardFleetDrills.all({ from: iso(from), to: iso(to), bucket, defaultRto: settings.defaultRtoMinutes }).map((d) => ({
            t: d.t,
            count: d.count,
            failed: d.failed,
            over: d.over,
            avgMs: d.avg_ms === null ? null : Math.round(d.avg_ms),
            maxMs: d.max_ms,
            objectiveMs: settings.defaultRtoMinutes * 60_000,
          }))
        : sql.dashboardDeviceDrills.all({ from: iso(from), to: iso(to), device: deviceId }).map((d) => ({
            t: d.finished_s,
            count: 1,
            failed: d.result === 'failed' ? 1 : 0,
            over: d.total_ms !== null && d.total_ms > (profiles.get(deviceId)?.rtoMinutes ?? settings.defaultRtoMinutes) * 60_000 ? 1 : 0,
            avgMs: d.total_ms,
            maxMs: d.total_ms,
            objectiveMs: (profiles.get(deviceId)?.rtoMinutes ?? settings.defaultRtoMinutes) * 60_000,
          }));

    return {
      range,
      device: deviceName ?? null,
      from: iso(from),
      to: iso(to),
      bucketSeconds: bucket,
      runs,
      rpoCompliance,
      storage: [...storage.values()].sort((a, b) => a.t - b.t),
      drills,
    };
  }
}
