/**
 * The S3 backend against a real S3 implementation (a throwaway single-node Ceph radosgw on
 * 127.0.0.1): object semantics, ranges across multipart boundaries, listing past one page, clear
 * errors, and a whole repository living in a bucket — backup, byte-exact restore, check with data.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { check } from '../checker/checker';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { findSnapshot } from '../snapshot/snapshot';
import { describeTree, FAST, makeAwkwardTree, PASSWORD, tempDir } from '../testing/fixtures';
import { useS3Store } from '../testing/servers';
import { LocalSource } from '../walker/local-walker';
import { parseS3Location, S3Backend } from './s3-backend';

const { why, store } = useS3Store();
if (why) console.log(`S3 backend tests skipped: ${why}`);

const credentials = () => ({ accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey });

async function bucket(prefix = ''): Promise<S3Backend> {
  const name = `jv-${randomBytes(4).toString('hex')}`;
  const backend = new S3Backend(`s3:${store.endpoint}/${name}${prefix ? `/${prefix}` : ''}`, { credentials: credentials() });
  await backend.ensureBucket();
  return backend;
}

describe('S3 locations', () => {
  it("prints no SDK notice of Node versions before a command's output", async () => {
    const warnings: string[] = [];
    const listen = (warning: Error) => warnings.push(warning.message);
    process.on('warning', listen);
    try {
      // Nothing listens on port 1: the request fails at once, after the SDK was loaded and its client made.
      await expect(new S3Backend('s3:http://127.0.0.1:1/bucket', { credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 }).exists()).rejects.toThrow(/ECONNREFUSED/);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off('warning', listen);
    }
    expect(warnings.filter((w) => /AWS SDK/.test(w))).toEqual([]);
  });

  it('parse endpoint, bucket and prefix, and refuse anything else', () => {
    expect(parseS3Location('s3:http://127.0.0.1:9000/backups/fleet/north')).toEqual({ endpoint: 'http://127.0.0.1:9000', bucket: 'backups', prefix: 'fleet/north/', pathStyle: true });
    expect(parseS3Location('s3:s3.amazonaws.com/jetvault-backups')).toEqual({ endpoint: null, bucket: 'jetvault-backups', prefix: '', pathStyle: false });
    expect(parseS3Location('s3:minio.depot.example/bk1')).toMatchObject({ endpoint: 'https://minio.depot.example', bucket: 'bk1' });
    expect(() => parseS3Location('s3:http://127.0.0.1:9000')).toThrow(/expected s3:https:\/\/HOST/);
    expect(() => parseS3Location('s3:http://host/Bad_Bucket')).toThrow(/not an S3 location/);
  });
});

describe.skipIf(why)('the S3 backend on a real radosgw', () => {
  it('stores, reads (whole and ranges), lists past one page, stats and deletes objects', async () => {
    const b = await bucket('repo');
    expect(await b.exists()).toBe(false); // bucket without a config object is no repository
    await b.put('keys/one', [Buffer.from('hello '), Buffer.from('world')]);
    expect((await b.get('keys/one')).toString()).toBe('hello world');
    expect((await b.get('keys/one', { offset: 6, length: 5 })).toString()).toBe('world');
    expect(await b.stat('keys/one')).toBe(11);
    expect(await b.stat('keys/none')).toBeNull();
    await expect(b.get('keys/none')).rejects.toMatchObject({ failure: 'not-found' });
    await b.delete('keys/none'); // absent: not an error

    // A pack larger than one part goes up as a multipart upload; ranges across part borders read right.
    const big = randomBytes(40 * 1024 * 1024 + 12345);
    await b.put('data/ab/big', big);
    expect(await b.stat('data/ab/big')).toBe(big.length);
    const at = 16 * 1024 * 1024 - 100;
    expect((await b.get('data/ab/big', { offset: at, length: 300 })).equals(big.subarray(at, at + 300))).toBe(true);
    expect((await b.get('data/ab/big')).equals(big)).toBe(true);

    await Promise.all(Array.from({ length: 1005 }, (_, i) => b.put(`index/${String(i).padStart(5, '0')}`, Buffer.from([i & 0xff]))));
    const listed = await b.list('index/');
    expect(listed).toHaveLength(1005);
    expect(listed[1004]).toEqual({ name: 'index/01004', size: 1 });
    expect((await b.list('keys/')).map((o) => o.name)).toEqual(['keys/one']);
    await b.delete('keys/one');
    expect(await b.stat('keys/one')).toBeNull();
    b.close();
  }, 120_000);

  it('says clearly when the credentials are wrong', async () => {
    const b = await bucket();
    const wrong = new S3Backend(b.location, { credentials: { accessKeyId: store.accessKeyId, secretAccessKey: 'not-the-secret' }, maxAttempts: 1 });
    await expect(wrong.put('config', Buffer.from('x'))).rejects.toThrow(/SignatureDoesNotMatch|AccessDenied|HTTP 403/);
    // The first request a command makes is a HEAD, whose refusal has no body: it must still say why,
    // and not pass for a missing repository (exit 10, "create one with jetvault init").
    await expect(wrong.exists()).rejects.toMatchObject({ failure: 'denied' });
    await expect(wrong.exists()).rejects.toThrow(/access denied — check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    await expect(wrong.ensureBucket()).rejects.toMatchObject({ failure: 'denied' });
    await expect(wrong.put('config', Buffer.from('x'))).rejects.toMatchObject({ failure: 'denied' });
    wrong.close();
    b.close();
  });

  it('holds a whole repository: backup, byte-exact restore, check reading all data', async () => {
    const b = await bucket('fleet/north');
    const repo = await Repository.init(b, PASSWORD, FAST);
    const src = await tempDir();
    await makeAwkwardTree(src);
    const made = await backup(repo, new LocalSource([src]));
    const reopened = await Repository.open(new S3Backend(b.location, { credentials: credentials() }), PASSWORD);
    const out = join(await tempDir(), 'out');
    await restore(reopened, await findSnapshot(reopened, made.id), out);
    expect(await describeTree(join(out, src))).toEqual(await describeTree(src));
    const report = await check(reopened, { readData: true });
    expect(report.errors).toEqual([]);
    expect(report.packsRead).toBeGreaterThan(0);
    await expect(Repository.open(new S3Backend(b.location, { credentials: credentials() }), 'wrong password')).rejects.toMatchObject({ failure: 'wrong-password' });
    b.close();
  }, 120_000);
});
