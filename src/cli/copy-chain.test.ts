/**
 * The 3-2-1 chain on real servers, through the CLI: a local repository copied to S3 (a throwaway
 * Ceph radosgw) made with --copy-chunker-params-from, then from S3 to a repository on an OpenSSH
 * server over SFTP, and a byte-exact restore from the last copy; `check --read-data` clean at each
 * hop, a second run of the chain storing nothing.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useS3Store, useSftpServer } from '../main/repository/testing/servers';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const { why: noS3, store } = useS3Store();
const { why: noSftp, server } = useSftpServer();
const why = noS3 ?? noSftp;
if (why) console.log(`copy chain tests skipped: ${why}`);

describe.skipIf(why)('copy local → S3 → SFTP', () => {
  it('restores byte-exact from the last copy, and a second run stores nothing', { timeout: 240_000 }, async () => {
    const local = path.join(tempDir(), 'laptop');
    const s3 = `s3:${store.endpoint}/jv-chain-${randomBytes(3).toString('hex')}/offsite`;
    const sftp = server.location(`chain-${randomBytes(3).toString('hex')}`);
    const env = {
      JETVAULT_HOME: tempDir(),
      AWS_ACCESS_KEY_ID: store.accessKeyId,
      AWS_SECRET_ACCESS_KEY: store.secretAccessKey,
      AWS_REGION: store.region,
      JETVAULT_SFTP_HOST_KEY: server.hostKeyFingerprint,
      JETVAULT_SFTP_IDENTITY: server.identityFile,
    };
    const passwords = { [local]: 'laptop password', [s3]: 'bucket password', [sftp]: 'server password' };
    /** `jetvault` with REPO's password, and TO's (or FROM's) for the second repository. */
    const as = (repo: string, other?: string) => cliRunner({ ...env, JETVAULT_PASSWORD: passwords[repo], ...(other ? { JETVAULT_TO_PASSWORD: passwords[other], JETVAULT_FROM_PASSWORD: passwords[other] } : {}) });

    const src = tempDir();
    mkdirSync(path.join(src, 'etc'));
    writeFileSync(path.join(src, 'etc', 'app.yaml'), 'fps: 30\n');
    writeFileSync(path.join(src, 'model.onnx'), randomBytes(3 * 1024 * 1024 + 5));
    writeFileSync(path.join(src, 'labels.txt'), Array.from({ length: 30_000 }, (_, i) => `label ${i % 101}`).join('\n'));

    expect((await as(local)('init', '-r', local)).code).toBe(0);
    expect((await as(local)('backup', '-r', local, src, '--device', 'jetson-5')).code).toBe(0);
    expect((await as(s3, local)('init', '-r', s3, '--copy-chunker-params-from', local)).code).toBe(0);
    expect((await as(sftp, s3)('init', '-r', sftp, '--copy-chunker-params-from', s3)).code).toBe(0);

    const hop1 = await as(local, s3)('copy', '-r', local, '--to', s3, '--json');
    expect(hop1.code).toBe(0);
    expect(JSON.parse(hop1.out)).toMatchObject({ mode: 'same-ids', ok: true, copied: [{ device: 'jetson-5' }] });
    const hop2 = await as(s3, sftp)('copy', '-r', s3, '--to', sftp, '--json');
    expect(hop2.code).toBe(0);
    expect(JSON.parse(hop2.out)).toMatchObject({ mode: 'same-ids', ok: true, copied: [{ device: 'jetson-5' }] });

    const target = tempDir();
    expect((await as(sftp)('restore', '-r', sftp, 'latest', '--target', target)).code).toBe(0);
    for (const file of ['etc/app.yaml', 'model.onnx', 'labels.txt']) expect(readFileSync(path.join(target, src, file)).equals(readFileSync(path.join(src, file)))).toBe(true);
    const [original] = JSON.parse((await as(local)('snapshots', '-r', local, '--json')).out) as { id: string }[];
    const [last] = JSON.parse((await as(sftp)('snapshots', '-r', sftp, '--json')).out) as { copiedFrom: string }[];
    expect(last!.copiedFrom).toBe(original!.id);
    for (const repo of [s3, sftp]) expect((await as(repo)('check', '-r', repo, '--read-data')).code).toBe(0);

    // The chain again: nothing new anywhere.
    expect(JSON.parse((await as(local, s3)('copy', '-r', local, '--to', s3, '--json')).out)).toMatchObject({ copied: [], skipped: 1, bytesUploaded: 0 });
    expect(JSON.parse((await as(s3, sftp)('copy', '-r', s3, '--to', sftp, '--json')).out)).toMatchObject({ copied: [], skipped: 1, bytesUploaded: 0 });
    // And straight from the laptop to the server, as a real process (it must exit: the SFTP connection
    // is closed when done): the snapshot is already there (same original).
    // (Not spawnSync: the server's link proxy runs in this process and must keep forwarding.)
    const direct = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['bin/jetvault.js', 'copy', '-r', local, '--to', sftp, '--json'],
        { cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, ...env, JETVAULT_PASSWORD: passwords[local], JETVAULT_TO_PASSWORD: passwords[sftp] }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error ? (child.exitCode ?? -1) : 0, stdout, stderr }),
      );
    });
    expect(direct.code, `${direct.stderr}\n${direct.stdout}`).toBe(0);
    expect(JSON.parse(direct.stdout)).toMatchObject({ copied: [], skipped: 1 });
  });
});
