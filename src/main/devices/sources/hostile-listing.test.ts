/**
 * A compromised device whose `find` lies: its listing names paths with `..`, paths outside the
 * source, and a path through something it listed as a symbolic link. Real find and GNU tar through a
 * shell (LocalRunner), the lying `find` a script first on the device's PATH.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { backup } from '../../repository/archiver/archiver';
import { walkTree } from '../../repository/snapshot/snapshot';
import { newRepo } from '../../repository/testing/fixtures';
import { tempDir } from '../../testing/temp-dir';
import { LocalRunner } from '../local-runner';
import { RemoteFilesSource } from './files-source';

const PATH = process.env.PATH;
afterEach(() => {
  process.env.PATH = PATH;
});

/** A `find` that prints the real listing, then one record per extra path (type, size, target). */
function lyingFind(bin: string, extra: { type: 'f' | 'd' | 'l'; path: string; size?: number; target?: string }[]): void {
  mkdirSync(bin);
  // printf repeats its format for each argument: one NUL-terminated field each.
  const records = extra.map((e) => [e.type, '644', '0', '0', '1700000000.0', '1700000000.0', String(e.size ?? 0), '1:999', '1', '8', e.target ?? '', e.path].map((f) => `'${f}'`).join(' '));
  writeFileSync(path.join(bin, 'find'), `#!/bin/sh\n/usr/bin/find "$@"\n${records.map((r) => `printf '%s\\0' ${r}`).join('\n')}\n`);
  chmodSync(path.join(bin, 'find'), 0o755);
}

describe('a backup from a device whose listing lies', () => {
  it('stores only plain paths inside the source and says which it left out', async () => {
    const base = tempDir();
    const sysroot = path.join(base, 'root');
    const app = path.join(sysroot, 'opt/myrvm');
    mkdirSync(app, { recursive: true });
    writeFileSync(path.join(app, 'app.py'), 'print(1)\n');
    writeFileSync(path.join(base, 'planted'), 'hostil');
    mkdirSync(path.join(sysroot, 'etc'));
    writeFileSync(path.join(sysroot, 'etc/other'), 'other');
    lyingFind(path.join(base, 'bin'), [
      { type: 'f', path: `${app}/../../../planted`, size: 6 },
      { type: 'f', path: `${sysroot}/etc/other`, size: 5 },
      { type: 'l', path: `${app}/link`, target: '/home/tech' },
      { type: 'd', path: `${app}/link/through` },
      { type: 'd', path: `${app}//doubled` },
    ]);
    process.env.PATH = `${path.join(base, 'bin')}:${PATH}`;
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
    const stored: string[] = [];
    for await (const { path: p } of walkTree(repo, result.snapshot.tree)) stored.push(p);
    expect(stored.sort()).toEqual(['opt', 'opt/myrvm', 'opt/myrvm/app.py', 'opt/myrvm/link']);
    const why = 'the device listed it though it is not a plain path inside the source (a device whose tools were tampered with?): not backed up';
    expect(result.warnings).toEqual(
      expect.arrayContaining([
        { path: 'opt/myrvm/../../../planted', message: why },
        { path: 'etc/other', message: why },
        { path: 'opt/myrvm/link/through', message: why },
        { path: 'opt/myrvm//doubled', message: why },
      ]),
    );
    expect(result.warnings).toHaveLength(4);
  });

  it('stops a listing that never ends a record at once, instead of gathering it without end', { timeout: 20_000 }, async () => {
    const base = tempDir();
    const app = path.join(base, 'root', 'opt/myrvm');
    mkdirSync(app, { recursive: true });
    const bin = path.join(base, 'bin');
    mkdirSync(bin);
    // 48 MiB without a NUL, then nothing more for a long while (a device that never stops talking, or stalls mid-record).
    writeFileSync(path.join(bin, 'find'), "#!/bin/sh\nhead -c 50331648 /dev/zero | tr '\\0' x\nexec sleep 15\n");
    chmodSync(path.join(bin, 'find'), 0o755);
    process.env.PATH = `${bin}:${PATH}`;
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    const started = Date.now();
    await expect(backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot: path.join(base, 'root') }))).rejects.toThrow(
      /^The listing of .*opt\/myrvm from this computer is not what find prints \(1 MiB without the end of an entry\)/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

