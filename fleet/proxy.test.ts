import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DelayProxy } from './proxy';

/** An echo server and a client that measures one round trip through the proxy. */
async function echoServer(): Promise<net.Server> {
  const server = net.createServer((s) => s.on('error', () => {}).pipe(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function roundTrip(port: number, payload: Buffer): Promise<{ ms: number; echoed: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let received = 0;
    let started = 0;
    socket.on('connect', () => {
      started = Date.now();
      socket.write(payload);
    });
    socket.on('data', (b: Buffer) => {
      chunks.push(b);
      received += b.length;
      if (received >= payload.length) {
        socket.end();
        resolve({ ms: Date.now() - started, echoed: Buffer.concat(chunks) });
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${received} of ${payload.length} bytes`)));
  });
}

describe('DelayProxy', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0)) await c();
  });

  it('adds the delay in each direction and keeps bytes in order', async () => {
    const server = await echoServer();
    const proxy = new DelayProxy({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    cleanup.push(() => proxy.close(), () => new Promise((r) => server.close(() => r())));
    const { port } = await proxy.listen('127.0.0.1');
    const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));
    const direct = await roundTrip(port, payload);
    expect(direct.echoed.equals(payload)).toBe(true);
    proxy.delayMs = 150;
    const delayed = await roundTrip(port, payload);
    expect(delayed.echoed.equals(payload)).toBe(true);
    expect(delayed.ms).toBeGreaterThanOrEqual(0.9 * 300);
  });

  it('cut() drops open connections and refuses new ones until restore()', async () => {
    const server = await echoServer();
    const proxy = new DelayProxy({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    cleanup.push(() => proxy.close(), () => new Promise((r) => server.close(() => r())));
    const { port } = await proxy.listen('127.0.0.1');
    const socket = net.connect({ host: '127.0.0.1', port });
    const reset = new Promise((r) => socket.once('error', r));
    await new Promise((r) => socket.once('connect', r));
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.connections).toBe(1);
    const closed = new Promise((r) => socket.once('close', r));
    proxy.cut();
    await closed;
    expect(await reset).toMatchObject({ code: 'ECONNRESET' });
    await expect(roundTrip(port, Buffer.from('x'))).rejects.toThrow();
    proxy.restore();
    expect((await roundTrip(port, Buffer.from('hello'))).echoed.toString()).toBe('hello');
  });

  it('stall({ deviceHearsNothing }): the device side of a connection the console gives up stays open until releaseDead()', async () => {
    let serverSide: net.Socket | null = null;
    const server = net.createServer((s) => (serverSide = s.on('error', () => {})));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new DelayProxy({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
    cleanup.push(() => proxy.close(), () => new Promise((r) => server.close(() => r())));
    const { port } = await proxy.listen('127.0.0.1');
    const open = async (deaf: boolean) => {
      serverSide = null;
      const socket = net.connect({ host: '127.0.0.1', port }).on('error', () => {});
      await new Promise((r) => socket.once('connect', r));
      for (let i = 0; i < 100 && !serverSide; i++) await new Promise((r) => setTimeout(r, 10));
      const device = serverSide!;
      const closed = new Promise<boolean>((r) => device.once('close', () => r(true)));
      proxy.stall({ deviceHearsNothing: deaf });
      socket.destroy();
      const heard = await Promise.race([closed, new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
      proxy.restore();
      return { heard, closed };
    };
    // A plain stall: the console's close still reaches the device.
    expect((await open(false)).heard).toBe(true);
    // A dead link: it does not, through restore(), until the dead connections are released.
    const dead = await open(true);
    expect(dead.heard).toBe(false);
    proxy.releaseDead();
    expect(await dead.closed).toBe(true);
  });
});
