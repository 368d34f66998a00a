/**
 * Devices reached through a jump host (bastion), against two real fleet devices: the first is the
 * bastion for the second. Both host keys are pinned only after confirmation, the route really goes
 * through the bastion, a backup runs through the tunnel, and a bastion gone silent is named as such.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Device, Fleet } from '../../../fleet/index';
import { tempDir } from '../testing/temp-dir';
import { DeviceConnector } from './device-connector';
import { sh } from './shell-quote';
import { DeviceConnection } from './ssh-connection';
import { cliRunner } from '../../cli/testing';

const skip = process.getuid?.() !== 0;
if (skip) console.log('jump host tests skipped: the fleet needs root (device accounts, sshd); CI runs as root');

let fleet: Fleet;
let bastion: Device;
let device: Device;
beforeAll(async () => {
  if (skip) return;
  fleet = await startFleet({ devices: 2, proxy: true, sharedModelMB: 1, uniqueModelMB: 1 });
  [bastion, device] = fleet.devices as [Device, Device];
}, 240_000);
afterAll(async () => {
  await fleet?.stop();
}, 120_000);

/** A connection to the device through the bastion, as the console opens one for a profile with a jump host. */
const openThroughBastion = (extra: { silentMs?: number } = {}) =>
  DeviceConnection.open({
    host: device.direct.host,
    port: device.direct.port,
    user: device.user,
    auth: { kind: 'key', privateKey: readFileSync(device.identityFile) },
    hostKey: device.hostKeyFingerprint,
    jump: { host: bastion.host, port: bastion.port, user: bastion.user, auth: { kind: 'key', privateKey: readFileSync(bastion.identityFile) }, hostKey: bastion.hostKeyFingerprint },
    ...extra,
  });

