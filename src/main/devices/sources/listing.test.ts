import { describe, expect, it } from 'vitest';
import { compareTreeOrder, secondsToNs, sortTreeOrder } from './listing';
import type { ListedEntry } from './listing';

/** The definition: component by component. */
function byComponents(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length - y.length;
}

describe('remote listing helpers', () => {
  it('orders paths depth first, directories before their contents, like a component-wise comparison', () => {
    // Characters below and above '/' (space, '-', '.', '!', digits, letters, non-ASCII) in every position.
    const alphabet = [' ', '!', '-', '.', '0', 'a', 'b', 'é', '\u{1F600}'];
    let seed = 7;
    const next = () => (seed = (seed * 48271) % 2147483647);
    const paths: string[] = ['/opt/a', '/opt/a-b', '/opt/a/b', '/opt/a.b/c', '/opt/a b', '/opt'];
    for (let i = 0; i < 400; i++) {
      const parts = Array.from({ length: 1 + (next() % 4) }, () => Array.from({ length: 1 + (next() % 3) }, () => alphabet[next() % alphabet.length]).join(''));
      paths.push(`/${parts.join('/')}`);
    }
    const sign = (n: number) => Math.sign(n);
    for (const a of paths) for (const b of paths) expect([a, b, sign(compareTreeOrder(a, b))]).toEqual([a, b, sign(byComponents(a, b))]);
    const sorted = ['/opt/a b', '/opt/a-b', '/opt/a.b/c', '/opt/a/b', '/opt/a', '/opt'].sort(compareTreeOrder);
    expect(sorted).toEqual(['/opt', '/opt/a', '/opt/a/b', '/opt/a b', '/opt/a-b', '/opt/a.b/c']);
  });

  it('sorts a listing into tree order by siblings, as the full comparison sort does', () => {
    const alphabet = [' ', '!', '-', '.', '0', 'a', 'b', 'é', '\u{1F600}', '\uDC80'];
    let seed = 11;
    const next = () => (seed = (seed * 48271) % 2147483647);
    const entry = (absolute: string, type: 'dir' | 'file'): ListedEntry => ({ absolute, meta: { type, mode: 0o644, uid: 0, gid: 0, mtime: '0', size: 0 } });
    const name = () => Array.from({ length: 1 + (next() % 3) }, () => alphabet[next() % alphabet.length]).join('');
    const shuffle = <T>(xs: T[]): T[] => {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = next() % (i + 1);
        [xs[i], xs[j]] = [xs[j]!, xs[i]!];
      }
      return xs;
    };
    /** What find prints for a directory: itself, then its entries depth first in readdir (any) order. */
    const find = (dir: string, depth: number): ListedEntry[] => {
      const names = [...new Set(Array.from({ length: next() % 6 }, name))];
      return [entry(dir, 'dir'), ...shuffle(names).flatMap((n) => (depth < 3 && next() % 3 === 0 ? find(`${dir}/${n}`, depth + 1) : [entry(`${dir}/${n}`, 'file')]))];
    };
    const bySort = (xs: ListedEntry[]) => [...xs].sort((a, b) => compareTreeOrder(a.absolute, b.absolute)).map((e) => e.absolute);
    for (let round = 0; round < 60; round++) {
      // Several source paths in any order, a lone file among them, sometimes one inside another (listed twice).
      const roots = shuffle([find(`/opt/${name()}`, 0), find(`/etc/${name()}/x`, 1), [entry(`/etc/${name()}.conf`, 'file')]]);
      const listing = roots.flat();
      if (round % 10 === 0) listing.push(...find(listing[0]!.absolute, 2));
      const sorted = sortTreeOrder(listing);
      expect(sorted.map((e) => e.absolute)).toEqual(bySort(listing));
      expect(new Set(sorted)).toEqual(new Set(listing));
    }
  });

  it('turns find timestamps into exact nanoseconds', () => {
    expect(secondsToNs('1700000000.1234567890')).toBe('1700000000123456789');
    expect(secondsToNs('1700000000.5')).toBe('1700000000500000000');
    expect(secondsToNs('1700000000')).toBe('1700000000000000000');
    expect(secondsToNs('0.000000001')).toBe('1');
    expect(secondsToNs('0.0000000000')).toBe('0');
    expect(secondsToNs('-1.5')).toBe((-1_000_000_000n + 500_000_000n).toString());
    expect(secondsToNs('007.1')).toBe('7100000000');
    expect(secondsToNs('.5')).toBe('500000000');
    expect(secondsToNs('5.')).toBe('5000000000');
  });
});
