import { appendFileSync } from 'node:fs';
import { Transform } from 'node:stream';
import { AppError } from '../../shared/errors';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdir, open, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Source } from '../../shared/schemas/devices';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { JobManager } from '../jobs/job-manager';
import type { JobContext } from '../jobs/job-manager';
import type { JobProgress } from '../../shared/schemas/jobs';
import { silentLogger } from '../log';
import { findSnapshot, listSnapshots, treeLoader, walkTree } from '../repository/snapshot/snapshot';
import { restore } from '../repository/restorer/restorer';
import { newRepo, PASSWORD } from '../repository/testing/fixtures';
import { LocalBackend } from '../repository/backend/local-backend';
import { tempDir } from '../testing/temp-dir';
import { unmount } from '../testing/unmount';
import { Repository } from '../repository/repo/repository';
import { BACKUP_PHASES, FIRST_RUN_AT_ONCE, knownLargeFiles, runSources, SOURCES_AT_ONCE, startOrder } from './device-backup';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import { LocalRunner } from './local-runner';
import { CHANGED_WHILE_READ } from './sources/files-source';
import { ResumeStore } from './resume-store';
import { commandText, raw } from './shell-quote';
import { runToString } from './ssh-connection';
import type { CommandRunner } from './ssh-connection';
import type { WireCompression } from './wire-compression';
import { cliServices } from '../testing/test-console';

/** The command that streams a files source's files (tar, its messages in English: `LC_ALL=C.UTF-8 LANGUAGE= tar -c …`). */
const isTar = (command: Parameters<typeof commandText>[0]) => /^(LC_ALL=\S+ LANGUAGE= )?tar -c /.test(commandText(command));

async function jetson(root: string) {
  await mkdir(path.join(root, 'opt/myrvm/models'), { recursive: true });
  await mkdir(path.join(root, 'etc/myrvm'), { recursive: true });
  await writeFile(path.join(root, 'etc/myrvm/config.yaml'), 'fps: 30\n');
  await writeFile(path.join(root, 'opt/myrvm/models/detector.onnx'), Buffer.alloc(3 * 1024 * 1024, 7));
  await writeFile(path.join(root, 'opt/myrvm/app.py'), 'print("hi")\n');
  const db = new Database(path.join(root, 'opt/myrvm/local.db'));
  db.exec('CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);');
  db.close();
  // Last written a minute ago, as a device's settled database: its fingerprint is trusted at once.
  const aMinuteAgo = new Date(Date.now() - 60_000);
  await utimes(path.join(root, 'opt/myrvm/local.db'), aMinuteAgo, aMinuteAgo);
}


/** A backup run of the device tree at `root` as a real job in a fresh history store. */
function backupJob(
  repo: Repository,
  root: string,
  sources: Source[],
  wrap: (ctx: JobContext) => JobContext = (ctx) => ctx,
  { name = 'rvm-017', wireCompression, prepared, runner = new LocalRunner(), jobs, resume }: { name?: string; wireCompression?: WireCompression; prepared?: Promise<void>; runner?: CommandRunner; jobs?: JobManager; resume?: ResumeStore } = {},
) {
  if (!jobs) {
    const store = new HistoryStore(tempDir());
    onTestFinished(() => store.close());
    jobs = new JobManager(store, new EventBus(), silentLogger);
  }
  // Off unless a test asks: 'auto' times this machine's shell, which a loaded CI machine can make look
  // like a slow link (gzip on the wire), and tests that watch for 'tar -c' would then miss it.
  const device = { name, sysroot: root, wireCompression: wireCompression ?? 'off', ...(resume ? { resume } : {}) };
  return jobs.start({ kind: 'backup', title: `Back up ${name}`, phases: [...BACKUP_PHASES] }, (ctx) => runSources(repo, runner, device, sources, wrap(ctx), undefined, prepared)).done;
}

/** Every file node's content (chunk ids) by path, in each snapshot of a run. */
async function contents(repo: Repository, ids: string[]): Promise<Record<string, string[] | undefined>> {
  const out: Record<string, string[] | undefined> = {};
  for (const id of ids) {
    const snapshot = await findSnapshot(repo, id);
    for await (const { path: p, node } of walkTree(repo, snapshot.tree)) if (node.type === 'file') out[p] = node.content;
  }
  return out;
}

