import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, chmod, cp, mkdir, open, readdir, readFile, rename, rm, stat, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalRunner } from '../devices/local-runner';
import { blockSizeFor } from '../devices/sources/block-delta';
import { RemoteFilesSource } from '../devices/sources/files-source';
import { commandText, raw } from '../devices/shell-quote';
import type { CommandRunner } from '../devices/ssh-connection';
import { runToString } from '../devices/ssh-connection';
import { backup } from '../repository/archiver/archiver';
import { findSnapshot } from '../repository/snapshot/snapshot';
import { describeTree, newRepo } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import { largeFilesOnDevice } from './device-copies';
import { confirmRoots, executeFilesRestore, planFilesRestore, recoverRestores, RESUME_HOURS } from './files-restore';
import type { FilesRestoreOptions } from './files-restore';

const MiB = 1024 * 1024;
const local = new LocalRunner();
const MODEL = 'models/detector \n ü.onnx';

/**
 * A device runner that counts what is written to the device (every command's stdin) and lets a
 * test change what a command sees: `before(text)` may return other command text, `after(text)`
 * runs once the command has finished.
 */
function watched(hooks: { before?: (text: string) => string; after?: (text: string) => Promise<void> | void } = {}) {
  const counts = { sent: 0 };
  const runner: CommandRunner = {
    target: local.target,
    exec: async (command, signal) => {
      const text = commandText(command);
      const running = await local.exec(hooks.before ? raw(hooks.before(text)) : command, signal);
      const { stdin } = running;
      const write = stdin.write.bind(stdin) as (chunk: Buffer, ...rest: unknown[]) => boolean;
      const end = stdin.end.bind(stdin) as (...args: unknown[]) => typeof stdin;
      stdin.write = ((chunk: Buffer, ...rest: unknown[]) => ((counts.sent += chunk.length), write(chunk, ...rest))) as typeof stdin.write;
      stdin.end = ((...args: unknown[]) => {
        if (Buffer.isBuffer(args[0]) || typeof args[0] === 'string') counts.sent += Buffer.byteLength(args[0]);
        return end(...args);
      }) as typeof stdin.end;
      if (hooks.after) void running.done.then(() => hooks.after!(text)).catch(() => undefined);
      return running;
    },
    run: (command, options) => runToString(runner, command, options),
  };
  return { runner, counts };
}

/** A device with a model (6 MiB unless said) and a small config, backed up once; returns how to restore it. */
async function device(modelBytes = 6 * MiB) {
  const sysroot = tempDir();
  const app = path.join(sysroot, 'opt/myrvm');
  await mkdir(path.join(app, 'models'), { recursive: true });
  const model = path.join(app, MODEL);
  await writeFile(model, randomBytes(modelBytes), { mode: 0o640 });
  await writeFile(path.join(app, 'config.yaml'), 'threshold: 0.85\n');
  const { repo } = await newRepo();
  const source = { name: 'app', kind: 'files' as const, paths: [app] };
  const result = await backup(repo, new RemoteFilesSource({ runner: local, source, sysroot }), { device: 'rvm-017' });
  const snapshot = await findSnapshot(repo, result.id);
  const asBackedUp = await describeTree(app);
  let n = 0;
  /** The files the last restore sent whole instead of patching, and why; what its plan said could be patched. */
  const whole: { size: number; reason: string }[] = [];
  const planned = { bytesToSend: 0, patchableBytes: 0, resumableBytes: 0, freeBytes: 0 };
  /** Copies elsewhere each restore staged from (`patched` lists only those from the file's own path). */
  const elsewhere: { size: number; sent: number }[] = [];
  /** Files each restore completed from what an earlier, cut restore had staged. */
  const resumed: { size: number; sent: number }[] = [];
  const restoreWith = async (runner: CommandRunner, more: Partial<FilesRestoreOptions> = {}) => {
    const patched: { size: number; sent: number }[] = [];
    whole.splice(0);
    elsewhere.splice(0);
    resumed.splice(0);
    const options: FilesRestoreOptions = { repo, runner, snapshot, restoreId: `r${++n}`, sysroot, ...more };
    const plan = await planFilesRestore(options);
    Object.assign(planned, { bytesToSend: plan.bytesToSend, patchableBytes: plan.patchableBytes, resumableBytes: plan.resumableBytes ?? 0, freeBytes: plan.freeBytes });
    await executeFilesRestore(options, plan, {
      phase: () => undefined,
      advance: () => undefined,
      patched: (size, sent, from) => ({ own: patched, elsewhere, resumed })[from].push({ size, sent }),
      unpatched: (size, reason) => whole.push({ size, reason }),
    });
    await confirmRoots(runner, plan.roots);
    return patched;
  };
  /** A preview: the plan only (nothing changes on the device). */
  const planWith = (more: Partial<FilesRestoreOptions> = {}) => planFilesRestore({ repo, runner: local, snapshot, restoreId: `p${++n}`, sysroot, ...more });
  /** What the device held at its backup, as a restore service hands it to the restore. */
  const copiesOnDevice = () => largeFilesOnDevice(repo, [snapshot], 'rvm-017', sysroot);
  return { sysroot, app, model, asBackedUp, restoreWith, planWith, whole, elsewhere, resumed, planned, copiesOnDevice };
}

