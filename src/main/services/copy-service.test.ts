/**
 * The `copy` job: the console repository copied into another real local repository through the
 * services, with job progress (phases, totals, snapshots), the result recorded in the history,
 * a wrong destination password refused before any job starts, and cancellation leaving the
 * destination consistent.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CopyRequestSchema } from '../../shared/schemas/copy';
import type { JobProgress } from '../../shared/schemas/jobs';
import { backup } from '../repository/archiver/archiver';
import { LocalBackend } from '../repository/backend/local-backend';
import { check } from '../repository/checker/checker';
import { RepositoryLock } from '../repository/lock/lock';
import { Repository } from '../repository/repo/repository';
import { NAMES } from '../repository/backend/backend';
import { listSnapshots, walkTree } from '../repository/snapshot/snapshot';
import { FAST, flipByte, PASSWORD } from '../repository/testing/fixtures';
import { LocalSource } from '../repository/walker/local-walker';
import { tempDir } from '../testing/temp-dir';
import type { Services } from './index';
import { cliServices } from '../testing/test-console';

const OFFSITE = 'offsite repository password';
let services: Services | null = null;
afterEach(() => {
  services?.dispose();
  services = null;
});

async function setup(): Promise<{ services: Services; to: string }> {
  services = cliServices(tempDir(), { JETVAULT_PASSWORD: PASSWORD });
  await services.repository.init(PASSWORD, FAST);
  for (const device of ['jetson-1', 'jetson-2']) {
    const root = tempDir();
    await mkdir(path.join(root, 'data'));
    await writeFile(path.join(root, 'data', 'model.bin'), randomBytes(1_500_000));
    await services.repository.write((repo, lease) => backup(repo, new LocalSource([root]), { device, lease, tags: [`device:${device}`] }));
  }
  const to = path.join(tempDir(), 'offsite');
  await mkdir(to);
  await Repository.init(new LocalBackend(to), OFFSITE, { ...FAST, shareIdsWith: await services.repository.open() });
  return { services, to };
}

describe('CopyService', () => {
  it("a device's damaged snapshot fails the job naming it, and the other device's is copied", { timeout: 60_000 }, async () => {
    const { services, to } = await setup();
    const repo = await services.repository.open();
    const first = (await listSnapshots(repo)).find((s) => s.device === 'jetson-1')!;
    let model = '';
    for await (const { path: name, node } of walkTree(repo, first.tree)) if (name.endsWith('model.bin')) model = node.content![0]!;
    const where = repo.index.get(model)!;
    await flipByte(path.join(services.repository.location(), NAMES.pack(where.pack)), where.offset + 10);
    const { record } = await (await services.copies.copyToRepository({ to, password: OFFSITE })).done;
    expect(record.status).toBe('failed');
    expect(record.error?.message).toMatch(/1 snapshot copied; 1 not copied because their data in this repository is damaged: jetson-1 local of .*authentication failed.*`jetvault check --read-data`/);
    const offsite = await Repository.open(new LocalBackend(to), OFFSITE);
    expect((await listSnapshots(offsite)).map((s) => s.device)).toEqual(['jetson-2']);
  });

  it('runs a copy job with progress and records its result', { timeout: 60_000 }, async () => {
    const { services, to } = await setup();
    const progress: JobProgress[] = [];
    services.bus.subscribe((event, payload) => {
      if (event === 'jobs:progress') progress.push(payload as JobProgress);
    });
    const job = await services.copies.copyToRepository({ to, password: OFFSITE, device: 'jetson-2' });
    const { record, value } = await job.done;
    expect(record).toMatchObject({ kind: 'copy', status: 'succeeded', phase: 'verify', itemsDone: 1 });
    expect(value!.copied.map((c) => c.device)).toEqual(['jetson-2']);
    expect(record.bytesDone).toBeGreaterThanOrEqual(1_500_000);
    expect(progress.map((p) => p.phase)).toEqual(expect.arrayContaining(['prepare', 'copy', 'verify']));
    expect(progress.some((p) => p.itemsTotal === 1 && p.bytesTotal !== null && p.bytesTotal >= 1_500_000)).toBe(true);

    const again = await (await services.copies.copyToRepository({ to, password: OFFSITE })).done;
    expect(again.value).toMatchObject({ skipped: 1 });
    expect(again.value!.copied.map((c) => c.device)).toEqual(['jetson-1']);
    const offsite = await Repository.open(new LocalBackend(to), OFFSITE);
    expect(await listSnapshots(offsite)).toHaveLength(2);
    expect((await check(offsite, { readData: true })).errors).toEqual([]);
  });

  it('refuses a wrong destination password or the repository itself before starting a job', { timeout: 60_000 }, async () => {
    const { services, to } = await setup();
    await expect(services.copies.copyToRepository({ to, password: 'not the password' })).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(services.copies.copyToRepository({ to: services.repository.location(), password: PASSWORD })).rejects.toThrow(/console repository itself/);
    await expect(services.copies.copyToRepository({ to: path.join(tempDir(), 'none'), password: OFFSITE })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(services.jobs.list(10).filter((j) => j.kind === 'copy')).toEqual([]);
    // A destination being pruned elsewhere (exclusive lease): the job fails saying which repository.
    const pruning = await RepositoryLock.acquire(await Repository.open(new LocalBackend(to), OFFSITE), true);
    const { record } = await (await services.copies.copyToRepository({ to, password: OFFSITE })).done;
    await pruning.release();
    expect(record).toMatchObject({ status: 'failed', error: { code: 'CONFLICT' } });
    expect(record.error!.message).toMatch(/^the destination .* is locked exclusively/);
    expect(CopyRequestSchema.safeParse({ to, password: OFFSITE, since: 'last week' }).success).toBe(false);
    expect(CopyRequestSchema.safeParse({ to, password: OFFSITE, since: '2026-11-01T00:00:00Z', extra: 1 }).success).toBe(false);
  });

  it('a cancelled copy leaves the destination consistent, and the next one completes', { timeout: 60_000 }, async () => {
    const { services, to } = await setup();
    const job = await services.copies.copyToRepository({ to, password: OFFSITE });
    services.bus.subscribe((event, payload) => {
      const p = payload as JobProgress;
      if (event === 'jobs:progress' && p.jobId === job.id && p.phase === 'copy') services.jobs.cancel(job.id);
    });
    const { record } = await job.done;
    expect(record.status).toBe('cancelled');
    const offsite = await Repository.open(new LocalBackend(to), OFFSITE);
    expect((await check(offsite)).errors).toEqual([]);
    const next = await (await services.copies.copyToRepository({ to, password: OFFSITE })).done;
    expect(next.record.status).toBe('succeeded');
    expect(await listSnapshots(offsite)).toHaveLength(2);
  });
});
