/**
 * "Copy to offsite when reachable" with the real copy engine between two repositories on disk: a
 * copy job after a backup, nothing when the offsite copy is current, nothing (and no failed job)
 * while the offsite repository is unreachable, and a catch-up copy when it is back.
 */
import { renameSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BACKUP_PHASES, runSources } from '../devices/device-backup';
import { LocalRunner } from '../devices/local-runner';
import { LocalBackend } from '../repository/backend/local-backend';
import { Repository } from '../repository/repo/repository';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import type { Services } from './index';
import { cliServices } from '../testing/test-console';

const open: Services[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.dispose();
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !condition(); i++) await new Promise((r) => setTimeout(r, 50));
  expect(condition()).toBe(true);
}

const OFFSITE_PASSWORD = 'offsite repository password';

describe('copy to offsite when reachable', () => {
  it('copies new runs as a job when the offsite repository is reachable, skips it quietly while it is not', async () => {
    const s = cliServices(tempDir(), { JETVAULT_PASSWORD: PASSWORD, JETVAULT_SECRETS_PASSPHRASE: 'secrets passphrase' });
    open.push(s);
    await s.repository.init(PASSWORD, FAST);
    const root = tempDir();
    await mkdir(path.join(root, 'etc/app'), { recursive: true });
    const sources = [{ name: 'config', kind: 'files' as const, paths: [path.join(root, 'etc/app')] }];
    const device = s.devices.add({ name: 'rvm-070', host: '127.0.0.1', user: 'jetson', sources }, {}, 'test');
    let n = 0;
    const backUp = async () => {
      await writeFile(path.join(root, 'etc/app/app.conf'), `generation=${++n}\n`.repeat(200));
      const done = await s.jobs.start({ kind: 'backup', title: 'Back up rvm-070', phases: [...BACKUP_PHASES], deviceId: device.id }, async (ctx) =>
        runSources(await s.repository.open(), new LocalRunner(), { name: 'rvm-070', sysroot: root }, sources, ctx),
      ).done;
      expect(done.record.error).toBeNull();
    };
    await backUp();

    const offsiteDir = path.join(tempDir(), 'vault');
    await Repository.init(new LocalBackend(offsiteDir), OFFSITE_PASSWORD, FAST);
    const vault = s.repositories.add({ location: offsiteDir, password: OFFSITE_PASSWORD, name: 'Vault', offsite: true }, 'test');
    expect(await s.copyPolicy.run()).toEqual([]); // the policy is off until asked for
    s.repositories.update({ id: vault.id, copyWhenReachable: true }, 'test');
    expect(s.alerts.evaluate().raised.map((a) => a.rule)).toContain('offsiteCopyMissing');

    const started = await s.copyPolicy.run();
    expect(started).toEqual([vault.id]);
    const first = await (await s.copyPolicy.running().get(vault.id)!).done;
    expect(first.record).toMatchObject({ kind: 'copy', status: 'succeeded', title: 'Copy to Vault' });
    expect(first.value!.copied).toHaveLength(1);
    await waitFor(() => !s.copyPolicy.running().has(vault.id));
    expect(s.overview.overview().devices[0]).toMatchObject({ copies: 2, offsiteCopy: true });
    expect(s.alerts.evaluate().resolved.map((a) => a.rule)).toEqual(['offsiteCopyMissing']);
    expect(await s.copyPolicy.run()).toEqual([]); // current: nothing to copy

    // Unplugged: a new run waits, and nothing fails.
    renameSync(offsiteDir, `${offsiteDir}.away`);
    await backUp();
    expect(s.overview.overview().devices[0]).toMatchObject({ copies: 1, offsiteCopy: false });
    expect(await s.copyPolicy.run()).toEqual([]);
    expect(s.jobs.list(20).filter((j) => j.kind === 'copy').map((j) => j.status)).toEqual(['succeeded']);

    // Back: the next probe (here: started by the policy after a backup) copies what it missed.
    renameSync(`${offsiteDir}.away`, offsiteDir);
    s.copyPolicy.start(60_000);
    await backUp();
    let copies = 0;
    for (let i = 0; i < 300 && copies < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      copies = s.jobs.list(20).filter((j) => j.kind === 'copy' && j.status === 'succeeded').length;
    }
    expect(copies).toBe(2);
    expect((s.jobs.list(20).find((j) => j.kind === 'copy')!.result as { copied: unknown[] }).copied).toHaveLength(2);
    await waitFor(() => !s.copyPolicy.running().has(vault.id));
    expect(s.overview.overview().devices[0]).toMatchObject({ copies: 2, offsiteCopy: true });
    expect(s.audit.list({ action: 'job.copy' }).map((e) => [e.actor, e.result])).toEqual([
      ['copy-policy', 'ok'],
      ['copy-policy', 'ok'],
    ]);
  }, 120_000);
});