const exists = (file: string) => access(file).then(
  () => true,
  () => false,
);

/** A file's SHA-256 (a 6 MiB Buffer compared with toEqual takes vitest tens of seconds). */
const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

/** Overwrites `length` bytes at `offset` with new random bytes. */
async function scribble(file: string, offset: number, length: number) {
  const handle = await open(file, 'r+');
  await handle.write(randomBytes(length), 0, length, offset);
  await handle.close();
}

describe('restoring a large file as the blocks that differ from the device\'s copy', () => {
  it('sends only the damaged blocks and restores the file byte for byte, with its mode and times', async () => {
    const { app, model, asBackedUp, restoreWith, planned } = await device();
    await scribble(model, 3 * MiB + 100, 4096); // one bad write in the middle
    await scribble(model, 6 * MiB - 10, 10); // and the last bytes
    await chmod(model, 0o600);
    const { runner, counts } = watched();
    const patched = await restoreWith(runner);
    // The preview says the model may cross as its changed blocks: all it sends is the model.
    expect(planned).toMatchObject({ bytesToSend: 6 * MiB, patchableBytes: 6 * MiB, resumableBytes: 0 });
    const block = blockSizeFor(6 * MiB);
    expect(patched).toEqual([{ size: 6 * MiB, sent: 2 * block }]);
    expect(counts.sent).toBeLessThan(2 * block + 64 * 1024); // not the model's 6 MiB
    expect(await describeTree(app)).toEqual(asBackedUp);
  });

  it('a model cut short (a copy that stopped part-way) gets only its missing end', async () => {
    const { app, model, asBackedUp, restoreWith } = await device();
    await truncate(model, 5 * MiB);
    const { runner, counts } = watched();
    expect(await restoreWith(runner)).toEqual([{ size: 6 * MiB, sent: MiB }]);
    expect(counts.sent).toBeLessThan(MiB + 64 * 1024);
    expect(await describeTree(app)).toEqual(asBackedUp);
  });

  it('sends the file whole when most of it differs, when the device has no python3, or when the device\'s copy is not a regular file', async () => {
    const { app, model, asBackedUp, restoreWith, whole } = await device();
    await writeFile(model, randomBytes(6 * MiB));
    const all = watched();
    expect(await restoreWith(all.runner)).toEqual([]);
    expect(all.counts.sent).toBeGreaterThan(6 * MiB);
    expect(await describeTree(app)).toEqual(asBackedUp);
    // Each fallback says why (the restore's notes carry it).
    expect(whole).toEqual([{ size: 6 * MiB, reason: 'more than half of the file differs' }]);

    await scribble(model, MiB, 100);
    let asked = 0;
    const noPython = watched({ before: (text) => (text.includes('python3') ? (asked++, `PATH=/nonexistent; ${text}`) : text) });
    expect(await restoreWith(noPython.runner)).toEqual([]);
    expect(asked).toBe(1);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(whole).toEqual([{ size: 6 * MiB, reason: 'the device has no python3 to hash blocks with' }]);

    // A FIFO where the model was: opened without blocking, refused, replaced by the file.
    await rm(model);
    execFileSync('mkfifo', [model]);
    expect(await restoreWith(watched().runner)).toEqual([]);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(whole).toEqual([{ size: 6 * MiB, reason: expect.stringMatching(/regular file/) as unknown }]);
  });

  it('catches a device copy that changed or shrank between its hashes and the patch: the staged copy is dropped and the file sent whole', async () => {
    const { app, model, asBackedUp, restoreWith } = await device();
    await scribble(model, 2 * MiB, 100);
    let changed = false;
    // Right after the device hashed its copy, a block the patch will copy unchanged is altered.
    const racing = watched({
      after: async (text) => {
        if (!changed && text.includes(' hash ')) {
          changed = true;
          await scribble(model, 5 * MiB, 100);
        }
      },
    });
    expect(await restoreWith(racing.runner)).toEqual([]);
    expect(changed).toBe(true);
    expect(await describeTree(app)).toEqual(asBackedUp);

    // Cut short right after its hashes, with megabytes of blocks still to send: the command fails
    // while the console writes (it must stop writing, not wait for the pipe), and the file goes whole.
    await scribble(model, 3.5 * MiB, 2 * MiB); // after the bytes the device copies first
    let cut = false;
    const shrinking = watched({
      after: async (text) => {
        if (!cut && text.includes(' hash ')) {
          cut = true;
          await truncate(model, 1000);
        }
      },
    });
    expect(await restoreWith(shrinking.runner)).toEqual([]);
    expect(cut).toBe(true);
    expect(await describeTree(app)).toEqual(asBackedUp);
  });
});

