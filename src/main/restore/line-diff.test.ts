import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/temp-dir';
import { diffLines, formatUnified, splitLines, toHunks } from './line-diff';

/** `diff -u` of the same two texts, without its two header lines. */
function gnuDiff(a: string, b: string): string {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'a'), a);
  writeFileSync(path.join(dir, 'b'), b);
  try {
    execFileSync('diff', ['-u', 'a', 'b'], { cwd: dir, encoding: 'utf8' });
    return '';
  } catch (error) {
    return (error as { stdout: string }).stdout.split('\n').slice(2).join('\n');
  }
}

const ours = (a: string, b: string) => {
  return formatUnified(toHunks(diffLines(splitLines(a), splitLines(b))), 'a', 'b').split('\n').slice(2).join('\n');
};

/** A deterministic pseudo-random config of `n` lines. */
function config(n: number, seed: number): string[] {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648), s);
  return Array.from({ length: n }, (_, i) => `key_${i % 17}: ${next() % 5}`);
}

describe('line diff', () => {
  it('finds nothing between equal texts, and a one-line change as one hunk', () => {
    expect(toHunks(diffLines(['a', 'b'], ['a', 'b'])).hunks).toEqual([]);
    const diff = toHunks(diffLines(['fps: 30', 'camera: 0', 'threshold: 0.5'], ['fps: 30', 'camera: 1', 'threshold: 0.5']));
    expect(diff).toMatchObject({ added: 1, removed: 1 });
    expect(diff.hunks).toHaveLength(1);
    expect(diff.hunks[0]!.lines.map((l) => `${l.op}${l.text}`)).toEqual([' fps: 30', '-camera: 0', '+camera: 1', ' threshold: 0.5']);
    expect(diff.hunks[0]!.lines[2]).toMatchObject({ oldLine: null, newLine: 2 });
  });

  it('handles empty sides and a missing final newline like diff -u', () => {
    expect(ours('', 'a\nb\n')).toBe(gnuDiff('', 'a\nb\n'));
    expect(ours('a\nb\n', '')).toBe(gnuDiff('a\nb\n', ''));
    expect(splitLines('a\r\nb')).toEqual(['a', 'b']);
  });

  it('produces the same hunks as GNU diff -u on random edits', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const a = config(30 + (seed % 50), seed);
      const b = [...a];
      let s = seed * 7;
      for (let e = 0; e < 1 + (seed % 6); e++) {
        s = (s * 31 + 7) % 1000;
        const at = s % (b.length + 1);
        if (s % 3 === 0) b.splice(at, 1);
        else if (s % 3 === 1) b.splice(at, 0, `inserted ${s}`);
        else b[Math.min(at, b.length - 1)] = `changed ${s}`;
      }
      const left = `${a.join('\n')}\n`;
      const right = `${b.join('\n')}\n`;
      // The edit script is minimal: as many changed lines as GNU diff's.
      const count = (text: string, op: string) => text.split('\n').filter((l) => l.startsWith(op)).length;
      const mine = ours(left, right);
      const theirs = gnuDiff(left, right);
      expect(count(mine, '+') + count(mine, '-'), `seed ${seed}`).toBe(count(theirs, '+') + count(theirs, '-'));
      expect(mine.split('\n').filter((l) => l.startsWith('@@')).length, `seed ${seed}`).toBe(theirs.split('\n').filter((l) => l.startsWith('@@')).length);
    }
  });

  it('past the edit limit shows the differing middle as removed then added, still a correct diff', () => {
    const a = ['same', ...Array.from({ length: 3000 }, (_, i) => `a${i}`), 'tail'];
    const b = ['same', ...Array.from({ length: 2000 }, (_, i) => `b${i}`), 'tail'];
    const script = diffLines(a, b, 1000);
    expect(script.filter((l) => l.op !== '+').map((l) => l.text)).toEqual(a);
    expect(script.filter((l) => l.op !== '-').map((l) => l.text)).toEqual(b);
    expect(script.slice(1, 3001).every((l) => l.op === '-')).toBe(true);
    expect(toHunks(script)).toMatchObject({ added: 2000, removed: 3000 });
  });
});
