import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { WireServerMessage } from '../../shared/api';
import { CONTENT_SECURITY_POLICY } from '../../shared/csp';
import { PROFILES_FILE_MAX_BYTES } from '../../shared/schemas/devices';
import { silentLogger } from '../log';
import { createServices } from '../services/index';
import type { Services } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { startTestHost, TOKEN_PROTOCOL_PREFIX, WIRE_PROTOCOL } from './test-host';
import type { TestHost } from './test-host';

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

async function start(): Promise<{ host: TestHost; services: Services }> {
  const dir = tempDir();
  const renderer = path.join(dir, 'renderer');
  mkdirSync(path.join(renderer, 'assets'), { recursive: true });
  writeFileSync(path.join(renderer, 'index.html'), '<!doctype html><title>Jetvault</title>');
  writeFileSync(path.join(renderer, 'assets', 'app.js'), 'console.log(1)');
  writeFileSync(path.join(dir, 'secret.txt'), 'outside the renderer');
  const services = createServices({ dataDir: path.join(dir, 'data'), log: silentLogger, platform: { transport: 'websocket', openExternal: () => Promise.resolve() } });
  const host = await startTestHost({ services, rendererDir: renderer });
  cleanup.push(async () => {
    await host.close();
    services.dispose();
  });
  return { host, services };
}

interface Client {
  socket: WebSocket;
  /** Resolves with the first message (already received or still to come) that matches. */
  next: (match: (m: WireServerMessage) => boolean) => Promise<WireServerMessage>;
}

function connect(host: TestHost, { token = host.token, origin = host.origin } = {}): Promise<Client> {
  const socket = new WebSocket(`ws://127.0.0.1:${host.port}/ipc`, [WIRE_PROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`], { origin });
  // Collect from the start: the host flushes queued events as soon as the socket opens.
  const received: WireServerMessage[] = [];
  const waiters: { match: (m: WireServerMessage) => boolean; resolve: (m: WireServerMessage) => void }[] = [];
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as WireServerMessage;
    const waiter = waiters.findIndex((w) => w.match(message));
    if (waiter >= 0) waiters.splice(waiter, 1)[0]!.resolve(message);
    else received.push(message);
  });
  const next = (match: (m: WireServerMessage) => boolean) => {
    const index = received.findIndex(match);
    if (index >= 0) return Promise.resolve(received.splice(index, 1)[0]!);
    return new Promise<WireServerMessage>((resolve) => waiters.push({ match, resolve }));
  };
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve({ socket, next }));
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

describe('test host', () => {
  it('listens on 127.0.0.1 only and serves the renderer with the CSP and no path traversal', async () => {
    const { host } = await start();
    expect(host.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const index = await fetch(`${host.origin}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    expect((await fetch(`${host.origin}/assets/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    for (const probe of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
      const res = await fetch(`${host.origin}${probe}`);
      expect(res.status, probe).toBe(404);
    }
    expect((await fetch(`${host.origin}/`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses sockets without the token or from another origin', async () => {
    const { host } = await start();
    await expect(connect(host, { token: 'nope' })).rejects.toThrow(/403/);
    await expect(connect(host, { origin: 'http://evil.example' })).rejects.toThrow(/403/);
    await expect(connect(host, { token: '' })).rejects.toThrow(/403/);
  });

  it('carries calls and pushed events, and queues events until a page connects', async () => {
    const { host, services } = await start();
    services.settings.update({ theme: 'dark' }, 'test'); // emitted before anyone is connected
    const { socket, next } = await connect(host);
    cleanup.push(() => Promise.resolve(socket.close()));
    const queued = await next((m) => m.type === 'event');
    expect(queued).toMatchObject({ type: 'event', event: 'settings:changed', payload: { theme: 'dark' } });

    const reply = next((m) => m.type === 'result' && m.id === 1);
    socket.send(JSON.stringify({ type: 'invoke', id: 1, channel: 'settings:update', input: { defaultRpoMinutes: 15 } }));
    const pushed = next((m) => m.type === 'event');
    expect(await reply).toMatchObject({ result: { ok: true, value: { theme: 'dark', defaultRpoMinutes: 15 } } });
    expect(await pushed).toMatchObject({ event: 'settings:changed', payload: { defaultRpoMinutes: 15 } });

    const bad = next((m) => m.type === 'result' && m.id === 2);
    socket.send(JSON.stringify({ type: 'invoke', id: 2, channel: 'settings:update', input: { defaultRpoMinutes: 0 } }));
    expect(await bad).toMatchObject({ result: { ok: false, error: { code: 'VALIDATION' } } });
    expect(services.settings.get().defaultRpoMinutes).toBe(15);
  });

  it('carries a profiles file as large as the import takes (4 MiB), as the app does', async () => {
    const { host } = await start();
    const { socket, next } = await connect(host);
    cleanup.push(() => Promise.resolve(socket.close()));
    const profile = { name: 'rvm-017', host: '127.0.0.17', port: 22, user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: [] };
    // A fleet's file near the limit (here: whitespace, which JSON allows anywhere between values).
    const json = `[${' '.repeat(PROFILES_FILE_MAX_BYTES - 1024)}${JSON.stringify(profile)}]`;
    expect(json.length).toBeLessThanOrEqual(PROFILES_FILE_MAX_BYTES);
    const closed = new Promise<string>((resolve) => socket.once('close', (code) => resolve(`socket closed (${code})`)));
    socket.send(JSON.stringify({ type: 'invoke', id: 1, channel: 'devices:import', input: { json } }));
    const reply = await Promise.race([next((m) => m.type === 'result' && m.id === 1), closed]);
    expect(reply).toMatchObject({ result: { ok: true, value: [{ name: 'rvm-017' }] } });
  });
});
