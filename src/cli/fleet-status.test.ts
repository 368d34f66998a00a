/**
 * `jetvault status`, `alerts` and `run-scheduler --once` against a real fleet device: a device
 * never backed up is at risk, one scheduler tick backs it up, and the alert a stricter rule raises
 * is listed and acknowledged from the command line.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../main/testing/fleet-suite';
import { DEFAULT_RULES } from '../shared/schemas/monitoring';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const { skip, fleet } = fleetForFile('status/alerts/run-scheduler CLI tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

describe.skipIf(skip)('jetvault status, alerts and run-scheduler', () => {
  it('shows the device at risk, backs it up in one scheduler tick, then lists and acknowledges an alert', async () => {
    const device = fleet().devices[0]!;
    const run = cliRunner({ JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli status test repository password' });
    const file = path.join(tempDir(), 'device.json');
    const profile = device.profile();
    writeFileSync(file, JSON.stringify({ ...profile, rpoMinutes: 30, sources: profile.sources.filter((s) => s.name === 'config') }));
    expect((await run('device', 'import', file)).code).toBe(0);
    expect((await run('init')).code).toBe(0);

    const before = await run('status', '--json');
    expect(before.code).toBe(1);
    expect(JSON.parse(before.out)).toMatchObject([{ name: device.name, status: 'at-risk', rpoState: 'never', rpoMinutes: 30, next: { state: 'due', reason: 'never backed up' } }]);
    // The table's columns line up under their headings, also after the longest status.
    const [heading, row] = (await run('status')).out.split('\n') as [string, string];
    expect(row).toMatch(new RegExp(`^${device.name}\\s+Test Depot\\s+never backed up\\s+—.* due: never backed up$`));
    for (const column of ['LAST GOOD', 'RPO', 'ALERTS', 'NEXT']) expect(row[heading.indexOf(column) - 1]).toBe(' ');
    expect(row.indexOf('—')).toBe(heading.indexOf('LAST GOOD'));

    const tick = await run('run-scheduler', '--once');
    expect(tick.err).toBe('');
    expect(tick).toMatchObject({ code: 0, out: `started: ${device.name}` });
    const after = await run('status');
    expect(after.code).toBe(0);
    expect(after.out).toMatch(new RegExp(`${device.name}\\s+Test Depot\\s+protected .* waiting until \\S.*: RPO of 30 min\n`));
    expect(after.out).toMatch(/1 protected, 0 at risk/);
    expect((await run('run-scheduler', '--once')).out).toBe('nothing due');
    expect((await run('alerts')).code).toBe(0);

    // A stricter rule (0 × RPO) breaches at once; the alert is listed and acknowledged.
    const rules = { ...DEFAULT_RULES, rpoBreached: { enabled: true, threshold: 0 } };
    expect((await run('settings', 'set', 'monitoringRules', JSON.stringify(rules))).code).toBe(0);
    const listed = await run('alerts', '--json');
    expect(listed.code).toBe(1);
    const [alert] = JSON.parse(listed.out) as { id: number; rule: string; device: string }[];
    expect(alert).toMatchObject({ rule: 'rpoBreached', device: device.name });
    expect((await run('alerts', 'ack', String(alert!.id))).out).toMatch(/^acknowledged/);
    expect((await run('alerts')).out).toMatch(/acked {4}.*last good backup/);
    expect((await run('alerts', 'ack', 'x')).code).toBe(2);

    // Reinstalled (here: a profile pinning another key): the refused run shows in the status, with the way out.
    writeFileSync(file, JSON.stringify({ ...profile, hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', sources: profile.sources.filter((s) => s.name === 'config') }));
    expect((await run('device', 'import', file, '--replace')).code).toBe(0);
    expect((await run('backup', '--device', device.name)).err).toMatch(/has CHANGED/);
    const refused = await run('status');
    expect(refused.out).toContain(`${device.name}: its host key changed since it was pinned`);
    expect(refused.out).toContain(`jetvault device trust ${device.name}`);
    expect(JSON.parse((await run('status', '--json')).out)).toMatchObject([{ lastAttempt: 'failed', lastAttemptError: { code: 'HOST_KEY_MISMATCH' } }]);
  });
});
