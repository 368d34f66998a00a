/**
 * Under Settings → Bandwidth limit a command's output passes through the link's limiter, which may
 * still hold some of it when the device closes the channel: a command's result (`done`) must wait
 * for what is held, or its output arrives cut short. A restore read an empty `df` that way and
 * refused itself: "the restore needs … bytes of staging, 0 are free".
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../testing/fleet-suite';
import { sh } from './shell-quote';
import { DeviceConnection, runToString } from './ssh-connection';
import { countedSink, writeCounted } from './wire-compression';

const { skip, fleet } = fleetForFile('rate-limited output tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

/** A connection to the fleet's device under a bandwidth limit of `rate` bytes a second. */
function limitedConnection(rate: number): Promise<DeviceConnection> {
  const profile = fleet().devices[0]!.profile();
  return DeviceConnection.open({
    host: profile.host,
    port: profile.port,
    user: profile.user,
    auth: { kind: 'key', privateKey: readFileSync(profile.identityFile) },
    hostKey: profile.hostKey,
    rateLimit: () => rate,
  });
}

describe.skipIf(skip)('a command under a bandwidth limit', () => {
  it('delivers all of its output before its result: runToString and a reader that stops at `done` lose nothing', async () => {
    // 64 KiB/s: 200,000 bytes take about 3 s to pass, long after the device closed the channel.
    const connection = await limitedConnection(64 * 1024);
    try {
      const text = await runToString(connection, sh`head -c 200000 /dev/zero | tr '\\0' a`);
      expect(text.length).toBe(200_000);

      const running = await connection.exec(sh`head -c 100000 /dev/zero | tr '\\0' b; echo; echo last-line`);
      running.stdin.end();
      let received = '';
      running.stdout.on('data', (chunk: Buffer) => (received += chunk.toString()));
      expect((await running.done).code).toBe(0);
      expect(received.length).toBe(100_011);
      expect(received.endsWith('\nlast-line\n')).toBe(true);
    } finally {
      connection.close();
    }
  }, 60_000);

  it('counts what it sends as the link carries it, not whole blobs as they are queued (a restore\'s progress and ETA)', async () => {
    const rate = 256 * 1024;
    const connection = await limitedConnection(rate);
    const blob = randomBytes(768 * 1024); // one large blob: taken by the pipe at once, carried over ~3 s
    const send = async (how: 'write' | 'pipe') => {
      const running = await connection.exec(sh`cat > /dev/null`);
      running.stdout.resume();
      const started = performance.now();
      let counted = 0;
      let ahead = 0; // the most the count ran ahead of what the limit lets through by then
      const onSent = (bytes: number) => {
        counted += bytes;
        ahead = Math.max(ahead, counted - (rate * (performance.now() - started)) / 1000);
      };
      if (how === 'write') {
        expect(await writeCounted(running.stdin, blob, onSent, running.done)).toBe(true);
        running.stdin.end();
      } else {
        Readable.from([blob]).pipe(countedSink(running.stdin, onSent));
      }
      expect((await running.done).code).toBe(0);
      expect(counted).toBe(blob.length);
      expect(ahead).toBeLessThan(256 * 1024);
    };
    try {
      await send('write');
      await send('pipe');
    } finally {
      connection.close();
    }
  }, 60_000);
});
