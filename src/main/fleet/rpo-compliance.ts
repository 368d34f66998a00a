/**
 * RPO compliance over time as the share of device-time within RPO (decision 301). A device is
 * outside its RPO from its newest complete good run + RPO until the next such run; before its first
 * run, from when it was added + RPO. Every second of that counts, in whichever bucket it falls: a
 * breach between two bucket ends is not lost, as it was when compliance was sampled at bucket ends.
 */
import type { Statements } from '../history/statements';

/** A device of the fleet, counted from when it was added (seconds since the epoch). */
export interface ComplianceDevice {
  createdS: number;
}

/** Seconds [from, to) during which one device was outside its RPO. */
export interface Breach {
  from: number;
  to: number;
}

export interface ComplianceBucket {
  /** Bucket start (seconds since the epoch). */
  t: number;
  /** Devices added before the bucket's end (or before now, for the current bucket). */
  devices: number;
  /** Share of the bucket's device-time (each device from when it was added, up to now) within RPO. */
  fraction: number;
  /** Device-seconds of the bucket outside RPO. */
  outsideSeconds: number;
}

/**
 * Buckets [from + k·bucket, …) up to `now` (the current one cut at now); none before the first device
 * was added. `breaches` need not be clipped or sorted; each must belong to a device counted here.
 */
export function rpoTimeShare(devices: readonly ComplianceDevice[], breaches: readonly Breach[], range: { from: number; to: number; bucket: number; now: number }): ComplianceBucket[] {
  const { from, bucket } = range;
  const end = Math.min(range.to, range.now);
  if (end <= from || devices.length === 0) return [];
  const count = Math.ceil((end - from) / bucket);
  const outside = new Float64Array(count);
  for (const b of breaches) {
    const lo = Math.max(b.from, from);
    const hi = Math.min(b.to, end);
    if (hi <= lo) continue;
    for (let i = Math.floor((lo - from) / bucket); i < count && from + i * bucket < hi; i++) {
      const start = from + i * bucket;
      outside[i]! += Math.min(hi, start + bucket) - Math.max(lo, start);
    }
  }
  const out: ComplianceBucket[] = [];
  for (let i = 0; i < count; i++) {
    const start = from + i * bucket;
    const stop = Math.min(start + bucket, end);
    let present = 0;
    let time = 0;
    for (const d of devices) {
      if (d.createdS >= stop) continue;
      present++;
      time += stop - Math.max(start, d.createdS);
    }
    if (present === 0) continue;
    const off = Math.min(outside[i]!, time);
    out.push({ t: start, devices: present, fraction: time === 0 ? 1 : (time - off) / time, outsideSeconds: Math.round(off) });
  }
  return out;
}

/** A device as the history knows it, with the RPO that applies to it (device, tier tag or default). */
export interface RpoDevice {
  id: string;
  rpoMinutes: number;
  /** When it was added (ISO). */
  createdAt: string;
}

/**
 * The devices' compliance per bucket, from the complete good runs' gaps (`good_runs`, migration 18):
 * the breaches a gap past the RPO left, and each device's open one since its newest run.
 */
export function rpoCompliance(sql: Statements, devices: readonly RpoDevice[], range: { from: number; to: number; bucket: number; now: number }): ComplianceBucket[] {
  if (devices.length === 0) return [];
  const list = JSON.stringify(devices.map((d) => ({ id: d.id, rpo: d.rpoMinutes })));
  const byId = new Map(devices.map((d) => [d.id, { rpoS: d.rpoMinutes * 60, createdS: Math.floor(Date.parse(d.createdAt) / 1000) }]));
  const breaches: Breach[] = sql.dashboardRpoBreaches.all({ from: range.from, to: range.to, now: range.now, devices: list }).map((b) => ({ from: b.finished_s - b.gap_s + b.rpo_s, to: b.finished_s }));
  // Outside since the newest run (or since added) + RPO, until now.
  for (const { id, last_s } of sql.dashboardLastGood.all({ now: range.now, devices: list })) {
    const device = byId.get(id)!;
    const since = (last_s ?? device.createdS) + device.rpoS;
    if (since < range.now) breaches.push({ from: since, to: range.now });
  }
  return rpoTimeShare([...byId.values()], breaches, range);
}
