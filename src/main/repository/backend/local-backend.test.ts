/**
 * A local-folder repository whose folder goes away while it is open (a USB disk unplugged or
 * unmounted, its mount point left behind): every operation says so, nothing is written at the
 * mount point, and once the disk is back at the same path the same open repository works again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { check } from '../checker/checker';
import { withLock } from '../lock/lock';
import { prune } from '../prune/prune';
import { Repository } from '../repo/repository';
import { listSnapshots } from '../snapshot/snapshot';
import { FAST, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { LocalBackend } from './local-backend';

const GONE = /the repository folder .*\/mnt\/repo is not there any more \(its disk unplugged or unmounted\?\): connect it again at that path/;

describe('a local repository whose folder goes away while open', () => {
  it('fails every operation naming the folder, writes nothing at the mount point, and works again once the folder is back', async () => {
    const base = await tempDir();
    const mountPoint = join(base, 'mnt');
    const src = join(base, 'src');
    await mkdir(join(mountPoint, 'repo'), { recursive: true });
    await mkdir(src);
    await writeFile(join(src, 'a.bin'), randomBytes(100_000));
    await Repository.init(new LocalBackend(join(mountPoint, 'repo')), PASSWORD, FAST);
    // As the console and the CLI hold it: opened (found there), not made by this backend.
    const repo = await Repository.open(new LocalBackend(join(mountPoint, 'repo')), PASSWORD);
    await backup(repo, new LocalSource([src]));

    // Unplugged: the folder is gone, the mount point (an empty folder) stays.
    await rename(join(mountPoint, 'repo'), join(base, 'unplugged'));
    await writeFile(join(src, 'b.bin'), randomBytes(100_000));
    // A check said "0 snapshots, 0 packs checked; no errors were found".
    await expect(withLock(repo, false, () => check(repo, { readData: true }))).rejects.toThrow(GONE);
    await expect(check(repo)).rejects.toMatchObject({ failure: 'unavailable' });
    await expect(listSnapshots(repo)).rejects.toThrow(GONE);
    // A backup wrote its lease and packs into a new repository folder on the laptop's own disk.
    await expect(withLock(repo, false, () => backup(repo, new LocalSource([src])))).rejects.toThrow(GONE);
    await expect(backup(repo, new LocalSource([src]))).rejects.toThrow(GONE);
    await expect(prune(repo)).rejects.toThrow(GONE);
    expect(await readdir(mountPoint)).toEqual([]);

    // Plugged in again at the same path: the open repository goes on, nothing was lost.
    await rename(join(base, 'unplugged'), join(mountPoint, 'repo'));
    await withLock(repo, false, () => backup(repo, new LocalSource([src])));
    const report = await withLock(repo, false, () => check(repo, { readData: true }));
    expect(report.errors).toEqual([]);
    expect(report.snapshots).toBe(2);
    expect((await listSnapshots(repo)).length).toBe(2);
  });

  it('init still makes a folder that is not there yet', async () => {
    const dir = join(await tempDir(), 'new', 'repo');
    const made = await Repository.init(new LocalBackend(dir), PASSWORD, FAST);
    expect((await readdir(dir)).sort()).toEqual(['config', 'keys']);
    expect((await Repository.open(new LocalBackend(dir), PASSWORD)).config.id).toBe(made.config.id);
  });
});

describe('a local repository on a full disk', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`says the repository's disk is full and what to do, keeping ENOSPC as the code${root ? '' : ' (skipped: mounting a small tmpfs needs root; CI runs as root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const mount = join(await tempDir(), 'usb');
    await mkdir(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
    try {
      await Repository.init(new LocalBackend(join(mount, 'repo')), PASSWORD, FAST);
      const repo = await Repository.open(new LocalBackend(join(mount, 'repo')), PASSWORD);
      // Filled by something else on the disk, to the last byte.
      for (let n = 0; ; n++) {
        try {
          await writeFile(join(mount, `filler-${n}`), Buffer.alloc(64 * 1024));
        } catch {
          break;
        }
      }
      await writeFile(join(mount, 'filler-last'), Buffer.alloc(512)).catch(() => undefined);
      // The lease every command writes first: "ENOSPC: no space left on device, write" said neither which disk nor what to do.
      const failed = await withLock(repo, true, () => Promise.resolve()).then(
        () => null,
        (error: unknown) => error as NodeJS.ErrnoException,
      );
      expect(failed?.code).toBe('ENOSPC');
      expect(failed?.message).toMatch(/^the disk holding the repository .*\/usb\/repo is full \(ENOSPC\): nothing more was written, and what it held is unchanged\. Free some space there/);
      expect((await listSnapshots(repo)).length).toBe(0);
      // Nor is anything left of the failed write (its temp file, opened before the write failed).
      const left = await readdir(join(mount, 'repo'), { recursive: true });
      expect(left.filter((name) => name.includes('.tmp-'))).toEqual([]);
    } finally {
      execFileSync('umount', ['-l', mount]);
    }
  });
});