describe('a device backup run (real shell, real files, real repository)', () => {
  it('writes one tagged snapshot per source, and the next run transfers only changes', async () => {
    const root = tempDir();
    await jetson(root);
    const { repo } = await newRepo();
    const sources: Source[] = [
      { name: 'local', kind: 'sqlite', path: path.join(root, 'opt/myrvm/local.db') },
      { name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm')] },
      { name: 'app', kind: 'files', paths: [path.join(root, 'opt/myrvm')], exclude: ['local.db*'] },
    ];
    // Bytes reach the job as they are stored, not once per source; the total is set only once every
    // source's is known, so it is never below what is done.
    const advances: number[] = [];
    let done = 0;
    let totals: { done: number; total: number | null | undefined }[] = [];
    const run = () => {
      totals = [];
      return backupJob(
        repo,
        root,
        sources,
        (ctx) => ({
          ...ctx,
          advance: (delta) => {
            if (delta.bytes) advances.push(delta.bytes);
            done += delta.bytes ?? 0;
            ctx.advance(delta);
          },
          setTotals: (t) => {
            totals.push({ done, total: t.bytes });
            ctx.setTotals(t);
          },
        }),
        { wireCompression: 'auto' },
      );
    };

    const first = await run();
    expect(first.record.status).toBe('succeeded');
    const result = first.value!;
    expect(result.snapshots.map((s) => s.source)).toEqual(['local', 'config', 'app']);
    const snapshots = await listSnapshots(repo);
    expect(snapshots).toHaveLength(3);
    for (const s of snapshots) expect(s.tags).toEqual(expect.arrayContaining(['device:rvm-017', `run:${result.runId}`, 'run-size:3']));
    expect(snapshots.find((s) => s.tags.includes('source:app'))!.paths).toEqual(['opt/myrvm']);
    expect(first.record.bytesDone).toBe(result.bytesTransferred);
    expect(advances.length).toBeGreaterThan(2 * sources.length);
    // First run: the SQLite dump's size is unknown until it is read, so the total comes at its end.
    expect(totals.at(-1)!.total).toBe(result.bytesTransferred);
    for (const t of totals) expect(t.done).toBeLessThanOrEqual(t.total! + 1024);
    expect(result.bytesTransferred).toBeGreaterThan(3 * 1024 * 1024);
    // Auto, on a link as fast as this machine's own shell: nothing compressed.
    expect(result.wireCompression).toBe(false);
    expect(result.bytesOnWire).toBe(result.bytesTransferred);

    await appendFile(path.join(root, 'opt/myrvm/app.py'), 'print("changed")\n');
    done = 0;
    const secondRun = await run();
    const second = secondRun.value!;
    // The next run knows its total from the listings and the previous dump's size before it ends.
    expect(totals[0]!.total).toBeGreaterThan(second.bytesTransferred);
    expect(totals[0]!.done).toBeLessThan(totals[0]!.total!);
    // Unchanged files are reused, not transferred: they are not counted as progress.
    expect(secondRun.record.bytesDone).toBe(second.bytesTransferred);
    const app = second.snapshots.find((s) => s.source === 'app')!;
    expect(app.filesRead).toBe(1);
    expect(app.bytesTransferred).toBeLessThan(100);
    expect(second.snapshots.find((s) => s.source === 'config')!.bytesTransferred).toBe(0);
    // The SQLite database was not written since: nothing copied on the device, the copy carried forward.
    const local = second.snapshots.find((s) => s.source === 'local')!;
    expect(local.unchanged).toBe(true);
    expect(local.bytesTransferred).toBe(0);
    expect(local.bytes).toBe(result.snapshots.find((s) => s.source === 'local')!.bytes);
    expect(result.snapshots.find((s) => s.source === 'local')!.unchanged).toBeUndefined();
  });

  it('indexes packs that no index names before its sources start, so they deduplicate (an interrupted run, a lost index)', async () => {
    const root = tempDir();
    await jetson(root);
    const { dir, repo } = await newRepo();
    const sources: Source[] = [
      { name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm')] },
      { name: 'app', kind: 'files', paths: [path.join(root, 'opt/myrvm')], exclude: ['local.db*'] },
    ];
    expect((await backupJob(repo, root, sources)).record.status).toBe('succeeded');
    // Every index gone: the packs are still there, but nothing names them.
    await rm(path.join(dir, 'index'), { recursive: true });
    await mkdir(path.join(dir, 'index'));
    // A copy of the model under a new name: its chunks can only be found through the packs' headers.
    await copyFile(path.join(root, 'opt/myrvm/models/detector.onnx'), path.join(root, 'opt/myrvm/models/detector-copy.onnx'));
    // The next run comes from a console started afresh: it knows only what the repository says.
    const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);
    const second = await backupJob(reopened, root, sources);
    expect(second.record.status).toBe('succeeded');
    const app = second.value!.snapshots.find((s) => s.source === 'app')!;
    expect(app.filesRead).toBe(1);
    expect(app.bytesTransferred).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(app.bytesAdded).toBeLessThan(64 * 1024); // a tree or two: every chunk was known
    expect((await readdir(path.join(dir, 'index'))).length).toBeGreaterThan(0);
  });

  it('compresses its transfers when the profile says so: the same snapshots, a fraction of the bytes on the wire', async () => {
    const root = tempDir();
    await jetson(root);
    await writeFile(path.join(root, 'etc/myrvm/odd name\nwith newline.yaml'), 'x: 1\n'.repeat(5000));
    const { repo } = await newRepo();
    const sources: Source[] = [
      { name: 'local', kind: 'sqlite', path: path.join(root, 'opt/myrvm/local.db') },
      { name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm')] },
      { name: 'app', kind: 'files', paths: [path.join(root, 'opt/myrvm')], exclude: ['local.db*'] },
    ];
    // Two device names, so neither run has a parent: both send everything.
    const plain = (await backupJob(repo, root, sources, undefined, { name: 'rvm-plain', wireCompression: 'off' })).value!;
    const packed = (await backupJob(repo, root, sources, undefined, { name: 'rvm-packed', wireCompression: 'on' })).value!;
    expect([plain.wireCompression, packed.wireCompression]).toEqual([false, true]);
    expect(packed.bytesTransferred).toBe(plain.bytesTransferred);
    expect(packed.bytesOnWire).toBeLessThan(plain.bytesOnWire / 20); // the model is one repeated byte
    expect(packed.bytesOnWire).toBeGreaterThan(0);
    const ids = (run: typeof plain) => run.snapshots.map((s) => s.snapshotId);
    const [a, b] = [await contents(repo, ids(plain)), await contents(repo, ids(packed))];
    expect(Object.keys(b)).toContain('etc/myrvm/odd name\nwith newline.yaml');
    expect(b).toEqual(a);
    // The next compressed run reuses what it can, as an uncompressed one would.
    await appendFile(path.join(root, 'opt/myrvm/app.py'), 'print("changed")\n');
    const next = (await backupJob(repo, root, sources, undefined, { name: 'rvm-packed', wireCompression: 'on' })).value!;
    expect(next.snapshots.find((s) => s.source === 'app')!.filesRead).toBe(1);
  });

  it('does not take a busy console for a slow link: a slow first command is timed again before compressing', async () => {
    const root = tempDir();
    await jetson(root);
    const { repo } = await newRepo();
    const sources: Source[] = [{ name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm')] }];
    // The repository's start-up holds the thread for 200 ms while the first command runs.
    const busy = new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = Date.now() + 200;
        while (Date.now() < until);
        resolve();
      }),
    );
    const run = await backupJob(repo, root, sources, undefined, { prepared: busy, wireCompression: 'auto' });
    expect(run.record.status).toBe('succeeded');
    expect(run.value!.wireCompression).toBe(false);
  });

  for (const wireCompression of ['off', 'on'] as const) {
    it(`removes the snapshots of a run whose later source fails, and records the failure (compression ${wireCompression})`, async () => {
      const root = tempDir();
      await jetson(root);
      const { repo } = await newRepo();
      const sources: Source[] = [
        { name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm')] },
        { name: 'db', kind: 'postgres', database: 'myrvm', host: tempDir(), port: 5999 },
      ];
      const { record } = await backupJob(repo, root, sources, undefined, { wireCompression });
      expect(record.status).toBe('failed');
      expect(record.error).toMatchObject({ code: 'REMOTE_COMMAND_FAILED' });
      expect(record.error!.message).toMatch(/postgres dump of "db"/);
      expect(await listSnapshots(repo)).toEqual([]);
    });
  }
});

describe('a run cut off part-way', () => {
  /** The real shell, with the link dropping once `after` bytes of the tar stream have crossed it. */
  function cutting(after: number): CommandRunner {
    const local = new LocalRunner();
    return {
      target: local.target,
      run: (command, options) => local.run(command, options),
      exec: async (command, signal) => {
        const running = await local.exec(command, signal);
        if (!isTar(command)) return running;
        // Passed on as the run reads it (backpressure), then the link is gone.
        let seen = 0;
        const stdout = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            seen += chunk.length;
            if (seen <= after) return callback(null, chunk);
            running.stdout.destroy();
            callback(new AppError('UNAVAILABLE', 'the connection to the device was lost'));
          },
        });
        running.stdout.pipe(stdout);
        return { ...running, stdout };
      },
    };
  }

  it('the next run takes up what it stored, transfers only the rest, and restores byte-exact', async () => {
    const root = tempDir();
    const models = path.join(root, 'opt/myrvm/models');
    await mkdir(models, { recursive: true });
    const { randomBytes } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    for (let i = 0; i < 12; i++) await writeFile(path.join(models, `layer-${String(i).padStart(2, '0')}.bin`), randomBytes(1024 * 1024));
    const { repo } = await newRepo();
    const sources: Source[] = [{ name: 'models', kind: 'files', paths: [models] }];
    const total = 12 * 1024 * 1024;

    // The link drops after ~7 of 12 MiB.
    const cut = await backupJob(repo, root, sources, undefined, { runner: cutting(7 * 1024 * 1024) });
    expect(cut.record.status).toBe('failed');
    expect(await listSnapshots(repo)).toEqual([]);

    const resumed = await backupJob(repo, root, sources);
    expect(resumed.record.status).toBe('succeeded');
    const [models1] = resumed.value!.snapshots;
    // What the cut run stored is not transferred again (at least the files whole before the cut, less
    // the one in flight), and everything else is.
    expect(models1!.bytesResumed).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(models1!.bytesTransferred + models1!.bytesResumed!).toBe(total);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, models1!.snapshotId), out);
    for (const name of await readdir(models)) expect(readFileSync(path.join(out, models.slice(root.length), name)).equals(readFileSync(path.join(models, name)))).toBe(true);

    // Complete now: the next run has nothing to take up, and nothing to transfer.
    const next = (await backupJob(repo, root, sources)).value!.snapshots[0]!;
    expect(next.bytesResumed).toBeUndefined();
    expect(next.bytesTransferred).toBe(0);
  });

  it('is taken up after a restart too (another process, the repository opened again), from a sealed checkpoint that a completed run removes', async () => {
    const root = tempDir();
    const models = path.join(root, 'opt/myrvm/models');
    await mkdir(models, { recursive: true });
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 12; i++) await writeFile(path.join(models, `layer-${String(i).padStart(2, '0')}.bin`), randomBytes(1024 * 1024));
    const { dir, repo } = await newRepo();
    const sources: Source[] = [{ name: 'models', kind: 'files', paths: [models] }];
    const folder = tempDir();
    const cut = await backupJob(repo, root, sources, undefined, { runner: cutting(7 * 1024 * 1024), resume: new ResumeStore(folder) });
    expect(cut.record.status).toBe('failed');
    // On disk: sealed (no file name or size in clear), readable only by this user.
    const [repoDir] = await readdir(folder);
    const [file] = await readdir(path.join(folder, repoDir!));
    const stored = await readFile(path.join(folder, repoDir!, file!));
    expect(stored.includes('layer-0')).toBe(false);
    expect((await stat(path.join(folder, repoDir!, file!))).mode & 0o077).toBe(0);

    // The console restarted: the repository is opened again, nothing is left in memory.
    const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);
    const resumed = await backupJob(reopened, root, sources, undefined, { resume: new ResumeStore(folder) });
    expect(resumed.record.status).toBe('succeeded');
    expect(resumed.value!.snapshots[0]!.bytesResumed).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(await readdir(path.join(folder, repoDir!))).toEqual([]);

    // A damaged checkpoint is ignored: the run transfers what it must and succeeds.
    await writeFile(path.join(folder, repoDir!, file!), stored.subarray(0, 40));
    await writeFile(path.join(models, 'layer-00.bin'), randomBytes(1024 * 1024));
    const after = await backupJob(await Repository.open(new LocalBackend(dir), PASSWORD), root, sources, undefined, { resume: new ResumeStore(folder) });
    expect(after.record.status).toBe('succeeded');
    expect(after.value!.snapshots[0]!.bytesTransferred).toBe(1024 * 1024);
  });
});

