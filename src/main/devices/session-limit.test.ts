/**
 * A device's sshd allows 10 sessions at once on a connection by default (MaxSessions, as the fleet's
 * devices are set up): a job that asks for more at once — a whole-device restore while it plans —
 * has its extra commands wait for a session of the connection to end instead of failing with
 * "(SSH) Channel open failure: open failed".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../testing/fleet-suite';
import { raw, sh } from './shell-quote';
import { DeviceConnection, runToString } from './ssh-connection';
import type { RunningCommand } from './ssh-connection';

const { skip, fleet } = fleetForFile('session limit tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

const open = (device = fleet().devices[0]!) =>
  DeviceConnection.open({ host: device.host, port: device.port, user: device.user, auth: { kind: 'key', privateKey: readFileSync(device.identityFile) }, hostKey: device.hostKeyFingerprint });

const settledWithin = (promise: Promise<unknown>, ms: number) =>
  Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
  ]);

/** Runs `body` on a new connection with `count` sessions held open (each `cat` waits for its stdin to end), ended afterwards. */
async function withHeld(count: number, body: (connection: DeviceConnection, held: RunningCommand[]) => Promise<void>): Promise<void> {
  const connection = await open();
  const held: RunningCommand[] = [];
  try {
    for (let i = 0; i < count; i++) held.push(await connection.exec(raw('cat')));
    for (const c of held) c.stdout.resume();
    await body(connection, held);
  } finally {
    for (const c of held) c.stdin.end();
    await Promise.all(held.map((c) => c.done));
    connection.close();
  }
}

describe.skipIf(skip)("more commands at once than the device's sshd has sessions for", () => {
  it('all run to their end, each with its own output', async () => {
    expect(readFileSync(path.join(fleet().devices[0]!.dir, 'sshd_config'), 'utf8')).toMatch(/^MaxSessions 10$/m);
    const connection = await open();
    try {
      const outputs = await Promise.all(Array.from({ length: 25 }, (_, i) => runToString(connection, sh`sleep 0.3; echo ${`command ${i}`}`)));
      expect(outputs).toEqual(Array.from({ length: 25 }, (_, i) => `command ${i}\n`));
    } finally {
      connection.close();
    }
  }, 60_000);

  it('bursts of short commands beside eight long ones: a command after them starts at once (nothing learnt from a refusal holds it back)', () =>
    withHeld(8, async (connection) => {
      for (let round = 0; round < 8; round++) await Promise.all(Array.from({ length: 20 }, () => runToString(connection, raw('true'))));
      // Two sessions are free on the device: this one must not wait for a long one to end.
      expect(await settledWithin(runToString(connection, raw('echo free')), 3000)).toBe(true);
    }), 60_000);

  it('one beyond the limit waits until a session of the connection ends, then runs; a cancel ends its wait at once', () =>
    withHeld(10, async (connection, held) => {
      const waiting = runToString(connection, raw('echo after'));
      expect(await settledWithin(waiting, 1500)).toBe(false);
      const cancel = new AbortController();
      const cancelled = connection.exec(raw('echo never'), cancel.signal);
      cancelled.catch(() => undefined);
      cancel.abort();
      await expect(cancelled).rejects.toThrow('Cancelled');
      held[0]!.stdin.end();
      expect(await waiting).toBe('after\n');
    }), 60_000);
});
