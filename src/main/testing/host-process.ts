import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { tempDir } from './temp-dir';

const root = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * The test host (`src/main/host/cli.ts`) as its own process on the data folder `home`, scheduler off,
 * serving a one-line page (the tests that use it talk to its socket or read its exit, not the renderer).
 */
export function spawnTestHost(home: string): ChildProcessByStdio<null, Readable, Readable> {
  const renderer = path.join(tempDir(), 'renderer');
  mkdirSync(renderer, { recursive: true });
  writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>Jetvault</title>');
  return spawn(process.execPath, ['--import', 'tsx', 'src/main/host/cli.ts', '--renderer', renderer], {
    cwd: root,
    env: { ...process.env, JETVAULT_HOME: home, JETVAULT_LOG_LEVEL: 'warn', JETVAULT_SCHEDULER: 'off' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