describe.skipIf(skip)('a device behind a jump host', () => {
  it('confirms the jump host key, then the device key through the tunnel, and backs up through it', async () => {
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'jump host test repository password' };
    const run = cliRunner(env);
    const base = ['device', 'add', 'rvm-far', '--host', device.direct.host, '--port', String(device.direct.port), '--user', device.user, '--identity', device.identityFile];
    const jump = ['--jump', `${bastion.user}@${bastion.host}:${bastion.port}`, '--jump-identity', bastion.identityFile];

    // 1. The jump host's key first, fetched without logging in.
    const first = await run(...base, ...jump);
    expect(first.code).toBe(3);
    expect(first.out).toBe(bastion.hostKeyFingerprint);
    expect(first.err).toMatch(/jump host/);

    // 2. A wrong jump host key is refused before anything is sent to either host.
    const wrong = await run(...base, ...jump, '--jump-host-key', device.hostKeyFingerprint, '--host-key', device.hostKeyFingerprint);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/The jump host .* presents the host key .*, not the .* given with --jump-host-key\. Nothing was sent and rvm-far was not added/);
    expect((await run('device', 'list', '--json')).out).toBe('[]');

    // 3. With the jump host confirmed, the device's key comes through the tunnel.
    const second = await run(...base, ...jump, '--jump-host-key', bastion.hostKeyFingerprint);
    expect(second.code).toBe(3);
    expect(second.out).toBe(device.hostKeyFingerprint);
    expect(second.err).toMatch(/through/);

    const added = await run(...base, ...jump, '--jump-host-key', bastion.hostKeyFingerprint, '--host-key', device.hostKeyFingerprint);
    expect(added.err).toBe('');
    expect(added.code).toBe(0);
    const exported = JSON.parse((await run('device', 'export', 'rvm-far')).out) as { devices: { jump: unknown }[] };
    expect(exported.devices[0]!.jump).toEqual({ user: bastion.user, host: bastion.host, port: bastion.port, hostKey: bastion.hostKeyFingerprint, identityFile: bastion.identityFile });

    // 4. A backup through the tunnel (the device's root is given by importing its profile's sources).
    const profile = device.profile();
    const file = path.join(tempDir(), 'far.json');
    const jumpHost = { user: bastion.user, host: bastion.host, port: bastion.port, hostKey: bastion.hostKeyFingerprint, identityFile: bastion.identityFile };
    writeFileSync(file, JSON.stringify({ ...profile, name: 'rvm-far', host: device.direct.host, port: device.direct.port, jump: jumpHost }));
    expect((await run('device', 'import', file, '--replace')).code).toBe(0);
    expect((await run('init')).code).toBe(0);
    const backedUp = await run('backup', '--device', 'rvm-far', '--source', 'config', '--json');
    expect(backedUp.err).toBe('');
    expect(backedUp.code).toBe(0);
    expect((JSON.parse(backedUp.out) as { snapshots: unknown[] }).snapshots).toHaveLength(1);

    // The key check of the device page and `device trust` go through the bastion too.
    const trusted = await run('device', 'trust', 'rvm-far');
    expect(trusted.code).toBe(0);
    expect(trusted.out).toBe(device.hostKeyFingerprint);

    // A bastion reinstalled with a new key: shown first (the device's key is read through it), and
    // pinned only as presented; then the device is reached again.
    writeFileSync(file, JSON.stringify({ ...profile, name: 'rvm-far', host: device.direct.host, port: device.direct.port, jump: { ...jumpHost, hostKey: device.hostKeyFingerprint } }));
    expect((await run('device', 'import', file, '--replace')).code).toBe(0);
    const changed = await run('device', 'trust', 'rvm-far');
    expect(changed.code).toBe(3);
    expect(changed.out).toBe(bastion.hostKeyFingerprint);
    expect(changed.err).toContain(`jump host of rvm-far has CHANGED: pinned ${device.hostKeyFingerprint}, presented ${bastion.hostKeyFingerprint}`);
    expect(changed.err).toContain(`--jump-host-key ${bastion.hostKeyFingerprint}`);
    expect((await run('device', 'trust', 'rvm-far', '--jump-host-key', bastion.hostKeyFingerprint, '--host-key', device.hostKeyFingerprint)).code).toBe(2);
    expect((await run('device', 'trust', 'rvm-far', '--jump-host-key', device.hostKeyFingerprint)).err).toMatch(/Nothing was pinned/);
    const repinned = await run('device', 'trust', 'rvm-far', '--jump-host-key', bastion.hostKeyFingerprint);
    expect(repinned.out).toBe(`pinned ${bastion.hostKeyFingerprint} for the jump host of rvm-far (was ${device.hostKeyFingerprint})`);
    const both = await run('device', 'trust', 'rvm-far');
    expect(both.code).toBe(0);
    expect(both.err).toMatch(/and so does its jump host/);
    expect((JSON.parse((await run('device', 'export', 'rvm-far')).out) as { devices: { hostKey: string; jump: { hostKey: string } }[] }).devices[0]).toMatchObject({ hostKey: device.hostKeyFingerprint, jump: { hostKey: bastion.hostKeyFingerprint } });

    // 5. The route really is the bastion: with the bastion unreachable, the device cannot be reached,
    //    although it answers directly.
    bastion.proxy!.cut();
    try {
      const cutOff = await run('backup', '--device', 'rvm-far', '--source', 'config');
      expect(cutOff.code).toBe(1);
      expect(cutOff.err).toMatch(/jump host .*unreachable/);
      expect((await run('device', 'trust', 'rvm-far')).err).toMatch(/jump host .*unreachable/);
      expect(await DeviceConnector.probeHostKey(device.direct.host, device.direct.port)).toBe(device.hostKeyFingerprint);
    } finally {
      bastion.proxy!.restore();
    }
  });

  it('closes the jump host connection with the device connection', async () => {
    const connection = await openThroughBastion();
    expect((await connection.run(sh`echo through`)).trim()).toBe('through');
    expect(bastion.proxy!.connections).toBe(1);
    connection.close();
    for (let i = 0; i < 50 && bastion.proxy!.connections > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(bastion.proxy!.connections).toBe(0);
  });

  it('gives the device up once its jump host has been silent for the allowed time, saying which stopped answering', async () => {
    const connection = await openThroughBastion({ silentMs: 4_000 });
    try {
      const running = await connection.exec(sh`sleep 60`);
      running.stdout.resume();
      bastion.proxy!.stall();
      const stalled = Date.now();
      const result = await running.done;
      expect(Date.now() - stalled).toBeLessThan(10_000);
      expect(result.signal).toBe('CONNECTION_LOST');
      // Not only "the connection to … was lost": which hop went silent.
      expect(result.stderr).toMatch(/^the connection to .* \(via jump host .*\) was lost: jump host \S+ stopped answering \(nothing heard from it for 4 s/);
      expect(connection.closed).toBe(true);
    } finally {
      bastion.proxy!.restore();
      connection.close();
    }
  });
});
