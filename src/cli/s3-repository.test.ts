/**
 * The restic-style CLI on a repository in a real S3 bucket (a local Ceph radosgw): init creates the
 * bucket, backup, snapshots, restore and check work through `-r s3:…` with credentials from the
 * standard AWS environment variables; wrong credentials fail clearly.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useS3Store } from '../main/repository/testing/servers';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const { why, store } = useS3Store();
if (why) console.log(`S3 CLI tests skipped: ${why}`);

describe.skipIf(why)('jetvault with an S3 repository', () => {
  it('init, backup, snapshots, restore and check through -r s3:…', async () => {
    const repo = `s3:${store.endpoint}/jv-cli-${randomBytes(3).toString('hex')}/depot-north`;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 's3 cli test repository password', AWS_ACCESS_KEY_ID: store.accessKeyId, AWS_SECRET_ACCESS_KEY: store.secretAccessKey, AWS_REGION: store.region };
    const run = cliRunner(env);
    const src = tempDir();
    mkdirSync(path.join(src, 'etc'));
    writeFileSync(path.join(src, 'etc', 'config.yaml'), 'fps: 30\n');
    writeFileSync(path.join(src, 'model.onnx'), randomBytes(3 * 1024 * 1024));

    expect(await run('init', '-r', repo)).toMatchObject({ code: 0 });
    expect((await run('init', '-r', repo)).err).toMatch(/already exists/);
    const backedUp = await run('backup', '-r', repo, src, '--json');
    expect(backedUp.code).toBe(0);
    const listed = JSON.parse((await run('snapshots', '-r', repo, '--json')).out) as { id: string }[];
    expect(listed).toHaveLength(1);
    const target = tempDir();
    expect((await run('restore', '-r', repo, 'latest', '--target', target)).code).toBe(0);
    expect(readFileSync(path.join(target, src, 'model.onnx')).equals(readFileSync(path.join(src, 'model.onnx')))).toBe(true);
    const checked = await run('check', '-r', repo, '--read-data');
    expect(checked.code).toBe(0);

    const denied = await cliRunner({ ...env, AWS_SECRET_ACCESS_KEY: 'wrong' })('snapshots', '-r', repo);
    expect(denied.code).toBe(1); // not 10, "no repository": a script must not go on to `init`
    expect(denied.err).toMatch(/access denied — check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.*HTTP 403/);
  }, 180_000);
});
