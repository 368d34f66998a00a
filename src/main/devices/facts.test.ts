import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DeviceProfileSchema, MAX_SOURCES } from '../../shared/schemas/devices';
import { tempDir } from '../testing/temp-dir';
import { disksOfProbe, factsCommand, parseFacts, parseL4t, parsePlatform, platformCommand, proposeSources } from './facts';
import { commandText } from './shell-quote';

const L4T = '# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024';

/** A Jetson-shaped folder tree; the script runs in a real shell against it. */
function jetsonRoot(): string {
  const root = path.join(tempDir(), "dev root with 'quotes'");
  const at = (...p: string[]) => path.join(root, ...p);
  for (const dir of ['etc/myrvm', 'opt/myrvm/data', 'opt/myrvm/models', 'opt/nvidia/l4t', 'var/log/myrvm', 'var/lib/misc']) mkdirSync(at(dir), { recursive: true });
  writeFileSync(at('etc/nv_tegra_release'), `${L4T}\n# KERNEL_VARIANT: oot\n`);
  writeFileSync(at('etc/myrvm/config.yaml'), 'camera: {fps: 30}\n');
  writeFileSync(at('opt/myrvm/.env'), 'MYRVM_ENV=production\n');
  writeFileSync(at('var/lib/misc/not-sqlite.db'), 'plain text pretending');
  const db = new Database(at('opt/myrvm/data/local.db'));
  db.exec('CREATE TABLE t (x)');
  db.close();
  return root;
}

