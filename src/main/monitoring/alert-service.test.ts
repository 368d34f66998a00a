/**
 * Alerts through the real services and history store (SQLite file), and the webhook against a real
 * HTTP receiver on 127.0.0.1: raised once, acknowledged, resolved when the condition clears;
 * deliveries queued while the receiver is down survive a restart of the console and go out after.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppError } from '../../shared/errors';
import { HistoryStore } from '../history/history-store';
import { prepareSeedStatements } from '../history/statements';
import { createLogger, silentLogger } from '../log';
import { createServices } from '../services/index';
import type { Services } from '../services/index';
import { WEBHOOK_URL_REF } from '../services/settings-service';
import { filesHolding } from '../testing/plaintext';
import { tempDir } from '../testing/temp-dir';
import { freeBytesAt } from './alert-service';
import { KEEP_DELIVERED_MS, retryDelay, WebhookOutbox } from './webhook';
import { cliServices } from '../testing/test-console';

const open: Services[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.dispose();
});

const PASSPHRASE = 'alert secrets passphrase';

/** `passphrase`: JETVAULT_SECRETS_PASSPHRASE (the webhook URL is kept in the secret store); null: none. */
function services(dataDir: string, passphrase: string | null = PASSPHRASE): Services {
  const env = passphrase === null ? {} : { JETVAULT_SECRETS_PASSPHRASE: passphrase };
  const s = cliServices(dataDir, env);
  open.push(s);
  return s;
}

