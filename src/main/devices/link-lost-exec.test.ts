/**
 * A link that dies while a command's channel is being opened: the command reads as cut off by the
 * lost link, as one already running does (the restore's report of what the device holds depends on
 * it), not as "Unable to exec" or an unreachable device.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../testing/fleet-suite';
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
});
