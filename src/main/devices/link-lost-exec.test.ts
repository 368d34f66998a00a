/**
 * A link that dies while a command's channel is being opened: the command reads as cut off by the
 * lost link, as one already running does (the restore's report of what the device holds depends on
 * it), not as "Unable to exec" or an unreachable device.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { sh } from './shell-quote';
import { DeviceConnection } from './ssh-connection';

const skip = process.getuid?.() !== 0;
if (skip) console.log('lost-link exec tests skipped: the fleet needs root (device accounts, sshd); CI runs as root');

let fleet: Fleet;
let device: Device;

beforeAll(async () => {
  if (skip) return;
  fleet = await startFleet({ devices: 1, proxy: true, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
}, 240_000);

afterAll(async () => {
  await fleet?.stop();
}, 120_000);

const open = () => DeviceConnection.open({ host: device.host, port: device.port, user: device.user, auth: { kind: 'key', privateKey: readFileSync(device.identityFile) }, hostKey: device.hostKeyFingerprint });

describe.skipIf(skip)('a link lost as a command starts', () => {
  it('reads as a command cut off by the lost link, and the connection as closed', async () => {
    for (let i = 0; i < 10; i++) {
      const connection = await open();
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
