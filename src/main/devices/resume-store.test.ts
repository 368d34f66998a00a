/**
 * Resume checkpoints (what a cut run stored, kept sealed in `<data folder>/resume`): they go with the
 * device or source they belong to — removed, renamed, or the device removed — through the services,
 * as the console and the CLI change a device, while others' stay; and one that does not fit on a
 * full disk leaves nothing half-written behind. (Taking them up is tested in device-backup.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TreeNode } from '../repository/snapshot/tree';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import type { Services } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { ResumeStore } from './resume-store';
import { cliServices } from '../testing/test-console';

let services: Services | null = null;
afterEach(() => {
  services?.dispose();
  services = null;
});

const files = (name: string) => new Map<string, TreeNode>([[name, { name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '0', size: 1, content: [] }]]);
const profile = (name: string, sources: string[]) => ({ name, host: '127.0.0.1', user: 'jetson', sources: sources.map((s) => ({ name: s, kind: 'files', paths: [`/opt/${s}`] })) });

describe('resume checkpoints of removed sources', () => {
  it('are removed with the source, with a renamed source or device, and with the device; the others stay', async () => {
    const dataDir = tempDir();
    services = cliServices(dataDir);
    await services.repository.init(PASSWORD, FAST);
    const repo = await services.repository.open();
    services.devices.import(profile('rvm-017', ['app', 'logs', 'config']), 'test');
    services.devices.import(profile('rvm-018', ['app']), 'test');
    const store = services.repository.resume;
    for (const [device, source] of [['rvm-017', 'app'], ['rvm-017', 'logs'], ['rvm-017', 'config'], ['rvm-018', 'app']] as const) await store.set(repo, device, source, files(`${device}/${source}`));
    const folder = path.join(dataDir, 'resume');
    const onDisk = async () => (await Promise.all((await readdir(folder)).map((repoDir) => readdir(path.join(folder, repoDir))))).flat().length;
    const settled = async (count: number) => {
      for (let i = 0; i < 100 && (await onDisk()) !== count; i++) await new Promise((r) => setTimeout(r, 20));
      return onDisk();
    };
    // What a restarted console would find (its memory is empty).
    const afterRestart = (device: string, source: string) => new ResumeStore(folder).get(repo, device, source);
    expect(await onDisk()).toBe(4);

    // A source removed, another renamed: both checkpoints go, in memory and on disk.
    services.devices.update('rvm-017', profile('rvm-017', ['app', 'configuration']), {}, 'test');
    expect(await settled(2)).toBe(2);
    expect(await store.get(repo, 'rvm-017', 'logs')).toBeUndefined();
    expect(await store.get(repo, 'rvm-017', 'config')).toBeUndefined();
    expect((await afterRestart('rvm-017', 'app'))?.has('rvm-017/app')).toBe(true);

    // The device renamed: its runs start afresh under the new name.
    services.devices.update('rvm-017', profile('rvm-017b', ['app', 'configuration']), {}, 'test');
    expect(await settled(1)).toBe(1);
    expect(await store.get(repo, 'rvm-017', 'app')).toBeUndefined();

    // The other device removed: nothing of it is left; an unknown device forgets nothing.
    await store.set(repo, 'rvm-017b', 'app', files('rvm-017b/app'));
    services.devices.remove('rvm-018', 'test');
    expect(await settled(1)).toBe(1);
    expect(await afterRestart('rvm-018', 'app')).toBeUndefined();
    expect((await afterRestart('rvm-017b', 'app'))?.has('rvm-017b/app')).toBe(true);
  });
});

describe('a checkpoint on a full disk', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`fails with the disk's error and leaves no temp file in the folder${root ? '' : ' (skipped: mounting a small tmpfs needs root; CI runs as root)'}`, async () => {
    services = cliServices(tempDir());
    await services.repository.init(PASSWORD, FAST);
    const repo = await services.repository.open();
    const mount = mkdtempSync(path.join(os.tmpdir(), 'jetvault-resume-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount]);
    try {
      const store = new ResumeStore(mount);
      await store.set(repo, 'rvm-017', 'small', files('small'));
      // Names that do not compress: the sealed checkpoint is far larger than the 64 KiB disk.
      const big = new Map([...Array(2000).keys()].map((i) => [randomBytes(32).toString('hex'), files(`f${i}`).values().next().value!]));
      await expect(store.set(repo, 'rvm-017', 'big', big)).rejects.toThrow(/ENOSPC|no space/i);
      const [repoDir] = await readdir(mount);
      expect((await readdir(path.join(mount, repoDir!))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      // What was there before is still read.
      expect((await new ResumeStore(mount).get(repo, 'rvm-017', 'small'))?.has('small')).toBe(true);
    } finally {
      execFileSync('umount', [mount]);
      rmdirSync(mount);
    }
  });
});
