/**
 * A copy in a child process SIGKILLed at random moments: after each kill the destination checks
 * clean (at worst packs no index names), and the next copy completes, reusing the packs the killed
 * ones stored and skipping the snapshots they finished, then restores byte-exact.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { LocalBackend } from '../backend/local-backend';
import { NAMES } from '../backend/backend';
import { check } from '../checker/checker';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { listSnapshots } from '../snapshot/snapshot';
import { describeTree, FAST, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { copyBetween } from './copy';

const CHILD = fileURLToPath(new URL('../testing/crash-child.ts', import.meta.url));

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

async function sourceRepository(): Promise<{ dir: string; repo: Repository; sources: string[]; total: number }> {
  const { dir, repo } = await newRepo();
  const sources: string[] = [];
  let total = 0;
  for (let s = 0; s < 4; s++) {
    const src = await tempDir('jv-src-');
    await mkdir(join(src, 'd'));
    for (let f = 0; f < 16; f++) {
      const size = f % 4 === 0 ? 1_500_000 : 40_000;
      await writeFile(join(src, 'd', `f${f}`), randomBytes(size));
      total += size;
    }
    await backup(repo, new LocalSource([src]), { device: `jetson-${s}` });
    sources.push(src);
  }
  return { dir, repo, sources, total };
}

const stored = async (dir: string): Promise<number> => (await new LocalBackend(dir).list(NAMES.data)).reduce((n, o) => n + o.size, 0);

describe('an interrupted copy', () => {
  for (const shared of [true, false]) {
    it(`killed at random points (${shared ? 'shared ids' : 're-chunk'}) resumes and completes`, { timeout: 180_000 }, async () => {
      const { dir: srcDir, repo: source, sources, total } = await sourceRepository();
      const dstDir = join(await tempDir('jv-copy-'), 'repo');
      await mkdir(dstDir);
      await Repository.init(new LocalBackend(dstDir), PASSWORD, { ...FAST, ...(shared ? { shareIdsWith: source } : {}) });
      const outcomes: string[] = [];
      for (let trial = 0; trial < 4; trial++) {
        // The first kill comes as soon as blobs are being stored, so it always lands mid-copy.
        outcomes.push(await runAndKill(['copy', srcDir, dstDir], trial === 0 ? 0 : Math.floor(Math.random() * 300)));
        const dst = await Repository.open(new LocalBackend(dstDir), PASSWORD);
        expect((await check(dst)).errors, `trial ${trial} (${outcomes.at(-1)})`).toEqual([]);
        if (outcomes.at(-1) === 'finished') break;
      }
      expect(outcomes[0]).toBe('killed');
      const before = await stored(dstDir);
      const copiedBefore = (await listSnapshots(await Repository.open(new LocalBackend(dstDir), PASSWORD))).length;
      expect(before).toBeGreaterThan(0); // the kills landed after packs were stored

      const dst = await Repository.open(new LocalBackend(dstDir), PASSWORD);
      const result = await copyBetween(source, dst);
      expect(result.ok).toBe(true);
      expect(result.skipped).toBe(copiedBefore);
      expect(result.copied.length + copiedBefore).toBe(4);
      // What the killed runs stored is reused: this run stores at most the rest (plus per-blob overhead).
      expect(result.bytesUploaded).toBeLessThan(total * 1.02 - before * 0.9 + 100_000);
      expect((await check(dst, { readData: true })).errors).toEqual([]);
      const copies = await listSnapshots(dst);
      expect(copies).toHaveLength(4);
      for (const copy of copies) {
        const src = sources[Number(copy.device.split('-')[1])]!;
        const target = await tempDir('jv-restore-');
        await restore(dst, copy, target, { workers: 0 });
        expect(await describeTree(join(target, src))).toEqual(await describeTree(src));
      }
    });
  }
});