const profile = { name: 'rvm-017', host: '127.0.0.1', port: 22, user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', rpoMinutes: 15, sources: [] };

/** A receiver that records JSON bodies; `status` decides the answer. */
async function receiver(port = 0): Promise<{ url: string; port: number; bodies: unknown[]; status: number; close(): Promise<void> }> {
  const state = { bodies: [] as unknown[], status: 200 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (state.status < 300) state.bodies.push(JSON.parse(body));
      res.writeHead(state.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${actual}/hooks/jetvault?token=s3cret`,
    port: actual,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

describe('alerts', () => {
  it('a failed backup raises one alert, kept while it holds, acknowledged, resolved by a good backup', async () => {
    const s = services(tempDir());
    const device = s.devices.add(profile, {}, 'test');
    const events: number[] = [];
    s.bus.subscribe((event, payload) => event === 'alerts:changed' && events.push((payload as { open: number }).open));

    const failed = s.jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect'], deviceId: device.id }, () => Promise.reject(new AppError('UNAVAILABLE', 'rvm-017 is unreachable (EHOSTUNREACH)')));
    await failed.done;
    const first = s.alerts.evaluate();
    expect(first.raised.map((a) => [a.rule, a.device, a.severity])).toEqual([['backupFailed', 'rvm-017', 'critical']]);
    expect(first.raised[0]!.message).toMatch(/unreachable/);
    expect(s.alerts.evaluate().raised).toEqual([]); // still holds: the same alert, not a new one
    expect(s.alerts.list('open')).toHaveLength(1);

    const acked = s.alerts.acknowledge(first.raised[0]!.id, 'technician');
    expect(acked).toMatchObject({ acknowledgedBy: 'technician', resolvedAt: null });
    expect(s.history.sql.auditRecent.all(5).some((row) => row.action === 'alert.acknowledge')).toBe(true);
    expect(() => s.alerts.acknowledge(99_999, 'technician')).toThrow(/No alert 99999/);

    await s.jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['connect'], deviceId: device.id }, () => Promise.resolve('ok')).done;
    const cleared = s.alerts.evaluate();
    expect(cleared.resolved.map((a) => a.rule)).toEqual(['backupFailed']);
    expect(s.alerts.list('open')).toEqual([]);
    expect(s.alerts.list('all')[0]).toMatchObject({ rule: 'backupFailed', resolvedAt: expect.any(String) as unknown, acknowledgedBy: 'technician' });
    expect(events).toEqual([1, 1, 0]);
  });

  it('an RPO breach appears with time alone (controllable clock) and a removed device takes its alerts with it', () => {
    const dataDir = tempDir();
    const s = services(dataDir);
    s.devices.add(profile, {}, 'test');
    const later = new Date(Date.now() + 20 * 60_000);
    const breached = s.alerts.evaluate({ ...s.alerts.input(), now: later });
    expect(breached.raised.map((a) => a.rule)).toEqual(['rpoBreached']);
    expect(breached.raised[0]!.message).toMatch(/never backed up/);
    s.devices.remove('rvm-017', 'test');
    // Resolved with it, still naming it (in the history and the alert.resolved webhook).
    expect(s.alerts.evaluate({ ...s.alerts.input(), now: later }).resolved.map((a) => [a.rule, a.device])).toEqual([['rpoBreached', 'rvm-017']]);
    expect(s.alerts.list('all').map((a) => a.device)).toEqual(['rvm-017']);
  });

  it("breaches a device tagged by tier at its tier's RPO, the one the overview shows", () => {
    const s = services(tempDir());
    // Default RPO 60 min; tier:critical is 15 min. The last good run finished 20 minutes ago.
    const { rpoMinutes: _own, ...untimed } = profile;
    const device = s.devices.add({ ...untimed, tags: ['tier:critical'] }, {}, 'test');
    const now = Date.now();
    const at = (ms: number) => new Date(now - ms).toISOString();
    prepareSeedStatements(s.history.db).job.run('job_tier', 'backup', 'Back up', device.id, 'succeeded', '["connect"]', 'connect', at(21 * 60_000), at(20 * 60_000), 1, 1, null, '{"snapshots":[]}');
    const raised = s.alerts.evaluate({ ...s.alerts.input(), now: new Date(now) }).raised;
    expect(raised.map((a) => [a.rule, a.device])).toEqual([['rpoBreached', 'rvm-017']]);
    expect(raised[0]!.message).toMatch(/over its RPO of 15 min/);
  });

  it('raises the RPO breach of a device whose newest good run is stamped in the future (a clock that was ahead)', () => {
    const s = services(tempDir());
    const device = s.devices.add({ ...profile, rpoMinutes: 60 }, {}, 'test');
    const now = Date.now();
    const at = (ms: number) => new Date(now + ms).toISOString();
    const seed = prepareSeedStatements(s.history.db).job;
    seed.run('job_old', 'backup', 'Back up', device.id, 'succeeded', '["connect"]', 'connect', at(-3 * 3_600_000 - 60_000), at(-3 * 3_600_000), 1, 1, null, '{"snapshots":[]}');
    seed.run('job_ahead', 'backup', 'Back up', device.id, 'succeeded', '["connect"]', 'connect', at(365 * 86_400_000), at(365 * 86_400_000 + 60_000), 1, 1, null, '{"snapshots":[]}');
    const raised = s.alerts.evaluate().raised;
    expect(raised.map((a) => [a.rule, a.device])).toEqual([['rpoBreached', 'rvm-017']]);
    expect(raised[0]!.message).toMatch(/the last good backup is 3 h old/);
  });

  it('raises the RPO breach of a device added while the clock was ahead (set right since), not only once that future time comes', () => {
    const s = services(tempDir());
    // The laptop's clock a day ahead as the device is added (its created_at stamped then), corrected since.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 86_400_000);
      s.devices.add({ ...profile, rpoMinutes: 60 }, {}, 'test');
    } finally {
      vi.useRealTimers();
    }
    const raised = s.alerts.evaluate().raised;
    expect(raised.map((a) => [a.rule, a.device, a.severity])).toEqual([['rpoBreached', 'rvm-017', 'critical']]);
    expect(raised[0]!.message).toMatch(/^rvm-017: never backed up; added at \S+, ahead of this computer's clock/);
    // Held (not raised again) while it is never backed up, whatever the clock says meanwhile.
    expect(s.alerts.evaluate({ ...s.alerts.input(), now: new Date(Date.now() + 30 * 60_000) }).raised).toEqual([]);
    expect(s.alerts.list('open').map((a) => a.rule)).toEqual(['rpoBreached']);
  });

  it('raises one alert when two processes evaluate the same condition at once (app and jetvault alerts)', () => {
    const dataDir = tempDir();
    const app = services(dataDir);
    const cli = services(dataDir);
    app.devices.add(profile, {}, 'test');
    const later = new Date(Date.now() + 20 * 60_000); // never backed up, 15-min RPO: breached
    app.history.db.pragma('busy_timeout = 0');
    // The console evaluates between the CLI's read of the open alerts and its writes.
    const read = cli.history.sql.alertsOpen.all.bind(cli.history.sql.alertsOpen);
    let interleaved: { raised: number } | Error | null = null;
    cli.history.sql.alertsOpen.all = () => {
      const rows = read();
      if (interleaved === null) {
        try {
          interleaved = { raised: app.alerts.evaluate({ ...app.alerts.input(), now: later }).raised.length };
        } catch (error) {
          interleaved = error as Error; // held off until the CLI's evaluation is done
        }
      }
      return rows;
    };
    const raised = cli.alerts.evaluate({ ...cli.alerts.input(), now: later }).raised.length;
    const byApp = interleaved as { raised: number } | Error | null;
    expect(raised + (byApp instanceof Error || byApp === null ? 0 : byApp.raised)).toBe(1);
    expect(app.alerts.list('open').map((a) => a.rule)).toEqual(['rpoBreached']);
    // Evaluated again by either, it stays one alert.
    expect(app.alerts.evaluate({ ...app.alerts.input(), now: later })).toMatchObject({ raised: [], resolved: [] });
  });

  it("tells the console when another process (run-scheduler, jetvault alerts ack) raised or acknowledged an alert", () => {
    const dataDir = tempDir();
    const app = services(dataDir);
    const headless = services(dataDir);
    const told: number[] = [];
    app.bus.subscribe((event, payload) => event === 'alerts:changed' && told.push((payload as { open: number }).open));
    app.devices.add(profile, {}, 'test');
    app.alerts.evaluate(); // nothing holds yet (added just now)
    told.length = 0;

    // run-scheduler's evaluation, an RPO later, raises it (and sends it); the console's finds it open already.
    const later = new Date(Date.now() + 20 * 60_000);
    const [raised] = headless.alerts.evaluate({ ...headless.alerts.input(), now: later }).raised;
    expect(raised).toMatchObject({ rule: 'rpoBreached' });
    expect(app.alerts.evaluate({ ...app.alerts.input(), now: later }).raised).toEqual([]);
    expect(told).toEqual([1]);
    expect(app.alerts.evaluate({ ...app.alerts.input(), now: later }).raised).toEqual([]);
    expect(told).toEqual([1]); // once, not every minute

    headless.alerts.acknowledge(raised!.id, 'cli');
    app.alerts.evaluate({ ...app.alerts.input(), now: later });
    expect(told).toEqual([1, 1]);
  });

  it('compares a run for slowness with earlier runs of the same sources, not with a source backed up alone', () => {
    const s = services(tempDir());
    const sources = [{ name: 'db', kind: 'postgres', database: 'app' }, { name: 'logs', kind: 'files', paths: ['/var/log/app'] }];
    const device = s.devices.add({ ...profile, rpoMinutes: 24 * 60, sources }, {}, 'test');
    const now = Date.now();
    const seed = prepareSeedStatements(s.history.db).job;
    let n = 0;
    const backup = (minutesAgo: number, seconds: number, covered: string[]) => {
      const started = now - minutesAgo * 60_000;
      const result = JSON.stringify({ snapshots: covered.map((source) => ({ source })) });
      seed.run(`job_slow${n++}`, 'backup', 'Back up', device.id, 'succeeded', '["connect"]', 'connect', new Date(started).toISOString(), new Date(started + seconds * 1000).toISOString(), 1, 1, null, result);
    };
    // The whole device daily in about a minute; the logs alone every 15 minutes in 5 s.
    for (const day of [3, 2, 1]) backup(day * 24 * 60, 60, ['db', 'logs']);
    for (let i = 8; i >= 1; i--) backup(i * 15, 5, ['logs']);
    backup(2, 62, ['db', 'logs']); // today's whole run: as long as usual
    expect(s.alerts.evaluate().raised.map((a) => a.rule)).toEqual([]);
    backup(1, 5, ['logs']);
    backup(0.5, 30, ['logs']); // the logs took 6× their usual 5 s
    expect(s.alerts.evaluate().raised.map((a) => [a.rule, a.message])).toEqual([['backupSlower', 'rvm-017: the last backup took 30.0 s, 6.0× its usual 5.0 s']]);
  });

  it('an acknowledged alert that grows critical (storage low: warning, then under a quarter) is unacknowledged, notified and sent again', async () => {
    const hook = await receiver();
    const shown: string[] = [];
    const dataDir = tempDir();
    const s = createServices({ dataDir, log: silentLogger, platform: { transport: 'cli', openExternal: () => Promise.resolve(), notify: (title) => shown.push(title) }, env: { JETVAULT_SECRETS_PASSPHRASE: PASSPHRASE } });
    open.push(s);
    try {
      s.settings.update({ webhookUrl: hook.url, desktopNotificationLevel: 'critical' }, 'test');
      // The thresholds around this disk's real free space: under twice it is a warning, under eight times critical.
      const freeGiB = freeBytesAt(dataDir)! / 1024 ** 3;
      const storage = (threshold: number) => s.settings.update({ monitoringRules: { ...s.settings.get().monitoringRules, repositoryStorageLow: { enabled: true, threshold } } }, 'test');
      storage(freeGiB * 2);
      const [raised] = s.alerts.evaluate().raised;
      expect(raised).toMatchObject({ rule: 'repositoryStorageLow', severity: 'warning' });
      expect(shown).toEqual([]); // warnings are not notified at the 'critical' level
      s.alerts.acknowledge(raised!.id, 'technician');

      storage(freeGiB * 8);
      const { raised: again, escalated } = s.alerts.evaluate();
      expect(again).toEqual([]); // the same alert, not a second one
      expect(escalated).toMatchObject([{ id: raised!.id, severity: 'critical', acknowledgedAt: null, acknowledgedBy: null }]);
      expect(s.alerts.list('open')).toMatchObject([{ id: raised!.id, severity: 'critical', acknowledgedAt: null }]);
      expect(shown).toEqual(['Jetvault: critical']);
      expect(s.alerts.evaluate().escalated).toEqual([]); // once
      await s.outbox.deliverDue();
      expect(hook.bodies).toMatchObject([
        { event: 'alert.raised', alert: { id: raised!.id, severity: 'warning' } },
        { event: 'alert.escalated', alert: { id: raised!.id, severity: 'critical', acknowledgedAt: null } },
      ]);
    } finally {
      await hook.close();
    }
  });

  it('thresholds come from the settings: storage low when the repository disk has less free than asked', () => {
    const s = services(tempDir());
    s.settings.update({ monitoringRules: { ...s.settings.get().monitoringRules, repositoryStorageLow: { enabled: true, threshold: 1_000_000 } } }, 'test');
    const raised = s.alerts.evaluate().raised;
    expect(raised.map((a) => [a.rule, a.device])).toEqual([['repositoryStorageLow', null]]);
    s.settings.update({ monitoringRules: { ...s.settings.get().monitoringRules, repositoryStorageLow: { enabled: true, threshold: 0 } } }, 'test');
    expect(s.alerts.evaluate().resolved.map((a) => a.rule)).toEqual(['repositoryStorageLow']);
  });
});

describe('the alert webhook', () => {
  it('delivers raised and resolved alerts as JSON, in order', async () => {
    const hook = await receiver();
    try {
      const s = services(tempDir());
      s.settings.update({ webhookUrl: hook.url }, 'test');
      const device = s.devices.add(profile, {}, 'test');
      await s.jobs.start({ kind: 'backup', title: 'b', phases: ['connect'], deviceId: device.id }, () => Promise.reject(new AppError('TIMEOUT', 'rvm-017 did not answer in time'))).done;
      s.alerts.evaluate();
      await s.jobs.start({ kind: 'backup', title: 'b', phases: ['connect'], deviceId: device.id }, () => Promise.resolve(1)).done;
      s.alerts.evaluate();
      await s.outbox.deliverDue();
      expect(hook.bodies).toMatchObject([
        { event: 'alert.raised', alert: { rule: 'backupFailed', device: 'rvm-017', message: expect.stringMatching(/did not answer/) as unknown } },
        { event: 'alert.resolved', alert: { rule: 'backupFailed', resolvedAt: expect.any(String) as unknown } },
      ]);
      expect(s.outbox.pending().pending).toBe(0);
      // The rows name the secret store's entry, never the URL (it can carry a token).
      expect(s.history.sql.outboxHead.all(10)).toEqual([]);
      expect(s.history.db.prepare('SELECT DISTINCT url FROM webhook_outbox').all()).toEqual([{ url: WEBHOOK_URL_REF }]);
    } finally {
      await hook.close();
    }
  });

  it('queues while the receiver is down, survives a restart, retries with backoff and delivers after', async () => {
    // Find a port, then close the receiver: nothing listens there now.
    const probe = await receiver();
    const { port, url } = probe;
    await probe.close();

    const dataDir = tempDir();
    let now = new Date('2026-11-30T12:00:00Z');
    const store = new HistoryStore(dataDir);
    const outbox = new WebhookOutbox(store, silentLogger, () => now);
    outbox.enqueue(url, { event: 'alert.raised', alert: { id: 1 } });
    outbox.enqueue(url, { event: 'alert.raised', alert: { id: 2 } });
    expect(await outbox.deliverDue()).toBe(0);
    expect(outbox.pending()).toEqual({ pending: 2, nextAttemptAt: new Date(now.getTime() + retryDelay(1)).toISOString(), lastError: 'ECONNREFUSED' });
    const [row] = store.sql.outboxHead.all(1);
    expect(row!.last_error).toMatch(/ECONNREFUSED/);
    expect(row!.last_error).not.toMatch(/s3cret/);
    store.close();

    // The console restarts; the receiver comes back on the same address with an error first.
    const again = new HistoryStore(dataDir);
    const restarted = new WebhookOutbox(again, silentLogger, () => now);
    const hook = await receiver(port);
    try {
      hook.status = 503;
      expect(await restarted.deliverDue()).toBe(0); // not due yet: backoff
      now = new Date(now.getTime() + retryDelay(1));
      expect(await restarted.deliverDue()).toBe(0); // due, but answered 503
      expect(again.sql.outboxHead.all(1)[0]!).toMatchObject({ attempts: 2, last_error: 'HTTP 503' });
      hook.status = 200;
      now = new Date(now.getTime() + retryDelay(2));
      expect(await restarted.deliverDue()).toBe(2);
      expect(hook.bodies).toEqual([
        { event: 'alert.raised', alert: { id: 1 } },
        { event: 'alert.raised', alert: { id: 2 } },
      ]);
      expect(restarted.pending().pending).toBe(0);
      // Delivered rows are kept a week, then removed by a later delivery pass: the table does not grow without end.
      const rows = () => (again.db.prepare('SELECT count(*) AS n FROM webhook_outbox').get() as { n: number }).n;
      expect(rows()).toBe(2);
      now = new Date(now.getTime() + KEEP_DELIVERED_MS - 1000);
      restarted.enqueue(url, { event: 'alert.resolved', alert: { id: 1 } });
      expect(await restarted.deliverDue()).toBe(1);
      expect(rows()).toBe(3);
      now = new Date(now.getTime() + 2000);
      expect(await restarted.deliverDue()).toBe(0);
      expect(rows()).toBe(1);
    } finally {
      again.close();
      await hook.close();
    }
  });

  it('sends what waited for a dead URL to the URL set in its place, at once, and drops it when the webhook is turned off', async () => {
    // A webhook mistyped (nothing listens on that port), then set right.
    const probe = await receiver();
    const dead = probe.url;
    await probe.close();
    const hook = await receiver();
    try {
      const s = services(tempDir());
      s.settings.update({ webhookUrl: dead }, 'test');
      const device = s.devices.add(profile, {}, 'test');
      await s.jobs.start({ kind: 'backup', title: 'b', phases: ['connect'], deviceId: device.id }, () => Promise.reject(new AppError('TIMEOUT', 'rvm-017 did not answer in time'))).done;
      s.alerts.evaluate();
      expect(await s.outbox.deliverDue()).toBe(0);
      expect(s.outbox.pending().pending).toBe(1);

      s.settings.update({ webhookUrl: hook.url }, 'test');
      // Not an hour of backoff against the old address (and never, as it stays dead): sent now, to the new one.
      expect(await s.outbox.deliverDue()).toBe(1);
      expect(hook.bodies).toMatchObject([{ event: 'alert.raised', alert: { rule: 'backupFailed', device: 'rvm-017' } }]);
      expect(s.outbox.pending()).toEqual({ pending: 0, nextAttemptAt: null, lastError: null });

      // Turned off with an event waiting (the receiver down again): nothing waits any more, nothing is sent.
      s.settings.update({ webhookUrl: dead }, 'test');
      await s.jobs.start({ kind: 'backup', title: 'b', phases: ['connect'], deviceId: device.id }, () => Promise.resolve(1)).done;
      s.alerts.evaluate();
      expect(await s.outbox.deliverDue()).toBe(0);
      s.settings.update({ webhookUrl: '' }, 'test');
      expect(s.outbox.pending()).toEqual({ pending: 0, nextAttemptAt: null, lastError: null });
      s.settings.update({ webhookUrl: hook.url }, 'test');
      expect(await s.outbox.deliverDue()).toBe(0);
      expect(hook.bodies).toHaveLength(1);
    } finally {
      await hook.close();
    }
  });

  it('says why a delivery failed in words to act on: where a redirect points (not followed, no token shown), a 500, no answer in 10 s', async () => {
    const sockets = new Set<Socket>();
    const server = http.createServer((req, res) => {
      req.resume();
      if (req.url!.startsWith('/moved')) res.writeHead(301, { location: 'https://hooks.example.com/new/path?token=n3wsecret' }).end();
      else if (req.url!.startsWith('/loop')) res.writeHead(302, { location: '/loop' }).end();
      else if (req.url!.startsWith('/broken')) res.writeHead(500).end('boom');
      // /hang: headers never come.
    });
    server.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const s = services(tempDir());
      const failure = async (path: string): Promise<string | null> => {
        s.settings.update({ webhookUrl: `${origin}${path}?token=s3cret` }, 'test');
        s.outbox.enqueue(`${origin}${path}?token=s3cret`, { event: 'alert.raised', alert: { id: 1 } });
        expect(await s.outbox.deliverDue()).toBe(0);
        const queue = s.outbox.pending();
        expect(queue.pending).toBe(1);
        s.settings.update({ webhookUrl: '' }, 'test'); // drops it: the next case starts with an empty queue
        return queue.lastError;
      };
      expect(await failure('/moved')).toBe('HTTP 301: the receiver redirects to https://hooks.example.com; redirects are not followed — set the webhook to the address it moved to');
      expect(await failure('/loop')).toBe(`HTTP 302: the receiver redirects to ${origin}; redirects are not followed — set the webhook to the address it moved to`);
      expect(await failure('/broken')).toBe('HTTP 500');
      s.settings.update({ webhookUrl: 'http://127.0.0.1:10080/hook' }, 'test');
      s.outbox.enqueue('http://127.0.0.1:10080/hook', { event: 'alert.raised', alert: { id: 1 } });
      expect(await s.outbox.deliverDue()).toBe(0);
      expect(s.outbox.pending().lastError).toBe('port 10080 is one that HTTP clients refuse to use (a blocked port): give the receiver another port');
      s.settings.update({ webhookUrl: '' }, 'test');
      const started = Date.now();
      expect(await failure('/hang')).toBe('no answer within 10 s');
      expect(Date.now() - started).toBeLessThan(20_000);
      // The audit log says the URL was set and turned off, never the URL (its token).
      const updates = s.audit.list({ action: 'settings.update' });
      expect(updates.map((e) => e.detail).filter((d) => d !== null && d.includes('webhookUrl'))).toContain('{"webhookUrl":"set"}');
      expect(updates.map((e) => e.detail).filter((d) => d !== null && d.includes('webhookUrl'))).toContain('{"webhookUrl":"turned off"}');
      expect(updates.some((e) => e.detail?.includes('s3cret'))).toBe(false);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 40_000);

  it('refuses a webhook URL with a user:password@ in it, and never keeps or logs a URL from a failed delivery', async () => {
    const s = services(tempDir());
    expect(() => s.settings.update({ webhookUrl: 'https://alice:s3cretpw@hooks.example.com/jetvault' }, 'test')).toThrow(
      expect.objectContaining({ code: 'VALIDATION', issues: [expect.objectContaining({ message: expect.stringMatching(/user or password in the URL/) as unknown })] }) as Error,
    );
    // One written before the check (an older version, another process's outbox row): fetch refuses it,
    // and its error quoted the whole URL — into the history and the log.
    const lines: string[] = [];
    const dataDir = tempDir();
    const store = new HistoryStore(dataDir);
    try {
      const outbox = new WebhookOutbox(store, createLogger('warn', (line) => lines.push(line)));
      outbox.enqueue('https://alice:s3cretpw@127.0.0.1:1/hook?token=t0ken', { event: 'alert.raised', alert: { id: 1 } });
      expect(await outbox.deliverDue()).toBe(0);
      const { lastError } = outbox.pending();
      expect(lastError).toMatch(/includes credentials: https:\/\/127\.0\.0\.1:1$/);
      expect(lines.join('\n')).toMatch(/webhook to https:\/\/127\.0\.0\.1:1 failed/);
      for (const secret of ['s3cretpw', 't0ken']) {
        expect(lastError).not.toContain(secret);
        expect(lines.join('\n')).not.toContain(secret);
      }
    } finally {
      store.close();
    }
  });

  it('delivers an event once when two processes (the console, run-scheduler) deliver at the same moment', async () => {
    const hook = await receiver();
    const dataDir = tempDir();
    const first = new HistoryStore(dataDir);
    const second = new HistoryStore(dataDir);
    try {
      const now = () => new Date();
      const app = new WebhookOutbox(first, silentLogger, now);
      const headless = new WebhookOutbox(second, silentLogger, now);
      first.sql.outboxInsert.run(hook.url, JSON.stringify({ event: 'alert.raised', alert: { id: 1 } }), now().toISOString(), now().toISOString());
      const delivered = await Promise.all([app.deliverDue(), headless.deliverDue()]);
      expect(delivered.sort()).toEqual([0, 1]);
      expect(hook.bodies).toEqual([{ event: 'alert.raised', alert: { id: 1 } }]);
      expect(app.pending().pending).toBe(0);
    } finally {
      first.close();
      second.close();
      await hook.close();
    }
  });

  it('moves a URL an earlier version stored in plain text into the secret store, out of the settings and the outbox', async () => {
    const hook = await receiver();
    const token = 'T0kEnInThEpAtH';
    const url = `${hook.url}hooks/${token}`;
    try {
      const dataDir = tempDir();
      const old = new HistoryStore(dataDir);
      const at = new Date().toISOString();
      old.sql.settingUpsert.run('webhookUrl', JSON.stringify(url), at);
      old.sql.outboxInsert.run(url, JSON.stringify({ event: 'alert.raised', alert: { id: 1 } }), at, at);
      old.sql.outboxInsert.run(url, JSON.stringify({ event: 'alert.raised', alert: { id: 2 } }), at, at);
      old.sql.outboxDelivered.run(at, 1, 1);
      old.close();
      expect(filesHolding(dataDir, token)).not.toEqual([]);

      // Without a cipher it stays where it was, and still works.
      const plain = services(dataDir, null);
      expect(plain.settings.get().webhookUrl).toBe(url);
      plain.dispose();
      open.pop();
      expect(filesHolding(dataDir, token)).not.toEqual([]);

      const s = services(dataDir);
      expect(s.settings.get().webhookUrl).toBe(url);
      expect(await s.outbox.deliverDue()).toBe(1);
      expect(hook.bodies).toEqual([{ event: 'alert.raised', alert: { id: 2 } }]);
      s.dispose();
      open.pop();
      expect(filesHolding(dataDir, token)).toEqual([]);
    } finally {
      await hook.close();
    }
  });

  it('keeps a URL this process cannot read (another passphrase) when other settings are saved', () => {
    const dataDir = tempDir();
    const url = 'https://chat.example/hooks/T0123/B0456/xK9sEcReTtOkEn';
    const first = services(dataDir);
    first.settings.update({ webhookUrl: url }, 'test');
    first.dispose();
    open.pop();

    const warnings: string[] = [];
    const other = createServices({ dataDir, log: { ...silentLogger, warn: (message: string) => warnings.push(message) }, platform: { transport: 'cli', openExternal: () => Promise.resolve() }, env: { JETVAULT_SECRETS_PASSPHRASE: 'another secrets passphrase' } });
    open.push(other);
    expect(other.settings.get().webhookUrl).toBe('');
    other.settings.get();
    // Said once, not on every read of the settings (each connection, each minute's alert check).
    expect(warnings.filter((w) => w.startsWith('the webhook URL cannot be read here'))).toHaveLength(1);
    // The Alerts page saves the URL it shows along with the rules: that is no change to the URL.
    other.settings.update({ webhookUrl: '', theme: 'dark' }, 'test');
    other.dispose();
    open.pop();

    const again = services(dataDir);
    expect(again.settings.get()).toMatchObject({ webhookUrl: url, theme: 'dark' });
  });

  it('backs off exponentially up to an hour', () => {
    expect([1, 2, 3, 10, 30].map(retryDelay)).toEqual([15_000, 30_000, 60_000, 3_600_000, 3_600_000]);
  });
});
