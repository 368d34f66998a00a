/**
 * A link that dies while a command's channel is being opened: the command reads as cut off by the
 * lost link, as one already running does (the restore's report of what the device holds depends on
 * it), not as "Unable to exec" or an unreachable device. So does one asked for in the moment after the
 * link went and before the connection said so (ssh2 throws "Not connected" then).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../testing/fleet-suite';
import type { AppError } from '../../shared/errors';
import { sh } from './shell-quote';
import { DeviceConnection } from './ssh-connection';

const { skip, fleet } = fleetForFile('lost-link exec tests', { devices: 1, proxy: true, sharedModelMB: 1, uniqueModelMB: 1 });

const open = (device = fleet().devices[0]!) =>
  DeviceConnection.open({ host: device.host, port: device.port, user: device.user, auth: { kind: 'key', privateKey: readFileSync(device.identityFile) }, hostKey: device.hostKeyFingerprint });

describe.skipIf(skip)('a link lost as a command starts', () => {
  it('reads as a command cut off by the lost link, and the connection as closed', async () => {
    const device = fleet().devices[0]!;
    for (let i = 0; i < 10; i++) {
      const connection = await open(device);
      try {
        // The channel's open request is on its way when the link goes (a reset, as a peer that vanished).
        const starting = connection.exec(sh`sleep 5`);
        device.proxy!.cut();
        await expect(starting).rejects.toThrow(new RegExp(`^A command on ${device.user}@.* was cut off: the connection to .* was lost \\(ECONNRESET\\)$`));
        expect(connection.closed).toBe(true);
      } finally {
        device.proxy!.restore();
        connection.close();
      }
    }
  }, 120_000);

  it('a command asked for after the link went, before the connection has said so: also cut off by the lost link, not "Not connected"', async () => {
    const device = fleet().devices[0]!;
    let asked = 0;
    for (let i = 0; i < 5; i++) {
      const connection = await open(device);
      try {
        // A command asked for on every turn of the event loop from the cut on: one turn falls
        // between the socket's reset and the connection's close, where ssh2's socket is no longer
        // writable but nothing has said the link is gone (a busy console's restore met it there and
        // reported a lost link while its services stopped as "Not connected … may hold the restored state").
        device.proxy!.cut();
        const outcomes: Promise<unknown>[] = [];
        for (let turn = 0; !connection.closed && turn < 10_000; turn++) {
          outcomes.push(connection.exec(sh`sleep 5`).then(
            () => 'started',
            (error: unknown) => error,
          ));
          await new Promise((resolve) => setImmediate(resolve));
        }
        expect(connection.closed).toBe(true);
        for (const outcome of await Promise.all(outcomes)) {
          expect(outcome).toBeInstanceOf(Error);
          expect((outcome as AppError).code).toBe('UNAVAILABLE');
          expect((outcome as Error).message).toMatch(new RegExp(`^A command on ${device.user}@.* was cut off: the connection to .* was lost \\(ECONNRESET\\)$`));
        }
        asked += outcomes.length;
      } finally {
        device.proxy!.restore();
        connection.close();
      }
    }
    expect(asked).toBeGreaterThan(0);
  }, 120_000);
});
