/**
 * What a device named is printed on a terminal as text, never as control sequences: a file name may
 * hold ESC (Linux allows every byte but '/' and NUL), and `jetvault ls` printed it raw, so a
 * compromised device's file could retitle the technician's terminal, clear it or rewrite what it
 * showed. `ls` and `diff` show names as the console does (a line break as \n, so one entry is one
 * line; a right-to-left override as \u202E, so no name poses as another). The real `jetvault` on a
 * real pseudo-terminal (`script`).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../bin/jetvault.js');
const HOSTILE = 'report\x1b]0;owned\x07\x1b[2J\x1b[1A\rcalibration.json';
const TWO_LINES = 'two\nlines.txt';
const SPOOFED = 'invoice\u202Etxt.exe';

describe('jetvault on a terminal', () => {
  it('shows control characters in names as visible escapes', { timeout: 60_000 }, async () => {
    const home = tempDir();
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'terminal output test password' };
    const run = cliRunner(env);
    const src = path.join(home, 'src');
    mkdirSync(src);
    writeFileSync(path.join(src, HOSTILE), 'x');
    expect((await run('init')).code).toBe(0);
    expect((await run('backup', src)).code).toBe(0);
    // Added for the second snapshot: a name with a line break, and one a right-to-left override makes look like a .txt.
    writeFileSync(path.join(src, TWO_LINES), 'x');
    writeFileSync(path.join(src, SPOOFED), 'x');
    expect((await run('backup', src)).code).toBe(0);
    const [second, first] = (JSON.parse((await run('snapshots', '--json')).out) as { id: string; time: string }[]).sort((a, b) => b.time.localeCompare(a.time)).map((s) => s.id);

    const onTerminal = (args: string) => {
      const shown = spawnSync('script', ['-qec', `${process.execPath} ${BIN} ${args}`, '/dev/null'], { env: { ...process.env, ...env, TERM: 'dumb' }, encoding: 'utf8', timeout: 50_000 });
      expect(shown.status).toBe(0);
      expect(shown.stdout).not.toContain('\x1b');
      expect(shown.stdout).not.toContain('\x07');
      expect(shown.stdout).not.toContain('\u202e');
      return shown.stdout.split(/\r?\n/);
    };
    // Names as the console shows them (visibleName), each entry on one line of its own.
    const listed = onTerminal('ls latest');
    expect(listed).toContain(`${src}/report\\x1B]0;owned\\x07\\x1B[2J\\x1B[1A\\rcalibration.json`);
    expect(listed).toContain(`${src}/two\\nlines.txt`);
    expect(listed).toContain(`${src}/invoice\\u202Etxt.exe`);
    const diff = onTerminal(`diff ${first} ${second}`);
    expect(diff).toContain(`+    ${src}/two\\nlines.txt`);
    expect(diff).toContain(`+    ${src}/invoice\\u202Etxt.exe`);

    // Piped (a script reading it), the names stay as they are; --json escapes them anyway.
    const piped = await run('ls', 'latest');
    expect(piped.out).toContain(`${src}/${HOSTILE}`);
    expect(piped.out).toContain(`${src}/${TWO_LINES}`);
    expect((await run('diff', first!, second!)).out).toContain(`+    ${src}/${SPOOFED}`);
  });
});
