import { describe, expect, it } from 'vitest';
import { compareTreeOrder, secondsToNs } from './listing';

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