describe('restoring a large file from a copy the device holds at another path', () => {
  it('restored into another folder, the model is staged from the live original: nothing of it crosses, and the original is only read', async () => {
    const { sysroot, app, model, asBackedUp, restoreWith, elsewhere, planned, copiesOnDevice } = await device();
    const before = { sum: await sha256(model), mtime: (await stat(model)).mtimeMs };
    const inspect = tempDir();
    const { runner, counts } = watched();
    expect(await restoreWith(runner, { targetRoot: inspect, copiesOnDevice })).toEqual([]);
    // The preview already knew: the device held a copy of that size at its last backup.
    expect(planned).toMatchObject({ patchableBytes: 6 * MiB });
    expect(elsewhere).toEqual([{ size: 6 * MiB, sent: 0 }]);
    expect(counts.sent).toBeLessThan(64 * 1024); // names, the config file and the tar stream's headers
    expect(await describeTree(path.join(inspect, path.relative(sysroot, app)))).toEqual(asBackedUp);
    expect(await sha256(model)).toBe(before.sum);
    expect((await stat(model)).mtimeMs).toBe(before.mtime);

    // The last backups saw no copy: the plan promises nothing; the original is still tried.
    const again = tempDir();
    const bare = watched();
    expect(await restoreWith(bare.runner, { targetRoot: again, copiesOnDevice: () => Promise.resolve(new Map()) })).toEqual([]);
    expect(planned).toMatchObject({ patchableBytes: 0 });
    expect(elsewhere).toEqual([{ size: 6 * MiB, sent: 0 }]);
    expect(bare.counts.sent).toBeLessThan(64 * 1024);
    expect(await describeTree(path.join(again, path.relative(sysroot, app)))).toEqual(asBackedUp);
  });

  it('a model an update moved is put back from where it went, though no backup saw it there; the moved copy goes, as the snapshot says', async () => {
    const { app, model, asBackedUp, restoreWith, elsewhere, planned, copiesOnDevice } = await device();
    const moved = path.join(app, 'models/v2/detector.onnx');
    await mkdir(path.dirname(moved));
    await rename(model, moved);
    await scribble(moved, MiB, 4096); // and the update changed a block of it
    const { runner, counts } = watched();
    expect(await restoreWith(runner, { copiesOnDevice })).toEqual([]);
    expect(planned).toMatchObject({ patchableBytes: 6 * MiB });
    const block = blockSizeFor(6 * MiB);
    expect(elsewhere).toEqual([{ size: 6 * MiB, sent: block }]);
    expect(counts.sent).toBeLessThan(block + 64 * 1024);
    expect(await describeTree(app)).toEqual(asBackedUp);
  });

  it('a model retrained in place is staged from the release folder that still holds the snapshot\'s version; copies that changed or went are passed over', async () => {
    const { sysroot, app, model, asBackedUp, restoreWith, whole, elsewhere, copiesOnDevice } = await device();
    // Two copies the backup saw, outside the restored folder: one rewritten since, one removed since.
    const releases = path.join(sysroot, 'opt/releases');
    await mkdir(releases, { recursive: true });
    const original = await sha256(model);
    const rewritten = path.join(releases, '2026-11/detector.onnx');
    const removed = path.join(releases, '2026-10/detector.onnx');
    const kept = path.join(releases, '2026-09/detector.onnx');
    for (const copy of [rewritten, removed, kept]) {
      await mkdir(path.dirname(copy));
      await cp(model, copy);
    }
    const snapshotCopies = await copiesOnDevice(); // as if a backup of the releases had seen all three
    const seen = new Map([[6 * MiB, [rewritten, removed, kept].map((p) => ({ path: p, content: snapshotCopies.get(6 * MiB)![0]!.content }))]]);
    await writeFile(rewritten, randomBytes(6 * MiB));
    await rm(removed);
    await writeFile(model, randomBytes(6 * MiB)); // retrained: differs all over
    let hashed = 0;
    const { runner, counts } = watched({ before: (text) => (text.includes(' hash ') && hashed++, text) });
    expect(await restoreWith(runner, { copiesOnDevice: () => Promise.resolve(seen) })).toEqual([]);
    expect(whole).toEqual([]);
    expect(elsewhere).toEqual([{ size: 6 * MiB, sent: 0 }]);
    expect(hashed).toBe(4); // the live model, the rewritten copy, the removed one (gone: fails at once), the kept one
    expect(counts.sent).toBeLessThan(64 * 1024);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(await sha256(kept)).toBe(original);

    // No copy fits any more: the model crosses whole, and the notes say why (of its own path).
    await writeFile(kept, randomBytes(6 * MiB));
    await writeFile(model, randomBytes(6 * MiB));
    const all = watched();
    expect(await restoreWith(all.runner, { copiesOnDevice: () => Promise.resolve(seen) })).toEqual([]);
    expect(elsewhere).toEqual([]);
    expect(whole).toEqual([{ size: 6 * MiB, reason: 'more than half of the file differs' }]);
    expect(all.counts.sent).toBeGreaterThan(6 * MiB);
    expect(await describeTree(app)).toEqual(asBackedUp);
  });

  it('a drill (no copies asked for) sends the model from the repository, though its original sits on the device', async () => {
    const { sysroot, app, asBackedUp, restoreWith, elsewhere, planned } = await device();
    const scratch = tempDir();
    const { runner, counts } = watched();
    expect(await restoreWith(runner, { targetRoot: scratch })).toEqual([]);
    expect(elsewhere).toEqual([]);
    expect(planned).toMatchObject({ patchableBytes: 0 });
    expect(counts.sent).toBeGreaterThan(6 * MiB);
    expect(await describeTree(path.join(scratch, path.relative(sysroot, app)))).toEqual(asBackedUp);
  });
});

