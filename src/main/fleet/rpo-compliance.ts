/**
 * RPO compliance over time as the share of device-time within RPO (decision 301). A device is
 * outside its RPO from its newest complete good run + RPO until the next such run; before its first
 * run, from when it was added + RPO. Every second of that counts, in whichever bucket it falls: a
 * breach between two bucket ends is not lost, as it was when compliance was sampled at bucket ends.
 */

/** A device of the fleet: since when it counts (added), and when. */
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
