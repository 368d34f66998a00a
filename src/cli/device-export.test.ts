/** `jetvault device export` as an operator moves devices between laptops: the file it writes imports again. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const profile = (name: string) => ({ name, host: '127.0.0.1', port: 22, user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: [] });

describe('jetvault device export', () => {
  it('writes a device named twice once, in the order first named, and the file imports on another laptop', async () => {
    const run = cliRunner({ JETVAULT_HOME: tempDir() });
    const file = path.join(tempDir(), 'fleet.json');
    writeFileSync(file, JSON.stringify([profile('rvm-001'), profile('rvm-002')]));
    expect((await run('device', 'import', file)).code).toBe(0);

    const exported = await run('device', 'export', 'rvm-002', 'rvm-001', 'rvm-002');
    expect(exported.code).toBe(0);
    expect((JSON.parse(exported.out) as { devices: { name: string }[] }).devices.map((d) => d.name)).toEqual(['rvm-002', 'rvm-001']);

    const moved = path.join(tempDir(), 'moved.json');
    writeFileSync(moved, exported.out);
    const other = cliRunner({ JETVAULT_HOME: tempDir() });
    const imported = await other('device', 'import', moved);
    expect(imported.err).toBe('');
    expect(imported.code).toBe(0);
    expect((JSON.parse((await other('device', 'list', '--json')).out) as { name: string }[]).map((d) => d.name).sort()).toEqual(['rvm-001', 'rvm-002']);
  }, 60_000);
});
