/**
 * A secondary repository in a real S3 bucket (a local Ceph radosgw): its access keys are stored in
 * the secret store (not the environment), the test opens it with them and lists the device's run;
 * wrong keys are reported as a failed test, not thrown.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BACKUP_PHASES, runSources } from '../devices/device-backup';
import { LocalRunner } from '../devices/local-runner';
import { S3Backend } from '../repository/backend/s3-backend';
import { Repository } from '../repository/repo/repository';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { useS3Store } from '../repository/testing/servers';
import { tempDir } from '../testing/temp-dir';
import { cliServices } from '../testing/test-console';

const { why, store } = useS3Store();
if (why) console.log(`S3 repository list tests skipped: ${why}`);

describe.skipIf(why)('an S3 secondary repository', () => {
  it('is tested with the access keys from the secret store and counted as a copy', async () => {
    // No AWS variables in the console's environment: the keys can only come from the secret store.
    const s = cliServices(tempDir(), { JETVAULT_PASSWORD: PASSWORD, JETVAULT_SECRETS_PASSPHRASE: 'secrets passphrase' });
    try {
      const location = `s3:${store.endpoint}/jv-list-${randomBytes(3).toString('hex')}/depot`;
      const keys = { credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey }, region: store.region };
      const bucket = new S3Backend(location, keys);
      await bucket.ensureBucket();
      const offsite = await Repository.init(bucket, PASSWORD, FAST);

      await s.repository.init(PASSWORD, FAST);
      const root = tempDir();
      await mkdir(path.join(root, 'etc/app'), { recursive: true });
      await writeFile(path.join(root, 'etc/app/app.conf'), 'mode=field\n');
      const sources = [{ name: 'config', kind: 'files' as const, paths: [path.join(root, 'etc/app')] }];
      const device = s.devices.add({ name: 'rvm-060', host: '127.0.0.1', user: 'jetson', sources }, {}, 'test');
      // A run in the primary, then one in the bucket (run ids sort by time, so the bucket holds a run at least as new).
      const done = await s.jobs.start({ kind: 'backup', title: 'Back up rvm-060', phases: [...BACKUP_PHASES], deviceId: device.id }, async (ctx) =>
        runSources(await s.repository.open(), new LocalRunner(), { name: 'rvm-060', sysroot: root }, sources, ctx),
      ).done;
      expect(done.record.error).toBeNull();
      await new Promise((r) => setTimeout(r, 1100)); // run ids carry the second they began: a later second
      const ctx = { phase: () => undefined, advance: () => undefined, setTotals: () => undefined, signal: new AbortController().signal };
      await runSources(offsite, new LocalRunner(), { name: 'rvm-060', sysroot: root }, sources, ctx);

      const added = s.repositories.add({ location, password: PASSWORD, name: 'Ceph', offsite: true, accessKeyId: store.accessKeyId, secretAccessKey: 'not the key' }, 'test');
      expect(added).toMatchObject({ kind: 's3', hasCredentials: true });
      const denied = await s.repositories.test(added.id, 'test');
      expect(denied.reachable).toBe(false);
      expect(denied.error).toMatch(/SignatureDoesNotMatch|AccessDenied|403/);
      expect(s.overview.overview().devices[0]).toMatchObject({ copies: 1, offsiteCopy: false });

      s.repositories.remove(added.id, 'test');
      const good = s.repositories.add({ location, password: PASSWORD, name: 'Ceph', offsite: true, accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey }, 'test');
      expect(await s.repositories.test(good.id, 'test')).toMatchObject({ reachable: true, initialised: true, snapshots: 1, devices: 1, error: null });
      expect(s.overview.overview().devices[0]).toMatchObject({ copies: 2, offsiteCopy: true });
    } finally {
      s.dispose();
    }
  }, 180_000);
});
