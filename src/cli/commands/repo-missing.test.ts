/**
 * `jetvault -r DIR` where DIR is not there at all (a USB disk not mounted, a repository moved): the
 * error says so before suggesting `init`, which would make a new, empty repository at the mount point.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../main/testing/temp-dir';
import type { CliIo } from '../command';
import { runCli } from '../main';

function io(env: Record<string, string>): CliIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), env: { ...env } };
}

describe('a repository folder that is not there', () => {
  it('is said to be not there (mount the disk, or give the new path), not only "create one with jetvault init"', async () => {
    const home = tempDir('jv-cli-');
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1' };
    const unmounted = join(tempDir('jv-mnt-'), 'jetvault');
    for (const args of [['snapshots', '-r', unmounted], ['check', '-r', unmounted], ['copy', '--to', unmounted]]) {
      const run = io({ ...env, JETVAULT_TO_PASSWORD: 'pw-2' });
      if (args[0] === 'copy') expect(await runCli(['init'], io(env))).toBe(0);
      expect(await runCli(args, run)).toBe(10);
      expect(run.errors.join('\n')).toMatch(new RegExp(`no repository at ${unmounted}: that folder is not there\\. If the repository is on a disk, mount it there \\(or give its new path with -r or JETVAULT_REPOSITORY\\)`));
    }
    // An empty folder, or the data folder's own repository before the first init: as before.
    const empty = join(home, 'empty');
    mkdirSync(empty);
    for (const args of [['snapshots', '-r', empty], ['snapshots']]) {
      const run = io({ JETVAULT_HOME: tempDir('jv-cli-'), JETVAULT_PASSWORD: 'pw-1' });
      expect(await runCli(args, run)).toBe(10);
      expect(run.errors.join('\n')).toMatch(/no repository at .* \(create one with `jetvault init`\)/);
    }
  });
});
