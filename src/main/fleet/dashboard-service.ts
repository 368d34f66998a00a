/**
 * Dashboard data, aggregated in SQL by time bucket so a year of 500 devices stays a few hundred
 * points on the wire: backup runs (count, success, duration, bytes transferred vs added), RPO
 * compliance as the share of each bucket's time within RPO, storage samples, and measured RTO per drill.
 */
import { AppError } from '../../shared/errors';
import type { DeviceProfile } from '../../shared/schemas/devices';
import { DashboardRequestSchema } from '../../shared/schemas/fleet';
import type { Dashboard, DashboardRequest, Range } from '../../shared/schemas/fleet';
import { effectiveRpo } from '../../shared/tiers';
import type { HistoryStore } from '../history/history-store';
import type { DeviceRow } from '../history/statements';
import type { SettingsService } from '../services/settings-service';

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

    const rpoList = [...profiles].map(([id, p]) => ({ id, rpo: effectiveRpo({ rpoMinutes: p.rpoMinutes, tags: p.tags ?? [] }, settings.defaultRpoMinutes).rpoMinutes }));
    const rpoCompliance = rpoList.length === 0 ? [] : this.#compliance(rows, rpoList, from, to, bucket);

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

  /**
   * RPO compliance per bucket as the share of the bucket's device-time spent within RPO: a device
   * out of its RPO for 5 of a bucket's 6 hours counts 1/6, however it stood at the bucket's end.
   * `devices` is how many were in the fleet during the bucket (from when each was added, up to
   * now), `compliant` how many of those were within their RPO all that time.
   */
  #compliance(rows: readonly DeviceRow[], rpoList: readonly { id: string; rpo: number }[], from: number, to: number, bucket: number): Dashboard['rpoCompliance'] {
    const now = this.#now() / 1000;
    const end = Math.min(to, now);
    const count = Math.ceil((end - from) / bucket);
    if (count <= 0) return [];
    // Time outside RPO per device: before its first good run, and from a run's f + rpo to the next
    // one where that is later (or until now after the last); all of it for a device without any.
    const gaps = new Map<string, { start: number; end: number }[]>();
    for (const r of this.#store.sql.dashboardRpoEdges.all({ from, to: end, devices: JSON.stringify(rpoList) })) {
      let list = gaps.get(r.id);
      if (!list) gaps.set(r.id, (list = []));
      if (r.prev === null) list.push({ start: -Infinity, end: r.f });
      if (r.next === null || r.next > r.f + r.rpo) list.push({ start: r.f + r.rpo, end: r.next ?? Infinity });
    }
    const never = [{ start: -Infinity, end: Infinity }];
    const within = new Float64Array(count);
    const present = new Float64Array(count);
    const devices = new Uint32Array(count);
    const compliant = new Uint32Array(count);
    const outside = new Float64Array(count);
    for (const row of rows) {
      // A device counts from when it was added: before, it had no runs and was not part of the fleet.
      const since = Math.max(from, Date.parse(row.created_at) / 1000);
      if (since >= end) continue;
      outside.fill(0);
      for (const g of gaps.get(row.id) ?? never) {
        const lo = Math.max(g.start, since);
        const hi = Math.min(g.end, end);
        if (hi <= lo) continue;
        for (let k = Math.floor((lo - from) / bucket); k < count && from + k * bucket < hi; k++) {
          const b = from + k * bucket;
          outside[k]! += Math.max(0, Math.min(hi, b + bucket) - Math.max(lo, b));
        }
      }
      for (let k = Math.floor((since - from) / bucket); k < count; k++) {
        const b = from + k * bucket;
        const time = Math.min(end, b + bucket) - Math.max(since, b);
        if (time <= 0) continue;
        devices[k]!++;
        present[k]! += time;
        within[k]! += Math.max(0, time - outside[k]!);
        if (outside[k] === 0) compliant[k]!++;
      }
    }
    const out: Dashboard['rpoCompliance'] = [];
    for (let k = 0; k < count; k++) {
      if (devices[k] === 0) continue;
      out.push({ t: from + k * bucket, compliant: compliant[k]!, devices: devices[k]!, fraction: present[k]! === 0 ? 0 : Math.min(1, within[k]! / present[k]!) });
    }
    return out;
  }
}
