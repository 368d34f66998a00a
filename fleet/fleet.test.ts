import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { factsCommand, parseFacts } from '../src/main/devices/facts';
import { commandText } from '../src/main/devices/shell-quote';
import { DeviceProfileSchema } from '../src/shared/schemas/devices';
import { isRoot } from './accounts';
import { isAlive } from './exec';
import { startFleet } from './fleet';
import type { Fleet } from './fleet';
import { connect, execOn, sshExec } from './ssh';
import { leftovers, skipReason, tracesOf } from './test-support';
import type { FleetTraces } from './test-support';

const skip = skipReason('fleet', isRoot() ? null : 'the test fleet needs root (accounts, sshd as root); CI runs as root');

describe.skipIf(skip)('a fleet of three devices', () => {
  let fleet: Fleet;
  let traces: FleetTraces;

  beforeAll(async () => {
    fleet = await startFleet({ devices: 3, proxy: true, sharedModelMB: 12, uniqueModelMB: 6 });
    traces = tracesOf(fleet);
    console.info(`fleet of 3 started in ${fleet.startMs} ms; memory per device: ${fleet.devices.map((d) => JSON.stringify(d.memory())).join(' ')}`);
  });

  afterAll(async () => {
    await fleet?.stop();
    if (traces) expect(await leftovers(traces, 3_000)).toEqual([]);
  });

  it('starts the devices in parallel, each answering SSH as its own account with its own host key', async () => {
    expect(fleet.devices).toHaveLength(3);
    expect(new Set(fleet.devices.map((d) => d.hostKeyFingerprint)).size).toBe(3);
    expect(new Set(fleet.devices.map((d) => d.direct.host)).size).toBe(3);
    await Promise.all(
      fleet.devices.map(async (d) => {
        expect(d.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
        const r = await d.exec('id -un; hostname; echo "$SHELL"');
        expect(r.code).toBe(0);
        expect(r.stdout.toString().split('\n')).toEqual([d.user, d.name, '/bin/bash', '']);
      }),
    );
  });

  it('has a live reaper watching the fleet (for when this worker is killed)', () => {
    expect(fleet.reaperPid).toBeDefined();
    expect(isAlive(fleet.reaperPid!)).toBe(true);
    expect(readFileSync(`/proc/${fleet.reaperPid}/cmdline`, 'utf8')).toContain('reaper.ts');
  });

  it('refuses a connection whose host key is not the expected one', async () => {
    const [a, b] = fleet.devices;
    const target = { ...a!.endpoint, user: a!.user, identityFile: a!.identityFile, hostKeyFingerprint: b!.hostKeyFingerprint };
    await expect(sshExec(target, 'true')).rejects.toThrow(/Host key mismatch/);
  });

  it('refuses other keys and other accounts (key-only, one account)', async () => {
    const [a, b] = fleet.devices;
    await expect(sshExec({ ...a!.endpoint, user: a!.user, identityFile: b!.identityFile, hostKeyFingerprint: a!.hostKeyFingerprint }, 'true')).rejects.toThrow(/authentication/i);
    await expect(sshExec({ ...a!.endpoint, user: 'root', identityFile: a!.identityFile, hostKeyFingerprint: a!.hostKeyFingerprint }, 'true')).rejects.toThrow(/authentication/i);
  });

  it('dumps PostgreSQL with pg_dump through SSH', async () => {
    const d = fleet.devices[1]!;
    const r = await d.exec(`pg_dump -h '${d.pg.socketDir}' -p ${d.pg.port} ${d.pg.database}`);
    expect(r.code).toBe(0);
    const dump = r.stdout.toString();
    expect(dump).toContain('CREATE TABLE public.deposits');
    expect(dump).toContain(`\t${d.name}\t`);
    const rows = (dump.match(/^COPY public\.\w+ .*$[\s\S]*?^\\\.$/gm) ?? []).reduce((n, block) => n + block.split('\n').length - 2, 0);
    expect(rows).toBeGreaterThan(200_000);
  });

  it('backs SQLite up online with sqlite3 .backup through SSH (WAL mode, ~50k rows)', async () => {
    const d = fleet.devices[2]!;
    const r = await d.exec(`sqlite3 '${d.sqlitePath}' 'PRAGMA journal_mode;' ".backup '$HOME/local-backup.db'" && sqlite3 "$HOME/local-backup.db" 'SELECT (SELECT count(*) FROM scans) + (SELECT count(*) FROM sync_queue) + (SELECT count(*) FROM calibration); PRAGMA integrity_check;'`);
    expect(r.stderr).toBe('');
    const [mode, rows, integrity] = r.stdout.toString().trim().split('\n');
    expect(mode).toBe('wal');
    expect(Number(rows)).toBeGreaterThan(49_000);
    expect(integrity).toBe('ok');
  });

  it('looks like a Jetson: L4T release, app, models shared and unique, config, unit, live and rotated logs', async () => {
    const sums = await Promise.all(
      fleet.devices.map(async (d) => {
        const m = `${d.root}/opt/myrvm/models`;
        const r = await d.exec(
          `head -n1 '${d.root}/etc/nv_tegra_release'; sha256sum '${m}/detector-v7.onnx' '${m}/detector-v7.engine' | cut -c1-64; stat -c %i '${m}/detector-v7.onnx'; ` +
            `ls '${d.root}/opt/myrvm/myrvm/vision' '${d.root}/etc/systemd/system' '${d.root}/etc/myrvm'; ls '${d.root}/var/log/myrvm'; gzip -t '${d.root}'/var/log/myrvm/*.gz && echo gz-ok; grep -c '' '${d.root}/opt/myrvm/.env'`,
        );
        expect(r.code).toBe(0);
        return r.stdout.toString().split('\n');
      }),
    );
    for (const lines of sums) {
      expect(lines[0]).toMatch(/^# R3[56] \(release\), REVISION: /);
      expect(lines.join('\n')).toMatch(/detector\.py/);
      expect(lines.join('\n')).toMatch(/myrvm\.service/);
      expect(lines.join('\n')).toMatch(/app\.log\.2\.gz/);
      expect(lines).toContain('gz-ok');
    }
    // Shared model: same bytes everywhere, separate files; engine: unique per device.
    expect(new Set(sums.map((l) => l[1])).size).toBe(1);
    expect(new Set(sums.map((l) => l[3])).size).toBe(3);
    expect(new Set(sums.map((l) => l[2])).size).toBe(3);
  });

  it('has awkward names in its data folder', async () => {
    const d = fleet.devices[0]!;
    const r = await d.exec(`cd '${d.root}/opt/myrvm/data/files' && find . -mindepth 1 -printf '%y %m %n %s %T@ %P\\0'`);
    const entries = r.stdout.toString().split('\0').filter(Boolean);
    const byName = new Map(entries.map((e) => [e.split(' ').slice(5).join(' '), e.split(' ')]));
    for (const name of ['with space.txt', 'new\nline.txt', 'ünïcødé – ファイル.txt', '-leading-dash.txt', `long-${'x'.repeat(191)}.txt`, 'empty-dir', 'link-to-space']) expect(byName.has(name), name).toBe(true);
    expect(Buffer.byteLength(`long-${'x'.repeat(191)}.txt`)).toBe(200);
    expect(byName.get('empty.bin')![3]).toBe('0');
    expect(byName.get('empty-dir')![0]).toBe('d');
    expect(byName.get('link-to-space')![0]).toBe('l');
    expect(byName.get('report.csv')![2]).toBe('2'); // hard link
    expect(byName.get('secret.key')![1]).toBe('600');
    expect(byName.get('readonly.txt')![1]).toBe('444');
    expect(byName.get('old.txt')![4]!.startsWith('946684799')).toBe(true);
  });

  it('exports a profile the console imports', () => {
    for (const d of fleet.devices) {
      const profile = DeviceProfileSchema.parse(d.profile());
      expect(profile).toMatchObject({ name: d.name, host: d.host, port: d.port, user: d.user, identityFile: d.identityFile, hostKey: d.hostKeyFingerprint });
      expect(profile.sources.map((s) => `${s.name}:${s.kind}`)).toEqual(['db:postgres', 'local:sqlite', 'config:files', 'logs:files', 'app:files']);
    }
  });

  it("answers the console's fact probe: L4T release, host name, databases, SQLite file, app/config/log dirs", async () => {
    const d = fleet.devices[0]!;
    const r = await d.exec(commandText(factsCommand(d.root)));
    const facts = parseFacts(r.stdout.toString());
    expect(facts.hostname).toBe(d.name);
    expect(facts.l4t?.release).toMatch(/^R3[56]$/);
    expect(facts.model).toMatch(/^NVIDIA Jetson .*Orin/);
    expect(facts.postgresDatabases.join('\n')).toContain(`${d.pg.socketDir}\t${d.pg.port}\t${d.pg.database}`);
    expect(facts.sqliteFiles).toContain(d.sqlitePath);
    expect(facts.appDirs).toContain(`${d.root}/opt/myrvm`);
    expect(facts.configPaths).toEqual(expect.arrayContaining([`${d.root}/etc/myrvm`, `${d.root}/opt/myrvm/.env`]));
    expect(facts.logDirs).toContain(`${d.root}/var/log/myrvm`);
    expect(Object.keys(facts.tools)).toEqual(expect.arrayContaining(['pg_dump', 'psql', 'sqlite3', 'tar', 'sha256sum']));
  });

  it('a delayed link (loopback delay proxy) is measurably slower', async () => {
    const d = fleet.devices[0]!;
    const timeExecs = async () => {
      const client = await connect({ ...d.endpoint, user: d.user, identityFile: d.identityFile, hostKeyFingerprint: d.hostKeyFingerprint });
      try {
        const started = Date.now();
        for (let i = 0; i < 5; i++) expect((await execOn(client, 'true')).code).toBe(0);
        return Date.now() - started;
      } finally {
        client.end();
      }
    };
    d.proxy!.delayMs = 0;
    const fast = await timeExecs();
    d.proxy!.delayMs = 100;
    try {
      const slow = await timeExecs();
      // Each exec needs at least one round trip (2 × 100 ms); allow generous slack.
      expect(slow).toBeGreaterThanOrEqual(fast + 5 * 200 * 0.7);
    } finally {
      d.proxy!.delayMs = 0;
    }
  });
});
