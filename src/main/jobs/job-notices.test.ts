/**
 * Desktop notifications for jobs started from the console: through the real IPC router and
 * handlers, a real job manager and history store (the platform's notify is the only stand-in: it
 * is Electron's Notification).
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST } from '../repository/testing/fixtures';
import { fleetForFile } from '../testing/fleet-suite';
import { createHandlers } from '../ipc/handlers';
import { IpcRouter } from '../ipc/router';
import type { Sender } from '../ipc/router';
import { silentLogger } from '../log';
import { createServices } from '../services/index';
import { damagedDatabase } from '../testing/damaged-sqlite';
import { tempDir } from '../testing/temp-dir';
import { jobNotice } from './job-notices';

const { skip, fleet } = fleetForFile('job notice tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

const sender: Sender = { transport: 'websocket', url: 'http://127.0.0.1:1', authenticated: true };
const profile = { name: 'rvm-017', host: '127.0.0.1', port: 2222, user: 'jetson', hostKey: `SHA256:${'A'.repeat(43)}` };

describe('job notices', () => {
  it('a job started from the console is announced when it ends; the scheduler\'s are not; the setting turns them off', async () => {
    const shown: { title: string; body: string; options: unknown }[] = [];
    const services = createServices({
      dataDir: tempDir(),
      log: silentLogger,
      platform: { transport: 'cli', openExternal: () => Promise.resolve(), notify: (title, body, options) => shown.push({ title, body, options }) },
    });
    try {
      const router = new IpcRouter(createHandlers(services, 'websocket'), { log: silentLogger, isTrustedSender: () => true });
      services.devices.import(profile, 'test');
      await services.repository.init('job notices test password');
      const drill = async () => {
        const started = await router.handle('drills:start', { device: 'rvm-017' }, sender);
        if (!started.ok) throw new Error(started.error.message);
        const { jobId } = started.value as { jobId: string };
        // Ended once its record says so (the notices listen on the same bus, subscribed before this).
        await new Promise<void>((resolve) => {
          const end = () => {
            stop();
            resolve();
          };
          const stop = services.bus.subscribe((event, payload) => {
            if (event === 'jobs:finished' && (payload as { job: { id: string } }).job.id === jobId) end();
          });
          if (services.jobs.get(jobId)?.status !== 'running') end();
        });
      };

      await drill();
      expect(shown).toEqual([{ title: 'Jetvault: Drill rvm-017 — FAILED', body: 'rvm-017 has no complete backup run to drill', options: { onlyInBackground: true } }]);

      // Started by the scheduler (not through the console): no notification.
      const quiet = services.jobs.start({ kind: 'prune', title: 'Prune the repository', phases: ['prune'] }, () => Promise.resolve(null));
      await quiet.done;
      expect(shown).toHaveLength(1);

      services.settings.update({ desktopNotifications: false }, 'test');
      await drill();
      expect(shown).toHaveLength(1);
    } finally {
      services.dispose();
    }
  });

  it('says how a job ended: done with its duration, cancelled, or failed with the reason', () => {
    const base = { id: 'job_1', kind: 'backup' as const, title: 'Back up rvm-017', deviceId: null, phases: [], phase: 'commit', startedAt: '2026-12-02T06:00:00.000Z', finishedAt: '2026-12-02T06:04:12.000Z', bytesDone: 0, itemsDone: 0, result: null };
    expect(jobNotice({ ...base, status: 'succeeded', error: null })).toEqual({ title: 'Jetvault: Back up rvm-017 — done', body: 'Finished after 4 min 12 s.' });
    expect(jobNotice({ ...base, status: 'cancelled', error: null })).toEqual({ title: 'Jetvault: Back up rvm-017 — cancelled', body: 'Stopped after 4 min 12 s.' });
    expect(jobNotice({ ...base, status: 'failed', error: { code: 'UNAVAILABLE', message: `rvm-017 is unreachable ${'x'.repeat(400)}` } }).body).toHaveLength(300);
  });

  it.skipIf(skip)('a backup that kept a damaged database says so in its notice, not a plain "done"', { timeout: 120_000 }, async () => {
    const device = fleet().devices[0]!;
    // A SQLite database whose copy fails PRAGMA integrity_check: a leaf page's cell pointers overwritten.
    const file = path.join(device.root, 'opt', device.app, 'data', 'notice-events.db');
    damagedDatabase(file, device);

    const shown: { title: string; body: string }[] = [];
    const services = createServices({
      dataDir: tempDir(),
      log: silentLogger,
      platform: { transport: 'cli', openExternal: () => Promise.resolve(), notify: (title, body) => shown.push({ title, body }) },
    });
    try {
      const router = new IpcRouter(createHandlers(services, 'websocket'), { log: silentLogger, isTrustedSender: () => true });
      await services.repository.init('job notices test password', FAST);
      const config = device.profile().sources.find((s) => s.name === 'config')!;
      services.devices.import({ ...device.profile(), sources: [{ name: 'events', kind: 'sqlite', path: file }, config] }, 'test');
      const started = await router.handle('backups:start', { device: device.name }, sender);
      if (!started.ok) throw new Error(started.error.message);
      for (let i = 0; i < 1_200 && shown.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(services.jobs.get((started.value as { jobId: string }).jobId)?.status).toBe('succeeded');
      expect(shown).toHaveLength(1);
      expect(shown[0]!.title).toBe(`Jetvault: Back up ${device.name} — done, database damaged`);
      expect(shown[0]!.body).toMatch(/^Finished after .+\. Database damaged on the device \(events\): its copy failed the integrity check; a restore or drill of it will be refused\.$/);
    } finally {
      services.dispose();
      rmSync(file, { force: true });
    }
  });

  it('a backup kept with files it could not read, logs not rotated or retention not applied is done with warnings', () => {
    const base = { id: 'job_2', kind: 'backup' as const, title: 'Back up rvm-017', deviceId: null, phases: [], phase: 'commit', status: 'succeeded' as const, error: null, startedAt: '2026-12-02T06:00:00.000Z', finishedAt: '2026-12-02T06:00:30.000Z', bytesDone: 0, itemsDone: 0 };
    expect(jobNotice({ ...base, result: { snapshots: [{ source: 'logs', warnings: 2, rotationError: 'the link dropped' }, { source: 'config', warnings: 0 }], retention: { error: 'no lease' } } })).toEqual({
      title: 'Jetvault: Back up rvm-017 — done with warnings',
      body: 'Finished after 30.0 s. 2 files or folders could not be read (logs). Logs not rotated (logs). Retention was not applied.',
    });
    expect(jobNotice({ ...base, result: { snapshots: [{ source: 'config', warnings: 0 }] } }).title).toBe('Jetvault: Back up rvm-017 — done');
  });
});