describe('what a run says it transferred', () => {
  it('leaves out files that vanished before tar read them, and counts files that grew or shrank as they crossed', async () => {
    const root = tempDir();
    const data = path.join(root, 'opt/myrvm/data');
    await mkdir(data, { recursive: true });
    await writeFile(path.join(data, 'a-gone.bin'), randomBytes(3 * 1024 * 1024));
    await writeFile(path.join(data, 'b-grows.log'), randomBytes(1000));
    await writeFile(path.join(data, 'c-shrinks.log'), randomBytes(5000));
    const local = new LocalRunner();
    // Between the listing and tar: one file is removed, one grows, one is rotated.
    const runner: CommandRunner = {
      target: local.target,
      run: (command, options) => local.run(command, options),
      exec: async (command, signal) => {
        if (isTar(command)) {
          await rm(path.join(data, 'a-gone.bin'));
          await appendFile(path.join(data, 'b-grows.log'), randomBytes(500));
          await truncate(path.join(data, 'c-shrinks.log'), 100);
        }
        return local.exec(command, signal);
      },
    };
    const { repo } = await newRepo();
    const { record, value } = await backupJob(repo, root, [{ name: 'data', kind: 'files', paths: [data] }], undefined, { runner });
    expect(record.status).toBe('succeeded');
    const [result] = value!.snapshots;
    expect(result!.skipped).toEqual([{ path: 'opt/myrvm/data/a-gone.bin', message: expect.stringMatching(/No such file/) as string }]);
    expect(result!.bytesTransferred).toBe(1500 + 100);
    expect(result!.bytesOnWire).toBe(1500 + 100);
  });
});

describe('what the job shows while it runs', () => {
  it("says 'list' while the device still lists its files, 'transfer' once bytes cross", async () => {
    const root = tempDir();
    await jetson(root);
    const { repo } = await newRepo();
    const store = new HistoryStore(tempDir());
    onTestFinished(() => store.close());
    const bus = new EventBus();
    const phases: { phase: string; listing: boolean }[] = [];
    bus.subscribe((event, payload) => {
      if (event === 'jobs:progress') phases.push({ phase: (payload as JobProgress).phase, listing });
    });
    const jobs = new JobManager(store, bus, silentLogger);
    // The device's find takes a while (200k files on an SD card): here a second.
    const local = new LocalRunner();
    let listing = false as boolean;
    const slowFind: CommandRunner = {
      target: local.target,
      run: (command, options) => runToString(slowFind, command, options),
      exec: async (command, signal) => {
        if (!commandText(command).includes('-fstype proc')) return local.exec(command, signal);
        listing = true;
        const running = await local.exec(raw(`sleep 1; ${commandText(command)}`), signal);
        void running.done.then(() => (listing = false));
        return running;
      },
    };
    const sources: Source[] = [{ name: 'app', kind: 'files', paths: [path.join(root, 'opt/myrvm')] }];
    const run = backupJob(repo, root, sources, undefined, { jobs, runner: slowFind });
    for (let i = 0; i < 400 && !listing; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(listing).toBe(true);
    expect(jobs.active()[0]).toMatchObject({ phase: 'list', bytesDone: 0 });
    const { record } = await run;
    expect(record.status).toBe('succeeded');
    // Never 'transfer' while the device was listing.
    expect(phases.filter((p) => p.phase === 'transfer').length).toBeGreaterThan(0);
    expect(phases.filter((p) => p.phase === 'transfer' && p.listing)).toEqual([]);
  });

  it('never shows more bytes done than its total: a database that grew since the last run raises the total as it crosses', async () => {
    const root = tempDir();
    await jetson(root);
    const dbPath = path.join(root, 'opt/myrvm/local.db');
    const sources: Source[] = [
      { name: 'local', kind: 'sqlite', path: dbPath },
      { name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm')] },
    ];
    const { repo } = await newRepo();
    const store = new HistoryStore(tempDir());
    onTestFinished(() => store.close());
    const bus = new EventBus();
    const seen: JobProgress[] = [];
    bus.subscribe((event, payload) => {
      if (event === 'jobs:progress') seen.push(payload as JobProgress);
    });
    const jobs = new JobManager(store, bus, silentLogger);
    expect((await backupJob(repo, root, sources, undefined, { jobs })).record.status).toBe('succeeded');
    // A day of detections later the database is some 24 MiB larger; the run's total starts from its last size.
    const db = new Database(dbPath);
    db.exec('CREATE TABLE frames (image BLOB)');
    const insert = db.prepare('INSERT INTO frames VALUES (?)');
    for (let i = 0; i < 96; i++) insert.run(randomBytes(256 * 1024));
    db.close();
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await utimes(dbPath, aMinuteAgo, aMinuteAgo);
    seen.length = 0;
    // The copy crosses in pieces, each after a pause, as over a field link: the tray sees it cross.
    const local = new LocalRunner();
    const paced: CommandRunner = {
      target: local.target,
      run: (command, options) => local.run(command, options),
      exec: async (command, signal) => {
        const running = await local.exec(command, signal);
        if (!commandText(command).includes('.backup')) return running;
        const slow = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            setTimeout(() => callback(null, chunk), 5);
          },
        });
        return { ...running, stdout: running.stdout.pipe(slow) };
      },
    };
    const { record, value } = await backupJob(repo, root, sources, undefined, { jobs, runner: paced });
    expect(record.status).toBe('succeeded');
    expect(value!.bytesTransferred).toBeGreaterThan(24 * 1024 * 1024);
    const crossing = seen.filter((p) => p.bytesTotal !== null && p.bytesDone > 0);
    expect(crossing.length).toBeGreaterThan(3);
    expect(crossing.filter((p) => p.bytesDone > p.bytesTotal!).map((p) => `${p.bytesDone} of ${p.bytesTotal}`)).toEqual([]);
    expect(seen.at(-1)).toMatchObject({ bytesDone: value!.bytesTransferred, bytesTotal: value!.bytesTransferred, fraction: 1 });
  });
});

describe('a sparse file (a preallocated image, a swap file)', () => {
  it('crosses as its data without its holes, and restores byte-exact', async () => {
    const root = tempDir();
    const images = path.join(root, 'opt/myrvm/images');
    await mkdir(images, { recursive: true });
    // 256 MiB with three written regions: the first byte, one in the middle across a block, the last.
    const size = 256 * 1024 * 1024;
    const image = path.join(images, 'rootfs.img');
    await truncate(await writeFile(image, '').then(() => image), size);
    const file = await open(image, 'r+');
    for (const [at, bytes] of [[0, randomBytes(1)], [100 * 1024 * 1024 - 10, randomBytes(70_000)], [size - 3, Buffer.from('end')]] as const) await file.write(bytes, 0, bytes.length, at);
    await file.close();
    await writeFile(path.join(images, 'notes.txt'), 'a small file beside it\n');
    const local = new LocalRunner();
    let tarBytes = 0;
    const counting: CommandRunner = {
      target: local.target,
      run: (command, options) => local.run(command, options),
      exec: async (command, signal) => {
        const running = await local.exec(command, signal);
        if (isTar(command)) running.stdout.on('data', (chunk: Buffer) => (tarBytes += chunk.length));
        return running;
      },
    };
    const { repo } = await newRepo();
    const { record, value } = await backupJob(repo, root, [{ name: 'images', kind: 'files', paths: [images] }], undefined, { runner: counting });
    expect(record.status).toBe('succeeded');
    const [result] = value!.snapshots;
    expect(tarBytes).toBeLessThan(1024 * 1024);
    expect(result!.bytesTransferred).toBeLessThan(1024 * 1024);
    expect(result!.bytes).toBe(size + 23);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, result!.snapshotId), out);
    const digest = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');
    expect(await digest(path.join(out, 'opt/myrvm/images/rootfs.img'))).toBe(await digest(image));
    expect(await readFile(path.join(out, 'opt/myrvm/images/notes.txt'), 'utf8')).toBe('a small file beside it\n');

    // Grown to twice its size (more than half of it "changed" against its previous copy): tried
    // as a block delta, it crosses whole after all — still without its holes.
    await truncate(image, 2 * size);
    const grown = await open(image, 'r+');
    await grown.write(Buffer.from('tail'), 0, 4, 2 * size - 4);
    await grown.close();
    tarBytes = 0;
    const next = (await backupJob(repo, root, [{ name: 'images', kind: 'files', paths: [images] }], undefined, { runner: counting })).value!.snapshots[0]!;
    expect(next.sentWhole?.files).toBe(1);
    expect(tarBytes).toBeLessThan(1024 * 1024);
    const out2 = tempDir();
    await restore(repo, await findSnapshot(repo, next.snapshotId), out2);
    expect(await digest(path.join(out2, 'opt/myrvm/images/rootfs.img'))).toBe(await digest(image));
  }, 90_000); // ~10 s on a quiet machine (two backups and two restores of a 256 MiB image whose zeros are still cut and hashed); over 30 s under the whole suite
});

