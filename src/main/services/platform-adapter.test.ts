/**
 * What the console asks of the platform, through the real services, handlers and router with a
 * recording `PlatformAdapter` (the port the Electron app implements): desktop notifications for
 * newly raised alerts, and a device report opened for printing.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors';
import { createHandlers } from '../ipc/handlers';
import { IpcRouter } from '../ipc/router';
import type { Sender } from '../ipc/router';
import { silentLogger } from '../log';
import { freeBytesAt } from '../monitoring/alert-service';
import { tempDir } from '../testing/temp-dir';
import { createServices } from './index';
import type { PlatformAdapter, Services } from './index';

const open: Services[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.dispose();
});

interface Recorded {
  notified: { title: string; body: string }[];
  printed: { html: string; pdf: string }[];
  opened: string[];
}

function recordingPlatform(abilities: { print?: boolean; open?: boolean } = {}): { platform: PlatformAdapter; calls: Recorded } {
  const calls: Recorded = { notified: [], printed: [], opened: [] };
  const platform: PlatformAdapter = {
    transport: 'cli',
    openExternal: () => Promise.resolve(),
    notify: (title, body) => calls.notified.push({ title, body }),
    ...(abilities.print ? { printToPdf: (html: string, pdf: string) => (calls.printed.push({ html, pdf }), Promise.resolve()) } : {}),
    ...(abilities.open ? { openPath: (file: string) => (calls.opened.push(file), Promise.resolve()) } : {}),
  };
  return { platform, calls };
}

function services(platform: PlatformAdapter): Services {
  const s = createServices({ dataDir: tempDir(), log: silentLogger, platform });
  open.push(s);
  return s;
}

const sender: Sender = { transport: 'websocket', url: 'http://127.0.0.1:1', authenticated: true };
const routerOf = (s: Services) => new IpcRouter(createHandlers(s, 'websocket'), { log: silentLogger, isTrustedSender: (x) => x.authenticated });
const profile = { name: 'rvm-040', host: '127.0.0.1', port: 22, user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', rpoMinutes: 1440, sources: [] };

describe('desktop notifications', () => {
  it('notify once per raised alert, never on re-evaluation, at the chosen level', async () => {
    const { platform, calls } = recordingPlatform();
    const s = services(platform);
    const device = s.devices.add(profile, {}, 'test');
    await s.jobs.start({ kind: 'backup', title: 'Back up rvm-040', phases: ['connect'], deviceId: device.id }, () => Promise.reject(new AppError('UNAVAILABLE', 'rvm-040 is unreachable'))).done;

    expect(s.alerts.evaluate().raised.map((a) => a.severity)).toEqual(['critical']);
    expect(calls.notified).toEqual([{ title: 'Jetvault: critical — rvm-040', body: 'rvm-040: the last backup failed: rvm-040 is unreachable' }]);
    s.alerts.evaluate();
    s.alerts.evaluate();
    expect(calls.notified).toHaveLength(1); // the alert stays open: no new notification

    // A warning (repository storage under a threshold of twice what is free, above a quarter of it).
    const free = freeBytesAt(s.repository.location())!;
    const storageLow = { enabled: true, threshold: (2 * free) / 1024 ** 3 };
    s.settings.update({ desktopNotificationLevel: 'critical', monitoringRules: { ...s.settings.get().monitoringRules, repositoryStorageLow: storageLow } }, 'test');
    expect(s.alerts.evaluate().raised.map((a) => [a.rule, a.severity])).toEqual([['repositoryStorageLow', 'warning']]);
    expect(calls.notified).toHaveLength(1); // critical only

    // Cleared, then raised again with warnings wanted: one more notification.
    s.settings.update({ monitoringRules: { ...s.settings.get().monitoringRules, repositoryStorageLow: { enabled: true, threshold: 0 } } }, 'test');
    expect(s.alerts.evaluate().resolved.map((a) => a.rule)).toEqual(['repositoryStorageLow']);
    s.settings.update({ desktopNotificationLevel: 'warning', monitoringRules: { ...s.settings.get().monitoringRules, repositoryStorageLow: storageLow } }, 'test');
    expect(s.alerts.evaluate().raised).toHaveLength(1);
    s.alerts.evaluate();
    expect(calls.notified.map((n) => n.title)).toEqual(['Jetvault: critical — rvm-040', 'Jetvault: warning']);

    // Switched off: nothing, even for a new alert.
    s.settings.update({ desktopNotifications: false }, 'test');
    await s.jobs.start({ kind: 'verify', title: 'Verify', phases: ['check'] }, () => Promise.reject(new AppError('INTERNAL', 'damaged pack'))).done;
    expect(s.alerts.evaluate().raised.map((a) => a.rule)).toEqual(['verificationFailed']);
    expect(calls.notified).toHaveLength(2);
  });
});

describe('a device report opened for printing', () => {
  it('in the app: saved with print CSS, printed to PDF and opened through the adapter', async () => {
    const { platform, calls } = recordingPlatform({ print: true, open: true });
    const s = services(platform);
    s.devices.add(profile, {}, 'test');
    const result = await routerOf(s).handle('reports:open', { name: 'rvm-040' }, sender);
    expect(result).toMatchObject({ ok: true, value: { format: 'pdf', opened: true } });
    const { path: pdf } = (result as { value: { path: string } }).value;
    expect(path.dirname(pdf)).toBe(path.join(s.dataDir, 'reports'));
    expect(calls.printed).toEqual([{ html: pdf.replace(/\.pdf$/, '.html'), pdf }]);
    expect(calls.opened).toEqual([pdf]);
    const html = readFileSync(calls.printed[0]!.html, 'utf8');
    expect(html).toContain('<h1>rvm-040</h1>');
    expect(html).toMatch(/@page \{ size: A4;/);
    expect(html).toMatch(/@media print \{/);
    expect(statSync(calls.printed[0]!.html).mode & 0o777).toBe(0o600);
    expect(s.audit.list({ action: 'report.open' })).toMatchObject([{ target: 'rvm-040', result: 'ok' }]);
  });

  it('where nothing can open it: saved, and its location comes back; an unknown device fails and is audited', async () => {
    const { platform, calls } = recordingPlatform();
    const s = services(platform);
    s.devices.add(profile, {}, 'test');
    const result = await routerOf(s).handle('reports:open', { name: 'rvm-040' }, sender);
    expect(result).toMatchObject({ ok: true, value: { format: 'html', opened: false } });
    const saved = (result as { value: { path: string } }).value.path;
    expect(saved.endsWith('.html')).toBe(true);
    expect(existsSync(saved)).toBe(true);
    expect(calls.opened).toEqual([]);

    const missing = await routerOf(s).handle('reports:open', { name: 'rvm-999' }, sender);
    expect(missing).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(s.audit.list({ action: 'report.open', result: 'failed' })).toMatchObject([{ target: 'rvm-999', message: 'No device named "rvm-999"' }]);
  });
});
