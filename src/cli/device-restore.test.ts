/**
 * Restores onto a real fleet device from the command line: a dry run changes nothing, a
 * destructive restore needs --yes, `rollback` returns the device to what it held before, and
 * `keep` settles a restore so nothing waits any more.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { fleetForFile } from '../main/testing/fleet-suite';
import type { Device } from '../../fleet/index';
import { psql } from '../../fleet/postgres';
import { tempDir } from '../main/testing/temp-dir';
import { EXIT_NOT_CONFIRMED } from './commands/device-restore';
import { cliRunner } from './testing';

const { skip, fleet } = fleetForFile('device restore CLI tests', { devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

/** A fresh console data folder with the device (only `source`) imported and backed up once, through the CLI. */
async function backedUp(device: Device, source: string, env: NodeJS.ProcessEnv = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' }, extra: Record<string, unknown> = {}) {
  const run = cliRunner(env);
  const file = path.join(tempDir(), 'device.json');
  const profile = device.profile();
  writeFileSync(file, JSON.stringify({ ...profile, ...extra, sources: profile.sources.filter((s) => s.name === source) }));
  expect((await run('device', 'import', file)).code).toBe(0);
  expect((await run('init')).code).toBe(0);
  expect((await run('backup', '--device', device.name)).code).toBe(0);
  return run;
}

/**
 * The device's app backed up, then its models gone but labels.txt (what a restore sends, slowly
 * under a bandwidth limit so the test can catch it staging); `staging()` lists the restore's
 * staging folders beside the app.
 */
async function modelsGone(device: Device, env: NodeJS.ProcessEnv, extra: Record<string, unknown> = {}) {
  const run = await backedUp(device, 'app', env, extra);
  const app = path.join(device.root, 'opt', device.app);
  const models = path.join(app, 'models');
  const before = readdirSync(models).sort();
  for (const name of before) if (name !== 'labels.txt') rmSync(path.join(models, name));
  const damaged = readdirSync(models).sort();
  const staging = () => readdirSync(path.dirname(app)).filter((name) => name.startsWith('.jetvault-restore-'));
  return { run, app, models, before, damaged, staging };
}

/** `jetvault ARGS` in a process of its own (a second terminal, or the console), with `env` on top of this one's. */
function spawnCli(env: NodeJS.ProcessEnv, ...args: string[]) {
  const cli = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/jetvault.js');
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout.resume();
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, err: () => err };
}

