/**
 * Copy benchmark (not a test): the repository dataset (bench/repository-dataset.ts) backed up
 * three times into a local source repository: device A twice (the second run read in full, nothing
 * changed) and device B holding the same data. Then, into each destination — local and S3 (a
 * throwaway radosgw), sharing chunker params or independent:
 *   1. full copy of device A's first snapshot into the empty destination (the full upload);
 *   2. the same copy again: an unchanged repository (target: ≤ 5% of the full upload's time);
 *   3. copy of device A's next snapshot (same data): the next run of a device;
 *   4. copy of device B's snapshot, whose data the destination already holds from device A.
 * Prints a table. Wall times in this process, `sync` before each.
 *
 *   npx tsx bench/copy.ts            (BENCH_SCALE=1 for ~1 GiB, default 0.25; BENCH_DIR to relocate;
 *                                     BENCH_S3=0 to skip S3)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { s3Missing, startS3Store } from '../fleet/s3';
import type { S3Store } from '../fleet/s3';
import { backup } from '../src/main/repository/archiver/archiver';
import { LocalBackend } from '../src/main/repository/backend/local-backend';
import { S3Backend } from '../src/main/repository/backend/s3-backend';
import type { Backend } from '../src/main/repository/backend/backend';
import { copyBetween } from '../src/main/repository/copy/copy';
import type { CopyResult } from '../src/main/repository/copy/copy';
import { Repository } from '../src/main/repository/repo/repository';
import { LocalSource } from '../src/main/repository/walker/local-walker';
import { generate, spec } from './repository-dataset';

const scale = Number(process.env.BENCH_SCALE ?? 0.25);
const base = resolve(process.env.BENCH_DIR ?? '/tmp/jetvault-bench-copy');
const data = join(base, 'data');
const PASSWORD = 'bench-password';
const MiB = 1024 * 1024;

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  execFileSync('sync');
  const started = process.hrtime.bigint();
  const value = await work();
  return { value, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

function localDir(name: string): string {
  const dir = join(base, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface Row {
  destination: string;
  mode: string;
  full: { seconds: number; value: CopyResult };
  unchanged: { seconds: number; value: CopyResult };
  next: { seconds: number; value: CopyResult };
  dedup: { seconds: number; value: CopyResult };
}

async function main(): Promise<void> {
  const s = spec(scale);
  if (!existsSync(join(base, 'data.ready'))) {
    rmSync(data, { recursive: true, force: true });
    await generate(data, s);
    writeFileSync(join(base, 'data.ready'), '');
  }
  const source = await Repository.init(new LocalBackend(localDir('source')), PASSWORD);
  const first = await timed(() => backup(source, new LocalSource([data]), { device: 'device-a', tags: ['source:first'] }));
  await backup(source, new LocalSource([data]), { device: 'device-a', tags: ['source:next'] });
  await backup(source, new LocalSource([data]), { device: 'device-b' });
  const bytes = first.value.snapshot.summary.bytes;
  console.log(`dataset: ${(bytes / MiB).toFixed(0)} MiB in ${first.value.snapshot.summary.files} files; backup into the local source repository ${first.seconds.toFixed(2)} s\n`);

  let store: S3Store | null = null;
  const why = process.env.BENCH_S3 === '0' ? 'BENCH_S3=0' : s3Missing();
  if (why) console.log(`S3 rows skipped: ${why}\n`);
  else store = await startS3Store();
  const destinations: { name: string; backend: () => Promise<Backend> }[] = [{ name: 'local', backend: () => Promise.resolve(new LocalBackend(localDir(`dest-${Date.now()}`))) }];
  if (store) {
    const s3 = store;
    destinations.push({
      name: 's3 (radosgw)',
      backend: async () => {
        const b = new S3Backend(`s3:${s3.endpoint}/jv-bench-${Date.now().toString(36)}/copy`, { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
        await b.ensureBucket();
        return b;
      },
    });
  }

  const rows: Row[] = [];
  try {
    for (const destination of destinations) {
      for (const shared of [true, false]) {
        const repo = await Repository.init(await destination.backend(), 'destination password', shared ? { shareIdsWith: source } : {});
        const full = await timed(() => copyBetween(source, repo, { source: 'first' }));
        const unchanged = await timed(() => copyBetween(source, repo, { source: 'first' }));
        const next = await timed(() => copyBetween(source, repo, { source: 'next' }));
        const dedup = await timed(() => copyBetween(source, repo, { device: 'device-b' }));
        for (const r of [full, unchanged, next, dedup]) if (!r.value.ok) throw new Error(`verification failed: ${r.value.verification?.errors.join('; ')}`);
        rows.push({ destination: destination.name, mode: full.value.mode, full, unchanged, next, dedup });
        console.error(`${destination.name} ${full.value.mode}: done`);
      }
    }
  } finally {
    await store?.stop();
  }

  console.log('| destination  | mode     | full copy s | MiB/s | stored MiB | unchanged re-copy s (% of full) | next run, same data s (%, stored KiB) | other device, same data s (%, stored KiB) |');
  console.log('| ------------ | -------- | ----------- | ----- | ---------- | ------------------------------- | ------------------------------------- | ----------------------------------------- |');
  for (const r of rows) {
    const cell = (x: { seconds: number; value: CopyResult }, digits: number, stored: boolean): string =>
      `${x.seconds.toFixed(digits)} (${((x.seconds / r.full.seconds) * 100).toFixed(1)}%${stored ? `, ${(x.value.bytesUploaded / 1024).toFixed(1)}` : ''})`;
    console.log(
      `| ${r.destination.padEnd(12)} | ${r.mode.padEnd(8)} | ${r.full.seconds.toFixed(2).padStart(11)} | ${(bytes / MiB / r.full.seconds).toFixed(0).padStart(5)} | ${(r.full.value.bytesUploaded / MiB).toFixed(1).padStart(10)} | ` +
        `${cell(r.unchanged, 3, false).padStart(31)} | ${cell(r.next, 2, true).padStart(37)} | ${cell(r.dedup, 2, true).padStart(41)} |`,
    );
  }
  console.log('\nfull copy includes reading back and verifying every pack it wrote; target: unchanged re-copy ≤ 5% of the full copy');
}

await main();
