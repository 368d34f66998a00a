/**
 * The encrypted metadata cache in front of a real S3 store (a throwaway Ceph radosgw): a warm open
 * and listing download no index or snapshot object, a tampered or swapped copy is rejected and
 * fetched again, objects deleted from the store drop out of the cache.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { Repository } from '../repo/repository';
import { listSnapshots, saveSnapshot } from '../snapshot/snapshot';
import { FAST, makeAwkwardTree, PASSWORD, tempDir } from '../testing/fixtures';
import { useS3Store } from '../testing/servers';
import { LocalSource } from '../walker/local-walker';
import type { Backend, ObjectInfo } from './backend';
import type { MetadataCache } from './metadata-cache';
import { S3Backend } from './s3-backend';

const { why, store } = useS3Store();
if (why) console.log(`metadata cache tests skipped: ${why}`);

/** A real backend that counts the requests made through it. */
class Counted implements Backend {
  readonly location: string;
  gets: string[] = [];
  lists = 0;
  constructor(readonly inner: Backend) {
    this.location = inner.location;
  }
  put(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    return this.inner.put(name, data);
  }
  get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    this.gets.push(name);
    return this.inner.get(name, range);
  }
  stat(name: string): Promise<number | null> {
    return this.inner.stat(name);
  }
  list(prefix: string): Promise<ObjectInfo[]> {
    this.lists++;
    return this.inner.list(prefix);
  }
  delete(name: string): Promise<void> {
    return this.inner.delete(name);
  }
  exists(): Promise<boolean> {
    return this.inner.exists();
  }
  metadataGets(): string[] {
    return this.gets.filter((n) => n.startsWith('index/') || n.startsWith('snapshots/'));
  }
}

describe.skipIf(why)('the metadata cache of a repository on S3', () => {
  it('lists warm without downloading metadata, rejects tampered copies, forgets deleted objects', async () => {
    const location = `s3:${store.endpoint}/jv-cache-${randomBytes(3).toString('hex')}/repo`;
    const s3 = () => new S3Backend(location, { credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey } });
    const plain = s3();
    await plain.ensureBucket();
    const repo = await Repository.init(plain, PASSWORD, FAST);
    const src = await tempDir();
    await makeAwkwardTree(src);
    const made = await backup(repo, new LocalSource([src]));
    for (let i = 0; i < 24; i++) await saveSnapshot(repo, { ...made.snapshot, time: new Date(Date.UTC(2026, 0, 1, i)).toISOString(), tags: [`n${i}`] });
    const cacheDir = await tempDir();

    const cold = new Counted(s3());
    const first = await Repository.open(cold, PASSWORD, { cacheDir });
    const listedCold = await listSnapshots(first);
    expect(listedCold).toHaveLength(25);
    expect(cold.metadataGets().filter((n) => n.startsWith('snapshots/'))).toHaveLength(25);
    expect(cold.metadataGets().filter((n) => n.startsWith('index/')).length).toBeGreaterThan(0);

    const warm = new Counted(s3());
    const second = await Repository.open(warm, PASSWORD, { cacheDir });
    const listedWarm = await listSnapshots(second);
    expect(listedWarm).toEqual(listedCold);
    expect(warm.metadataGets()).toEqual([]); // contents from the cache ...
    expect(warm.lists).toBeGreaterThanOrEqual(2); // ... what exists from the store's listings (index/, snapshots/)
    expect(second.index.packs.size).toBe(first.index.packs.size);

    // Copies are sealed: no snapshot JSON in them, and a changed byte or a copy under another name is refused.
    const folder = join(cacheDir, repo.config.id, 'snapshots');
    const [a, b, c] = readdirSync(folder).sort();
    const sealed = readFileSync(join(folder, a!));
    expect(sealed.includes(Buffer.from('"paths"'))).toBe(false);
    sealed[sealed.length - 20]! ^= 0x01;
    writeFileSync(join(folder, a!), sealed); // a changed byte
    writeFileSync(join(folder, b!), readFileSync(join(folder, c!))); // a valid copy under another name
    writeFileSync(join(folder, 'f'.repeat(64)), readFileSync(join(folder, c!))); // a name the store does not list
    const third = new Counted(s3());
    const reopened = await Repository.open(third, PASSWORD, { cacheDir });
    expect(await listSnapshots(reopened)).toEqual(listedCold);
    expect(third.metadataGets().sort()).toEqual([`snapshots/${a!}`, `snapshots/${b!}`]);
    const cache = reopened.backend as MetadataCache;
    expect(cache.counters.rejected).toBe(2);
    expect(cache.counters.dropped).toBe(1);
    expect(readdirSync(folder)).toHaveLength(25);

    // A snapshot deleted by another console drops out of the listing and of the cache.
    await plain.delete(`snapshots/${a!}`);
    const after = await listSnapshots(reopened);
    expect(after).toHaveLength(24);
    expect(after.some((s) => s.id === a)).toBe(false);
    expect(readdirSync(folder)).not.toContain(a);
    plain.close();
  }, 180_000);
});
