/**
 * Copies through a real S3 store (a throwaway single-node Ceph radosgw on 127.0.0.1): local → S3
 * with shared ids and into an independent S3 repository (re-chunked), restores from the copies
 * byte-exact, `check --read-data` clean in the bucket, a second copy storing nothing, and S3 →
 * local back again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { S3Backend } from '../backend/s3-backend';
import { check } from '../checker/checker';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { listSnapshots } from '../snapshot/snapshot';
import { describeTree, FAST, makeAwkwardTree, newRepo, tempDir } from '../testing/fixtures';
import { useS3Store } from '../testing/servers';
import { LocalSource } from '../walker/local-walker';
import { copyBetween } from './copy';

const { why, store } = useS3Store();
if (why) console.log(`S3 copy tests skipped: ${why}`);

async function s3Repository(options: Parameters<typeof Repository.init>[2]): Promise<Repository> {
  const backend = new S3Backend(`s3:${store.endpoint}/jv-copy-${randomBytes(4).toString('hex')}/offsite`, { credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey } });
  await backend.ensureBucket();
  return Repository.init(backend, 'offsite password', options);
}

describe.skipIf(why)('copy to and from S3 (radosgw)', () => {
  it('local → S3 with shared ids and re-chunked, restore from S3, and back to a local repository', { timeout: 240_000 }, async () => {
    const src = await tempDir('jv-src-');
    await makeAwkwardTree(src);
    await mkdir(join(src, 'models'));
    for (let i = 0; i < 4; i++) await writeFile(join(src, 'models', `m${i}.bin`), randomBytes(i === 0 ? 3_000_000 : 200_000));
    const { repo: local } = await newRepo();
    await backup(local, new LocalSource([src]), { device: 'jetson-3', tags: ['device:jetson-3', 'source:files'] });
    const expected = await describeTree(src);

    for (const shared of [true, false]) {
      const s3 = await s3Repository({ ...FAST, ...(shared ? { shareIdsWith: local } : {}) });
      const result = await copyBetween(local, s3);
      expect(result).toMatchObject({ mode: shared ? 'same-ids' : 're-chunk', ok: true });
      expect(result.copied).toHaveLength(1);
      expect(result.verification!.errors).toEqual([]);
      const [copy] = await listSnapshots(s3);
      const target = await tempDir('jv-restore-');
      await restore(s3, copy!, target);
      expect(await describeTree(join(target, src.replace(/^\//, '')))).toEqual(expected);
      expect((await check(s3, { readData: true })).errors).toEqual([]);
      expect(await copyBetween(local, s3)).toMatchObject({ copied: [], skipped: 1, bytesUploaded: 0 });

      // And back: S3 → a new local repository, which restores the same.
      const { repo: back } = await newRepo({ ...FAST, ...(shared ? { shareIdsWith: s3 } : {}) });
      // (Copying back into the original finds the snapshot already there.)
      expect(await copyBetween(s3, local)).toMatchObject({ copied: [], skipped: 1 });
      expect((await copyBetween(s3, back)).copied).toHaveLength(1);
      const [returned] = await listSnapshots(back);
      expect(returned!.copiedFrom).toBe((await listSnapshots(local))[0]!.id);
      const again = await tempDir('jv-restore-');
      await restore(back, returned!, again);
      expect(await describeTree(join(again, src.replace(/^\//, '')))).toEqual(expected);
    }
  });
});
