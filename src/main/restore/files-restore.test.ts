import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, symlinkSync } from 'node:fs';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalRunner } from '../devices/local-runner';
import { commandText, raw, sh } from '../devices/shell-quote';
import type { CommandRunner } from '../devices/ssh-connection';
import { tamperingRunner } from './testing/tampering-runner';
import { RemoteFilesSource } from '../devices/sources/files-source';
import { backup } from '../repository/archiver/archiver';
import { findSnapshot } from '../repository/snapshot/snapshot';
import { describeTree, makeAwkwardTree, newRepo } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import { confirmRoots, executeFilesRestore, planFilesRestore, recoverRestores, refuseIfKept, RESTORE_PREFIX, rollbackRestore } from './files-restore';
import type { FilesRestoreOptions } from './files-restore';

const runner = new LocalRunner();

/** A device tree, backed up once, then changed: one file edited, one removed, one added. */
async function scenario() {
  const sysroot = tempDir();
  const app = path.join(sysroot, 'opt/myrvm');
  await mkdir(path.join(app, 'data'), { recursive: true });
  await makeAwkwardTree(path.join(app, 'data'));
  await writeFile(path.join(app, 'app.py'), 'VERSION = 1\n');
  const { repo } = await newRepo();
  const source = { name: 'app', kind: 'files' as const, paths: [app] };
  const result = await backup(repo, new RemoteFilesSource({ runner, source, sysroot }), { device: 'rvm-017' });
  const snapshot = await findSnapshot(repo, result.id);
  const asBackedUp = await describeTree(app);
  await appendFile(path.join(app, 'app.py'), 'VERSION = 2  # broken update\n');
  await rm(path.join(app, 'data/text.sql'));
  await writeFile(path.join(app, 'data/stray.tmp'), 'left by the update');
  const changed = await describeTree(app);
  const options: FilesRestoreOptions = { repo, runner, snapshot, restoreId: 'r1', sysroot };
  return { sysroot, app, options, asBackedUp, changed };
}

const phases = { phase: () => undefined, advance: () => undefined };

type Tree = Awaited<ReturnType<typeof describeTree>>;

/** While the previous state is kept, restored files share inodes with it: compare without link groups. */
function withoutLinks(tree: Tree) {
  return Object.fromEntries(Object.entries(tree).map(([k, { ino: _ino, ...rest }]) => [k, rest]));
}

