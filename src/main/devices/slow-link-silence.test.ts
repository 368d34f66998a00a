/**
 * A slow link is not a silent one (decision 028). Device in a network namespace, its link shaped to
 * 400 kbit/s: an upload as a restore sends one (ssh2 puts a whole 2 MiB window on the socket, ahead
 * of its keepalives) runs through, where ssh2's own keepalive rule gave the device up as "stopped
 * answering" once the allowed silence had passed; the same upload on a cut link is given up after
 * it; an idle connection on a live link stays open.
 */
import { readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { netnsSupport } from '../../../fleet/index';
import { fleetForFile } from '../testing/fleet-suite';
import type { AppError } from '../../shared/errors';
import { sh } from './shell-quote';
import { DeviceConnection } from './ssh-connection';

const NETNS = netnsSupport();
const { skip, fleet } = fleetForFile('slow-link silence tests', { devices: 1, netns: NETNS.ok, sharedModelMB: 1, uniqueModelMB: 1 });
const SILENT_MS = 8_000;
const KBIT = 400;

const open = (device = fleet().devices[0]!) =>
  DeviceConnection.open({ host: device.host, port: device.port, user: device.user, auth: { kind: 'key', privateKey: readFileSync(device.identityFile) }, hostKey: device.hostKeyFingerprint, silentMs: SILENT_MS });

/** Sends `bytes` into `cat > FILE` on the device at once (as a restore's staging does); resolves with the command's end. */
async function upload(connection: DeviceConnection, file: string, bytes: number) {
  const running = await connection.exec(sh`cat > ${file}`);
  running.stdout.resume();
  running.stdin.on('error', () => {}); // a cut link fails the write; `done` says why
  for (let sent = 0; sent < bytes; sent += 64 * 1024) running.stdin.write(Buffer.alloc(Math.min(64 * 1024, bytes - sent), sent & 0xff));
  running.stdin.end();
  return running.done;
}

/** Runs `work` on a fresh connection over the device's link shaped to KBIT, with a file of its own in /tmp. */
async function onSlowLink(name: string, work: (connection: DeviceConnection, file: string) => Promise<void>): Promise<void> {
  const device = fleet().devices[0]!;
  const file = `/tmp/jv-${name}-${process.pid}`;
  await device.link!.rate(KBIT);
  const connection = await open(device);
  try {
    await work(connection, file);
  } finally {
    connection.close();
    await device.link!.clear();
    rmSync(file, { force: true }); // a stand-in device shares this machine's /tmp
  }
}

describe.skipIf(skip || !NETNS.ok)(`a slow link${NETNS.ok ? '' : ` (skipped: ${NETNS.reason})`}`, () => {
  it(`takes an upload that outlasts the allowed silence more than twice over (${KBIT} kbit/s, ${SILENT_MS / 1000} s allowed)`, async () => {
    await onSlowLink('slow-upload', async (connection, file) => {
      const bytes = 1024 * 1024; // ~21 s at 400 kbit/s; ssh2 queues all of it ahead of its first keepalive
      const started = Date.now();
      const result = await upload(connection, file, bytes);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(Date.now() - started).toBeGreaterThan(2 * SILENT_MS);
      expect(connection.closed).toBe(false);
      expect(await connection.run(sh`stat -c %s ${file}`)).toBe(`${bytes}\n`);
    });
  }, 120_000);

  it('gives up the same upload once the link is cut, saying the device stopped answering', async () => {
    await onSlowLink('cut-upload', async (connection, file) => {
      const ending = upload(connection, file, 1024 * 1024);
      await new Promise((r) => setTimeout(r, 2_000));
      await fleet().devices[0]!.link!.cut();
      const cut = Date.now();
      const result = await ending;
      const waited = Date.now() - cut;
      expect(result.signal).toBe('CONNECTION_LOST');
      expect(result.stderr).toMatch(new RegExp(`stopped answering \\(nothing heard from it for ${SILENT_MS / 1000} s`));
      // Counted from the last sign of the link working — the window adjusts the device returns as it
      // takes our data, every 1–3 s at this rate — which can precede the cut by that much.
      expect(waited).toBeGreaterThan(SILENT_MS - 3_000);
      expect(waited).toBeLessThan(SILENT_MS * 2);
      expect(connection.closed).toBe(true);
      await expect(connection.run(sh`true`)).rejects.toMatchObject({ code: 'UNAVAILABLE' } satisfies Partial<AppError>);
    });
  }, 120_000);

  it('keeps an idle connection on a live link open past the allowed silence', async () => {
    const device = fleet().devices[0]!;
    const connection = await open(device);
    try {
      await new Promise((r) => setTimeout(r, 2 * SILENT_MS));
      expect(connection.closed).toBe(false);
      expect(await connection.run(sh`echo still-here`)).toBe('still-here\n');
    } finally {
      connection.close();
    }
  }, 60_000);
});
