/**
 * Zod as every schema of the console uses it, configured once (each schema module imports `z` from
 * here, so the configuration is in place wherever a schema is).
 * - No `new Function` probing: the renderer's CSP forbids eval, and a blocked probe is noise.
 * - Messages an operator reads under a form's field, after `device import` or a CLI option: a
 *   missing value reads "Required (text)", not "Invalid input: expected string, received
 *   undefined"; a wrong type "Expected a number, not "abc""; a bound "At most 65535" or "At most 64
 *   characters", not "Too big: expected number to be <=65535". A schema's own message wins.
 */
import { z } from 'zod';

const EXPECTED: Record<string, string> = { string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'a group of settings' };

/** What a bound counts, by the kind of value it bounds (numbers and dates count themselves). */
const UNITS: Record<string, [one: string, many: string]> = { string: ['character', 'characters'], array: ['entry', 'entries'], set: ['entry', 'entries'], file: ['byte', 'bytes'] };

/**
 * A wrong value as a message may show it: short text as it is (text given where a number or a
 * switch belongs), anything else by its kind only — a number given where text belongs may be a
 * password or a PIN typed into the wrong place, and messages reach logs and the audit trail.
 */
function shown(input: unknown): string {
  if (typeof input === 'string') return input.length <= 40 ? JSON.stringify(input) : 'a longer text';
  if (typeof input === 'number') return 'a number';
  if (typeof input === 'boolean') return 'true or false';
  if (input === null) return 'nothing (null)';
  return Array.isArray(input) ? 'a list' : typeof input === 'object' ? 'a group of settings' : typeof input;
}

function bound(code: 'too_big' | 'too_small', origin: string, limit: number | bigint, inclusive: boolean): string | undefined {
  const units = UNITS[origin];
  if (units) {
    if (code === 'too_small' && Number(limit) === 1) return origin === 'string' ? 'Cannot be empty' : 'Needs at least one entry';
    return `${code === 'too_big' ? 'At most' : 'At least'} ${limit} ${Number(limit) === 1 ? units[0] : units[1]}`;
  }
  if (origin === 'number' || origin === 'int' || origin === 'bigint') {
    if (inclusive) return `${code === 'too_big' ? 'At most' : 'At least'} ${limit}`;
    return `${code === 'too_big' ? 'Less' : 'More'} than ${limit}`;
  }
  return undefined;
}

z.config({
  jitless: true,
  customError: (issue) => {
    if (issue.code === 'invalid_type') {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return issue.input === undefined ? `Required (${expected})` : `Expected ${expected}, not ${shown(issue.input)}`;
    }
    if (issue.code === 'too_big') return bound(issue.code, issue.origin, issue.maximum, issue.inclusive ?? true);
    if (issue.code === 'too_small') return bound(issue.code, issue.origin, issue.minimum, issue.inclusive ?? true);
    return undefined;
  },
});

export { z };
