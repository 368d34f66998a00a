import { describe, expect, it } from 'vitest';
import { byteTicks, durationTicks, formatBytesTick } from './axis-ticks';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('byte axis ticks', () => {
  it('are round numbers of one binary unit from 0 past the largest value, not round numbers of bytes', () => {
    // The dedup chart of a fresh fleet: 70 MiB transferred in one bucket.
    expect(byteTicks(70 * MiB)!.map(formatBytesTick)).toEqual(['0 B', '20 MiB', '40 MiB', '60 MiB', '80 MiB']);
    // Laptop free space on a 100 GB disk.
    expect(byteTicks(93.1 * GiB)!.map(formatBytesTick)).toEqual(['0 B', '25 GiB', '50 GiB', '75 GiB', '100 GiB']);
    expect(byteTicks(9 * MiB)!.map(formatBytesTick)).toEqual(['0 B', '2.5 MiB', '5 MiB', '7.5 MiB', '10 MiB']);
    // Past 500 of a unit per step: steps of the next unit (1 GiB, not 1000 MiB).
    expect(byteTicks(3 * GiB)!.map(formatBytesTick)).toEqual(['0 B', '1 GiB', '2 GiB', '3 GiB']);
    expect(byteTicks(3)!).toEqual([0, 1, 2, 3]);
  });

  it('always reach the largest value, in at most twice the steps asked for', () => {
    for (let max = 1; max < 2 ** 50; max = Math.ceil(max * 1.37)) {
      const ticks = byteTicks(max)!;
      expect(ticks[0]).toBe(0);
      expect(ticks.at(-1)!).toBeGreaterThanOrEqual(max);
      expect(ticks.at(-2)!).toBeLessThan(max);
      expect(ticks.length - 1).toBeLessThanOrEqual(8);
      expect(new Set(ticks.map(formatBytesTick)).size).toBe(ticks.length); // no two read alike
    }
  });

  it('leave an axis with nothing on it to the chart', () => {
    expect(byteTicks(0)).toBeUndefined();
    expect(byteTicks(Number.NaN)).toBeUndefined();
  });
});

describe('duration axis ticks', () => {
  it('are round durations: seconds, minutes, hours', () => {
    // Backups of ~2 min 20 s at their slowest: recharts read 0s, 35s, 1m 10s, 1m 45s, 2m 20s.
    expect(durationTicks(140)).toEqual([0, 60, 120, 180]);
    expect(durationTicks(100)).toEqual([0, 30, 60, 90, 120]);
    // Short runs: half seconds (what the duration chart of short runs shows).
    expect(durationTicks(2)).toEqual([0, 0.5, 1, 1.5, 2]);
    expect(durationTicks(45 * 60)).toEqual([0, 900, 1800, 2700]);
    expect(durationTicks(5 * 3600)).toEqual([0, 7200, 14_400, 21_600]);
    expect(durationTicks(30 * 86_400)).toEqual([0, 10 * 86_400, 20 * 86_400, 30 * 86_400]);
  });

  it('always reach the largest value, in at most three times the steps asked for', () => {
    for (let max = 0.001; max < 1e8; max *= 1.37) {
      const ticks = durationTicks(max)!;
      expect(ticks[0]).toBe(0);
      expect(ticks.at(-1)!).toBeGreaterThanOrEqual(max);
      expect(ticks.at(-2)!).toBeLessThan(max);
      expect(ticks.length - 1).toBeLessThanOrEqual(12);
    }
    expect(durationTicks(0)).toBeUndefined();
  });
});
