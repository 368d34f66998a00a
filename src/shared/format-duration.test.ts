import { describe, expect, it } from 'vitest';
import { formatAge, formatDuration } from './format-duration';

describe('formatAge', () => {
  it('picks minutes under two hours, hours under two days, then days', () => {
    expect(formatAge(20_000)).toBe('< 1 min');
    expect(formatAge(0)).toBe('< 1 min');
    expect(formatAge(61 * 60_000)).toBe('61 min');
    expect(formatAge(119 * 60_000)).toBe('119 min');
    expect(formatAge(120 * 60_000)).toBe('2 h');
    expect(formatAge(47 * 3_600_000)).toBe('47 h');
    expect(formatAge(48 * 3_600_000)).toBe('2 days');
    expect(formatAge(30 * 86_400_000)).toBe('30 days');
  });
});

describe('formatDuration', () => {
  it('keeps the precision a measured duration needs', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_400)).toBe('12.4 s');
    expect(formatDuration(185_000)).toBe('3 min 05 s');
    expect(formatDuration(3_720_000)).toBe('1 h 02 min');
  });
});