describe('device facts', () => {
  it('parses the L4T release line', () => {
    expect(parseL4t(L4T)).toEqual({ release: 'R36', revision: '4.0', board: 'generic', line: L4T });
    expect(parseL4t('garbage')).toBeNull();
  });

  it('reads facts with a real shell against a device tree and proposes sources', () => {
    const root = jetsonRoot();
    const output = execFileSync('/bin/sh', ['-c', commandText(factsCommand(root))], { encoding: 'utf8' });
    const facts = parseFacts(output);
    expect(facts.l4t).toMatchObject({ release: 'R36', revision: '4.0' });
    expect(facts.kernel).not.toBe('');
    expect(facts.disks.some((d) => d.mount === '/' && d.sizeBytes > 0)).toBe(true);
    expect(facts.tools.sqlite3).toMatch(/sqlite3$/);
    expect(facts.appDirs).toEqual([path.join(root, 'opt/myrvm')]); // opt/nvidia is JetPack's, not an app
    expect(facts.sqliteFiles).toEqual([path.join(root, 'opt/myrvm/data/local.db')]); // the fake .db is skipped
    expect(facts.configPaths).toEqual([path.join(root, 'etc/myrvm'), path.join(root, 'opt/myrvm/.env')]);
    expect(facts.logDirs).toEqual([path.join(root, 'var/log/myrvm')]);

    const proposals = proposeSources({ ...facts, postgresDatabases: ['/run/postgresql\t5432\tmyrvm'] });
    expect(proposals).toEqual([
      { name: 'db-myrvm', kind: 'postgres', database: 'myrvm', host: '/run/postgresql', port: 5432 },
      { name: 'sqlite-local', kind: 'sqlite', path: path.join(root, 'opt/myrvm/data/local.db') },
      { name: 'config', kind: 'files', paths: [path.join(root, 'etc/myrvm'), path.join(root, 'opt/myrvm/.env')] },
      { name: 'logs', kind: 'files', paths: [path.join(root, 'var/log/myrvm')] },
      { name: 'app-myrvm', kind: 'files', paths: [path.join(root, 'opt/myrvm')], exclude: ['data/local.db*'] },
    ]);
    // Accepted sources are not proposed again; names never collide.
    const again = proposeSources(facts, [{ name: 'config', kind: 'sqlite', path: '/x' }, proposals[1]!]);
    expect(again.map((s) => s.name)).toEqual(['config-2', 'logs', 'app-myrvm']);
  });

  it('proposes no more sources than a device can have: a folder of daily SQLite files fills what is left after the databases, config, logs and app, and the rest stay in the app folder', () => {
    const root = jetsonRoot();
    const daily = path.join(root, 'opt/myrvm/data/daily');
    mkdirSync(daily);
    for (let day = 1; day <= 70; day++) {
      const db = new Database(path.join(daily, `2026-10-${String(day).padStart(2, '0')}.db`));
      db.exec('CREATE TABLE t (x)');
      db.close();
    }
    const facts = parseFacts(execFileSync('/bin/sh', ['-c', commandText(factsCommand(root))], { encoding: 'utf8' }));
    expect(facts.sqliteFiles).toHaveLength(71);
    const existing = [{ name: 'db', kind: 'postgres' as const, database: 'myrvm' }];
    const proposals = proposeSources({ ...facts, postgresDatabases: ['/run/postgresql\t5432\tother'] }, existing);
    // Accepted, they make a profile the console keeps (at most 64 sources).
    const accepted = DeviceProfileSchema.safeParse({ name: 'rvm-017', host: '127.0.0.2', user: 'jetson', sources: [...existing, ...proposals] });
    expect(accepted.success).toBe(true);
    expect(proposals).toHaveLength(MAX_SOURCES - existing.length);
    expect(proposals.map((p) => p.name)).toEqual(expect.arrayContaining(['db-other', 'config', 'logs', 'app-myrvm', 'sqlite-local']));
    // The SQLite files left out are copied with the app's folder, not excluded from it too.
    const app = proposals.find((p) => p.name === 'app-myrvm') as { exclude?: string[] };
    const ownSources = new Set(proposals.flatMap((p) => (p.kind === 'sqlite' ? [p.path] : [])));
    expect(app.exclude).toHaveLength(ownSources.size);
    for (const pattern of app.exclude!) expect(ownSources.has(path.join(root, 'opt/myrvm', pattern.replace(/\*$/, '')))).toBe(true);
  });

  it("reads a run's platform and disks with a real shell: release line, NUL-ended model, df without its header", () => {
    const root = jetsonRoot();
    mkdirSync(path.join(root, 'proc/device-tree'), { recursive: true });
    writeFileSync(path.join(root, 'proc/device-tree/model'), 'NVIDIA Jetson AGX Orin Developer Kit\0');
    const output = execFileSync('/bin/sh', ['-c', commandText(platformCommand(root))], { encoding: 'utf8' });
    expect(parsePlatform(output)).toEqual({ l4t: 'R36.4.0', board: 'NVIDIA Jetson AGX Orin Developer Kit' });
    const disks = disksOfProbe(output)!;
    expect(disks.some((d) => d.mount === '/' && d.sizeBytes > 0)).toBe(true);
    expect(disks.every((d) => Number.isFinite(d.sizeBytes) && d.filesystem !== 'Filesystem')).toBe(true);

    // A release file without its final newline still gives its line; no release file, no model: none.
    writeFileSync(path.join(root, 'etc/nv_tegra_release'), L4T);
    expect(parsePlatform(execFileSync('/bin/sh', ['-c', commandText(platformCommand(root))], { encoding: 'utf8' })).l4t).toBe('R36.4.0');
    const bare = tempDir();
    expect(parsePlatform(execFileSync('/bin/sh', ['-c', commandText(platformCommand(bare))], { encoding: 'utf8' }))).toEqual({ l4t: null, board: null });
    // df said nothing (no local disks, or it timed out): nothing is known of the disks.
    expect(disksOfProbe('@@l4t\n@@model\n@@df\n@@end\n')).toBeNull();
    expect(disksOfProbe('@@df\nDateisystem 1024-Blöcke Benutzt Verfügbar Kapazität Eingehängt auf\n@@end\n')).toBeNull();
  });
});
