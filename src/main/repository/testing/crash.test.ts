/**
 * Crash safety for real: backups and restores in child processes are SIGKILLed at random moments.
 * After each kill the repository must check clean, and the next backup must reuse the packs the
 * killed one had written. A killed restore must never leave a partial file under its real name.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { LocalBackend } from '../backend/local-backend';
import { NAMES } from '../backend/backend';
import { check } from '../checker/checker';
import { listLocks, RepositoryLock } from '../lock/lock';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { findSnapshot, listSnapshots } from '../snapshot/snapshot';
import { LocalSource } from '../walker/local-walker';
import { describeTree, newRepo, PASSWORD, tempDir } from './fixtures';

const CHILD = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
const TRIALS = 6;

/** Runs the child and SIGKILLs it `delayMs` after it reports "running" (or lets it finish). */
function runAndKill(args: string[], delayMs: number): Promise<'killed' | 'finished'> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('running')) setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve('finished');
      else reject(new Error(`child failed (${code}): ${err}`));
    });
  });
}

async function makeData(root: string, dirs = 4): Promise<number> {
  let total = 0;
  for (let d = 0; d < dirs; d++) {
    await mkdir(join(root, `dir${d}`), { recursive: true });
    for (let f = 0; f < 25; f++) {
      const size = f % 5 === 0 ? 1_500_000 : 60_000;
      await writeFile(join(root, `dir${d}`, `file${f}`), randomBytes(size));
      total += size;
    }
  }
  return total;
}

describe('crash safety', () => {
  it('a backup killed at random points leaves a consistent repository whose packs the next backup reuses', { timeout: 120_000 }, async () => {
    const src = await tempDir();
    const total = await makeData(src);
    const { dir } = await newRepo();
    const backend = new LocalBackend(dir);
    let leftovers = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      // The first kill comes as soon as file bytes are read, so at least one lands mid-backup.
      const outcome = await runAndKill(['backup', dir, src], trial === 0 ? 0 : Math.floor(Math.random() * 1200));
      const repo = await Repository.open(backend, PASSWORD);
      const report = await check(repo);
      expect(report.errors, `trial ${trial} (${outcome})`).toEqual([]);
      leftovers += report.warnings.filter((w) => w.includes('not indexed')).length;
      // Dead children's leases are recognised as stale (same host, pid gone).
      expect((await listLocks(repo)).every((l) => l.stale)).toBe(true);
    }
    // The next backup completes (the dead children's locks are stale) and reuses what they stored.
    const repo = await Repository.open(backend, PASSWORD);
    const storedBefore = (await backend.list(NAMES.data)).reduce((n, o) => n + o.size, 0);
    const lock = await RepositoryLock.acquire(repo, true); // even the exclusive lock: every lease left is stale
    await lock.release();
    const result = await backup(repo, new LocalSource([src]));
    expect(result.snapshot.summary.bytesAdded).toBeLessThan(total - storedBefore * 0.9 + 100_000);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    expect(storedBefore + leftovers).toBeGreaterThan(0); // the kills did land mid-backup
    const snapshots = await listSnapshots(repo);
    expect(snapshots.at(-1)!.id).toBe(result.id);
  });

  it('a child running four backups at once, killed at random points, leaves a consistent repository', { timeout: 180_000 }, async () => {
    const sources: string[] = [];
    let total = 0;
    for (let d = 0; d < 4; d++) {
      const src = await tempDir();
      total += await makeData(src, 2);
      sources.push(src);
    }
    const { dir } = await newRepo();
    const backend = new LocalBackend(dir);
    const outcomes: string[] = [];
    for (let trial = 0; trial < 3; trial++) {
      const outcome = await runAndKill(['backup-many', dir, ...sources], trial === 0 ? 0 : Math.floor(Math.random() * 1500));
      outcomes.push(outcome);
      const repo = await Repository.open(backend, PASSWORD);
      const report = await check(repo);
      expect(report.errors, `trial ${trial} (${outcome})`).toEqual([]);
    }
    const repo = await Repository.open(backend, PASSWORD);
    const storedBefore = (await backend.list(NAMES.data)).reduce((n, o) => n + o.size, 0);
    expect(outcomes).toContain('killed');
    const results = await Promise.all(sources.map((src) => backup(repo, new LocalSource([src]))));
    const added = results.reduce((n, r) => n + r.snapshot.summary.bytesAdded, 0);
    // What the killed runs stored is reused (packs and per-blob overhead: under 1% on top of the data).
    expect(added).toBeLessThan(total * 1.01 - storedBefore * 0.9 + 100_000);
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    for (const [i, src] of sources.entries()) {
      const target = await tempDir();
      await restore(repo, await findSnapshot(repo, results[i]!.id), target, { workers: 0 });
      expect(await describeTree(join(target, src))).toEqual(await describeTree(src));
    }
  });

  it('a restore killed at random points never leaves a partial file under its real name', { timeout: 120_000 }, async () => {
    const src = await tempDir();
    await makeData(src);
    const { dir, repo } = await newRepo();
    const { id } = await backup(repo, new LocalSource([src]));
    const expected = await describeTree(src);
    for (let trial = 0; trial < 3; trial++) {
      const target = await tempDir();
      await runAndKill(['restore', dir, id, target], Math.floor(Math.random() * 300));
      const got = await describeTree(join(target, src)).catch(() => ({}));
      for (const [path, entry] of Object.entries(got)) {
        if (path.split('/').at(-1)!.startsWith('.jetvault-restore-')) continue;
        if (entry.type === 'file') expect(entry.content, path).toBe(expected[path]?.content);
      }
      expect(await readFile(join(src, 'dir0/file1'))).toBeTruthy();
    }
  });
});