/** A runner whose restores lose their tar stream after `bytes` (the link cut while a model crosses). */
const cutAfter = (bytes: number) => watched({ before: (text) => text.replace(/\btar -x /, `head -c ${bytes} | tar -x `) });

/**
 * Restores again after a cut whose partial copy recovery `kept`: the model (`size` bytes) is completed
 * where it lay and moved into place — never a second copy of it on the device —, only the blocks it
 * lacked cross, and nothing of the restore is left beside the folder.
 */
async function expectCompleted(ctx: Awaited<ReturnType<typeof device>>, kept: string, size: number) {
  const partial = (await stat(kept)).size;
  const inode = (await stat(kept)).ino;
  const { runner, counts } = watched();
  await ctx.restoreWith(runner, { resume: true });
  expect(ctx.planned.resumableBytes).toBe(partial);
  expect((await stat(ctx.model)).ino).toBe(inode);
  const block = blockSizeFor(size);
  const missing = size - Math.floor(partial / block) * block;
  expect(ctx.resumed).toEqual([{ size, sent: missing }]);
  expect(counts.sent).toBeLessThan(missing + 64 * 1024);
  expect(await describeTree(ctx.app)).toEqual(ctx.asBackedUp);
  expect(await readdir(path.dirname(ctx.app))).toEqual(['myrvm']);
}

