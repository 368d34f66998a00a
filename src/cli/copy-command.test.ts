/**
 * `jetvault copy` and `jetvault init --copy-chunker-params-from` end to end on real local
 * repositories: shared ids, idempotent re-runs, filters, restore and check from the copy, an
 * independent destination (re-chunked), and the failures a user meets (wrong or missing
 * destination, wrong source password at init, bad --since).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { s3Missing, startS3Store } from '../../fleet/s3';
import { tempDir } from '../main/testing/temp-dir';
import { formatCopyProgress, parseSince } from './commands/repo-copy';
import { cliRunner } from './testing';

const A = 'password of the field laptop repository';
const B = 'password of the offsite repository';

function sources(): { north: string; south: string } {
  const north = tempDir();
  const south = tempDir();
  mkdirSync(path.join(north, 'etc'));
  writeFileSync(path.join(north, 'etc', 'app.yaml'), 'fps: 30\n');
  writeFileSync(path.join(north, 'model.onnx'), randomBytes(2 * 1024 * 1024 + 17));
  writeFileSync(path.join(south, 'calib.bin'), randomBytes(700_000));
  return { north, south };
}

describe('jetvault copy', () => {
  it('copies to a repository sharing chunker params, once, and the copy restores and checks clean', { timeout: 180_000 }, async () => {
    const home = tempDir();
    const repoA = path.join(tempDir(), 'a');
    const repoB = path.join(tempDir(), 'b');
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: A, JETVAULT_TO_PASSWORD: B });
    const { north, south } = sources();
    expect((await run('init', '-r', repoA)).code).toBe(0);
    expect((await run('backup', '-r', repoA, north, '--device', 'jetson-north')).code).toBe(0);
    expect((await run('backup', '-r', repoA, south, '--device', 'jetson-south')).code).toBe(0);

    // A wrong password for the repository to share with: nothing is created.
    const refused = await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: B, JETVAULT_FROM_PASSWORD: 'wrong' })('init', '-r', repoB, '--copy-chunker-params-from', repoA);
    expect(refused.code).toBe(12);
    expect(refused.err).toMatch(/--copy-chunker-params-from .*wrong password/);
    expect(existsSync(path.join(repoB, 'config'))).toBe(false);
    const made = await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: B, JETVAULT_FROM_PASSWORD: A })('init', '-r', repoB, '--copy-chunker-params-from', repoA, '--json');
    expect(made.code).toBe(0);
    expect(JSON.parse(made.out)).toHaveProperty('chunkerParamsFrom');

    const first = await run('copy', '-r', repoA, '--to', repoB, '--device', 'jetson-north', '--json');
    expect(first.code).toBe(0);
    const r1 = JSON.parse(first.out) as { mode: string; copied: { device: string }[]; ok: boolean; verification: { packs: number; errors: string[] } };
    expect(r1).toMatchObject({ mode: 'same-ids', ok: true });
    expect(r1.copied.map((c) => c.device)).toEqual(['jetson-north']);
    expect(r1.verification.packs).toBeGreaterThan(0);

    const second = await run('copy', '-r', repoA, '--to', repoB);
    expect(second.code).toBe(0);
    expect(second.out).toMatch(/1 snapshot copied .*, 1 already there/);
    expect(second.out).toMatch(/no errors/);
    const third = JSON.parse((await run('copy', '-r', repoA, '--to', repoB, '--json')).out) as { copied: unknown[]; skipped: number; bytesUploaded: number };
    expect(third).toMatchObject({ copied: [], skipped: 2, bytesUploaded: 0 });

    const inB = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: B });
    const listed = JSON.parse((await inB('snapshots', '-r', repoB, '--json')).out) as { id: string; device: string }[];
    expect(listed.map((s) => s.device).sort()).toEqual(['jetson-north', 'jetson-south']);
    const target = tempDir();
    const north1 = listed.find((s) => s.device === 'jetson-north')!;
    expect((await inB('restore', '-r', repoB, north1.id, '--target', target)).code).toBe(0);
    expect(readFileSync(path.join(target, north, 'model.onnx')).equals(readFileSync(path.join(north, 'model.onnx')))).toBe(true);
    expect((await inB('check', '-r', repoB, '--read-data')).code).toBe(0);
  });

  it('re-chunks into an independent repository and reports the failures users meet', { timeout: 180_000 }, async () => {
    const home = tempDir();
    const repoA = path.join(tempDir(), 'a');
    const repoC = path.join(tempDir(), 'c');
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: A, JETVAULT_TO_PASSWORD: B });
    const { north } = sources();
    expect((await run('init', '-r', repoA)).code).toBe(0);
    expect((await run('backup', '-r', repoA, north)).code).toBe(0);

    const missing = await run('copy', '-r', repoA, '--to', repoC);
    expect(missing.code).toBe(10);
    expect(missing.err).toMatch(/destination .*no repository/);
    expect((await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: B })('init', '-r', repoC)).code).toBe(0);
    const wrong = await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: A, JETVAULT_TO_PASSWORD: 'not it' })('copy', '-r', repoA, '--to', repoC);
    expect(wrong.code).toBe(12);
    expect(wrong.err).toMatch(/destination .*wrong password/);
    const passwordFile = path.join(tempDir(), 'to-password');
    writeFileSync(passwordFile, `${B}\n`);
    const viaFile = await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: A })('copy', '-r', repoA, '--to', repoC, '--to-password-file', passwordFile, '--since', '1h');
    expect(viaFile.code).toBe(0);
    expect(viaFile.out).toMatch(/re-chunked/);
    expect(viaFile.out).toMatch(/1 snapshot copied/);
    expect((await run('copy', '-r', repoA, '--to', repoC, '--since', 'yesterday')).code).toBe(2);
    expect((await run('copy', '-r', repoA)).code).toBe(2);
    const target = tempDir();
    expect((await cliRunner({ JETVAULT_HOME: home, JETVAULT_PASSWORD: B })('restore', '-r', repoC, 'latest', '--target', target)).code).toBe(0);
    expect(readFileSync(path.join(target, north, 'model.onnx')).equals(readFileSync(path.join(north, 'model.onnx')))).toBe(true);
  });

  const why = s3Missing();
  it.skipIf(why)(`copies to an S3 repository through -r/--to s3:… and restores from it${why ? ` (skipped: ${why})` : ''}`, { timeout: 240_000 }, async () => {
    const store = await startS3Store();
    try {
      const repoA = path.join(tempDir(), 'a');
      const repoS3 = `s3:${store.endpoint}/jv-copy-cli-${randomBytes(3).toString('hex')}/offsite`;
      const aws = { AWS_ACCESS_KEY_ID: store.accessKeyId, AWS_SECRET_ACCESS_KEY: store.secretAccessKey, AWS_REGION: store.region };
      const run = cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: A, JETVAULT_TO_PASSWORD: B, JETVAULT_FROM_PASSWORD: A, ...aws });
      const { north, south } = sources();
      expect((await run('init', '-r', repoA)).code).toBe(0);
      expect((await run('backup', '-r', repoA, north, south, '--device', 'jetson-9')).code).toBe(0);
      expect((await cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: B, JETVAULT_FROM_PASSWORD: A, ...aws })('init', '-r', repoS3, '--copy-chunker-params-from', repoA)).code).toBe(0);
      const copied = await run('copy', '-r', repoA, '--to', repoS3, '--json');
      expect(copied.code).toBe(0);
      expect(JSON.parse(copied.out)).toMatchObject({ mode: 'same-ids', ok: true, copied: [{ device: 'jetson-9' }] });
      expect(JSON.parse((await run('copy', '-r', repoA, '--to', repoS3, '--json')).out)).toMatchObject({ copied: [], skipped: 1, bytesUploaded: 0 });
      const inS3 = cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: B, ...aws });
      const target = tempDir();
      expect((await inS3('restore', '-r', repoS3, 'latest', '--target', target)).code).toBe(0);
      expect(readFileSync(path.join(target, north, 'model.onnx')).equals(readFileSync(path.join(north, 'model.onnx')))).toBe(true);
      expect(readFileSync(path.join(target, south, 'calib.bin')).equals(readFileSync(path.join(south, 'calib.bin')))).toBe(true);
      expect((await inS3('check', '-r', repoS3, '--read-data')).code).toBe(0);
    } finally {
      await store.stop();
    }
  });

  it('reads --since as a date, a time or an age', () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    expect(parseSince('36h', now).toISOString()).toBe('2026-11-29T00:00:00.000Z');
    expect(parseSince('2w', now).toISOString()).toBe('2026-11-16T12:00:00.000Z');
    expect(parseSince('2026-11-01T08:00:00Z', now).toISOString()).toBe('2026-11-01T08:00:00.000Z');
    expect(() => parseSince('last tuesday', now)).toThrow(/--since needs/);
  });

  it('draws one progress line per phase', () => {
    const base = { mode: 'same-ids' as const, snapshotsTotal: 4, snapshotsDone: 1, bytesTotal: 400 * 1048576, bytesDone: 100 * 1048576, blobsUploaded: 9, bytesUploaded: 30 * 1048576, blobsSkipped: 3, bytesRead: 0, packsVerified: 2, packsToVerify: 5 };
    expect(formatCopyProgress({ ...base, phase: 'copy' }, 10_000)).toBe('snapshot 2/4, 100.0 MiB / 400.0 MiB (25%), stored 30.0 MiB, 10.0 MiB/s, ETA 30s');
    expect(formatCopyProgress({ ...base, phase: 'verify' }, 10_000)).toBe('verifying what was written: 2/5 packs');
  });
});
