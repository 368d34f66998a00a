/**
 * What a device named is printed on a terminal as text, never as control sequences: a file name may
 * hold ESC (Linux allows every byte but '/' and NUL), and `jetvault ls` printed it raw, so a
 * compromised device's file could retitle the technician's terminal, clear it or rewrite what it
 * showed. The real `jetvault` on a real pseudo-terminal (`script`).
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

    const shown = spawnSync('script', ['-qec', `${process.execPath} ${BIN} ls latest`, '/dev/null'], { env: { ...process.env, ...env, TERM: 'dumb' }, encoding: 'utf8', timeout: 50_000 });
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain(`${src}/report\\x1b]0;owned\\x07\\x1b[2J\\x1b[1A\\x0dcalibration.json`);
    expect(shown.stdout).not.toContain('\x1b');
    expect(shown.stdout).not.toContain('\x07');

    // Piped (a script reading it), the names stay as they are; --json escapes them anyway.
    const piped = await run('ls', 'latest');
    expect(piped.out).toContain(`${src}/${HOSTILE}`);
  });
});
