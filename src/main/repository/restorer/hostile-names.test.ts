/**
 * A snapshot from a hostile device (its listing names `..`, `/` or a symlink and then a path through
 * it) or a tampered repository: a restore never writes, links or removes outside its target.
 */
import { existsSync, readdirSync } from 'node:fs';
import { lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path, { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import type { Source, SourceEntry } from '../archiver/source';
import { findSnapshot } from '../snapshot/snapshot';
import type { NodeMeta } from '../snapshot/tree';
import { newRepo, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { localName, restore } from './restorer';

const T = '1700000000000000000';
const dir: NodeMeta = { type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: T, size: 0 };
const file = (size: number): NodeMeta => ({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: T, size });
const bytes = (text: string) => () => asyncOf([Buffer.from(text)]);

async function* asyncOf<T>(items: T[]): AsyncIterable<T> {
  for (const item of items) yield await Promise.resolve(item);
}

function hostile(outside: string): Source {
  const entries: SourceEntry[] = [
    { path: 'app', meta: dir },
    { path: 'app/../../../escaped-by-dotdot', meta: file(6), open: bytes('hostil') },
    { path: 'app/link', meta: { type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: T, size: 0, target: outside } },
    { path: 'app/link/through-symlink', meta: file(6), open: bytes('hostil') },
    { path: 'app/ok.txt', meta: file(2), open: bytes('ok') },
  ];
  return { paths: ['/app'], kind: 'files', warnings: [], entries: () => asyncOf(entries) };
}

describe('a restore of a snapshot with hostile names', () => {
  for (const workers of [undefined, 0]) {
    it(`writes nothing outside its target (${workers === 0 ? 'main thread' : 'chunk workers'})`, { timeout: 60_000 }, async () => {
      const base = await tempDir('jv-hostile-');
      const outside = join(base, 'outside');
      await mkdir(outside);
      await writeFile(join(outside, 'keep'), 'keep');
      const target = join(base, 'a', 'b', 'target');
      await mkdir(target, { recursive: true });
      const { repo } = await newRepo();
      const made = await backup(repo, hostile(outside));
      const result = await restore(repo, await findSnapshot(repo, made.id), target, workers === 0 ? { workers: 0 } : {});
      expect(existsSync(join(base, 'escaped-by-dotdot'))).toBe(false);
      expect(readdirSync(base).sort()).toEqual(['a', 'outside']);
      expect(readdirSync(join(base, 'a'))).toEqual(['b']);
      expect(readdirSync(join(base, 'a', 'b'))).toEqual(['target']);
      expect(readdirSync(outside)).toEqual(['keep']);
      expect(readdirSync(join(target, 'app')).sort()).toEqual(['link', 'ok.txt']);
      expect(result.warnings).toEqual(['app/"..": not restored, not a file name (it would be outside the target folder)', 'app/link: not restored, the snapshot holds this name twice in its folder']);
    });

    it(`links a hard-linked file only to a file it restored, never to a symbolic link out of the target (${workers === 0 ? 'main thread' : 'chunk workers'})`, { timeout: 60_000 }, async () => {
      const base = await tempDir('jv-hostile-');
      const outside = join(base, 'outside.txt');
      await writeFile(outside, 'outside');
      const target = join(base, 'target');
      // A symlink out of the target and a file the listing says is the same inode (a link count of 2).
      const link = { type: 'symlink' as const, mode: 0o777, uid: 0, gid: 0, mtime: T, size: 0, target: outside, inode: '1:42', links: 2 };
      const entries: SourceEntry[] = [
        { path: 'app', meta: dir },
        { path: 'app/a-link', meta: link },
        { path: 'app/b-file', meta: { ...file(6), inode: '1:42', links: 2 }, open: bytes('inside') },
      ];
      const { repo } = await newRepo();
      const made = await backup(repo, { paths: ['/app'], kind: 'files', warnings: [], entries: () => asyncOf(entries) });
      await restore(repo, await findSnapshot(repo, made.id), target, workers === 0 ? { workers: 0 } : {});
      const restored = join(target, 'app', 'b-file');
      expect((await lstat(restored)).isFile()).toBe(true);
      expect(await readFile(restored, 'utf8')).toBe('inside');
      expect(await readFile(outside, 'utf8')).toBe('outside');
    });

    it(`replaces a symbolic link an earlier restore left where the snapshot has a folder, and restores nothing through it (${workers === 0 ? 'main thread' : 'chunk workers'})`, { timeout: 60_000 }, async () => {
      const base = await tempDir('jv-hostile-');
      const outside = join(base, 'outside');
      await mkdir(outside, { mode: 0o700 });
      const target = join(base, 'target');
      await mkdir(target);
      await symlink(outside, join(target, 'app'));
      const src = join(base, 'src');
      await mkdir(join(src, 'app'), { recursive: true });
      await writeFile(join(src, 'app', 'ok.txt'), 'ok');
      const { repo } = await newRepo();
      const made = await backup(repo, new LocalSource([join(src, 'app')]));
      const snapshot = await findSnapshot(repo, made.id);
      // Whole, and with only a pattern inside the folder: the folder is made as it is entered.
      for (const include of [[], [`${src.slice(1)}/app/ok.txt`]]) {
        const into = join(target, `${include.length}`);
        await mkdir(into);
        const app = join(into, src.slice(1), 'app');
        await mkdir(dirname(app), { recursive: true });
        await symlink(outside, app);
        await restore(repo, snapshot, into, { include, ...(workers === 0 ? { workers: 0 } : {}) });
        expect(readdirSync(outside)).toEqual([]);
        expect((await lstat(app)).isDirectory()).toBe(true);
        expect(await readFile(join(app, 'ok.txt'), 'utf8')).toBe('ok');
      }
      expect((await stat(outside)).mode & 0o777).toBe(0o700);
    });
  }
});

describe('a name a laptop restore writes', () => {
  it('is one component on the laptop\'s own file system: on Windows a backslash separates and a colon names a drive or a stream', () => {
    // What a Linux device may hold in one name (both are ordinary characters there)…
    const names = ['..\\..\\..\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\evil.bat', 'C:evil', 'report.txt:hidden'];
    // …is a path up and out of the folder on Windows.
    expect(path.win32.relative('C:\\Users\\tech\\Downloads\\rvm', path.win32.join('C:\\Users\\tech\\Downloads\\rvm', names[0]!))).toMatch(/^\.\.\\/);
    for (const name of names) {
      expect(localName(name, 'win32'), name).toBe(false);
      expect(localName(name, 'linux'), name).toBe(true);
    }
    for (const name of ['..', '.', '', 'a/b', 'a\0b']) expect(localName(name, 'linux'), name).toBe(false);
    expect(localName('caf\u00e9 r\u00e9sum\u00e9.txt', 'win32')).toBe(true);
  });
});
