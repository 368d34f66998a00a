/**
 * `backups:startMany`, the Fleet page's "Back up these devices": one job per device, through the
 * same start as a device page's button; a device busy with a job, without sources or gone is
 * skipped with the reason, never queued behind its running job.
 */
import { describe, expect, it } from 'vitest';
import { FAST } from '../repository/testing/fixtures';
import { fleetForFile } from '../testing/fleet-suite';
import { silentLogger } from '../log';
import { createServices } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { createHandlers } from './handlers';
import { IpcRouter } from './router';
import type { Sender } from './router';

const { skip, fleet } = fleetForFile('backups:startMany tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
const sender: Sender = { transport: 'websocket', url: 'http://127.0.0.1:1', authenticated: true };

describe('backups:startMany', () => {
  it.skipIf(skip)('starts a job per device, skips the busy, the sourceless and the unknown with their reasons, and audits each run', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    const services = createServices({ dataDir: tempDir(), log: silentLogger, platform: { transport: 'cli', openExternal: () => Promise.resolve(), notify: () => undefined } });
    try {
      const router = new IpcRouter(createHandlers(services, 'websocket'), { log: silentLogger, isTrustedSender: () => true });
      await services.repository.init('start many test password', FAST);
      services.devices.import([device.profile(), { name: 'rvm-bare', host: '127.0.0.99', user: 'jetson' }], 'test');
      const startMany = async (devices: string[]) => {
        const answer = await router.handle('backups:startMany', { devices }, sender);
        if (!answer.ok) throw new Error(answer.error.message);
        return answer.value as { started: { device: string; jobId: string }[]; skipped: { device: string; reason: string }[] };
      };

      // The same device twice is one job.
      const first = await startMany([device.name, 'rvm-bare', 'rvm-gone', device.name]);
      expect(first.started.map((s) => s.device)).toEqual([device.name]);
      expect(first.skipped).toEqual([
        { device: 'rvm-bare', reason: 'rvm-bare has no sources to back up yet: discover or add some first' },
        { device: 'rvm-gone', reason: 'No device named "rvm-gone"' },
      ]);
      // Pressed again while it runs: not a second run queued behind the first.
      const again = await startMany([device.name]);
      expect(again).toEqual({ started: [], skipped: [{ device: device.name, reason: `${device.name} is busy: "Back up ${device.name}" runs on it now` }] });

      const { jobId } = first.started[0]!;
      for (let i = 0; i < 1_200 && services.jobs.get(jobId)?.status === 'running'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(services.jobs.get(jobId)?.status).toBe('succeeded');
      expect(await services.catalog.list(device.name)).toHaveLength(device.profile().sources.length);
      // Each run is in the audit log under the device, with who started it; done, it starts again.
      const backups = services.audit.list({}).filter((e) => e.action === 'job.backup');
      const said = backups.map((e) => ({ actor: e.actor, target: e.target, result: e.result, message: e.message }));
      expect(said).toHaveLength(4);
      expect(said).toEqual(
        expect.arrayContaining([
          { actor: 'console:websocket', target: device.name, result: 'ok', message: null },
          { actor: 'console:websocket', target: device.name, result: 'failed', message: `${device.name} is busy: "Back up ${device.name}" runs on it now` },
          { actor: 'console:websocket', target: 'rvm-bare', result: 'failed', message: 'rvm-bare has no sources to back up yet: discover or add some first' },
          { actor: 'console:websocket', target: 'rvm-gone', result: 'failed', message: 'No device named "rvm-gone"' },
        ]),
      );
      const next = await startMany([device.name]);
      expect(next.started).toHaveLength(1);
      const nextJob = next.started[0]!.jobId;
      for (let i = 0; i < 1_200 && services.jobs.get(nextJob)?.status === 'running'; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(services.jobs.get(nextJob)?.status).toBe('succeeded');
    } finally {
      await services.shutdown();
      services.dispose();
    }
  });
});
