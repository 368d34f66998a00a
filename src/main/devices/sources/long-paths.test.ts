/**
 * Folders nested past Linux's PATH_MAX (4,096 bytes with the NUL): `find` walks into them, but every
 * call that takes their path refuses it (ENAMETOOLONG) — tar cannot read them, no restore can make
 * them. A backup leaves them out with one warning; a restore to this computer below a longer path than
 * the device's says which entries it could not make and restores the rest; one on the device is refused
 * before anything crosses (its staging copy could not be read back).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../../repository/archiver/archiver';
import { restore } from '../../repository/restorer/restorer';
import { findSnapshot, walkTree } from '../../repository/snapshot/snapshot';
import { newRepo } from '../../repository/testing/fixtures';
import { tempDir } from '../../testing/temp-dir';
import { confirmRoots, executeFilesRestore, planFilesRestore } from '../../restore/files-restore';
import { LocalRunner } from '../local-runner';
import { RemoteFilesSource } from './files-source';

const LEVEL = 'd'.repeat(200);

/** Runs `script` in bash with `$1` = `dir` (bash's cd, unlike dash's, goes below PATH_MAX by relative steps). */
function bash(script: string, dir: string): string {
  const run = spawnSync('bash', ['-c', script, 'bash', dir]);
  if (run.status !== 0) throw new Error(`bash failed: ${run.stderr.toString()}`);
  return run.stdout.toString();
}

describe('paths longer than Linux allows', () => {
  it('are left out of a backup with one warning; a restore makes the rest, names what it could not make, and will not swap a folder that holds them', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    // 25 folders of 200 bytes: the 20th ends below 4,096 bytes (its file too), the 21st past it.
    bash(`mkdir -p "$1" && echo top > "$1/top.txt" && cd "$1" && for i in $(seq 25); do mkdir ${LEVEL} && cd ${LEVEL} || exit 1; [ $i != 20 ] || echo near > near.txt; done && echo deep > deep.txt`, app);
    const level = (k: number) => path.join(app, ...Array.from({ length: k }, () => LEVEL));
    expect(Buffer.byteLength(path.join(level(20), 'near.txt'))).toBeLessThan(4096);
    expect(Buffer.byteLength(level(21))).toBeGreaterThanOrEqual(4096);

    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    const result = await backup(repo, new RemoteFilesSource({ runner: new LocalRunner(), source, sysroot }), { device: 'rvm-017' });
    // One warning, where the long paths start: the 21st folder, with the 4 folders and the file below it.
    expect(result.warnings).toEqual([
      {
        path: path.relative(sysroot, level(21)),
        message: `not backed up, nor the 5 entries below it: its path on the device is ${Buffer.byteLength(level(21))} bytes long, and Linux lets no program open a path of 4096 bytes or more. Shorten the names of the folders above it to back it up`,
      },
    ]);
    const snapshot = await findSnapshot(repo, result.id);
    const stored: string[] = [];
    for await (const { path: p } of walkTree(repo, snapshot.tree)) stored.push(p);
    expect(stored).toContain(path.relative(sysroot, path.join(level(20), 'near.txt')));
    expect(stored.some((p) => p.endsWith('deep.txt'))).toBe(false);

    // Restored to a folder as long as the device's: everything the snapshot holds.
    const out = tempDir();
    expect((await restore(repo, snapshot, out)).warnings).toEqual([]);
    const restored = path.join(out, 'opt/myrvm');
    expect(readFileSync(path.join(restored, 'top.txt'), 'utf8')).toBe('top\n');
    expect(bash(`cd "$1" && for i in $(seq 20); do cd ${LEVEL} || exit 1; done && cat near.txt`, restored)).toBe('near\n');

    // Restored 41 bytes deeper: the 20th folder would pass the limit there. Said, and the rest is restored.
    const deeper = path.join(tempDir(), 'x'.repeat(40));
    const below = await restore(repo, snapshot, deeper);
    const twentieth = path.relative(sysroot, level(20));
    expect(below.warnings).toEqual([`${twentieth}: not restored, nor anything in it: its path here would be ${Buffer.byteLength(path.join(deeper, twentieth))} bytes long, and Linux opens no path of 4096 bytes or more. Restore into a folder with a shorter path`]);
    expect(readFileSync(path.join(deeper, 'opt/myrvm/top.txt'), 'utf8')).toBe('top\n');
    expect(existsSync(path.join(deeper, path.relative(sysroot, level(19))))).toBe(true);

    // Restored in place on the device: what the backup could not hold stays as it is, the rest goes back.
    bash(`echo broken > "$1/top.txt" && cd "$1" && for i in $(seq 20); do cd ${LEVEL} || exit 1; done && echo broken > near.txt`, app);
    const runner = new LocalRunner();
    const options = { repo, runner, snapshot, restoreId: 'deep', sysroot };
    const plan = await planFilesRestore(options);
    // In place: the staging copy beside the folder cannot make the deep entries (nor those within
    // its few extra bytes of the limit), and a swap without them would lose them — refused first.
    expect(plan.roots[0]).toMatchObject({ remove: [], tooLong: { count: 6 } });
    expect(plan.roots[0]!.tooLong!.samples[0]).toBe(path.relative(app, level(21)));
    await expect(executeFilesRestore(options, plan, { phase: () => undefined, advance: () => undefined })).rejects.toThrow(/^\d+ entries in .+ are nested too deep for Linux .+ restore into another folder on the device, so nothing was changed\.$/);
    expect(readFileSync(path.join(app, 'top.txt'), 'utf8')).toBe('broken\n');
    expect(readdirSync(path.dirname(app))).toEqual(['myrvm']);
    expect(bash(`cd "$1" && for i in $(seq 20); do cd ${LEVEL} || exit 1; done && cat near.txt && for i in $(seq 5); do cd ${LEVEL} || exit 1; done && cat deep.txt`, app)).toBe('broken\ndeep\n');

    // Into a folder 200 bytes deeper: the snapshot's deepest entries would pass the limit in the
    // staging copy (tar could make them, by relative steps, but nothing could read them back or
    // clean them up by path). Said in the plan, refused before anything crosses.
    const far = path.join(sysroot, 'y'.repeat(200));
    const farPlan = await planFilesRestore({ ...options, restoreId: 'far', targetRoot: far });
    expect(farPlan.roots[0]!.tooDeepHere).toEqual({ count: 2, samples: [path.relative(app, path.join(level(19), LEVEL)), path.relative(app, path.join(level(20), 'near.txt'))] });
    await expect(executeFilesRestore({ ...options, restoreId: 'far', targetRoot: far }, farPlan, { phase: () => undefined, advance: () => undefined })).rejects.toThrow(
      /^2 entries of the snapshot would be nested too deep for Linux in .+yyyy\/opt\/myrvm \(a path of 4096 bytes or more in the restore's staging copy, e\.g\. d+…\): restore into a folder with a shorter path\. Nothing was changed\.$/,
    );
    expect(existsSync(far)).toBe(false);

    // Into another folder on the device (where nothing deep is): the snapshot's files, the rest named.
    const elsewhere = path.join(sysroot, 'srv');
    const copy = { ...options, restoreId: 'copy', targetRoot: elsewhere };
    const copyPlan = await planFilesRestore(copy);
    expect(copyPlan.roots[0]!.tooLong).toBeUndefined();
    await executeFilesRestore(copy, copyPlan, { phase: () => undefined, advance: () => undefined });
    await confirmRoots(runner, copyPlan.roots);
    expect(readFileSync(path.join(elsewhere, 'opt/myrvm/top.txt'), 'utf8')).toBe('top\n');
  });
});