describe('restoring files onto a device (real shell, tar and sha256sum)', () => {
  it('plans exactly what changes, and a dry run changes nothing', async () => {
    const { options, app, changed } = await scenario();
    const plan = await planFilesRestore(options);
    const [root] = plan.roots;
    expect(root).toMatchObject({ target: app, targetExists: true, add: ['data/text.sql'], replace: ['app.py'], remove: ['data/stray.tmp'] });
    expect(root!.unchanged).toBeGreaterThan(10);
    expect(plan.bytesToSend).toBeGreaterThan(0);
    expect(plan.freeBytes).toBeGreaterThan(plan.spaceNeeded);
    expect(await describeTree(app)).toEqual(changed);
  });

  it('restores a large file with holes (a preallocated image) without sending its zeros: it comes back sparse and byte-exact', async () => {
    const sysroot = tempDir();
    const models = path.join(sysroot, 'opt/myrvm/models');
    await mkdir(models, { recursive: true });
    const image = path.join(models, 'disk.img');
    // 32 MiB: 5 KiB at the start, 4 KiB at 20 MiB, the rest holes (and a hole at its end).
    await writeFile(image, Buffer.alloc(5 * 1024, 7));
    execFileSync('truncate', ['-s', '32M', image]);
    execFileSync('dd', ['if=/dev/urandom', `of=${image}`, 'bs=4096', 'count=1', `seek=${(20 * 1024 * 1024) / 4096}`, 'conv=notrunc'], { stdio: 'ignore' });
    await writeFile(path.join(models, 'small.bin'), 'not sparse\n');
    const { repo } = await newRepo();
    const source = { name: 'models', kind: 'files' as const, paths: [models] };
    const snapshot = await findSnapshot(repo, (await backup(repo, new RemoteFilesSource({ runner, source, sysroot }), { device: 'rvm-017' })).id);
    const asBackedUp = await describeTree(models);
    await writeFile(image, 'overwritten by a bad flash\n');

    // What crosses to the device: counted on the tar stream's way in.
    let sent = 0;
    const counting: CommandRunner = {
      ...runner,
      target: runner.target,
      run: (command, options) => runner.run(command, options),
      exec: async (command, signal) => {
        const running = await runner.exec(command, signal);
        const write = running.stdin.write.bind(running.stdin);
        running.stdin.write = ((chunk: Buffer, ...rest: never[]) => ((sent += chunk.length), write(chunk, ...rest))) as typeof running.stdin.write;
        return running;
      },
    };
    const options: FilesRestoreOptions = { repo, runner: counting, snapshot, restoreId: 'sparse', sysroot };
    const plan = await planFilesRestore(options);
    // The plan says so: staging it needs only what is sent, not the image's 32 MiB.
    expect(plan.bytesToSend).toBeLessThan(1024 * 1024);
    await executeFilesRestore(options, plan, phases);
    expect(await confirmRoots(runner, plan.roots)).toEqual([]);
    expect(withoutLinks(await describeTree(models))).toEqual(withoutLinks(asBackedUp));
    expect(lstatSync(image).blocks * 512).toBeLessThan(4 * 1024 * 1024);
    expect(sent).toBeLessThan(1024 * 1024);
  });

  it("leaves Jetvault's own folders inside the target as they are (what restores of a folder inside it staged or kept): no snapshot holds them", async () => {
    const { options, app, asBackedUp } = await scenario();
    // A restore of app/data cut off (what it kept for a rerun) and one of it waiting for keep or rollback.
    await mkdir(path.join(app, '.jetvault-resume-data/sub'), { recursive: true });
    await writeFile(path.join(app, '.jetvault-resume-data/sub/model.onnx'), 'half a model');
    await mkdir(path.join(app, '.jetvault-restore-r0-data/previous'), { recursive: true });
    await writeFile(path.join(app, '.jetvault-restore-r0-data/journal'), 'swapped\n');
    const own = { resume: path.join(app, '.jetvault-resume-data'), staging: path.join(app, '.jetvault-restore-r0-data') };
    const before = { resume: await describeTree(own.resume), staging: await describeTree(own.staging) };
    const plan = await planFilesRestore(options);
    expect(plan.roots[0]!.remove).toEqual(['data/stray.tmp']);
    await executeFilesRestore(options, plan, phases);
    expect(await confirmRoots(runner, plan.roots)).toEqual([]);
    expect(withoutLinks(await describeTree(own.resume))).toEqual(withoutLinks(before.resume));
    expect(withoutLinks(await describeTree(own.staging))).toEqual(withoutLinks(before.staging));
    await rm(own.resume, { recursive: true });
    await rm(own.staging, { recursive: true });
    expect(withoutLinks(await describeTree(app))).toEqual(withoutLinks(asBackedUp));
  });

  it("counts as progress the files' content as the tar stream takes it, not tar's headers: it ends at the plan's total, never past it", async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    await mkdir(path.join(app, 'assets'), { recursive: true });
    // Many small files (a header and padding each), names past tar's 100 bytes (a long-name header), one large file.
    for (let i = 0; i < 400; i++) await writeFile(path.join(app, 'assets', `${i % 5 === 0 ? 'n'.repeat(140) : 'a'}-${i}.json`), randomBytes(1 + ((i * 37) % 1500)));
    await writeFile(path.join(app, 'model.onnx'), randomBytes(3 * 1024 * 1024 + 7));
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    const snapshot = await findSnapshot(repo, (await backup(repo, new RemoteFilesSource({ runner, source, sysroot }), { device: 'rvm-017' })).id);
    // Into another folder: every file crosses in the tar stream.
    const options: FilesRestoreOptions = { repo, runner, snapshot, restoreId: 'progress', sysroot, targetRoot: path.join(sysroot, 'inspect') };
    const plan = await planFilesRestore(options);
    let done = 0;
    const seen: number[] = [];
    await executeFilesRestore(options, plan, {
      phase: () => undefined,
      advance: ({ bytes = 0 }) => {
        expect(bytes).toBeGreaterThan(0);
        seen.push((done += bytes));
      },
    });
    expect(plan.bytesToSend).toBe(3 * 1024 * 1024 + 7 + [...Array(400).keys()].reduce((n, i) => n + 1 + ((i * 37) % 1500), 0));
    expect(done).toBe(plan.bytesToSend);
    expect(seen.length).toBeGreaterThan(3); // as it crossed, not once at the end
    expect(await describeTree(path.join(sysroot, 'inspect/opt/myrvm/assets'))).toEqual(await describeTree(path.join(app, 'assets')));
  });

  it('stages, verifies and swaps; keeps the previous state until confirmed; rolls back on demand', async () => {
    const { options, app, sysroot, asBackedUp, changed } = await scenario();
    const plan = await planFilesRestore(options);
    const seen: string[] = [];
    await executeFilesRestore(options, plan, { phase: (p) => seen.push(p), advance: () => undefined });
    expect(seen).toEqual(['preflight', 'stage', 'verify', 'swap', 'validate']);
    expect(withoutLinks(await describeTree(app))).toEqual(withoutLinks(asBackedUp));
    expect(await rollbackRestore(runner, plan)).toEqual([]);
    expect(await describeTree(app)).toEqual(changed);
    expect(readdirSync(path.join(sysroot, 'opt')).filter((n) => n.startsWith(RESTORE_PREFIX))).toEqual([]);

    const again = await planFilesRestore({ ...options, restoreId: 'r2' });
    await executeFilesRestore({ ...options, restoreId: 'r2' }, again, phases);
    expect(await confirmRoots(runner, again.roots)).toEqual([]);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(readdirSync(path.join(sysroot, 'opt'))).toEqual(['myrvm']);
  });

  it.each(['preflight', 'stage', 'verify', 'swap', 'validate'] as const)('a console killed at %s leaves the device original or fully restored, and recover cleans up', async (killedAt) => {
    const { options, app, sysroot, asBackedUp, changed } = await scenario();
    const plan = await planFilesRestore(options);
    await expect(
      executeFilesRestore(options, plan, {
        phase: (p) => {
          if (p === killedAt) throw new Error(`killed at ${p}`);
        },
        advance: () => undefined,
      }),
    ).rejects.toThrow(`killed at ${killedAt}`);
    const found = await recoverRestores(runner, [path.join(sysroot, 'opt')]);
    if (killedAt === 'validate') {
      // The swap had completed: fully restored, kept until the technician confirms or rolls back.
      expect(found).toEqual([{ staging: plan.roots[0]!.staging, state: 'swapped' }]);
      expect(withoutLinks(await describeTree(app))).toEqual(withoutLinks(asBackedUp));
      await rollbackRestore(runner, plan);
    }
    expect(await describeTree(app)).toEqual(changed);
    expect(readdirSync(path.join(sysroot, 'opt'))).toEqual(['myrvm']);
  });

  it('a swap cut between its two renames is rolled back to the original by recover', async () => {
    const { options, app, sysroot, changed } = await scenario();
    const plan = await planFilesRestore(options);
    await expect(executeFilesRestore(options, plan, { phase: (p) => { if (p === 'swap') throw new Error('cut'); }, advance: () => undefined })).rejects.toThrow('cut');
    // What a dropped link in the middle of the swap could leave: the target moved away, the new tree not yet in place.
    const staging = plan.roots[0]!.staging;
    execFileSync('sh', ['-c', `printf 'swapping\\n' > "$1/journal" && mv -- "$2" "$1/previous"`, 'sh', staging, app]);
    expect(existsSync(app)).toBe(false);
    expect(await recoverRestores(runner, [path.join(sysroot, 'opt')])).toEqual([{ staging, state: 'swapping' }]);
    expect(await describeTree(app)).toEqual(changed);
  });

  it('a keep cut off after it began is finished by recover and never rolled back: its previous state may be partly gone', async () => {
    const { options, app, sysroot, asBackedUp } = await scenario();
    const plan = await planFilesRestore(options);
    await executeFilesRestore(options, plan, phases);
    const staging = plan.roots[0]!.staging;
    // What a keep cut off part-way leaves: the root marked kept, part of the previous state removed.
    execFileSync('sh', ['-c', `printf 'kept\\n' > "$1/journal" && rm -rf -- "$1/previous/data"`, 'sh', staging]);
    const refusal = `The restore of ${app} is being kept (its previous state is partly removed already), so it cannot be rolled back: keep it to finish.`;
    await expect(refuseIfKept(runner, plan.roots)).rejects.toThrow(refusal);
    await expect(rollbackRestore(runner, plan)).rejects.toThrow(refusal);
    expect(withoutLinks(await describeTree(app))).toEqual(withoutLinks(asBackedUp));
    expect(await recoverRestores(runner, [path.join(sysroot, 'opt')])).toEqual([{ staging, state: 'kept' }]);
    expect(await describeTree(app)).toEqual(asBackedUp);
    expect(readdirSync(path.join(sysroot, 'opt'))).toEqual(['myrvm']);
    // Kept again (the console asks once more): nothing left to do.
    expect(await confirmRoots(runner, plan.roots)).toEqual([]);
    await expect(refuseIfKept(runner, plan.roots)).resolves.toBe(false); // nothing of it left either
  });

  it('a staged file that differs from the snapshot stops the restore before the swap; nothing live changes', async () => {
    const { options, app, sysroot, changed } = await scenario();
    // The bytes of app.py are altered on their way into tar: tar writes them faithfully, and only the
    // sha256 of the staged file on the device can tell.
    const tampering = tamperingRunner(runner, 'tar -x', (chunk) => Buffer.from(chunk.toString('latin1').replace('VERSION = 1', 'VERSION = 7'), 'latin1'));
    const opts = { ...options, runner: tampering };
    const plan = await planFilesRestore(opts);
    expect(plan.roots[0]!.replace).toContain('app.py');
    let swapped = false;
    await expect(executeFilesRestore(opts, plan, { phase: (p) => void (swapped ||= p === 'swap'), advance: () => undefined })).rejects.toThrow(/app\.py .*does not match the snapshot/);
    expect(swapped).toBe(false);
    expect(await readFile(path.join(app, 'app.py'), 'utf8')).toBe('VERSION = 1\nVERSION = 2  # broken update\n'); // the live file
    const staging = plan.roots[0]!.staging;
    expect(await readFile(path.join(staging, 'new/app.py'), 'utf8')).toBe('VERSION = 7\n'); // what tar wrote
    expect(await recoverRestores(runner, [path.join(sysroot, 'opt')])).toEqual([{ staging, state: 'staged' }]);
    expect(existsSync(staging)).toBe(false);
    expect(await describeTree(app)).toEqual(changed);
  });

  it('hashes large files on their own (OpenSSL, or sha256sum where the device has none) and catches one altered in transit', async () => {
    const { options, app, sysroot } = await scenario();
    const model = Buffer.concat([Buffer.from('MODEL-HEADER'), randomBytes(3 * 1024 * 1024)]);
    await writeFile(path.join(app, 'data/model.bin'), model);
    const result = await backup(options.repo, new RemoteFilesSource({ runner, source: { name: 'app', kind: 'files', paths: [app] }, sysroot }), { device: 'rvm-017' });
    const opts = { ...options, snapshot: await findSnapshot(options.repo, result.id) };
    const asBackedUp = await describeTree(app);
    // A device without openssl: every tool of this machine but that one.
    const bin = tempDir();
    for (const dir of ['/usr/bin', '/bin']) for (const name of readdirSync(dir)) if (name !== 'openssl' && !existsSync(path.join(bin, name))) symlinkSync(path.join(dir, name), path.join(bin, name));
    const withPath = (base: CommandRunner, prefix: string, tamper: boolean): CommandRunner => {
      const prefixed: CommandRunner = {
        target: base.target,
        run: (command, o) => base.run(sh`${raw(prefix)}${command}`, o),
        exec: (command, signal) => base.exec(sh`${raw(prefix)}${command}`, signal),
      };
      return tamper ? tamperingRunner(prefixed, 'tar -x', (chunk) => Buffer.from(chunk.toString('latin1').replace('MODEL-HEADER', 'MODEL-HEADEX'), 'latin1')) : prefixed;
    };
    for (const prefix of ['', `PATH=${bin}; export PATH; `]) {
      for (const [i, tamper] of [true, false].entries()) {
        await rm(path.join(app, 'data/model.bin'));
        const o = { ...opts, runner: withPath(runner, prefix, tamper), restoreId: `large${i}${prefix ? 'n' : 'o'}` };
        const plan = await planFilesRestore(o);
        expect(plan.roots[0]!.add).toEqual(['data/model.bin']);
        if (tamper) {
          await expect(executeFilesRestore(o, plan, phases)).rejects.toThrow(/data\/model\.bin .*does not match the snapshot/);
          await recoverRestores(runner, [path.join(sysroot, 'opt')]);
          await writeFile(path.join(app, 'data/model.bin'), 'x');
          continue;
        }
        await executeFilesRestore(o, plan, phases);
        await confirmRoots(runner, plan.roots);
        expect(await describeTree(app)).toEqual(asBackedUp);
      }
    }
  });

  it('a folder whose mode changed gets its mode back and keeps every file in it', async () => {
    const { options, app, asBackedUp } = await scenario();
    await appendFile(path.join(app, 'app.py'), '# changed too\n');
    await appendFile(path.join(app, 'data/exec.sh'), '# changed inside the folder\n');
    execFileSync('chmod', ['0500', path.join(app, 'data')]);
    const plan = await planFilesRestore(options);
    expect(plan.roots[0]!.replace).toContain('data');
    await executeFilesRestore(options, plan, phases);
    await confirmRoots(runner, plan.roots);
    expect(await describeTree(app)).toEqual(asBackedUp);
  });

  const owners = (root: string, rels: string[]) => Object.fromEntries(rels.map((rel) => [rel, ((st) => `${st.uid}:${st.gid}`)(lstatSync(path.join(root, rel)))]));

  it.skipIf(process.getuid?.() !== 0)('as root, gives owners back: files and folders chowned away, the folder itself, a large file as no blocks (chown needs root; CI runs as root)', async () => {
    const sysroot = tempDir();
    const app = path.join(sysroot, 'opt/myrvm');
    await mkdir(path.join(app, 'data'), { recursive: true });
    await writeFile(path.join(app, 'app.py'), 'VERSION = 1\n');
    await writeFile(path.join(app, 'data/settings.json'), '{"threshold": 0.85}\n');
    await writeFile(path.join(app, 'model.onnx'), randomBytes(5 * 2 ** 20));
    symlinkSync('app.py', path.join(app, 'current'));
    execFileSync('chown', ['-R', '-h', '4321:4322', app]);
    const { repo } = await newRepo();
    const source = { name: 'app', kind: 'files' as const, paths: [app] };
    const snapshot = await findSnapshot(repo, (await backup(repo, new RemoteFilesSource({ runner, source, sysroot }), { device: 'rvm-017' })).id);
    const asBackedUp = await describeTree(app);
    const all = ['', 'app.py', 'current', 'data', 'data/settings.json', 'model.onnx'];
    // A `sudo chown -R root` gone wrong, part of the way: the folder, a file, a folder, a link, the model.
    execFileSync('chown', ['-h', '0:0', app, path.join(app, 'app.py'), path.join(app, 'data'), path.join(app, 'current'), path.join(app, 'model.onnx')]);
    const chowned = owners(app, all);

    const options: FilesRestoreOptions = { repo, runner, snapshot, restoreId: 'own', sysroot };
    const plan = await planFilesRestore(options);
    expect(plan.login).toMatchObject({ uid: 0 });
    const [root] = plan.roots;
    expect([...root!.replace].sort()).toEqual(['app.py', 'current', 'data', 'model.onnx']);
    expect(root).toMatchObject({ owners: 4, rootOwner: { from: '0:0', to: '4321:4322' }, add: [], remove: [], unchanged: 1 });
    expect(root!.ownersKept).toBeUndefined(); // root sets any owner
    // A content check reads only what still looks unchanged: the chowned files are not counted twice.
    const checked = (await planFilesRestore({ ...options, restoreId: 'own-check', checkContents: true })).roots[0]!;
    expect([[...checked.replace].sort(), checked.unchanged, checked.contents]).toEqual([[...root!.replace].sort(), 1, { checked: 1, differ: 0, unreadable: 0 }]);
    const patched: number[] = [];
    await executeFilesRestore(options, plan, { ...phases, patched: (_size, sent) => patched.push(sent) });
    expect(owners(app, all)).toEqual(Object.fromEntries(all.map((rel) => [rel, '4321:4322'])));
    expect(patched).toEqual([0]); // the model's blocks all matched: nothing but its owner changed
    // The live files were never changed through a hard link: rolling back gives the chowned state.
    await rollbackRestore(runner, plan);
    expect(owners(app, all)).toEqual(chowned);

    const again = await planFilesRestore({ ...options, restoreId: 'own2' });
    await executeFilesRestore({ ...options, restoreId: 'own2' }, again, phases);
    await confirmRoots(runner, again.roots);
    expect(owners(app, all)).toEqual(Object.fromEntries(all.map((rel) => [rel, '4321:4322'])));
    expect(withoutLinks(await describeTree(app))).toEqual(withoutLinks(asBackedUp));
    const after = (await planFilesRestore({ ...options, restoreId: 'own3' })).roots[0]!;
    expect([after.replace, after.owners, after.rootOwner]).toEqual([[], undefined, undefined]);

    // The folder alone: everything in it matches, the folder is staged and swapped for its owner.
    execFileSync('chown', ['0:0', app]);
    const folder = await planFilesRestore({ ...options, restoreId: 'own4' });
    expect(folder.roots[0]).toMatchObject({ replace: [], add: [], remove: [], rootOwner: { from: '0:0', to: '4321:4322' } });
    await executeFilesRestore({ ...options, restoreId: 'own4' }, folder, phases);
    await confirmRoots(runner, folder.roots);
    expect(owners(app, all)).toEqual(Object.fromEntries(all.map((rel) => [rel, '4321:4322'])));
  });

  it('with checkContents, finds files damaged with their size, times and mode intact, and restores them', async () => {
    const { options, app, asBackedUp } = await scenario();
    // Same length, same mtime (copied from a reference), other bytes: a bit-rotted copy, and one
    // under a name with a newline; the big file is hard-linked, so both its names differ.
    const damage = (rel: string) => {
      const file = path.join(app, rel);
      const ref = `${file}.ref`;
      execFileSync('cp', ['-p', file, ref]);
      execFileSync('sh', ['-c', 'printf X | dd of="$1" bs=1 seek=3 conv=notrunc status=none && touch -r "$2" "$1" && rm "$2"', 'sh', file, ref]);
    };
    damage('data/sub/new\nline');
    damage('data/sub/deeper/big.bin');
    const plain = await planFilesRestore(options);
    expect(plain.roots[0]!.replace).toEqual(['app.py']);
    expect(plain.roots[0]!.contents).toBeUndefined();

    const checked = { ...options, checkContents: true };
    const plan = await planFilesRestore(checked);
    const [root] = plan.roots;
    expect([...root!.replace].sort()).toEqual(['app.py', 'data/hardlink-to-big', 'data/sub/deeper/big.bin', 'data/sub/new\nline']);
    expect(root!.contents).toMatchObject({ differ: 3, unreadable: 0 });
    expect(root!.contents!.checked).toBe(Object.values(asBackedUp).filter((d) => d.type === 'file').length - 2); // every file but app.py (changed) and text.sql (gone)
    expect(root!.unchanged).toBe(plain.roots[0]!.unchanged - 3);
    expect(plan.bytesToSend).toBe(plain.bytesToSend + 2 * 300_000 + Buffer.byteLength('file 0 SECRET-NAME-CONTENT-0\n'));
    await executeFilesRestore(checked, plan, phases);
    await confirmRoots(runner, plan.roots);
    expect(await describeTree(app)).toEqual(asBackedUp);
  });

  it('with checkContents, a file the device cannot read is left as it is and counted', async () => {
    const { options, app } = await scenario();
    // The file goes away just as the device hashes: its line is missing, the check goes on.
    const vanishing: CommandRunner = {
      target: runner.target,
      exec: async (command, signal) => {
        if (commandText(command).includes('sha256sum -z')) await rm(path.join(app, 'data/exec.sh'));
        return runner.exec(command, signal);
      },
      run: (command, opts) => runner.run(command, opts),
    };
    const plan = await planFilesRestore({ ...options, runner: vanishing, checkContents: true });
    expect(plan.roots[0]!.contents).toMatchObject({ differ: 0, unreadable: 1 });
    expect(plan.roots[0]!.replace).toEqual(['app.py']);

    // A sha256sum without -z (BusyBox) would make every file look unreadable: the check says so instead.
    const bin = tempDir();
    await writeFile(path.join(bin, 'sha256sum'), '#!/bin/sh\necho "sha256sum: unrecognized option: z" >&2\nexit 1\n', { mode: 0o755 });
    const busybox: CommandRunner = { ...vanishing, exec: (command, signal) => runner.exec(raw(`PATH=${bin}:$PATH; ${commandText(command)}`), signal) };
    await expect(planFilesRestore({ ...options, runner: busybox, checkContents: true })).rejects.toThrow(/no sha256sum -z \(GNU coreutils\) to check contents with/);
  });

  it('restores into another folder for inspection without touching the original', async () => {
    const { options, app, asBackedUp, changed } = await scenario();
    const elsewhere = tempDir();
    const opts = { ...options, targetRoot: elsewhere, restoreId: 'inspect' };
    const plan = await planFilesRestore(opts);
    expect(plan.roots[0]!.targetExists).toBe(false);
    await executeFilesRestore(opts, plan, phases);
    await confirmRoots(runner, plan.roots);
    expect(await describeTree(path.join(elsewhere, 'opt/myrvm'))).toEqual(asBackedUp);
    expect(await describeTree(app)).toEqual(changed);
  });

  it('never removes what the backup excluded (a live database beside the app)', async () => {
    const { options, app } = await scenario();
    await writeFile(path.join(app, 'local.db'), 'the live database, excluded from the app source');
    const plain = await planFilesRestore(options);
    expect(plain.roots[0]!.remove).toContain('local.db');
    const opts = { ...options, exclude: ['local.db*'], restoreId: 'excl' };
    const plan = await planFilesRestore(opts);
    expect(plan.roots[0]!.remove).toEqual(['data/stray.tmp']);
    await executeFilesRestore(opts, plan, phases);
    await confirmRoots(runner, plan.roots);
    expect((await describeTree(app))['local.db']).toMatchObject({ content: Buffer.from('the live database, excluded from the app source').toString('base64') });
  });

  it.skipIf(process.getuid?.() !== 0)('a file system without room for the staging copy (no inodes left) is named as full; nothing changed, nothing left', async () => {
    const { options, sysroot, changed } = await scenario();
    // The app's parent folder on a tmpfs of its own holding what it held, then just a few inodes more.
    const opt = path.join(sysroot, 'opt');
    const held = tempDir();
    execFileSync('cp', ['-a', `${opt}/.`, held]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'jv-full', opt]);
    try {
      execFileSync('cp', ['-a', `${held}/.`, opt]);
      const used = Number(execFileSync('df', ['--output=iused', opt]).toString().trim().split('\n').pop());
      execFileSync('mount', ['-o', `remount,nr_inodes=${used + 4}`, opt]);
      const plan = await planFilesRestore(options);
      const failed = executeFilesRestore(options, plan, phases);
      await expect(failed).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(failed).rejects.toThrow(/^Not enough space on the device for the staging copy of .*opt\/myrvm: its file system is full \(no room or no inodes left; cp: .*No space left on device\)\. Free some space there and restore again\. Nothing was changed\.$/);
      expect(await rollbackRestore(runner, plan)).toEqual([]);
      expect(await describeTree(path.join(opt, 'myrvm'))).toEqual(changed);
      expect(readdirSync(opt)).toEqual(['myrvm']);
    } finally {
      execFileSync('umount', [opt]);
    }
  });

  /** The app's parent folder on a 16 MiB tmpfs, a 3 MiB model backed up and then gone (the restore brings it back). */
  async function onSmallDisk(work: (ctx: { opt: string; app: string; options: FilesRestoreOptions; changed: Awaited<ReturnType<typeof describeTree>> }) => Promise<void>) {
    const sysroot = tempDir();
    const opt = path.join(sysroot, 'opt');
    await mkdir(opt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'jv-filling', opt]);
    try {
      const app = path.join(opt, 'myrvm');
      await mkdir(path.join(app, 'models'), { recursive: true });
      await writeFile(path.join(app, 'app.py'), 'VERSION = 1\n');
      await writeFile(path.join(app, 'models', 'detector.bin'), randomBytes(3 * 1024 * 1024));
      const { repo } = await newRepo();
      const source = { name: 'app', kind: 'files' as const, paths: [app] };
      const snapshot = await findSnapshot(repo, (await backup(repo, new RemoteFilesSource({ runner, source, sysroot }), { device: 'rvm-017' })).id);
      await rm(path.join(app, 'models', 'detector.bin'));
      await writeFile(path.join(app, 'app.py'), 'VERSION = 2  # broken update\n');
      await work({ opt, app, options: { repo, runner, snapshot, restoreId: 'r1', sysroot }, changed: await describeTree(app) });
    } finally {
      execFileSync('umount', [opt]);
    }
  }

  /** An app's log fills the file system up to `leftBytes` free (0: to the last block). */
  function fill(opt: string, leftBytes: number) {
    const free = Number(execFileSync('df', ['--output=avail', '-B1', opt]).toString().trim().split('\n').pop());
    spawnSync('dd', ['if=/dev/zero', `of=${path.join(opt, 'app.log')}`, 'bs=64k', `count=${leftBytes > 0 ? Math.floor((free - leftBytes) / 65536) : Math.ceil(free / 65536) + 1}`]);
  }

  it.skipIf(process.getuid?.() !== 0)('a file system that fills up after the plan, while the files arrive, is named as full (not "Unpacking failed (exit 2)"); nothing changed, nothing left', async () => {
    await onSmallDisk(async ({ opt, app, options, changed }) => {
      const plan = await planFilesRestore(options);
      fill(opt, 1024 * 1024);
      const failed = executeFilesRestore(options, plan, phases);
      await expect(failed).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(failed).rejects.toThrow(/^Not enough space on the device to stage the restored files of .*opt\/myrvm: its file system filled up while they arrived \(tar: .*No space left on device\)\. Free some space there and restore again\. Nothing was changed\.$/);
      expect(await rollbackRestore(runner, plan)).toEqual([]);
      expect(await describeTree(app)).toEqual(changed);
      expect(readdirSync(opt).sort()).toEqual(['app.log', 'myrvm']);
    });
  });

  it.skipIf(process.getuid?.() !== 0)('a file system full to the last block as the staging begins is named as full (not "printf: I/O error"), and the staging folder it could not journal is removed by rollback and by recovery', async () => {
    await onSmallDisk(async ({ opt, app, options, changed }) => {
      const plan = await planFilesRestore(options);
      fill(opt, 0);
      const failed = executeFilesRestore(options, plan, phases);
      await expect(failed).rejects.toThrow(/^Not enough space on the device for the staging copy of .*opt\/myrvm: its file system is full \(no room or no inodes left; .*I\/O error; 0 KiB free\)\. Free some space there and restore again\. Nothing was changed\.$/);
      // A console whose link went before it could roll back: the device's recovery finds the folder.
      expect(readdirSync(opt).filter((n) => n.startsWith(RESTORE_PREFIX))).toHaveLength(1);
      expect(await recoverRestores(runner, [opt])).toMatchObject([{ state: 'staging' }]);
      expect(readdirSync(opt).sort()).toEqual(['app.log', 'myrvm']);
      // The restore's own rollback removes it too.
      await expect(executeFilesRestore(options, plan, phases)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      expect(await rollbackRestore(runner, plan)).toEqual([]);
      expect(readdirSync(opt).sort()).toEqual(['app.log', 'myrvm']);
      expect(await describeTree(app)).toEqual(changed);
    });
  });

  it('restores only the selected files', async () => {
    const { options, app, changed } = await scenario();
    const opts = { ...options, include: ['app.py'], restoreId: 'one' };
    const plan = await planFilesRestore(opts);
    expect(plan.roots[0]).toMatchObject({ add: [], replace: ['app.py'], remove: [] });
    await executeFilesRestore(opts, plan, phases);
    await confirmRoots(runner, plan.roots);
    const after = await describeTree(app);
    expect(after['app.py']).toMatchObject({ content: Buffer.from('VERSION = 1\n').toString('base64') });
    expect(after['data/stray.tmp']).toEqual(changed['data/stray.tmp']);
  });
});