describe('a file truncated while tar reads it (a log rotated mid-backup)', () => {
  /** The real shell; `truncate` runs while the tar stream has brought `after` bytes, on each of the first `times` tar commands. */
  function truncating(file: string, after: number, times: number): CommandRunner {
    const local = new LocalRunner();
    let tars = 0;
    return {
      target: local.target,
      run: (command, options) => local.run(command, options),
      exec: async (command, signal) => {
        const running = await local.exec(command, signal);
        if (!isTar(command) || ++tars > times) return running;
        let seen = 0;
        const stdout = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            if (seen <= after && seen + chunk.length > after) appendFileSync(file, 'rotated\n', { flag: 'w' });
            seen += chunk.length;
            callback(null, chunk);
          },
        });
        running.stdout.pipe(stdout);
        return { ...running, stdout };
      },
    };
  }

  async function device() {
    const root = tempDir();
    const logs = path.join(root, 'var/log/myrvm');
    await mkdir(logs, { recursive: true });
    await writeFile(path.join(logs, 'a-camera.log'), randomBytes(2 * 1024 * 1024));
    await writeFile(path.join(logs, 'app.log'), randomBytes(16 * 1024 * 1024));
    const { repo } = await newRepo();
    return { root, logs, repo, sources: [{ name: 'logs', kind: 'files', paths: [logs] }] satisfies Source[] };
  }

  it('is not stored padded with zeros: the source is read again, only what changed crosses again, and it restores byte-exact', async () => {
    const { root, logs, repo, sources } = await device();
    const { record, value } = await backupJob(repo, root, sources, undefined, { runner: truncating(path.join(logs, 'app.log'), 4 * 1024 * 1024, 1) });
    expect(record.status).toBe('succeeded');
    const [result] = value!.snapshots;
    // The camera log stored by the first attempt is taken up, not read again.
    expect(result!.bytesResumed).toBe(2 * 1024 * 1024);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, result!.snapshotId), out);
    for (const name of ['a-camera.log', 'app.log']) {
      expect((await readFile(path.join(out, 'var/log/myrvm', name))).equals(await readFile(path.join(logs, name)))).toBe(true);
    }
    expect(await listSnapshots(repo)).toHaveLength(1);
  });

  it("is read again on a device whose login speaks another language (tar's warning in German), not stored padded with zeros", async () => {
    // As a Jetson set up in German: LANG from /etc/default/locale, LANGUAGE=de_DE:de with it.
    vi.stubEnv('LANG', 'C.UTF-8');
    vi.stubEnv('LANGUAGE', 'de_DE:de');
    onTestFinished(() => {
      vi.unstubAllEnvs();
    });
    const { root, logs, repo, sources } = await device();
    const { record, value } = await backupJob(repo, root, sources, undefined, { runner: truncating(path.join(logs, 'app.log'), 4 * 1024 * 1024, 1) });
    expect(record.status).toBe('succeeded');
    expect(value!.snapshots[0]!.bytesResumed).toBe(2 * 1024 * 1024);
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, value!.snapshots[0]!.snapshotId), out);
    expect((await readFile(path.join(out, 'var/log/myrvm/app.log'))).equals(await readFile(path.join(logs, 'app.log')))).toBe(true);
  });

  it('fails the run with the file named when it shrinks again on the second read, leaving no snapshot', async () => {
    const { root, logs, repo, sources } = await device();
    await writeFile(path.join(logs, 'app.log'), randomBytes(16 * 1024 * 1024));
    const runner = truncating(path.join(logs, 'app.log'), 4 * 1024 * 1024, 2);
    // The second attempt transfers app.log alone: rewritten large again so it shrinks while read.
    const grow: CommandRunner = { ...runner, exec: async (command, signal) => {
      if (isTar(command)) await writeFile(path.join(logs, 'app.log'), randomBytes(16 * 1024 * 1024));
      return runner.exec(command, signal);
    } };
    const { record } = await backupJob(repo, root, sources, undefined, { runner: grow });
    expect(record.status).toBe('failed');
    expect(record.error?.message).toMatch(/var\/log\/myrvm\/app\.log of "logs" shrank while it was read .*no snapshot of "logs" was kept/);
    expect(await listSnapshots(repo)).toEqual([]);
  });
});

describe('a file written to while tar reads it (a live log)', () => {
  it('is kept as read and said to have changed while read, not counted among the files that could not be read', async () => {
    const root = tempDir();
    const logs = path.join(root, 'var/log/myrvm');
    await mkdir(logs, { recursive: true });
    await writeFile(path.join(logs, 'app.log'), randomBytes(16 * 1024 * 1024));
    const local = new LocalRunner();
    // The app appends a line while the tar stream has brought 4 MiB.
    const runner: CommandRunner = {
      target: local.target,
      run: (command, options) => local.run(command, options),
      exec: async (command, signal) => {
        const running = await local.exec(command, signal);
        if (!isTar(command)) return running;
        let seen = 0;
        const stdout = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            if (seen <= 4 * 1024 * 1024 && seen + chunk.length > 4 * 1024 * 1024) appendFileSync(path.join(logs, 'app.log'), 'a new line\n');
            seen += chunk.length;
            callback(null, chunk);
          },
        });
        running.stdout.pipe(stdout);
        return { ...running, stdout };
      },
    };
    const { repo } = await newRepo();
    const { record, value } = await backupJob(repo, root, [{ name: 'logs', kind: 'files', paths: [logs] }], undefined, { runner });
    expect(record.status).toBe('succeeded');
    const [result] = value!.snapshots;
    expect(result!.files).toBe(1);
    expect(result!.warnings).toBe(1);
    expect(result!.changedWhileRead).toBe(1);
    expect(result!.skipped).toEqual([{ path: 'var/log/myrvm/app.log', message: CHANGED_WHILE_READ }]);
  });
});

