import { describe, expect, it } from 'vitest';
import { formatShare } from './format-share';

describe('formatShare', () => {
  it('is 100 % or 0 % only when exact, else to a tenth', () => {
    expect([1, 0, 0.5, 0.98333, 0.99996, 0.00004].map(formatShare)).toEqual(['100 %', '0 %', '50 %', '98.3 %', '99.9 %', '0.1 %']);
  });
});