/** Running restore jobs recorded in the data folder's history (any process's). */
function runningRestores(home: string, options: { crossing?: boolean } = {}): number {
  const db = new Database(path.join(home, 'history.sqlite3'), { readonly: true });
  try {
    // crossing: its files are on their way (the stage phase's transfer has begun, not only its staging copy).
    const where = options.crossing ? " AND phase = 'stage' AND bytes_done > 0" : '';
    return (db.prepare(`SELECT count(*) AS n FROM jobs WHERE kind = 'restore' AND status = 'running'${where}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** The error recorded for the data folder's latest restore job. */
function lastRestoreError(home: string): { code: string; message: string } | null {
  const db = new Database(path.join(home, 'history.sqlite3'), { readonly: true });
  try {
    const row = db.prepare("SELECT error FROM jobs WHERE kind = 'restore' ORDER BY started_at DESC, rowid DESC LIMIT 1").get() as { error: string | null } | undefined;
    return row?.error ? (JSON.parse(row.error) as { code: string; message: string }) : null;
  } finally {
    db.close();
  }
}

const until = async (ready: () => boolean) => {
  for (let i = 0; i < 600 && !ready(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
};

describe.skipIf(skip)('jetvault restore --device, keep and rollback', () => {
  it('plans, refuses without --yes, restores, rolls back and keeps', async () => {
    const device = fleet().devices[0]!;
    const run = await backedUp(device, 'config');

    const config = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
    const original = readFileSync(config, 'utf8');
    writeFileSync(config, 'broken: true\n');
    // A file the snapshot does not hold, with a line break in its name: the restore removes it.
    const stray = path.join(path.dirname(config), 'notes\nfrom the field.txt');
    writeFileSync(stray, 'x');

    // The text plan names the files, as the wizard does; the odd name on one line, its line break as \n.
    const text = await run('restore', 'latest', '--device', device.name, '--dry-run');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/: 0 to add, 1 to replace, 1 to remove, \d+ unchanged\n {11}~ [^\n]*myrvm\.yaml\n {11}- notes\\nfrom the field\.txt\n/);

    const dry = await run('restore', 'latest', '--device', device.name, '--dry-run', '--json');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.out) as { roots: { replace: number }[]; snapshots: { source: string }[] };
    expect(plan.snapshots.map((s) => s.source)).toEqual(['config']);
    expect(plan.roots.reduce((n, r) => n + r.replace, 0)).toBe(1);
    expect(readFileSync(config, 'utf8')).toBe('broken: true\n');

    const refused = await run('restore', 'latest', '--device', device.name);
    expect(refused.code).toBe(3);
    expect(refused.err).toMatch(/--yes/);
    expect(readFileSync(config, 'utf8')).toBe('broken: true\n');

    const restored = await run('restore', 'latest', '--device', device.name, '--yes');
    expect(restored.err).toBe('');
    expect(restored.code).toBe(0);
    expect(readFileSync(config, 'utf8')).toBe(original);

    // Another console (a fresh process) finds the waiting restore on the device and rolls it back.
    const rolledBack = await run('rollback', '--device', device.name, '--json');
    expect(rolledBack.code).toBe(0);
    expect((JSON.parse(rolledBack.out) as { rolledBack: string[] }).rolledBack).toHaveLength(1);
    expect(readFileSync(config, 'utf8')).toBe('broken: true\n');

    // A folder of root's beside the config (a root service's), not in the snapshot: the restore takes
    // it out, and the keep, as the device's login, cannot remove it from the previous state.
    const rootsDir = path.join(path.dirname(config), 'conf.d');
    mkdirSync(rootsDir);
    writeFileSync(path.join(rootsDir, 'local.yaml'), 'debug: true\n');
    chownSync(path.join(rootsDir, 'local.yaml'), 0, 0);
    chownSync(rootsDir, 0, 0);
    expect((await run('restore', 'latest', '--device', device.name, '--yes')).code).toBe(0);
    const kept = await run('keep', '--device', device.name, '--json');
    const etc = path.join(device.root, 'etc');
    const left = readdirSync(etc).filter((name) => name.startsWith('.jetvault-restore-')).map((name) => path.join(etc, name));
    expect(left).toHaveLength(1);
    expect([kept.code, JSON.parse(kept.out)]).toMatchObject([0, { leftovers: left }]);
    expect(kept.err).toContain(`could not remove ${left[0]} entirely (files of another account; the device's login is not root): remove it as root`);
    rmSync(left[0]!, { recursive: true });
    expect(existsSync(rootsDir)).toBe(false);
    expect(readFileSync(config, 'utf8')).toBe(original);
    expect((await run('rollback', '--device', device.name)).out).toMatch(/No restore of .* is waiting/);
    expect((await run('restore', 'latest')).code).toBe(2);
    // A snapshot id chooses its snapshot itself: a --source or --at beside it is refused, not ignored.
    const id = (JSON.parse((await run('snapshots', '--device', device.name, '--json')).out) as { id: string }[])[0]!.id;
    for (const extra of [['--source', 'db'], ['--at', '2026-01-01T00:00:00Z']]) {
      const ignored = await run('restore', id.slice(0, 8), '--device', device.name, ...extra, '--dry-run');
      expect(ignored.code).toBe(2);
      expect(ignored.err).toContain(`--at and --source choose snapshots for SNAP "latest"; ${id.slice(0, 8)} names one snapshot already`);
    }
  }, 180_000);

  it("--check-contents finds a file damaged with its size, times and mode intact, and restores it; a folder's mode and a file's owner go back too", async () => {
    const device = fleet().devices[0]!;
    const run = await backedUp(device, 'config');
    const config = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
    const original = readFileSync(config);
    // One byte changed in place, the file's times put back: nothing a listing can see.
    const damaged = Buffer.from(original);
    damaged[0] = damaged[0]! ^ 0x20;
    const ref = path.join(tempDir(), 'times');
    execFileSync('cp', ['-p', config, ref]);
    writeFileSync(config, damaged);
    execFileSync('touch', ['-r', ref, config]);
    const looks = JSON.parse((await run('restore', 'latest', '--device', device.name, '--dry-run', '--json')).out) as { roots: { replace: number; contents: unknown }[] };
    expect(looks.roots.reduce((n, r) => n + r.replace, 0)).toBe(0);
    expect(looks.roots[0]!.contents).toBeNull();

    const dry = await run('restore', 'latest', '--device', device.name, '--check-contents', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/^ {9}contents checked: \d+ files read, 1 differ \(to replace\)/m);
    expect(readFileSync(config)).toEqual(damaged);
    const restored = await run('restore', 'latest', '--device', device.name, '--check-contents', '--yes');
    expect(restored.err).toBe('');
    expect(restored.code).toBe(0);
    expect(readFileSync(config)).toEqual(original);
    expect((await run('keep', '--device', device.name)).code).toBe(0);

    // Only the config folder's mode changed: the plan says so, and the restore puts it back.
    const folder = path.dirname(config);
    const mode = statSync(folder).mode & 0o777;
    execFileSync('chmod', ['0700', folder]);
    try {
      const modeOnly = await run('restore', 'latest', '--device', device.name, '--dry-run');
      expect(modeOnly.out).toContain(`         the folder's mode goes back from 0700 to 0${mode.toString(8)}`);
      expect((await run('restore', 'latest', '--device', device.name, '--yes')).code).toBe(0);
      expect(statSync(folder).mode & 0o777).toBe(mode);
      expect((await run('keep', '--device', device.name)).code).toBe(0);
    } finally {
      execFileSync('chmod', [mode.toString(8), folder]);
    }

    // The config file given to root by a `sudo cp`, its bytes unchanged: the device's account gives it back to itself.
    const account = statSync(folder);
    chownSync(config, 0, 0);
    const chowned = await run('restore', 'latest', '--device', device.name, '--dry-run');
    expect(chowned.code).toBe(0);
    expect(chowned.out).toMatch(/: 0 to add, 1 to replace, 0 to remove, \d+ unchanged\n {9}1 of them gets its owner \(uid:gid\) from the snapshot back$/m);
    expect((await run('restore', 'latest', '--device', device.name)).code).toBe(EXIT_NOT_CONFIRMED);
    expect((await run('restore', 'latest', '--device', device.name, '--yes')).code).toBe(0);
    expect((await run('keep', '--device', device.name)).code).toBe(0);
    expect([statSync(config).uid, statSync(config).gid]).toEqual([account.uid, account.gid]);
    expect(readFileSync(config)).toEqual(original);
  }, 180_000);

  it('restoring a database onto a server that lacks its roles (a reflashed device) says which it created; --into-database restores beside the live one', async () => {
    const device = fleet().devices[0]!;
    const su = (sql: string, db = device.app) => psql(device.pg.socketDir, db, sql);
    await su('CREATE ROLE jv_app NOLOGIN; CREATE TABLE cli_probe (id int); ALTER TABLE cli_probe OWNER TO jv_app;');
    const run = await backedUp(device, 'db');
    await su('DROP TABLE cli_probe; DROP ROLE jv_app;');
    try {
      const restored = await run('restore', 'latest', '--device', device.name, '--yes', '--json');
      expect(restored.code).toBe(0);
      expect(restored.err).toMatch(/^note: PostgreSQL on .* had no role "jv_app", which the snapshot of "db" gives its objects and grants to .*ALTER ROLE/m);
      expect((JSON.parse(restored.out) as { notes: string[] }).notes).toHaveLength(1);
      expect(await su("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'cli_probe';")).toBe('jv_app');
      expect((await run('keep', '--device', device.name)).code).toBe(0);
      // Beside the live one, for inspection: a new database; the live one is left alone.
      await su('DELETE FROM deposits WHERE id % 2 = 0;');
      const live = await su('SELECT count(*) FROM deposits;');
      const inspect = await run('restore', 'latest', '--device', device.name, '--source', 'db', '--into-database', 'cli_inspect', '--yes');
      expect(inspect.code).toBe(0);
      expect(await su('SELECT count(*) FROM deposits;')).toBe(live);
      expect(Number(await su('SELECT count(*) FROM deposits;', 'cli_inspect'))).toBeGreaterThan(Number(live));
      expect((await run('restore', 'latest', '--device', device.name, '--source', 'db', '--into-database', 'cli_inspect', '--yes')).err).toMatch(/already exists/);
      expect((await run('restore', 'latest', '--device', device.name, '--source', 'db', '--into-file', 'relative.db')).code).toBe(2);
    } finally {
      await su('DROP TABLE IF EXISTS cli_probe;');
      await su('DROP DATABASE IF EXISTS cli_inspect;', 'postgres');
      await su('DROP ROLE IF EXISTS jv_app;', 'postgres');
    }
  }, 180_000);

  it("keep and rollback are refused while another process's restore of the device stages; that restore finishes", async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    const { run, models, before, staging } = await modelsGone(device, env);
    // Slow enough (the models at 256 KiB/s) to be caught staging.
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '256')).code).toBe(0);
    const { child, exited, err } = spawnCli(env, 'restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
    await until(() => runningRestores(env.JETVAULT_HOME) === 1 && staging().length === 1);
    expect([runningRestores(env.JETVAULT_HOME), staging()]).toEqual([1, [expect.stringMatching(/^\.jetvault-restore-/)]]);

    for (const command of ['keep', 'rollback']) {
      const refused = await run(command, '--device', device.name);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(new RegExp(`"Restore ${device.name}" is running in another Jetvault process \\(pid ${child.pid}, since .*\\): wait for it to finish, or cancel it there`));
    }
    expect(staging()).toHaveLength(1);
    expect([await exited, err()]).toEqual([0, '']);
    expect(readdirSync(models).sort()).toEqual(before);
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '0')).code).toBe(0);
    const kept = await run('keep', '--device', device.name, '--json');
    expect([kept.code, (JSON.parse(kept.out) as { kept: string[] }).kept]).toMatchObject([0, [expect.any(String)]]);
    expect(staging()).toEqual([]);
  }, 180_000);
  it('Ctrl-C cancels a restore cleanly: while staging the device stays as it was; while its services are stopped for the swap the restore is seen through and starts them again', async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    const stopped = path.join(device.root, 'home', device.user, 'app-stopped');
    const { run, models, before, damaged, staging } = await modelsGone(device, env, { services: { stop: [`touch '${stopped}' && sleep 3`], start: [`rm -f '${stopped}'`] } });
    const restore = () => spawnCli(env, 'restore', 'latest', '--device', device.name, '--source', 'app', '--yes');

    // Ctrl-C while the models cross (256 KiB/s): cancelled, the staged data removed, the device as it was.
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '256')).code).toBe(0);
    const cut = restore();
    await until(() => runningRestores(env.JETVAULT_HOME) === 1 && staging().length === 1);
    cut.child.kill('SIGINT');
    expect(await cut.exited).toBe(1);
    expect(cut.err()).toMatch(new RegExp(`cancelling the restore of ${device.name}…\\nThe restore cancelled`));
    expect(staging()).toEqual([]);
    expect(readdirSync(models).sort()).toEqual(damaged);
    expect(existsSync(stopped)).toBe(false);
    expect((await run('keep', '--device', device.name)).out).toMatch(/No restore of .* is waiting for a decision/);

    // Ctrl-C while the services are being stopped for the swap: the restore goes on and starts them again.
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '0')).code).toBe(0);
    const swapping = restore();
    await until(() => existsSync(stopped));
    swapping.child.kill('SIGINT');
    expect(await swapping.exited).toBe(0);
    expect(swapping.err()).toContain(`${device.name} is being swapped: the restore finishes first`);
    expect(existsSync(stopped)).toBe(false);
    expect(readdirSync(models).sort()).toEqual(before);
    const kept = await run('keep', '--device', device.name, '--json');
    expect([kept.code, (JSON.parse(kept.out) as { kept: string[] }).kept]).toMatchObject([0, [expect.any(String)]]);
    expect(staging()).toEqual([]);
  }, 180_000);
  it('--into-folder never overwrites: a folder that holds the paths already (the live tree itself, or an earlier copy) is refused, and nothing there changes', async () => {
    const device = fleet().devices[0]!;
    const run = await backedUp(device, 'config');
    const config = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
    writeFileSync(config, 'broken: true\n');
    // The device's own root: the live files, without services stopped or the page's confirmation.
    const live = await run('restore', 'latest', '--device', device.name, '--into-folder', device.root, '--yes');
    expect(live.code).toBe(1);
    expect(live.err).toContain(`${path.join(device.root, 'etc', device.app)}, ${path.join(device.root, 'opt', device.app, '.env')}, ${path.join(device.root, 'etc', 'systemd', 'system', `${device.app}.service`)} already exist on ${device.name}: a restore into another folder never overwrites anything there.`);
    expect(readFileSync(config, 'utf8')).toBe('broken: true\n');
    // A folder someone keeps their own notes in beside what an earlier inspection restored.
    const inspect = tempDir();
    chownSync(inspect, device.account.uid, device.account.gid);
    const mine = path.join(inspect, 'etc', device.app, 'notes.txt');
    mkdirSync(path.dirname(mine), { recursive: true });
    writeFileSync(mine, 'mine\n');
    const dry = await run('restore', 'latest', '--device', device.name, '--into-folder', inspect, '--dry-run');
    expect([dry.code, dry.err]).toEqual([1, `jetvault restore: ${path.join(inspect, 'etc', device.app)} already exists on ${device.name}: a restore into another folder never overwrites anything there. Choose a folder where it does not exist yet.`]);
    expect((await run('restore', 'latest', '--device', device.name, '--into-folder', inspect, '--yes')).code).toBe(1);
    expect(readFileSync(mine, 'utf8')).toBe('mine\n');
    expect(readdirSync(path.join(inspect, 'etc'))).toEqual([device.app]);
    // A folder where nothing of it exists yet: restored there, the live file left broken.
    const fresh = path.join(inspect, 'fresh');
    const restored = await run('restore', 'latest', '--device', device.name, '--into-folder', fresh);
    expect([restored.code, restored.err]).toEqual([0, '']);
    expect(readFileSync(path.join(fresh, 'etc', device.app, `${device.app}.yaml`), 'utf8')).not.toBe('broken: true\n');
    expect(readFileSync(config, 'utf8')).toBe('broken: true\n');
    expect((await run('keep', '--device', device.name)).code).toBe(0);
    expect((await run('restore', 'latest', '--device', device.name, '--yes')).code).toBe(0);
    expect((await run('keep', '--device', device.name)).code).toBe(0);
  }, 180_000);
  it("a restore killed (SIGKILL) while the device's services are stopped leaves them stopped only until the next keep, rollback or restore starts them", async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    const stopped = path.join(device.root, 'home', device.user, 'app-stopped');
    const run = await backedUp(device, 'app', env, { services: { stop: [`touch '${stopped}' && sleep 2`], start: [`rm -f '${stopped}'`] } });
    const version = path.join(device.root, 'opt', device.app, 'VERSION');
    const original = readFileSync(version, 'utf8');
    writeFileSync(version, 'broken-update\n');
    const killed = spawnCli(env, 'restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
    await until(() => existsSync(stopped));
    killed.child.kill('SIGKILL');
    await killed.exited;
    await new Promise((resolve) => setTimeout(resolve, 2500)); // the stop command ends on the device
    expect(existsSync(stopped)).toBe(true);
    // Nothing was swapped: the staging is rolled back, and the app is started again.
    const kept = await run('keep', '--device', device.name);
    expect([kept.code, kept.out]).toEqual([0, `No restore of ${device.name} is waiting for a decision.`]);
    // What it settled is said all the same.
    expect(kept.err).toMatch(new RegExp(`note: Rolled back the restore of ${path.join(device.root, 'opt', device.app).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\w+\\), cut off before its swap: .* holds what it held before, and what had been staged is removed\\.`));
    expect(kept.err).toContain("note: Started the device's services again: a restore cut off had left them stopped.");
    expect(existsSync(stopped)).toBe(false);
    expect(readFileSync(version, 'utf8')).toBe('broken-update\n');
    expect((await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes')).code).toBe(0);
    expect(existsSync(stopped)).toBe(false);
    expect(readFileSync(version, 'utf8')).toBe(original);
    expect((await run('keep', '--device', device.name)).code).toBe(0);
  }, 180_000);

  it('a restore whose process was killed (SIGKILL) says in its record what the device holds: its previous state while staging, maybe the restored one once the swap began', async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    const stopped = path.join(device.root, 'home', device.user, 'app-stopped');
    const { run, models, before, damaged, staging } = await modelsGone(device, env, { services: { stop: [`touch '${stopped}' && sleep 2`], start: [`rm -f '${stopped}'`] } });
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '256')).code).toBe(0);
    const staged = spawnCli(env, 'restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
    await until(() => runningRestores(env.JETVAULT_HOME, { crossing: true }) === 1);
    staged.child.kill('SIGKILL');
    await staged.exited;
    // The next command of the data folder finds the job's process gone.
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '0')).code).toBe(0);
    expect(lastRestoreError(env.JETVAULT_HOME)).toEqual({
      code: 'INTERRUPTED',
      message: expect.stringMatching(
        new RegExp(`^The Jetvault process running this job \\(pid \\d+\\) stopped before it finished\\. Nothing was swapped: ${device.name} holds its previous state; what was staged beside it is removed by its next restore, or by Look for interrupted restores`),
      ) as unknown,
    });
    expect(readdirSync(models).sort()).toEqual(damaged);
    expect(staging()).toHaveLength(1);

    const swapping = spawnCli(env, 'restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
    await until(() => existsSync(stopped));
    swapping.child.kill('SIGKILL');
    await swapping.exited;
    await new Promise((resolve) => setTimeout(resolve, 2500)); // the stop command ends on the device
    const rolledBack = await run('rollback', '--device', device.name);
    expect(lastRestoreError(env.JETVAULT_HOME)?.message).toMatch(
      new RegExp(`stopped before it finished, once its swap had begun: ${device.name} may hold the restored state, its previous state kept beside it, and its services may be stopped\\. Look for interrupted restores`),
    );
    expect(rolledBack.code).toBe(0);
    expect(existsSync(stopped)).toBe(false);
    expect(readdirSync(models).sort()).toEqual(damaged);
    expect(staging()).toEqual([]);
    expect((await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes')).code).toBe(0);
    expect((await run('keep', '--device', device.name)).code).toBe(0);
    expect(readdirSync(models).sort()).toEqual(before);
  }, 180_000);

  it('what a cut restore kept on the device: keep says where and until when, --dry-run counts it as there already, and the restore sends only the rest', async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    const MiB = 1024 * 1024;
    const bytes = randomBytes(6 * MiB); // large enough to be taken up (DELTA_MIN_BYTES)
    const big = path.join(device.root, 'opt', device.app, 'models', 'big.onnx');
    writeFileSync(big, bytes);
    chownSync(big, device.account.uid, device.account.gid);
    const { run, app } = await modelsGone(device, env);
    // As recovery leaves what a restore cut off half-way through the model had staged (decision 029).
    const resume = path.join(path.dirname(app), `.jetvault-resume-${device.app}`);
    mkdirSync(path.join(resume, 'models'), { recursive: true, mode: 0o700 });
    writeFileSync(path.join(resume, 'models', 'big.onnx'), bytes.subarray(0, 3 * MiB));
    execFileSync('chown', ['-R', `${device.account.uid}:${device.account.gid}`, resume]);
    try {
      const kept = await run('keep', '--device', device.name);
      expect(kept.code).toBe(0);
      expect(kept.err).toMatch(new RegExp(`note: Kept 1 large file \\(3\\.0 MiB\\) a restore cut off had staged, in ${resume.replace(/\./g, '\\.')} until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC: a restore of ${app.replace(/\./g, '\\.')} before then sends only what they still lack\\.`));
      const preview = await run('restore', 'latest', '--device', device.name, '--source', 'app', '--dry-run');
      expect(preview.code).toBe(0);
      expect(preview.out).toContain('  3.0 MiB of it is on the device already, staged by an earlier restore its link cut off: taken up, not sent again');
      const restored = await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
      expect(restored.code).toBe(0);
      expect(restored.err).toMatch(/note: 1 large file \(6\.0 MiB\) taken up from what an earlier restore had staged before its link was cut: only the 3\.0 MiB it still lacked crossed the link\./);
      expect((await run('keep', '--device', device.name)).code).toBe(0);
      expect(readFileSync(big).equals(bytes)).toBe(true);
      expect(existsSync(resume)).toBe(false);
    } finally {
      rmSync(resume, { recursive: true, force: true });
      rmSync(big, { force: true });
    }
  }, 180_000);

  it('a restore that fails while its files cross ends the CLI with the error (the blob workers are let go)', async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    const { run, app, models, before, damaged, staging } = await modelsGone(device, env);
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '256')).code).toBe(0);
    const failing = spawnCli(env, 'restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
    // Once files cross (before, the staging copy would fail instead: "Staging … failed").
    await until(() => staging().length === 1 && runningRestores(env.JETVAULT_HOME, { crossing: true }) === 1);
    // The device's tar fails under the stream: its staging folder is gone (tar may add to it while it goes).
    rmSync(path.join(path.dirname(app), staging()[0]!), { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
    const code = await Promise.race([failing.exited, new Promise((resolve) => setTimeout(() => resolve('still running 30 s later'), 30_000))]);
    if (code !== 1) failing.child.kill('SIGKILL');
    expect(code).toBe(1);
    expect(failing.err()).toMatch(/The restore failed: (Unpacking|Sending files) .* failed/);
    expect(readdirSync(models).sort()).toEqual(damaged);
    expect((await run('settings', 'set', 'bandwidthLimitKiBps', '0')).code).toBe(0);
    expect((await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes')).code).toBe(0);
    expect((await run('keep', '--device', device.name)).code).toBe(0);
    expect(readdirSync(models).sort()).toEqual(before);
  }, 180_000);
  it('a link lost once the swap has begun is not reported as if nothing changed: the error says the device holds the restored state, to keep or roll back, and rollback finds the restore', async () => {
    const device = fleet().devices[0]!;
    const env = { JETVAULT_HOME: tempDir(), JETVAULT_PASSWORD: 'cli restore test repository password' };
    // The health check (after the swap) ends its own SSH connection: the link is gone right then.
    const run = await backedUp(device, 'app', env, { healthCommand: 'kill $PPID; sleep 5' });
    const version = path.join(device.root, 'opt', device.app, 'VERSION');
    const original = readFileSync(version, 'utf8');
    writeFileSync(version, 'broken-update\n');
    const cut = await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes');
    expect(cut.code).toBe(1);
    expect(cut.err).toMatch(/The link to .+ was lost after the swap, while its health check ran \(the connection to .+ was lost.*\)\./);
    expect(cut.err).toContain(`${device.name} holds the restored state, its previous state kept beside it. Keep it or roll it back: Look for interrupted restores on the Restore page (or run jetvault keep or rollback --device ${device.name}) once the device can be reached.`);
    expect(readFileSync(version, 'utf8')).toBe(original);
    const rolledBack = await run('rollback', '--device', device.name, '--json');
    expect([rolledBack.code, (JSON.parse(rolledBack.out) as { rolledBack: string[] }).rolledBack]).toMatchObject([0, [expect.any(String)]]);
    expect(readFileSync(version, 'utf8')).toBe('broken-update\n');
    writeFileSync(version, original); // the shared device as it was found
  }, 180_000);
});

describe.skipIf(skip)('jetvault restore --device and drill while a prune holds the repository', () => {
  it('exit 11 as every repository command, saying who holds it; the device is not changed', async () => {
    const device = fleet().devices[0]!;
    const home = tempDir();
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'cli restore test repository password' };
    const run = await backedUp(device, 'app', env);
    const version = path.join(device.root, 'opt', device.app, 'VERSION');
    // Its own mark, and the file as backed up: tests before this one may leave another state behind on the shared device.
    const original = readFileSync(version, 'utf8');
    writeFileSync(version, 'update-under-prune\n');
    const { Repository } = await import('../main/repository/repo/repository');
    const { LocalBackend } = await import('../main/repository/backend/local-backend');
    const { listLocks, withLock } = await import('../main/repository/lock/lock');
    const repo = await Repository.open(new LocalBackend(path.join(home, 'repository')), env.JETVAULT_PASSWORD);
    // A prune of another console holds the exclusive lease while the restore and the drill start.
    const [restored, drilled] = await withLock(repo, true, async () => [await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes'), await run('drill', '--device', device.name)]);
    expect(restored.err).toMatch(/locked exclusively by pid \d+/);
    expect(restored.code).toBe(11);
    expect(drilled.err).toMatch(/locked exclusively by pid \d+/);
    expect(drilled.code).toBe(11);
    expect(readFileSync(version, 'utf8')).toBe('update-under-prune\n');
    expect((await run('restore', 'latest', '--device', device.name, '--source', 'app', '--yes')).code).toBe(0);
    expect((await run('keep', '--device', device.name)).code).toBe(0);
    expect(readFileSync(version, 'utf8')).toBe(original);
    // The restore's and the drill's leases are gone with them: a prune may run.
    expect((await run('drill', '--device', device.name)).code).toBe(0);
    expect(await listLocks(repo)).toEqual([]);
  }, 180_000);
});
