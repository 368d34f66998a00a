import { describe, expect, it } from 'vitest';
import { rpoTimeShare } from './rpo-compliance';

describe('RPO compliance as the share of device-time within RPO', () => {
  it('splits a breach over the buckets it crosses and cuts the current bucket at now', () => {
    // Buckets of 100 s from 0; now is 250: the third bucket holds 50 s so far.
    const out = rpoTimeShare([{ createdS: -1000 }], [{ from: 80, to: 230 }], { from: 0, to: 300, bucket: 100, now: 250 });
    expect(out).toEqual([
      { t: 0, devices: 1, fraction: 0.8, outsideSeconds: 20 },
      { t: 100, devices: 1, fraction: 0, outsideSeconds: 100 },
      { t: 200, devices: 1, fraction: 0.4, outsideSeconds: 30 },
    ]);
  });

  it('counts a device from when it was added, and no bucket before the first one was', () => {
    const out = rpoTimeShare([{ createdS: 150 }, { createdS: 50 }], [{ from: 150, to: 200 }], { from: 0, to: 200, bucket: 100, now: 1000 });
    // Bucket 0: the second device's 50 s only. Bucket 100: 100 s + 50 s, of which 50 outside.
    expect(out).toEqual([
      { t: 0, devices: 1, fraction: 1, outsideSeconds: 0 },
      { t: 100, devices: 2, fraction: 100 / 150, outsideSeconds: 50 },
    ]);
    expect(rpoTimeShare([{ createdS: 500 }], [], { from: 0, to: 200, bucket: 100, now: 1000 })).toEqual([]);
  });
});