describe('a full laptop disk', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`ends the run with a clear message and no snapshot${root ? '' : ' (skipped: mounting a small tmpfs needs root; CI runs as root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { Repository } = await import('../repository/repo/repository');
    const { LocalBackend } = await import('../repository/backend/local-backend');
    const { FAST, PASSWORD } = await import('../repository/testing/fixtures');
    const { randomBytes } = await import('node:crypto');
    const mount = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'jetvault-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount]);
    try {
      const repo = await Repository.init(new LocalBackend(path.join(mount, 'repo')), PASSWORD, FAST);
      const device = tempDir();
      await mkdir(path.join(device, 'opt/models'), { recursive: true });
      await writeFile(path.join(device, 'opt/models/big.onnx'), randomBytes(8 * 1024 * 1024));
      const { record } = await backupJob(repo, device, [{ name: 'models', kind: 'files', paths: [path.join(device, 'opt/models')] }]);
      expect(record.status).toBe('failed');
      expect(record.error?.message).toMatch(/repository .* is full: no snapshot of rvm-017 was written/);
      expect(await listSnapshots(repo)).toEqual([]);
    } finally {
      await unmount(mount);
      rmSync(mount, { recursive: true, force: true });
    }
  });

  it.skipIf(!root)(`says so too when the disk is too full for the run's lease (jetvault backup --device, the console)${root ? '' : ' (skipped: needs root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { startDeviceBackup } = await import('./device-backup');
    const { FAST } = await import('../repository/testing/fixtures');
    const mount = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'jetvault-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]);
    const services = cliServices(tempDir(), { JETVAULT_REPOSITORY: path.join(mount, 'repo'), JETVAULT_SECRETS_PASSPHRASE: 'a passphrase for the test' });
    try {
      await services.repository.init(PASSWORD, FAST);
      const device = tempDir();
      await mkdir(path.join(device, 'etc/myrvm'), { recursive: true });
      await writeFile(path.join(device, 'etc/myrvm/config.yaml'), 'fps: 30\n');
      services.devices.import({ name: 'rvm-017', host: '127.0.0.2', user: 'jetson', sysroot: device, sources: [{ name: 'config', kind: 'files', paths: [path.join(device, 'etc/myrvm')] }] }, 'test');
      // Not one byte left: the lease the run takes first cannot be written.
      for (let n = 0; ; n++) {
        try {
          await writeFile(path.join(mount, `filler-${n}`), Buffer.alloc(64 * 1024));
        } catch {
          break;
        }
      }
      await writeFile(path.join(mount, 'filler-last'), Buffer.alloc(512)).catch(() => undefined);
      const connector = { withDevice: <T>(_name: string, work: (runner: CommandRunner) => Promise<T>) => work(new LocalRunner()) } as unknown as Parameters<typeof startDeviceBackup>[0]['connector'];
      const { record } = await startDeviceBackup({ devices: services.devices, connector, repository: services.repository, jobs: services.jobs }, 'rvm-017').done;
      expect(record.status).toBe('failed');
      expect(record.error?.message).toMatch(/repository .* is full: no snapshot of rvm-017 was written/);
    } finally {
      services.dispose();
      await unmount(mount);
      rmSync(mount, { recursive: true, force: true });
    }
  });
});

describe('a full disk under the job history (the data folder), the repository elsewhere', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`ends the job with its result though its end cannot be recorded then, and records it once there is room${root ? '' : ' (skipped: mounting a small tmpfs needs root; CI runs as root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const dataDir = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'jetvault-fullhome-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dataDir]);
    try {
      const store = new HistoryStore(dataDir);
      const bus = new EventBus();
      const finished: string[] = [];
      bus.subscribe((event, payload) => {
        if (event === 'jobs:finished') finished.push((payload as { job: { status: string } }).job.status);
      });
      const jobs = new JobManager(store, bus, silentLogger);
      const device = tempDir();
      await jetson(device);
      const { repo } = await newRepo();
      // The disk fills while the run transfers (another program's logs, a download).
      const fill = async () => {
        for (let n = 0; ; n++) {
          try {
            await writeFile(path.join(dataDir, `filler-${n}`), Buffer.alloc(64 * 1024));
          } catch {
            break;
          }
        }
        for (let n = 0; n < 64; n++) await writeFile(path.join(dataDir, `filler-small-${n}`), Buffer.alloc(512)).catch(() => undefined);
      };
      const wrap = (ctx: JobContext): JobContext => ({
        ...ctx,
        phase: (name) => {
          ctx.phase(name);
          if (name === 'transfer') void fill();
        },
      });
      const sources: Source[] = [{ name: 'config', kind: 'files', paths: [path.join(device, 'etc/myrvm')] }];
      const started = Date.now();
      const { record, value } = await backupJob(repo, device, sources, (ctx) => wrap(ctx), { jobs });
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(record.status).toBe('succeeded');
      expect(value!.snapshots).toHaveLength(1);
      expect(finished).toEqual(['succeeded']);
      expect(jobs.active()).toEqual([]);
      expect(await listSnapshots(repo)).toHaveLength(1);
      expect(jobs.get(record.id)).toMatchObject({ status: 'running' }); // not stored: the disk is full
      // Room again: the job's end is in the history, not a "running" row nobody will end.
      for (const name of await readdir(dataDir)) if (name.startsWith('filler-')) await rm(path.join(dataDir, name));
      jobs.reapOrphans(); // as every heartbeat does
      expect(jobs.get(record.id)).toMatchObject({ status: 'succeeded', finishedAt: record.finishedAt });
      jobs.dispose();
      store.close();
    } finally {
      await unmount(dataDir);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a full temporary folder on the device', () => {
  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`says a SQLite copy did not fit in the device's temporary folder, leaves nothing there and keeps no snapshot of the run${root ? '' : ' (skipped: mounting a small tmpfs needs root; CI runs as root)'}`, async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readdirSync, rmSync } = await import('node:fs');
    // The device's /tmp: 1 MiB free, for a 4 MiB database.
    const deviceTmp = mkdtempSync(path.join((await import('node:os')).tmpdir(), 'jetvault-devtmp-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', deviceTmp]);
    try {
      const device = tempDir();
      await jetson(device);
      const dbPath = path.join(device, 'opt/myrvm/local.db');
      const db = new Database(dbPath);
      db.exec('CREATE TABLE frames (image BLOB)');
      for (let i = 0; i < 16; i++) db.prepare('INSERT INTO frames VALUES (?)').run(randomBytes(256 * 1024));
      db.close();
      const local = new LocalRunner();
      const runner: CommandRunner = {
        target: 'jetson@rvm-017',
        run: (command, options) => runToString(runner, command, options),
        exec: (command, signal) => local.exec(raw(`TMPDIR=${deviceTmp}; export TMPDIR; ${commandText(command)}`), signal),
      };
      const { repo } = await newRepo();
      const sources: Source[] = [
        { name: 'config', kind: 'files', paths: [path.join(device, 'etc/myrvm')] },
        { name: 'local', kind: 'sqlite', path: dbPath },
      ];
      const { record } = await backupJob(repo, device, sources, undefined, { runner });
      expect(record.status).toBe('failed');
      expect(record.error?.message).toContain(`local.db on jetson@rvm-017 failed: the device's temp folder ${deviceTmp} has no room for the copy of the database that is sent (the database is 4.0 MiB`);
      expect(readdirSync(deviceTmp)).toEqual([]);
      expect(await listSnapshots(repo)).toEqual([]);
    } finally {
      await unmount(deviceTmp);
      rmSync(deviceTmp, { recursive: true, force: true });
    }
  });
});