describe('a restore its link cut off while a model crossed, restored again', () => {
  it('the model is completed from what had crossed: only the rest is sent, and nothing of it is left behind', async () => {
    const ctx = await device();
    const { app, restoreWith } = ctx;
    const opt = path.dirname(app);
    const folder = path.join(opt, '.jetvault-resume-myrvm');
    await rm(app, { recursive: true }); // a reflashed device: the whole folder goes back
    await expect(restoreWith(cutAfter(2.5 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    const staged = (await readdir(opt)).filter((n) => n.startsWith('.jetvault-restore-'));
    expect(staged).toHaveLength(1);
    // A preview before anything settled it already counts what a rerun takes up (and changes nothing).
    const stagedModel = (await stat(path.join(opt, staged[0]!, 'new', MODEL))).size;
    expect((await ctx.planWith({ resume: true })).resumableBytes).toBe(stagedModel);
    expect((await readdir(opt)).filter((n) => n.startsWith('.jetvault-'))).toEqual(staged);
    // The next restore (or recovery) settles it: the model's first part is kept beside the folder, nothing else.
    await recoverRestores(local, [opt], { resume: true });
    expect((await readdir(opt)).sort()).toEqual(['.jetvault-resume-myrvm']);
    const kept = path.join(folder, MODEL);
    const partial = (await stat(kept)).size;
    expect(partial).toBe(stagedModel);
    expect(partial).toBeGreaterThan(MiB);
    expect(partial).toBeLessThan(2.5 * MiB);
    expect((await stat(folder)).mode & 0o777).toBe(0o700);
    expect(await readdir(path.join(folder, 'models'))).toEqual([path.basename(MODEL)]); // not the config

    await expectCompleted(ctx, kept, 6 * MiB);
  });

  it('a model smaller than other patches (1 to 4 MiB) is completed from what had crossed too: what recovery keeps is what a restore takes up', async () => {
    const ctx = await device(3 * MiB);
    const opt = path.dirname(ctx.app);
    await rm(ctx.app, { recursive: true });
    await expect(ctx.restoreWith(cutAfter(2 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    await recoverRestores(local, [opt], { resume: true });
    const kept = path.join(opt, '.jetvault-resume-myrvm', MODEL);
    expect((await stat(kept)).size).toBeGreaterThanOrEqual(MiB);
    await expectCompleted(ctx, kept, 3 * MiB);
  });

  it('a second cut keeps what the first had staged and the second completed: the next restore sends nothing of the model', async () => {
    const { app, asBackedUp, restoreWith, resumed } = await device();
    const opt = path.dirname(app);
    const kept = path.join(opt, '.jetvault-resume-myrvm', MODEL);
    await rm(app, { recursive: true });
    await expect(restoreWith(cutAfter(3 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    await recoverRestores(local, [opt], { resume: true });
    const partial = (await stat(kept)).size;
    expect(partial).toBeLessThan(3 * MiB);
    // The second restore completes the model from it, then its tar stream is cut at once: the model
    // it had completed goes back to the resume folder, whole.
    await expect(restoreWith(cutAfter(0).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.sent).toBeGreaterThan(3 * MiB);
    await recoverRestores(local, [opt], { resume: true });
    expect((await stat(kept)).size).toBe(6 * MiB);

    const { runner, counts } = watched();
    await restoreWith(runner, { resume: true });
    expect(resumed).toEqual([{ size: 6 * MiB, sent: 0 }]);
    expect(counts.sent).toBeLessThan(64 * 1024);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(await readdir(opt)).toEqual(['myrvm']);
  });

  it('kept only for a restore its link cut off, only in a folder of the login\'s own, and for a day', async () => {
    const { sysroot, app, asBackedUp, restoreWith, resumed, planned } = await device();
    const opt = path.dirname(app);
    const folder = path.join(opt, '.jetvault-resume-myrvm');
    await rm(app, { recursive: true });
    // Rolled back for another reason (a cancel, a full disk: recovery without `resume`): nothing kept.
    await expect(restoreWith(cutAfter(3 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    await recoverRestores(local, [opt]);
    expect(await readdir(opt)).toEqual([]);

    // A link of that name (someone else's doing) is neither written through nor taken up.
    const elsewhereDir = path.join(sysroot, 'elsewhere');
    await mkdir(path.join(elsewhereDir, 'models'), { recursive: true });
    const decoy = path.join(elsewhereDir, MODEL);
    await writeFile(decoy, 'not the model');
    await symlink(elsewhereDir, folder);
    await expect(restoreWith(cutAfter(3 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    await recoverRestores(local, [opt], { resume: true });
    expect(await readdir(opt)).toEqual(['.jetvault-resume-myrvm']);
    expect(await readFile(decoy, 'utf8')).toBe('not the model');
    expect(await readdir(path.join(elsewhereDir, 'models'))).toEqual([path.basename(MODEL)]);
    const { runner, counts } = watched();
    await restoreWith(runner, { resume: true });
    expect(planned.resumableBytes).toBe(0);
    expect(resumed).toEqual([]);
    expect(counts.sent).toBeGreaterThan(6 * MiB);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(await readFile(decoy, 'utf8')).toBe('not the model');
    await rm(folder);

    // A resume folder no restore took up within a day is removed by the next recovery; a younger one stays.
    await rm(app, { recursive: true });
    await expect(restoreWith(cutAfter(3 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    await recoverRestores(local, [opt], { resume: true });
    const aged = new Date(Date.now() - (RESUME_HOURS * 60 + 5) * 60_000);
    await utimes(folder, aged, aged);
    await recoverRestores(local, [opt], { resume: true });
    expect(await readdir(opt)).toEqual([]);
  });

  it('its space counts as free, and what this restore does not take up is removed before anything arrives', async () => {
    const { app, asBackedUp, restoreWith, resumed, planned } = await device();
    const opt = path.dirname(app);
    const folder = path.join(opt, '.jetvault-resume-myrvm');
    await rm(app, { recursive: true });
    await expect(restoreWith(cutAfter(3 * MiB).runner, { resume: true })).rejects.toThrow(/Sending files|Unpacking/);
    await recoverRestores(local, [opt], { resume: true });
    // A large file left there that the snapshot does not hold (an earlier restore of another snapshot).
    await writeFile(path.join(folder, 'models/old.onnx'), randomBytes(2 * MiB));
    const partial = (await stat(path.join(folder, MODEL))).size;
    const free = Number(execFileSync('df', ['-P', '-k', opt], { encoding: 'utf8' }).trim().split('\n')[1]!.split(/\s+/)[3]) * 1024;
    let dropped = false;
    const { runner } = watched({ after: async (text) => void (text.includes('xargs -0 -r rm') && (dropped = !(await exists(path.join(folder, 'models/old.onnx'))) && (await exists(path.join(folder, MODEL))))) });
    await restoreWith(runner, { resume: true });
    expect(dropped).toBe(true);
    // df moves with everything else on this machine: within a few MiB of the device's free space plus the folder's files.
    expect(Math.abs(planned.freeBytes - (free + partial + 2 * MiB))).toBeLessThan(64 * MiB);
    expect(resumed).toHaveLength(1);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(await readdir(opt)).toEqual(['myrvm']);
  });
});
