/**
 * A server that closes new connections before the SSH handshake: sshd past its MaxStartups (a stock
 * sshd drops 30% of new connections once 10 are unauthenticated at once, before its banner) — a jump
 * host that many devices' backups log in through at once — or a link that drops a handshake. The
 * connection is tried again (HANDSHAKE_ATTEMPTS, with growing, jittered pauses); one that never gets
 * through fails saying why; a refused port, a cancel and a changed host key are not tried again.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../testing/fleet-suite';
import { waitFor } from '../testing/wait';
import { raw } from './shell-quote';
import { DeviceConnection, HANDSHAKE_ATTEMPTS, runToString } from './ssh-connection';
import type { ConnectOptions } from './ssh-connection';

// Every device's sshd drops each new connection while another is still unauthenticated.
const { skip, fleet } = fleetForFile('handshake retry tests', { devices: 2, sharedModelMB: 1, uniqueModelMB: 1, maxStartups: '1' });

const keyOf = (device: ReturnType<typeof fleet>['devices'][number]) => ({ kind: 'key' as const, privateKey: readFileSync(device.identityFile) });
/** Lines of device `index`'s sshd log that match `pattern`. */
const logged = (index: number, pattern: RegExp) =>
  readFileSync(path.join(fleet().devices[index]!.dir, 'sshd.log'), 'utf8')
    .split('\n')
    .filter((line) => pattern.test(line)).length;
/** Connections sshd dropped past its MaxStartups. */
const dropped = (index: number) => logged(index, /past MaxStartups/);

/** Opens `count` connections at once; each runs `hostname`. */
async function openAtOnce(count: number, options: () => ConnectOptions): Promise<string[]> {
  const connections = await Promise.all(Array.from({ length: count }, () => DeviceConnection.open(options())));
  try {
    return await Promise.all(connections.map((c) => runToString(c, raw('hostname'))));
  } finally {
    for (const c of connections) c.close();
  }
}

/** A TCP server that accepts each connection and closes it before a byte is sent (as sshd past MaxStartups); counts them. */
async function closingServer(host: string): Promise<{ port: number; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { port: (server.address() as net.AddressInfo).port, accepted: () => accepted, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe.skipIf(skip)('connections a server closes before the SSH handshake', () => {
  it('four connections at once to an sshd that lets one handshake in at a time: every one gets through', async () => {
    const device = fleet().devices[0]!;
    const before = dropped(0);
    const names = await openAtOnce(4, () => ({ host: device.host, port: device.port, user: device.user, auth: keyOf(device), hostKey: device.hostKeyFingerprint }));
    expect(names).toEqual(Array.from({ length: 4 }, () => `${device.name}\n`));
    // sshd did drop some: they got through by trying again.
    expect(dropped(0) - before).toBeGreaterThan(0);
  }, 60_000);

  it('four connections through one jump host at once: the bastion (and the device) drop handshakes, every one gets through', async () => {
    const [bastion, device] = fleet().devices as [ReturnType<typeof fleet>['devices'][number], ReturnType<typeof fleet>['devices'][number]];
    const [bastionBefore, deviceBefore] = [dropped(0), dropped(1)];
    const names = await openAtOnce(4, () => ({
      host: device.direct.host,
      port: device.direct.port,
      user: device.user,
      auth: keyOf(device),
      hostKey: device.hostKeyFingerprint,
      jump: { host: bastion.host, port: bastion.port, user: bastion.user, auth: keyOf(bastion), hostKey: bastion.hostKeyFingerprint },
    }));
    expect(names).toEqual(Array.from({ length: 4 }, () => `${device.name}\n`));
    // The bastion drops some of the four; the device those through it (when they reach it together).
    expect(dropped(0) - bastionBefore + (dropped(1) - deviceBefore)).toBeGreaterThan(0);
  }, 60_000);

  it('a server that always closes first: tried HANDSHAKE_ATTEMPTS times within seconds, then an error that says what happened', async () => {
    const device = fleet().devices[0]!;
    const server = await closingServer(device.host);
    try {
      const started = performance.now();
      const failure = await DeviceConnection.open({ host: device.host, port: server.port, user: device.user, auth: keyOf(device), hostKey: device.hostKeyFingerprint }).catch((error: unknown) => error);
      expect(failure).toMatchObject({
        code: 'UNAVAILABLE',
        message: expect.stringMatching(
          new RegExp(`^${device.user}@${device.host}:${server.port} closed the connection before the SSH handshake was done, ${HANDSHAKE_ATTEMPTS} times in a row: its sshd may be refusing new connections \\(too many at once: MaxStartups`),
        ) as unknown,
      });
      expect(server.accepted()).toBe(HANDSHAKE_ATTEMPTS);
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('a cancel while it waits to try again ends it at once; a refused port and a changed host key are not tried again', async () => {
    const device = fleet().devices[0]!;
    const server = await closingServer(device.host);
    try {
      const cancel = new AbortController();
      const opening = DeviceConnection.open({ host: device.host, port: server.port, user: device.user, auth: keyOf(device), hostKey: device.hostKeyFingerprint, signal: cancel.signal }).catch((error: unknown) => error);
      await waitFor('the second try', () => server.accepted() >= 2, 10_000, 5);
      const at = performance.now();
      cancel.abort();
      expect(await opening).toMatchObject({ code: 'CANCELLED' });
      expect(performance.now() - at).toBeLessThan(200);
      expect(server.accepted()).toBe(2);
    } finally {
      await server.close();
    }
    // Nothing listens on the closed server's port now.
    const refused = await DeviceConnection.open({ host: device.host, port: server.port, user: device.user, auth: keyOf(device), hostKey: device.hostKeyFingerprint }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringMatching(/is unreachable \(ECONNREFUSED\)$/) as unknown });
    const before = logged(0, /^Connection from /);
    const changed = await DeviceConnection.open({ host: device.host, port: device.port, user: device.user, auth: keyOf(device), hostKey: fleet().devices[1]!.hostKeyFingerprint }).catch((error: unknown) => error);
    expect(changed).toMatchObject({ code: 'HOST_KEY_MISMATCH' });
    expect(logged(0, /^Connection from /) - before).toBe(1);
  }, 30_000);
});