describe('a source path that is a single file (an .env, a unit file)', () => {
  it('is planned, restored and rolled back on its own when an include names it; as root, an owner changed alone goes back', async () => {
    const sysroot = tempDir();
    await mkdir(path.join(sysroot, 'opt/myrvm'), { recursive: true });
    await mkdir(path.join(sysroot, 'etc/myrvm'), { recursive: true });
    const env = path.join(sysroot, 'opt/myrvm/.env');
    await writeFile(env, 'TOKEN=good\n');
    await writeFile(path.join(sysroot, 'etc/myrvm/myrvm.yaml'), 'threshold: 0.85\n');
    const { repo } = await newRepo();
    const source = { name: 'config', kind: 'files' as const, paths: [path.join(sysroot, 'etc/myrvm'), env] };
    const result = await backup(repo, new RemoteFilesSource({ runner, source, sysroot }), { device: 'rvm-017' });
    const snapshot = await findSnapshot(repo, result.id);
    await writeFile(env, 'TOKEN=broken\n');
    await writeFile(path.join(sysroot, 'etc/myrvm/myrvm.yaml'), 'threshold: 0.1\n');

    // Only the .env, by its name: the folder root keeps its local change.
    const options: FilesRestoreOptions = { repo, runner, snapshot, restoreId: 'env', sysroot, include: ['/.env'] };
    const plan = await planFilesRestore(options);
    expect(plan.roots.map((r) => [r.snapshotPath, r.replace])).toEqual([
      ['etc/myrvm', []],
      ['opt/myrvm/.env', ['']],
    ]);
    await executeFilesRestore(options, plan, phases);
    expect(await readFile(env, 'utf8')).toBe('TOKEN=good\n');
    expect(await readFile(path.join(sysroot, 'etc/myrvm/myrvm.yaml'), 'utf8')).toBe('threshold: 0.1\n');
    await rollbackRestore(runner, plan);
    expect(await readFile(env, 'utf8')).toBe('TOKEN=broken\n');

    // Restored and kept.
    const again = await planFilesRestore({ ...options, restoreId: 'again' });
    await executeFilesRestore({ ...options, restoreId: 'again' }, again, phases);
    await confirmRoots(runner, again.roots);
    expect(await readFile(env, 'utf8')).toBe('TOKEN=good\n');
    expect(readdirSync(path.join(sysroot, 'opt/myrvm'))).toEqual(['.env']);

    // As root: the file given to another account, its bytes unchanged, gets its owner back.
    if (process.getuid?.() !== 0) return; // chown needs root; CI runs as root
    execFileSync('chown', ['4321:4322', env]);
    const owned = await planFilesRestore({ ...options, restoreId: 'owned' });
    expect(owned.roots[1]).toMatchObject({ replace: [''], owners: 1, file: true });
    await executeFilesRestore({ ...options, restoreId: 'owned' }, owned, phases);
    await confirmRoots(runner, owned.roots);
    expect([lstatSync(env).uid, lstatSync(env).gid]).toEqual([0, 0]);
  });
});
