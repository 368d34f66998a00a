import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { appendFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { backup } from '../../repository/archiver/archiver';
import { restore } from '../../repository/restorer/restorer';
import { findSnapshot, listSnapshots, walkTree } from '../../repository/snapshot/snapshot';
import type { TreeNode } from '../../repository/snapshot/tree';
import { describeTree, makeAwkwardTree, newRepo } from '../../repository/testing/fixtures';
import type { Repository } from '../../repository/repo/repository';
import { tempDir } from '../../testing/temp-dir';
import { LocalRunner } from '../local-runner';
import { RemoteFilesSource, unsparse } from './files-source';

async function filesOf(repo: Repository, tree: string): Promise<Map<string, TreeNode>> {
  const map = new Map<string, TreeNode>();
  for await (const { path: p, node } of walkTree(repo, tree)) if (node.type === 'file') map.set(p, node);
  return map;
}

describe('RemoteFilesSource (real find and GNU tar through a shell)', () => {
  it('backs up a tree with awkward names byte-exact, then transfers only what changed', async () => {
    const sysroot = tempDir();
    const data = path.join(sysroot, 'opt/myrvm/data');
    await mkdir(data, { recursive: true });
    await makeAwkwardTree(data);
    await writeFile(path.join(sysroot, 'opt/myrvm/local.db'), 'live database, excluded');
    const { repo } = await newRepo();
    const runner = new LocalRunner();
    const source = { name: 'app', kind: 'files' as const, paths: [path.join(sysroot, 'opt/myrvm')], exclude: ['local.db*'] };

    const stats: { transferFiles: number; transferBytes: number }[] = [];
    const first = await backup(repo, new RemoteFilesSource({ runner, source, sysroot, onListed: (s) => stats.push(s) }), { device: 'rvm-017', tags: ['source:app'] });
    expect(first.warnings).toEqual([]);
    expect(first.snapshot.paths).toEqual(['opt/myrvm']);

    const out = tempDir();
    await restore(repo, await findSnapshot(repo, first.id), out);
    const expected = await describeTree(data);
    expect(await describeTree(path.join(out, 'opt/myrvm/data'))).toEqual(expected);
    expect(Object.keys(await describeTree(path.join(out, 'opt/myrvm')))).not.toContain('local.db');

    // One file changes, one is added, one removed: only two files cross the link.
    await appendFile(path.join(data, 'text.sql'), '\n-- changed');
    await writeFile(path.join(data, 'sub', 'new file.txt'), 'new');
    await rm(path.join(data, 'zero-length'));
    const second = await backup(
      repo,
      new RemoteFilesSource({ runner, source, sysroot, parentFiles: await filesOf(repo, first.snapshot.tree), onListed: (s) => stats.push(s) }),
      { device: 'rvm-017', parent: await findSnapshot(repo, first.id) },
    );
    expect(stats[1]!.transferFiles).toBe(2);
    expect(stats[1]!.transferBytes).toBeLessThan(stats[0]!.transferBytes / 2);
    expect(second.snapshot.summary.filesRead).toBe(2);
    const out2 = tempDir();
    await restore(repo, await findSnapshot(repo, second.id), out2);
    expect(await describeTree(path.join(out2, 'opt/myrvm/data'))).toEqual(await describeTree(data));
  });

  it('leaves out excluded files and everything below an excluded directory, at any depth or anchored', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    const files = ['cache/a/b/deep.bin', 'sub/cache/x.bin', 'logs/a.tmp', 'logs/keep.txt', 'build/x.o', 'sub/build/y.o', 'sub/b/c/d/e.txt', 'cachet/kept.txt'];
    for (const f of files) {
      await mkdir(path.dirname(path.join(app, f)), { recursive: true });
      await writeFile(path.join(app, f), f);
    }
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app], exclude: ['cache', '*.tmp', '/build'] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
    const kept = [...(await filesOf(repo, result.snapshot.tree)).keys()].map((p) => p.replace('opt/myrvm/', '')).sort();
    expect(kept).toEqual(['cachet/kept.txt', 'logs/keep.txt', 'sub/b/c/d/e.txt', 'sub/build/y.o']);
  });

  it('keeps everything inside a folder an include names, and a pattern ending in / matches folders only', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    const files = ['config/app.yaml', 'config/sub/cam.yaml', 'models/a/net.onnx', 'logs/run.log', 'logs/old/x.log', 'data/b.bin', 'data/config', 'sub/cache/x.bin', 'sub/cache.d/y', 'cache', 'tmp/t', 'a/b/tmp/t', 'a/tmpx/t'];
    for (const f of files) {
      await mkdir(path.dirname(path.join(app, f)), { recursive: true });
      await writeFile(path.join(app, f), f);
    }
    const { repo } = await newRepo();
    const kept = async (include: string[], exclude: string[]) => {
      const source = { name: 'app', kind: 'files' as const, paths: [app], include, exclude };
      const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
      expect(result.warnings).toEqual([]);
      return [...(await filesOf(repo, result.snapshot.tree)).keys()].map((p) => p.replace('opt/myrvm/', '')).sort();
    };
    // A folder named by an include comes whole; 'config/' is the folder, not the file data/config.
    expect(await kept(['config/', '/models', '*.log'], [])).toEqual(['config/app.yaml', 'config/sub/cam.yaml', 'logs/old/x.log', 'logs/run.log', 'models/a/net.onnx']);
    // 'cache/' leaves out the folder, not a file called cache; '**/tmp' every tmp folder at any depth.
    expect(await kept([], ['cache/', '**/tmp'])).toEqual(['a/tmpx/t', 'cache', 'config/app.yaml', 'config/sub/cam.yaml', 'data/b.bin', 'data/config', 'logs/old/x.log', 'logs/run.log', 'models/a/net.onnx', 'sub/cache.d/y']);
  });

  it('takes a pattern written as the full device path (the source path and below) as the path below the source', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    for (const f of ['data/local.db', 'data/local.db-wal', 'data/keep.csv', 'cache/x.bin', 'models/net.onnx', 'app.py']) {
      await mkdir(path.dirname(path.join(app, f)), { recursive: true });
      await writeFile(path.join(app, f), f);
    }
    const { repo } = await newRepo();
    const kept = async (include: string[], exclude: string[]) => {
      const source = { name: 'app', kind: 'files' as const, paths: [`${app}/`], include, exclude };
      const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
      return [...(await filesOf(repo, result.snapshot.tree)).keys()].map((p) => p.replace('opt/myrvm/', '')).sort();
    };
    expect(await kept([], [`${app}/data/local.db*`, `${app}/cache`])).toEqual(['app.py', 'data/keep.csv', 'models/net.onnx']);
    expect(await kept([`${app}/models/`, '*.py'], [])).toEqual(['app.py', 'models/net.onnx']);
  });

  it('applies a pattern written as the full device path below that path only, not below the source\'s other paths', async () => {
    const sysroot = tempDir();
    const [app, etc] = [path.join(sysroot, 'opt/myrvm'), path.join(sysroot, 'etc/myrvm')];
    for (const f of [`${app}/cache/x.bin`, `${app}/models/net.onnx`, `${app}/app.py`, `${etc}/cache/keep.yaml`, `${etc}/models/labels.txt`, `${etc}/main.yaml`]) {
      await mkdir(path.dirname(f), { recursive: true });
      await writeFile(f, f);
    }
    const { repo } = await newRepo();
    const kept = async (include: string[], exclude: string[]) => {
      const source = { name: 'app', kind: 'files' as const, paths: [app, etc], include, exclude };
      const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
      return [...(await filesOf(repo, result.snapshot.tree)).keys()].filter((p) => /\.(bin|onnx|py|yaml|txt)$/.test(p)).sort();
    };
    // /opt/myrvm's cache is left out; /etc/myrvm/cache is not (it was, as "/cache" below every path).
    expect(await kept([], [`${app}/cache`])).toEqual(['etc/myrvm/cache/keep.yaml', 'etc/myrvm/main.yaml', 'etc/myrvm/models/labels.txt', 'opt/myrvm/app.py', 'opt/myrvm/models/net.onnx']);
    // An include written under /opt/myrvm narrows /opt/myrvm alone; a pattern without a device path applies below both.
    expect(await kept([`${app}/models/`], ['*.txt'])).toEqual(['etc/myrvm/cache/keep.yaml', 'etc/myrvm/main.yaml', 'opt/myrvm/models/net.onnx']);
  });

  it('ends a listing that goes on past the most entries a source may hold, saying what to do, and writes no snapshot', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    await mkdir(app, { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(path.join(app, `f${i}`), `${i}`);
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    await expect(backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot, maxEntries: 25 }))).rejects.toThrow(
      expect.objectContaining({ code: 'REMOTE_COMMAND_FAILED', message: expect.stringMatching(/lists more than 25 entries, more than one files source can hold: split "app" into sources of its folders/) as string }),
    );
    expect(await listSnapshots(repo)).toEqual([]);
    // Within the bound it is backed up as ever.
    expect((await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot, maxEntries: 41 }))).snapshot.summary.files).toBe(40);
  });

  it('fails a source whose stored pattern cannot be used with the pattern named, before anything runs on the device', async () => {
    const sysroot = tempDir();
    await mkdir(path.join(sysroot, 'opt/myrvm'), { recursive: true });
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [path.join(sysroot, 'opt/myrvm')], exclude: ['*.tmp', '[z-a]'] };
    await expect(backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }))).rejects.toThrow(
      expect.objectContaining({ code: 'VALIDATION', message: expect.stringMatching(/files source "app" .*exclude "\[z-a\]" is not a valid pattern \(range out of order/) as string }),
    );
  });

  it('reports missing paths as warnings and fails only when nothing at all can be listed', async () => {
    const sysroot = tempDir();
    await mkdir(path.join(sysroot, 'etc/myrvm'), { recursive: true });
    await writeFile(path.join(sysroot, 'etc/myrvm/config.yaml'), 'a: 1\n');
    const { repo } = await newRepo();
    const runner = new LocalRunner();
    const partial = new RemoteFilesSource({ runner, sysroot, source: { name: 'config', kind: 'files', paths: [path.join(sysroot, 'etc/myrvm'), path.join(sysroot, 'opt/myrvm/.env')] } });
    const result = await backup(repo, partial);
    // Named as in the snapshot (relative to the device's root), with find's reason.
    expect(result.warnings).toEqual([{ path: 'opt/myrvm/.env', message: 'No such file or directory' }]);
    // Every path gone (a log folder removed, an app uninstalled): said as such, with what to do.
    const none = new RemoteFilesSource({ runner, sysroot, source: { name: 'config', kind: 'files', paths: [path.join(sysroot, 'nowhere')] } });
    await expect(backup(repo, none)).rejects.toThrow(
      `Nothing of the files source "config" is on this computer: ${path.join(sysroot, 'nowhere')} does not exist (removed, moved, or on a disk that is not mounted?). No snapshot was written; correct the path in the device's sources, or remove the source if it is gone for good.`,
    );
    const neither = new RemoteFilesSource({ runner, sysroot, source: { name: 'logs', kind: 'files', paths: [path.join(sysroot, 'var/log/a'), path.join(sysroot, 'var/log/b/')] } });
    await expect(backup(repo, neither)).rejects.toThrow(`none of ${path.join(sysroot, 'var/log/a')}, ${path.join(sysroot, 'var/log/b')} exists`);
  });

  it("names a missing path in English and as it is written, whatever the device's locale", async () => {
    // As a Jetson set up in German (LANG and LANGUAGE from /etc/default/locale).
    vi.stubEnv('LANG', 'C.UTF-8');
    vi.stubEnv('LANGUAGE', 'de_DE:de');
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    const sysroot = tempDir();
    await mkdir(path.join(sysroot, 'etc/myrvm'), { recursive: true });
    await writeFile(path.join(sysroot, 'etc/myrvm/config.yaml'), 'a: 1\n');
    const { repo } = await newRepo();
    const source = { name: 'config', kind: 'files' as const, paths: [path.join(sysroot, 'etc/myrvm'), path.join(sysroot, 'opt/données')] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), sysroot, source }));
    expect(result.warnings).toEqual([{ path: 'opt/données', message: 'No such file or directory' }]);
  });

  it('takes a source path written with a trailing slash, doubled slashes or "." as the folder it names: its own node, its excludes', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    await mkdir(path.join(app, 'data'), { recursive: true });
    await writeFile(path.join(app, 'app.py'), 'print(1)\n');
    await writeFile(path.join(app, 'data/local.db'), 'live database, excluded');
    const { repo } = await newRepo();
    for (const written of [`${app}/`, `${sysroot}//opt/./myrvm//`]) {
      const source = { name: 'app', kind: 'files' as const, paths: [written], exclude: ['data/local.db*'] };
      const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
      expect(result.warnings).toEqual([]);
      expect(result.snapshot.paths).toEqual(['opt/myrvm']);
      const nodes: { path: string; uid?: number; mtime?: string }[] = [];
      for await (const { path: p, node } of walkTree(repo, result.snapshot.tree)) nodes.push({ path: p, uid: node.uid, mtime: node.mtime });
      // The anchored exclude applies, and the folder is one node with its own metadata (no nameless child).
      expect(nodes.map((n) => n.path).sort()).toEqual(['opt', 'opt/myrvm', 'opt/myrvm/app.py', 'opt/myrvm/data']);
      expect(nodes.find((n) => n.path === 'opt/myrvm')!.mtime).not.toBe('0');
    }
  });

  it('says so when a source path is a symbolic link (the app folder moved to NVMe and linked back): only the link is in the snapshot', async () => {
    const sysroot = tempDir();
    await mkdir(path.join(sysroot, 'mnt/nvme/myrvm'), { recursive: true });
    await writeFile(path.join(sysroot, 'mnt/nvme/myrvm/model.onnx'), 'weights');
    await mkdir(path.join(sysroot, 'opt'), { recursive: true });
    await symlink(path.join(sysroot, 'mnt/nvme/myrvm'), path.join(sysroot, 'opt/myrvm'));
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [path.join(sysroot, 'opt/myrvm')] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
    expect(result.snapshot.summary.files).toBe(0);
    expect(result.warnings).toEqual([{ path: 'opt/myrvm', message: expect.stringContaining(path.join(sysroot, 'mnt/nvme/myrvm')) as string }]);
    expect(result.warnings[0]!.message).toMatch(/symbolic link.*nothing it points to was copied/);
  });

  const notRoot = process.getuid?.() === 0 ? null : 'mounting proc and sysfs needs root';
  it.skipIf(notRoot)(`backs up a source of "/" without entering /proc or /sys: their mount points only${notRoot ? ` (skipped: ${notRoot})` : ''}`, async () => {
    const sysroot = tempDir();
    await mkdir(path.join(sysroot, 'etc'));
    await writeFile(path.join(sysroot, 'etc/hostname'), 'rvm-017\n');
    const mounts = [
      ['proc', path.join(sysroot, 'proc')],
      ['sysfs', path.join(sysroot, 'sys')],
    ] as const;
    try {
      for (const [type, at] of mounts) {
        await mkdir(at);
        expect(spawnSync('mount', ['-t', type, type, at]).status).toBe(0);
      }
      const { repo } = await newRepo();
      const source = { name: 'root', kind: 'files' as const, paths: [`${sysroot}/`] };
      const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
      const paths: string[] = [];
      for await (const { path: p } of walkTree(repo, result.snapshot.tree)) paths.push(p);
      expect(paths).toEqual(['etc', 'etc/hostname', 'proc', 'sys']);
      expect(result.warnings ?? []).toEqual([]);
    } finally {
      for (const [, at] of mounts) spawnSync('umount', [at]);
    }
  });

  it('lists a folder named twice, or inside another path of the source, once: no entry twice in the snapshot', async () => {
    const sysroot = tempDir();
    const etc = path.join(sysroot, 'etc');
    await mkdir(path.join(etc, 'myrvm'), { recursive: true });
    await writeFile(path.join(etc, 'hostname'), 'rvm-017\n');
    await writeFile(path.join(etc, 'myrvm/config.yaml'), 'fps: 30\n');
    const { repo } = await newRepo();
    const source = { name: 'config', kind: 'files' as const, paths: [etc, path.join(etc, 'myrvm'), `${etc}/myrvm/`] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
    const paths: string[] = [];
    for await (const { path: p } of walkTree(repo, result.snapshot.tree)) paths.push(p);
    expect(paths).toEqual(['etc', 'etc/hostname', 'etc/myrvm', 'etc/myrvm/config.yaml']);
    expect(result.snapshot.summary.files).toBe(2);
  });

  it('rebuilds a sparse file from its tar map and regions, however the stream is cut, and refuses a map that is cut or wrong', async () => {
    const collect = async (stream: AsyncIterable<Buffer>) => {
      const parts: Buffer[] = [];
      for await (const part of stream) parts.push(Buffer.from(part));
      return Buffer.concat(parts);
    };
    // 3 regions: 5 bytes at 0, 4 at 1000, none at the end (tar's last entry); a 2,000-byte file.
    const map = Buffer.from('3\n0\n5\n1000\n4\n2000\n0\n');
    const body = Buffer.concat([map, Buffer.alloc(512 - map.length), Buffer.from('helloDATA')]);
    const expected = Buffer.alloc(2000);
    expected.write('hello', 0);
    expected.write('DATA', 1000);
    const pieces = (data: Buffer, piece: number): AsyncIterable<Buffer> => Readable.from(Array.from({ length: Math.ceil(data.length / piece) }, (_, i) => data.subarray(i * piece, (i + 1) * piece)));
    for (const piece of [1, 3, 7, 512, body.length]) expect((await collect(unsparse(pieces(body, piece), 2000))).equals(expected)).toBe(true);
    const once = (data: Buffer) => pieces(data, data.length);
    await expect(collect(unsparse(once(body.subarray(0, 8)), 2000))).rejects.toThrow(/cut short in its map/);
    await expect(collect(unsparse(once(body.subarray(0, 515)), 2000))).rejects.toThrow(/cut short/);
    await expect(collect(unsparse(once(Buffer.concat([Buffer.from('1\n1990\n20\n'), Buffer.alloc(600)])), 2000))).rejects.toThrow(/not a sparse map of the file/);
    await expect(collect(unsparse(once(Buffer.concat([Buffer.from('x\n'), Buffer.alloc(510)])), 2000))).rejects.toThrow(/not a sparse map/);
  });

  it("leaves Jetvault's own working folders on the device out of the snapshot (a cut restore's resume folder, stagings, dump temps), whatever bytes follow the prefix", async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    const kept = ['models/net.onnx', 'config/app.yaml', 'x.jetvault-y', '.jetvaultish', 'sub/.jetvault/keep.txt'];
    const own = ['.jetvault-resume-models/net.onnx', '.jetvault-restore-r1-config/app.yaml', 'sub/.jetvault-dbrestore-r2-local.db', 'sub/deep/.jetvault-drill-r3/db/x', '.jetvault-restore/r4-db/dump'];
    for (const f of [...kept, ...own]) {
      await mkdir(path.dirname(path.join(app, f)), { recursive: true });
      await writeFile(path.join(app, f), f);
    }
    // A name that is not UTF-8 after the prefix: find matches it in the C.UTF-8 locale all the same.
    writeFileSync(Buffer.concat([Buffer.from(`${app}/.jetvault-resume-`), Buffer.from([0xff, 0x6d])]), 'not UTF-8');
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
    expect(result.warnings).toEqual([]);
    const paths: string[] = [];
    for await (const { path: p } of walkTree(repo, result.snapshot.tree)) paths.push(p.replace('opt/myrvm/', ''));
    expect(paths.filter((p) => p.split('/').some((part) => part.startsWith('.jetvault-')))).toEqual([]);
    expect(paths).toContain('sub/deep');
    expect([...(await filesOf(repo, result.snapshot.tree)).keys()].map((p) => p.replace('opt/myrvm/', '')).sort()).toEqual([...kept].sort());

    // A source path inside such a folder lists nothing: refused by name, with no snapshot, not an empty one.
    const inside = { name: 'staged', kind: 'files' as const, paths: [path.join(app, '.jetvault-resume-models')] };
    await expect(backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source: inside, sysroot }))).rejects.toThrow(/cannot be backed up: .*\.jetvault-resume-models is inside one of Jetvault's own working folders on the device/);
  });

  it('keeps file names that are not valid UTF-8 byte-exact through find, tar and restore', async () => {
    const sysroot = tempDir();
    const data = path.join(sysroot, 'opt/myrvm/data');
    await mkdir(data, { recursive: true });
    const odd = Buffer.from([0x66, 0xff, 0x6f]);
    const twin = Buffer.from([0x66, 0xfe, 0x6f]); // the same string as `odd` if decoded lossily
    const at = (name: Buffer): Buffer => Buffer.concat([Buffer.from(`${data}/`), name]);
    writeFileSync(at(odd), 'odd bytes');
    writeFileSync(at(twin), 'twin bytes');
    mkdirSync(at(Buffer.from([0x64, 0x80])));
    writeFileSync(Buffer.concat([at(Buffer.from([0x64, 0x80])), Buffer.from('/long-'), Buffer.alloc(120, 0x78), Buffer.from([0xff])]), 'long name (GNU long-name header)');
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [data] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }));
    expect(result.warnings).toEqual([]);
    expect(result.snapshot.summary.filesRead).toBe(3);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, result.id), out);
    const restored = Buffer.from(path.join(out, 'opt/myrvm/data'));
    const read = (name: Buffer): string => readFileSync(Buffer.concat([restored, Buffer.from('/'), name])).toString();
    expect(readdirSync(restored, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort()).toEqual([odd, twin, Buffer.from([0x64, 0x80])].map((b) => b.toString('hex')).sort());
    expect(read(odd)).toBe('odd bytes');
    expect(read(twin)).toBe('twin bytes');
    expect(read(Buffer.concat([Buffer.from([0x64, 0x80]), Buffer.from('/long-'), Buffer.alloc(120, 0x78), Buffer.from([0xff])]))).toBe('long name (GNU long-name header)');
  });
});
