import { describe, expect, it } from 'vitest';
import { invisibleDifference } from './file-versions';
import { splitLines } from './line-diff';

describe('invisibleDifference', () => {
  it('names what tells apart two texts with the same lines', () => {
    const cases: [string, string, 'line-endings' | 'final-newline'][] = [
      ['fps: 30\nexposure: auto\n', 'fps: 30\r\nexposure: auto\r\n', 'line-endings'],
      ['fps: 30\r\nexposure: auto\n', 'fps: 30\nexposure: auto\r\n', 'line-endings'],
      ['fps: 30\nexposure: auto\n', 'fps: 30\r\nexposure: auto', 'line-endings'],
      ['fps: 30\r\nexposure: auto\r\n', 'fps: 30\r\nexposure: auto', 'final-newline'],
      ['fps: 30\nexposure: auto', 'fps: 30\nexposure: auto\n', 'final-newline'],
    ];
    for (const [a, b, expected] of cases) {
      expect(splitLines(a)).toEqual(splitLines(b));
      expect(invisibleDifference(a, b)).toBe(expected);
    }
  });
});