describe('log rotation after a committed run', () => {
  it('truncates only the live logs that are still what the snapshot holds', async () => {
    const { readFileSync } = await import('node:fs');
    const root = tempDir();
    await mkdir(path.join(root, 'var/log/myrvm'), { recursive: true });
    await writeFile(path.join(root, 'var/log/myrvm/app.log'), 'line 1\nline 2\n');
    await writeFile(path.join(root, 'var/log/myrvm/sync.log'), 'sync 1\n');
    await writeFile(path.join(root, 'var/log/myrvm/app.log.1.gz'), 'old rotated');
    const { repo } = await newRepo();
    const sources: Source[] = [{ name: 'logs', kind: 'files', paths: [path.join(root, 'var/log/myrvm')], rotateAfterBackup: true }];
    // sync.log gets a new line after the listing: it must not be truncated (that line is not in the snapshot).
    const { value } = await backupJob(repo, root, sources, (ctx) => ({
      ...ctx,
      phase: (name: string) => {
        if (name === 'commit') appendFileSync(path.join(root, 'var/log/myrvm/sync.log'), 'sync 2\n');
        ctx.phase(name);
      },
    }));
    expect(value!.snapshots[0]!.rotated).toEqual([path.join(root, 'var/log/myrvm/app.log')]);
    expect(readFileSync(path.join(root, 'var/log/myrvm/app.log'), 'utf8')).toBe('');
    expect(readFileSync(path.join(root, 'var/log/myrvm/sync.log'), 'utf8')).toBe('sync 1\nsync 2\n');
    expect(readFileSync(path.join(root, 'var/log/myrvm/app.log.1.gz'), 'utf8')).toBe('old rotated');
  });

  it('a rotation that fails after the commit keeps the run (logs another rotation emptied stay in it); a cancel then is refused', async () => {
    const { readFileSync } = await import('node:fs');
    const root = tempDir();
    for (const dir of ['var/log/myrvm', 'var/log/sync']) await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, 'var/log/myrvm/app.log'), 'app line 1\n');
    await writeFile(path.join(root, 'var/log/sync/sync.log'), 'sync line 1\n');
    const { repo } = await newRepo();
    const sources: Source[] = [
      { name: 'app-logs', kind: 'files', paths: [path.join(root, 'var/log/myrvm')], rotateAfterBackup: true },
      { name: 'sync-logs', kind: 'files', paths: [path.join(root, 'var/log/sync')], rotateAfterBackup: true },
    ];
    // The real shell, with the link dropping at the second rotation (after the first emptied its log).
    const local = new LocalRunner();
    let rotations = 0;
    const flaky: CommandRunner = {
      target: local.target,
      exec: (command, signal) => (commandText(command).includes('stat -c %s:%Y') && ++rotations === 2 ? Promise.reject(new Error('Connection lost')) : local.exec(command, signal)),
      run: (command, options) => local.run(command, options),
    };
    const store = new HistoryStore(tempDir());
    onTestFinished(() => store.close());
    const jobs = new JobManager(store, new EventBus(), silentLogger);
    let refused: boolean | null = null;
    const { record, value } = await backupJob(
      repo,
      root,
      sources,
      (ctx) => ({
        ...ctx,
        phase: (name: string) => {
          ctx.phase(name);
          if (name === 'commit') refused = !jobs.cancel(ctx.id);
        },
      }),
      { runner: flaky, jobs },
    );
    expect(refused).toBe(true);
    expect(record.status).toBe('succeeded');
    expect(value!.snapshots.map((s) => [s.source, s.rotated, s.rotationError])).toEqual([
      ['app-logs', [path.join(root, 'var/log/myrvm/app.log')], undefined],
      ['sync-logs', undefined, expect.stringMatching(/^Logs not rotated \(the next run rotates them\): Connection lost/)],
    ]);
    expect(readFileSync(path.join(root, 'var/log/myrvm/app.log'), 'utf8')).toBe('');
    expect(readFileSync(path.join(root, 'var/log/sync/sync.log'), 'utf8')).toBe('sync line 1\n');
    // The emptied log's line is in the kept snapshot.
    expect(await listSnapshots(repo)).toHaveLength(2);
    const kept = await findSnapshot(repo, value!.snapshots[0]!.snapshotId);
    const files: string[] = [];
    for await (const { path: p, node } of walkTree(repo, kept.tree)) if (node.type === 'file') files.push(`${p}:${node.size}`);
    expect(files).toEqual([`var/log/myrvm/app.log:${'app line 1\n'.length}`]);
  });

  it('starts the slowest source of the last run first, and sources never backed up before the rest', () => {
    const sources: Source[] = [
      { name: 'db', kind: 'postgres', database: 'myrvm' },
      { name: 'config', kind: 'files', paths: ['/etc/myrvm'] },
      { name: 'new', kind: 'files', paths: ['/opt/new'] },
      { name: 'app', kind: 'files', paths: ['/opt/myrvm'] },
      { name: 'logs', kind: 'files', paths: ['/var/log/myrvm'] },
    ];
    const took: Record<string, number> = { db: 500, config: 40, app: 2200, logs: 40 };
    const parentOf = (name: string) => (name in took ? ({ summary: { durationMs: took[name] } } as unknown as SnapshotWithId) : null);
    expect(startOrder(sources, parentOf).map((i) => sources[i]!.name)).toEqual(['new', 'app', 'db', 'config', 'logs']);
    expect(startOrder(sources, () => null)).toEqual([0, 1, 2, 3, 4]);
  });

  it('lists every source at once while one was never backed up (the largest may be any), SOURCES_AT_ONCE at a time after', async () => {
    const root = tempDir();
    const names = ['db-dumps', 'config', 'logs', 'app', 'models'];
    const sources: Source[] = [];
    for (const name of names) {
      await mkdir(path.join(root, name));
      await writeFile(path.join(root, name, 'file.txt'), name);
      sources.push({ name, kind: 'files', paths: [path.join(root, name)] });
    }
    // Every listing is held for a moment before it runs, so listings of sources that run at the same time overlap.
    const listing = { running: 0, most: 0 };
    const inner = new LocalRunner();
    const runner: CommandRunner = {
      target: inner.target,
      run: (command, options) => inner.run(command, options),
      async exec(command, signal) {
        if (!commandText(command).includes('-printf')) return inner.exec(command, signal);
        listing.most = Math.max(listing.most, ++listing.running);
        await new Promise((resolve) => setTimeout(resolve, 150));
        const running = await inner.exec(command, signal);
        void running.done.finally(() => listing.running--);
        return running;
      },
    };
    const { repo } = await newRepo();
    expect(FIRST_RUN_AT_ONCE).toBeGreaterThanOrEqual(names.length);
    expect((await backupJob(repo, root, sources, undefined, { runner })).record.status).toBe('succeeded');
    expect(listing.most).toBe(names.length);
    listing.most = 0;
    expect((await backupJob(repo, root, sources, undefined, { runner })).record.status).toBe('succeeded');
    expect(listing.most).toBe(SOURCES_AT_ONCE);
  });
});

