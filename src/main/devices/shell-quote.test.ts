import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandText, largeWrites, quote, raw, sh } from './shell-quote';

const HOSTILE = [
  '',
  ' ',
  'plain',
  "it's",
  "''",
  '"double"',
  '$(touch /tmp/jetvault-pwned)',
  '`touch /tmp/jetvault-pwned`',
  '$HOME ${HOME} $((1+1))',
  'a;b && c || d | e & f',
  '> /tmp/jetvault-pwned',
  '< /etc/passwd',
  '*',
  '~root',
  '-rf',
  '--help',
  'line one\nline two',
  'tab\tseparated',
  'back\\slash\\',
  '\\\'',
  '!event',
  '#not a comment',
  'emoji ✓ żółw 日本語',
  '\u0001\u001b[31mred\u001b[0m',
  "'; rm -rf / #",
  'x'.repeat(5000),
];

/** Runs `printf '%s\0' ARGS` in a real shell and returns the arguments it received. */
function roundTrip(shell: string, args: string[]): string[] {
  const command = commandText(sh`printf '%s\\0' ${args}`);
  const out = execFileSync(shell, ['-c', command], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

const shells = ['/bin/sh', '/bin/bash', '/bin/dash'].filter((s) => existsSync(s));

describe('shell quoting', () => {
  it('leaves safe words alone and quotes everything else', () => {
    expect(quote('pg_dump')).toBe('pg_dump');
    expect(quote('/var/log/myrvm')).toBe('/var/log/myrvm');
    expect(quote(5432)).toBe('5432');
    expect(quote('')).toBe("''");
    expect(quote("it's")).toBe(`'it'\\''s'`);
    expect(quote('$(x)')).toBe("'$(x)'");
  });

  it.each(shells)('round-trips hostile strings through %s unchanged, with no side effects', (shell) => {
    expect(roundTrip(shell, HOSTILE)).toEqual(HOSTILE);
    expect(existsSync('/tmp/jetvault-pwned')).toBe(false);
  });

  it.each(shells)('round-trips random printable and control characters through %s', (shell) => {
    const samples = Array.from({ length: 200 }, () =>
      Array.from(randomBytes(24), (b) => String.fromCharCode(b === 0 ? 1 : b < 128 ? b : 0x100 + b)).join(''),
    );
    expect(roundTrip(shell, samples)).toEqual(samples);
  });

  it('refuses NUL bytes instead of truncating', () => {
    expect(() => quote('a\0b')).toThrow(/NUL byte/);
  });

  it('inserts raw fragments and nested sh commands verbatim', () => {
    const inner = sh`cat -- ${'my file'}`;
    expect(commandText(sh`${inner} | ${raw('gzip -1')}`)).toBe("cat -- 'my file' | gzip -1");
  });

  it('runs a program with 64 KiB stdout writes through stdbuf where it is installed, as it is otherwise', () => {
    // A PATH without stdbuf, as on a device without coreutils' stdbuf (BusyBox).
    const bare = mkdtempSync(path.join(os.tmpdir(), 'jetvault-nostdbuf-'));
    try {
      symlinkSync(execFileSync('sh', ['-c', 'command -v printenv'], { encoding: 'utf8' }).trim(), path.join(bare, 'printenv'));
      const run = (command: string, PATH?: string) => execFileSync('/bin/sh', ['-c', command], { encoding: 'utf8', env: { ...process.env, ...(PATH ? { PATH } : {}) } });
      // stdbuf passes the buffer size to the program it starts in _STDBUF_O.
      expect(run(commandText(largeWrites(sh`printenv _STDBUF_O`)))).toBe('65536\n');
      expect(() => run(commandText(largeWrites(sh`printenv _STDBUF_O`)), bare)).toThrow();
      // Arguments arrive unchanged either way.
      const args = HOSTILE.filter((a) => a.length < 1000);
      for (const PATH of [undefined, bare]) expect(run(commandText(largeWrites(sh`printf '%s\\0' ${args}`)), PATH).split('\0').slice(0, -1)).toEqual(args);
    } finally {
      rmSync(bare, { recursive: true, force: true });
    }
  });
});
