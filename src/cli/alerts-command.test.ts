/**
 * `jetvault alerts` and `alerts ack` on a data folder with a device that was never backed up (its
 * RPO breached), without a fleet.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_RULES } from '../shared/schemas/monitoring';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

describe('jetvault alerts ack', () => {
  it('acknowledges only an ID written as digits, and says so when there is no such alert', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home });
    const file = path.join(home, 'device.json');
    writeFileSync(file, JSON.stringify({ name: 'rvm-017', host: '127.0.0.1', user: 'jetson', sources: [] }));
    expect((await run('device', 'import', file)).code).toBe(0);
    // 0 × RPO: the device breaches at once.
    expect((await run('settings', 'set', 'monitoringRules', JSON.stringify({ ...DEFAULT_RULES, rpoBreached: { enabled: true, threshold: 0 } }))).code).toBe(0);
    const listed = await run('alerts', '--json');
    expect(listed.code).toBe(1);
    expect(JSON.parse(listed.out)).toMatchObject([{ id: 1, rule: 'rpoBreached', device: 'rvm-017', acknowledgedAt: null }]);

    for (const typo of ['0x1', '1e0', '1.0', '+1', ' 1', '0']) {
      const refused = await run('alerts', 'ack', typo);
      expect(refused.code, typo).toBe(2);
      expect(refused.err, typo).toContain(`"${typo}" is not an alert ID`);
    }
    expect(JSON.parse((await run('alerts', '--json')).out)).toMatchObject([{ id: 1, acknowledgedAt: null }]);

    expect(await run('alerts', 'ack', '99')).toMatchObject({ code: 1, err: 'jetvault alerts: No alert 99' });
    const acked = await run('alerts', 'ack', '1');
    expect(acked).toMatchObject({ code: 0, out: expect.stringMatching(/^acknowledged 1: rvm-017/) as unknown });
    expect(acked.out).not.toContain('cleared');

    // The RPO back to 1 × (the device was added just now): the alert clears. Acknowledging it then says so.
    expect((await run('settings', 'set', 'monitoringRules', JSON.stringify(DEFAULT_RULES))).code).toBe(0);
    expect((await run('alerts')).code).toBe(0);
    expect((await run('alerts', 'ack', '1')).out).toMatch(/^acknowledged 1: rvm-017.* \(it had cleared already, 20\d\d-/);
  }, 60_000);
});

describe('jetvault alerts and the webhook', () => {
  it('says that alert events wait for the webhook, and why the last try failed', async () => {
    let posts = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      posts++;
      res.writeHead(503).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const home = tempDir();
      const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_SECRETS_PASSPHRASE: 'cli secrets passphrase' });
      const file = path.join(home, 'device.json');
      writeFileSync(file, JSON.stringify({ name: 'rvm-017', host: '127.0.0.1', user: 'jetson', sources: [] }));
      expect((await run('device', 'import', file)).code).toBe(0);
      const hook = path.join(home, 'webhook');
      writeFileSync(hook, `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=s3cret\n`, { mode: 0o600 });
      expect((await run('settings', 'set', 'webhookUrl', '--value-file', hook)).code).toBe(0);
      expect((await run('settings', 'set', 'monitoringRules', JSON.stringify({ ...DEFAULT_RULES, rpoBreached: { enabled: true, threshold: 0 } }))).code).toBe(0);
      // It raises the alert and posts it at once; the receiver answers 503.
      const first = await run('alerts');
      expect(first.code).toBe(1);
      expect(first.err).toMatch(/^webhook: 1 alert event not delivered yet \(next try 20\d\d-[^)]+\): HTTP 503$/m);
      expect(first.err).not.toContain('s3cret');
      expect(posts).toBe(1);
      // Still waiting (its retry not due yet), and still said.
      const again = await run('alerts');
      expect(posts).toBe(1);
      expect(again.err).toMatch(/^webhook: 1 alert event not delivered yet \(next try 20\d\d-[^)]+\): HTTP 503$/m);
      expect(again.err).not.toContain('s3cret');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);
});