describe('large changed files cross as their changed blocks', () => {
  const MiB = 1024 * 1024;

  /** Path → SHA-256 of every regular file under `dir`. */
  async function sums(dir: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile()) continue;
      const full = path.join(entry.parentPath, entry.name);
      out[path.relative(dir, full)] = createHash('sha256').update(await readFile(full)).digest('hex');
    }
    return out;
  }

  /** A device folder of large models; returns their paths. */
  async function models(root: string, files: Record<string, number>): Promise<Record<string, string>> {
    const dir = path.join(root, 'opt/myrvm/models');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'labels.txt'), 'PET\nALU\n');
    const paths: Record<string, string> = {};
    for (const [name, size] of Object.entries(files)) {
      paths[name] = path.join(dir, name);
      await writeFile(paths[name], randomBytes(size));
    }
    return paths;
  }

  async function restored(repo: Repository, snapshotId: string): Promise<Record<string, string>> {
    const out = tempDir();
    await restore(repo, await findSnapshot(repo, snapshotId), out);
    return sums(path.join(out, 'opt/myrvm'));
  }

  const app = (root: string): Source[] => [{ name: 'app', kind: 'files', paths: [path.join(root, 'opt/myrvm')] }];

  it('sends the blocks that changed, and stores each file as the device has it', async () => {
    const root = tempDir();
    const odd = `it's a "model" $(x) \`y\`.onnx`;
    const file = await models(root, { 'detector.onnx': 24 * MiB, [odd]: 6 * MiB, 'grows.bin': 5 * MiB, 'shrinks.bin': 8 * MiB });
    const { repo } = await newRepo();
    expect((await backupJob(repo, root, app(root))).record.status).toBe('succeeded');

    // 4 KiB patched in place, one byte flipped, 3 MiB appended, cut to 5 MiB and a bit.
    const patch = async (name: string, at: number, bytes: Buffer) => {
      const handle = await open(file[name]!, 'r+');
      await handle.write(bytes, 0, bytes.length, at);
      await handle.close();
    };
    await patch('detector.onnx', 10 * MiB + 123, randomBytes(4096));
    await patch(odd, 0, Buffer.from([((await readFile(file[odd]!))[0]! ^ 0xff) & 0xff]));
    await appendFile(file['grows.bin']!, randomBytes(3 * MiB));
    await truncate(file['shrinks.bin']!, 5 * MiB + 77);

    const totals: (number | null | undefined)[] = [];
    const second = await backupJob(repo, root, app(root), (ctx) => ({ ...ctx, setTotals: (t) => (totals.push(t.bytes), ctx.setTotals(t)) }));
    expect(second.record.status).toBe('succeeded');
    const [result] = second.value!.snapshots;
    // The total shrinks from the listed sizes to what crossed as each delta is known.
    expect(totals[0]).toBeGreaterThan(40 * MiB);
    expect(totals.at(-1)).toBe(second.value!.bytesTransferred);
    expect(result!.filesRead).toBe(4);
    expect(result!.deltaFiles).toBe(4);
    expect(result!.knownFiles).toBeUndefined();
    expect(result!.sentWhole).toBeUndefined();
    // Their sizes as listed now: 24 MiB, 6 MiB, 5 + 3 MiB grown, cut to 5 MiB and 77 bytes.
    expect(result!.deltaBytes).toBe((24 + 6 + 8 + 5) * MiB + 77);
    // The appended 3 MiB, a block or two per other change and the hashes: not the 43 MiB of the files.
    expect(result!.bytesTransferred).toBeGreaterThan(3 * MiB);
    expect(result!.bytesTransferred).toBeLessThan(3 * MiB + 512 * 1024);
    expect(second.record.bytesDone).toBe(second.value!.bytesTransferred);
    expect(await restored(repo, result!.snapshotId)).toEqual(await sums(path.join(root, 'opt/myrvm')));
    // Stored exactly as a whole copy is (a source of its own: no parent, every file read whole):
    // the same chunks, so later runs and other devices deduplicate against either.
    const whole = await backupJob(repo, root, [{ ...app(root)[0]!, name: 'whole' }]);
    const [deltaIds, wholeIds] = [await contents(repo, [result!.snapshotId]), await contents(repo, [whole.value!.snapshots[0]!.snapshotId])];
    expect(whole.value!.snapshots[0]!.filesRead).toBe(5);
    expect(Object.keys(deltaIds)).toHaveLength(5);
    expect(deltaIds).toEqual(wholeIds);
  });

  it('copies files whole where the device has no python3, and asks only once per run', async () => {
    const root = tempDir();
    const file = await models(root, { 'a.onnx': 5 * MiB, 'b.onnx': 5 * MiB });
    const { repo } = await newRepo();
    await backupJob(repo, root, app(root));
    for (const name of ['a.onnx', 'b.onnx']) await appendFile(file[name]!, 'more\n');
    let asked = 0;
    const local = new LocalRunner();
    const noPython: CommandRunner = {
      target: local.target,
      exec: (command, signal) => {
        const text = commandText(command);
        if (!text.includes('python3')) return local.exec(command, signal);
        asked++;
        return local.exec(raw(`PATH=/nonexistent; ${text}`), signal);
      },
      run: (command, options) => runToString(noPython, command, options),
    };
    const { record, value } = await backupJob(repo, root, app(root), undefined, { runner: noPython });
    expect(record.status).toBe('succeeded');
    expect(asked).toBe(1);
    expect(value!.snapshots[0]!.deltaFiles).toBeUndefined();
    // Both named with the reason, the second without asking the device again: something to fix on the device.
    const reason = 'the device has no python3 to hash blocks with';
    expect(value!.snapshots[0]!.sentWhole).toEqual({
      files: 2,
      bytes: 2 * (5 * MiB + 5),
      examples: ['a.onnx', 'b.onnx'].map((name) => ({ path: `opt/myrvm/models/${name}`, size: 5 * MiB + 5, reason, problem: true })),
    });
    expect(value!.snapshots[0]!.bytesTransferred).toBeGreaterThanOrEqual(10 * MiB + 10);
    expect(await restored(repo, value!.snapshots[0]!.snapshotId)).toEqual(await sums(path.join(root, 'opt/myrvm')));
  });

  it('copies a file whole when its previous copy in the repository is damaged, and the run succeeds', async () => {
    const root = tempDir();
    const file = await models(root, { 'model.onnx': 6 * MiB });
    const { dir, repo } = await newRepo();
    const first = await backupJob(repo, root, app(root));
    const ids = (await contents(repo, [first.value!.snapshots[0]!.snapshotId]))['opt/myrvm/models/model.onnx']!;
    const victim = repo.index.get(ids[5]!)!;
    const { flipByte } = await import('../repository/testing/fixtures');
    const { NAMES } = await import('../repository/backend/backend');
    await flipByte(path.join(dir, NAMES.pack(victim.pack)), victim.offset + 5);
    await appendFile(file['model.onnx']!, 'more\n');
    const { record, value } = await backupJob(repo, root, app(root));
    expect(record.status).toBe('succeeded');
    expect(value!.snapshots[0]!.bytesTransferred).toBeGreaterThanOrEqual(6 * MiB);
    // The damage is named: a previous copy that cannot be read is worth a look (a repository check).
    expect(value!.snapshots[0]!.sentWhole!.examples).toEqual([
      { path: 'opt/myrvm/models/model.onnx', size: 6 * MiB + 5, reason: expect.stringMatching(/^its previous copy could not be read: /) as unknown, problem: true },
    ]);
  });

  it('copies a file whole when it changed between its hashes and its blocks, or changed all over', async () => {
    const root = tempDir();
    const file = await models(root, { 'moving.onnx': 6 * MiB, 'replaced.onnx': 6 * MiB });
    const { repo } = await newRepo();
    await backupJob(repo, root, app(root));
    await appendFile(file['moving.onnx']!, 'more\n');
    await writeFile(file['replaced.onnx']!, randomBytes(6 * MiB));
    const local = new LocalRunner();
    let fetches = 0;
    // The device's app rewrites the model just as the changed blocks are asked for.
    const busy: CommandRunner = {
      target: local.target,
      exec: async (command, signal) => {
        if (/ fetch \d+$/.test(commandText(command))) {
          fetches++;
          await writeFile(file['moving.onnx']!, randomBytes(6 * MiB + 5));
        }
        return local.exec(command, signal);
      },
      run: (command, options) => runToString(busy, command, options),
    };
    const { record, value } = await backupJob(repo, root, app(root), undefined, { runner: busy });
    expect(record.status).toBe('succeeded');
    // Only the first asked for blocks; the second had too much changed to be worth it.
    expect(fetches).toBe(1);
    expect(value!.snapshots[0]!.bytesTransferred).toBeGreaterThanOrEqual(12 * MiB);
    // Why each crossed whole: the file changed, nothing to look at.
    const whole = value!.snapshots[0]!.sentWhole!;
    expect(whole.files).toBe(2);
    expect(whole.examples.map(({ path: p, reason, problem }) => [p.split('/').at(-1), reason, problem]).sort()).toEqual([
      ['moving.onnx', 'the file changed while its blocks were read', false],
      ['replaced.onnx', expect.stringMatching(/^6\.0 MiB of its 6\.0 MiB changed$/), false],
    ]);
    expect(await restored(repo, value!.snapshots[0]!.snapshotId)).toEqual(await sums(path.join(root, 'opt/myrvm')));
  });

  describe('a large file the repository holds elsewhere', () => {
    /** Chunk ids of the file at `rel` (below opt/myrvm) in a snapshot. */
    const idsOf = async (repo: Repository, snapshotId: string, rel: string) => (await contents(repo, [snapshotId]))[`opt/myrvm/${rel}`];

    it('moved or copied within the source (a release folder), crosses as its hashes and changed blocks, stored as the same chunks', async () => {
      const root = tempDir();
      const file = await models(root, { 'detector.onnx': 12 * MiB, 'ocr.onnx': 6 * MiB });
      const { repo } = await newRepo();
      const first = await backupJob(repo, root, app(root));
      const firstId = first.value!.snapshots[0]!.snapshotId;
      // The release moved the detector into an archive folder and copied the OCR model into a new release, 4 KiB patched there.
      await mkdir(path.join(root, 'opt/myrvm/archive'));
      await mkdir(path.join(root, 'opt/myrvm/releases/2026-12-06'), { recursive: true });
      const moved = path.join(root, 'opt/myrvm/archive/detector-v1.onnx');
      await copyFile(file['detector.onnx']!, moved);
      await rm(file['detector.onnx']!);
      const copy = path.join(root, 'opt/myrvm/releases/2026-12-06/ocr.onnx');
      await copyFile(file['ocr.onnx']!, copy);
      const handle = await open(copy, 'r+');
      await handle.write(randomBytes(4096), 0, 4096, 3 * MiB);
      await handle.close();

      const { record, value } = await backupJob(repo, root, app(root));
      expect(record.status).toBe('succeeded');
      const [result] = value!.snapshots;
      expect(result!.filesRead).toBe(2);
      expect(result!.deltaFiles).toBe(2);
      expect(result!.knownFiles).toBe(2);
      expect(result!.deltaBytes).toBe(18 * MiB);
      expect(result!.sentWhole).toBeUndefined();
      // Hashes and one changed block (64 KiB), not the 18 MiB of the two files; no proof blocks (the device's own copies).
      expect(result!.bytesTransferred).toBeLessThan(256 * 1024);
      expect(await restored(repo, result!.snapshotId)).toEqual(await sums(path.join(root, 'opt/myrvm')));
      expect(await idsOf(repo, result!.snapshotId, 'archive/detector-v1.onnx')).toEqual(await idsOf(repo, firstId, 'models/detector.onnx'));
      // The copy is stored exactly as a whole backup of it would be.
      const whole = await backupJob(repo, root, [{ ...app(root)[0]!, name: 'whole' }]);
      expect(await idsOf(repo, result!.snapshotId, 'releases/2026-12-06/ocr.onnx')).toEqual(await idsOf(repo, whole.value!.snapshots[0]!.snapshotId, 'releases/2026-12-06/ocr.onnx'));
    });

    it("a device new to the fleet sends another device's models as their hashes and two blocks; a model of the same size but other bytes crosses whole", async () => {
      const [a, b] = [tempDir(), tempDir()];
      const fileA = await models(a, { 'detector.onnx': 12 * MiB, 'ocr.onnx': 6 * MiB });
      await models(b, { 'ocr.onnx': 6 * MiB }); // same size as rvm-017's, other bytes
      await copyFile(fileA['detector.onnx']!, path.join(b, 'opt/myrvm/models/detector.onnx'));
      const { repo } = await newRepo();
      const first = await backupJob(repo, a, app(a), undefined, { name: 'rvm-017' });
      expect(first.record.status).toBe('succeeded');

      const { record, value } = await backupJob(repo, b, app(b), undefined, { name: 'rvm-018' });
      expect(record.status).toBe('succeeded');
      const [result] = value!.snapshots;
      expect(result!.deltaFiles).toBe(1);
      expect(result!.knownFiles).toBe(1);
      expect(result!.deltaBytes).toBe(12 * MiB);
      // Its own OCR model crossed whole, as a new file always did: nothing to report.
      expect(result!.sentWhole).toBeUndefined();
      // 6 MiB for its own model, the labels, hashes, and two 64 KiB blocks of the detector as proof.
      expect(result!.bytesTransferred).toBeGreaterThan(6 * MiB + 128 * 1024);
      expect(result!.bytesTransferred).toBeLessThan(6 * MiB + 512 * 1024);
      expect(await restored(repo, result!.snapshotId)).toEqual(await sums(path.join(b, 'opt/myrvm')));
      expect(await idsOf(repo, result!.snapshotId, 'models/detector.onnx')).toEqual(await idsOf(repo, first.value!.snapshots[0]!.snapshotId, 'models/detector.onnx'));
      expect(await idsOf(repo, result!.snapshotId, 'models/ocr.onnx')).not.toEqual(await idsOf(repo, first.value!.snapshots[0]!.snapshotId, 'models/ocr.onnx'));
    });

    it("a device that sends another device's block hashes for a file it does not hold gets its own bytes stored, not the other's", async () => {
      const [a, b] = [tempDir(), tempDir()];
      const fileA = await models(a, { 'secret.bin': 8 * MiB });
      await models(b, { 'secret.bin': 8 * MiB }); // same size, other bytes
      const { repo } = await newRepo();
      const first = await backupJob(repo, a, app(a), undefined, { name: 'rvm-017' });
      // rvm-018 answers the hash command with rvm-017's hashes (it learnt them somehow) and reads its own file otherwise.
      const local = new LocalRunner();
      let lied = 0;
      const liar: CommandRunner = {
        target: local.target,
        exec: (command, signal) => {
          const text = commandText(command);
          if (!/ hash \d+$/.test(text)) return local.exec(command, signal);
          lied++;
          return local.exec(raw(`cat >/dev/null; printf '%s\\0' '${fileA['secret.bin']!}' | { ${text}; }`), signal);
        },
        run: (command, options) => runToString(liar, command, options),
      };
      const { record, value } = await backupJob(repo, b, app(b), undefined, { name: 'rvm-018', runner: liar });
      expect(record.status).toBe('succeeded');
      expect(lied).toBe(1);
      const [result] = value!.snapshots;
      expect(result!.deltaFiles).toBeUndefined();
      expect(await restored(repo, result!.snapshotId)).toEqual(await sums(path.join(b, 'opt/myrvm')));
      expect(await idsOf(repo, result!.snapshotId, 'models/secret.bin')).not.toEqual(await idsOf(repo, first.value!.snapshots[0]!.snapshotId, 'models/secret.bin'));
    });

    it("reads each folder of another device's snapshots once per console: a later snapshot costs only its changed folders", async () => {
      const a = tempDir();
      await models(a, { 'detector.onnx': 5 * MiB });
      await mkdir(path.join(a, 'opt/myrvm/data/deep/er'), { recursive: true });
      await writeFile(path.join(a, 'opt/myrvm/data/deep/er/notes.txt'), 'v1\n');
      const { repo } = await newRepo();
      await backupJob(repo, a, app(a), undefined, { name: 'rvm-017' });
      const loads: string[] = [];
      const trees = treeLoader(repo);
      const load = (id: string) => (loads.push(id), trees(id));
      const lookup = async () => knownLargeFiles(load, repo.config.id, await listSnapshots(repo), 'rvm-018', 'app', Promise.resolve(new Map<string, never>()));
      const first = await lookup();
      expect([...first.keys()]).toEqual([5 * MiB]);
      expect(first.get(5 * MiB)!.map((k) => [k.node.name, k.foreign])).toEqual([['detector.onnx', true]]);
      const walked = loads.length;
      expect(walked).toBeGreaterThan(5); // the folders from / down to opt/myrvm/data/deep/er
      await lookup();
      expect(loads.length).toBe(walked);
      // One file changed deep down: its folder and those above it are new trees, the models folder is not.
      await writeFile(path.join(a, 'opt/myrvm/data/deep/er/notes.txt'), 'v2\n');
      await backupJob(repo, a, app(a), undefined, { name: 'rvm-017' });
      loads.length = 0;
      expect([...(await lookup()).keys()]).toEqual([5 * MiB]);
      expect(loads.length).toBeGreaterThan(0);
      expect(loads.length).toBeLessThan(walked);
    });

    it("a damaged folder in another device's snapshot is no reason to fail a backup: the model crosses whole", async () => {
      const [a, b] = [tempDir(), tempDir()];
      const fileA = await models(a, { 'detector.onnx': 6 * MiB });
      await mkdir(path.join(b, 'opt/myrvm/models'), { recursive: true });
      await copyFile(fileA['detector.onnx']!, path.join(b, 'opt/myrvm/models/detector.onnx'));
      const { dir, repo } = await newRepo();
      const first = await backupJob(repo, a, app(a), undefined, { name: 'rvm-017' });
      let modelsTree: string | undefined;
      for await (const { path: p, node } of walkTree(repo, (await findSnapshot(repo, first.value!.snapshots[0]!.snapshotId)).tree)) if (p === 'opt/myrvm/models') modelsTree = node.subtree;
      const victim = repo.index.get(modelsTree!)!;
      const { flipByte } = await import('../repository/testing/fixtures');
      const { NAMES } = await import('../repository/backend/backend');
      await flipByte(path.join(dir, NAMES.pack(victim.pack)), victim.offset + 5);
      // Opened afresh, as the next console start would: nothing of the first run's trees in memory.
      const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);

      const { record, value } = await backupJob(reopened, b, app(b), undefined, { name: 'rvm-018' });
      expect(record.error).toBeNull();
      const [result] = value!.snapshots;
      expect(result!.deltaFiles).toBeUndefined();
      expect(result!.bytesTransferred).toBeGreaterThanOrEqual(6 * MiB);
      expect(await restored(reopened, result!.snapshotId)).toEqual(await sums(path.join(b, 'opt/myrvm')));
    });

    it("a model retrained at the same size, which another device sent already, crosses as the blocks that differ from that device's copy", async () => {
      const [a, b] = [tempDir(), tempDir()];
      await models(b, { 'detector.onnx': 12 * MiB }); // v1
      const { repo } = await newRepo();
      await backupJob(repo, b, app(b), undefined, { name: 'rvm-018' });
      const fileA = await models(a, { 'detector.onnx': 12 * MiB }); // v2, every block new
      const first = await backupJob(repo, a, app(a), undefined, { name: 'rvm-017' });
      await copyFile(fileA['detector.onnx']!, path.join(b, 'opt/myrvm/models/detector.onnx'));

      const { record, value } = await backupJob(repo, b, app(b), undefined, { name: 'rvm-018' });
      expect(record.status).toBe('succeeded');
      const [result] = value!.snapshots;
      expect(result!.deltaFiles).toBe(1);
      expect(result!.knownFiles).toBe(1);
      expect(result!.sentWhole).toBeUndefined();
      expect(result!.bytesTransferred).toBeLessThan(512 * 1024);
      expect(await restored(repo, result!.snapshotId)).toEqual(await sums(path.join(b, 'opt/myrvm')));
      expect(await idsOf(repo, result!.snapshotId, 'models/detector.onnx')).toEqual(await idsOf(repo, first.value!.snapshots[0]!.snapshotId, 'models/detector.onnx'));
    });
  });
});
