/**
 * Database restores onto a real device of the test fleet (sshd + PostgreSQL + SQLite): in place with
 * a swap, into another name, validation failures rolling back, and recovery after interruptions.
 */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from '../../../fleet/index';
import { psql as psqlAs } from '../../../fleet/postgres';
import type { Device, Fleet } from '../../../fleet/index';
import { startDeviceBackup } from '../devices/device-backup';
import type { DeviceConnection } from '../devices/ssh-connection';
import { tamperingRunner } from './testing/tampering-runner';
import { findSnapshot } from '../repository/snapshot/snapshot';
import type { Services } from '../services/index';
import {
  confirmDbRestore,
  dropScratch,
  executeDbRestore,
  planDbRestore,
  recoverDbRestores,
  restoreDatabaseScratch,
  rolesInSchemaSql,
  rollbackDbRestore,
  stageDbRestore,
} from './db-restore';
import type { DatabaseSource, DbRestoreOptions, PostgresSource } from './db-restore';
import { jobEnded } from '../testing/wait';
import { closeTestConsole, openTestConsole } from '../testing/test-console';

const CHILD = fileURLToPath(new URL('./testing/db-restore-child.ts', import.meta.url));
const PASSWORD = 'db restore test repository password';

let fleet: Fleet;
let device: Device;
let services: Services;
let dataDir: string;
const snap: Record<string, string> = {};

/**
 * A connection that races the rename transaction of a swap fails with "database … does not exist"
 * (PostgreSQL re-checks the name after locking the database); on a device the app is stopped then.
 */
async function settled<T>(query: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await query();
    } catch (error) {
      if (attempt >= 5 || !/does not exist|renamed|terminating connection/.test(String(error))) throw error;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
const atBackup: { pg: string; pgCounts: Record<string, number>; sqlite: string; scans: number } = { pg: '', pgCounts: {}, sqlite: '', scans: 0 };

/** A fingerprint of the app's PostgreSQL data: every row of the three tables that change. */
const pgPrint = () => settled(() => device.mutate.sql(`SELECT md5(string_agg(x, '|')) FROM (SELECT (SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM deposits d) x UNION ALL SELECT (SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM transactions t)) s;`));
const pgTables = async () => Object.fromEntries(await Promise.all(['deposits', 'transactions', 'members', 'events'].map(async (t) => [t, await device.mutate.pgCount(t)] as const)));
const sqlitePrint = () => device.mutate.sqlite(`SELECT count(*) || ':' || coalesce(sum(id * 7 + synced), 0) FROM scans;`);
const jvDatabases = () => settled(() => device.mutate.sql(`SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE '%\\_jv\\_%';`));
const withDevice = <T>(work: (c: DeviceConnection) => Promise<T>) => services.connector.withDevice(device.name, work);

function source(name: 'db' | 'local'): DatabaseSource {
  return services.devices.get(device.name).profile.sources.find((s) => s.name === name) as DatabaseSource;
}

async function options(c: DeviceConnection, name: 'db' | 'local', restoreId: string, target?: DbRestoreOptions['target']): Promise<DbRestoreOptions> {
  const repo = await services.repository.fresh();
  return { repo, runner: c, snapshot: await findSnapshot(repo, snap[name]!), source: source(name), restoreId, ...(target ? { target } : {}) };
}

beforeAll(async () => {
  fleet = await startFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
  device = fleet.devices[0]!;
  ({ services, dataDir } = await openTestConsole('dbrestore', PASSWORD));
  services.devices.import(device.profile(), 'test');
  atBackup.pg = await pgPrint();
  atBackup.pgCounts = await pgTables();
  atBackup.sqlite = await sqlitePrint();
  atBackup.scans = await device.mutate.sqliteCount('scans');
  const run = (await startDeviceBackup(services, device.name, ['db', 'local']).done).value!;
  for (const s of run.snapshots) snap[s.source] = s.snapshotId;
}, 240_000);

afterAll(async () => {
  closeTestConsole(services, dataDir);
  await fleet?.stop();
}, 120_000);

describe('PostgreSQL restore on a device', () => {
  it('restores into a new database, swaps names, keeps the previous database until confirmed', async () => {
    await device.mutate.pgDeleteRows(700);
    await device.mutate.pgInsertRows(300);
    await device.mutate.pgUpdateRows(200);
    const damaged = await pgPrint();
    expect(damaged).not.toBe(atBackup.pg);
    const result = await withDevice(async (c) => {
      const o = await options(c, 'db', 'pgswap1');
      const plan = await planDbRestore(o);
      expect(plan).toMatchObject({ inPlace: true, target: 'myrvm', targetExists: true, fresh: 'myrvm_jv_new_pgswap1', previous: 'myrvm_jv_prev_pgswap1' });
      expect(plan.expectedRows).toMatchObject({ 'public.deposits': atBackup.pgCounts.deposits, 'public.members': atBackup.pgCounts.members });
      const validation = await executeDbRestore(o, plan);
      return { plan, validation };
    });
    expect(result.validation.problems).toEqual([]);
    expect(result.validation.ok).toBe(true);
    expect(await pgPrint()).toBe(atBackup.pg);
    expect(await pgTables()).toEqual(atBackup.pgCounts);
    // The damaged database waits under its previous name until the technician keeps the restore.
    expect(await jvDatabases()).toBe('myrvm_jv_prev_pgswap1');
    await withDevice((c) => confirmDbRestore(c, result.plan));
    expect(await jvDatabases()).toBe('');
  }, 180_000);

  it('sends the dump gzip\'ed when the link is slow (compress), and the device checks the sha256 of what it unpacked', async () => {
    await device.mutate.pgDeleteRows(120);
    const result = await withDevice(async (c) => {
      const o = { ...(await options(c, 'db', 'pggzip1')), compress: true };
      const plan = await planDbRestore(o);
      let sent = 0;
      const validation = await executeDbRestore(o, plan, { advance: ({ bytes = 0 }) => (sent += bytes) });
      return { plan, validation, sent };
    });
    expect(result.validation.ok).toBe(true);
    expect(result.sent).toBe(result.plan.dumpBytes); // progress counts the dump's own bytes
    expect(await pgPrint()).toBe(atBackup.pg);
    await withDevice((c) => confirmDbRestore(c, result.plan));
    expect(await jvDatabases()).toBe('');
  }, 180_000);

  it('rolls back to the previous database when validation fails after the swap', async () => {
    await device.mutate.pgDeleteRows(50);
    const before = await pgPrint();
    const outcome = await withDevice(async (c) => {
      const o = await options(c, 'db', 'pgbad1');
      const plan = await planDbRestore(o);
      // The app, started again, damages the restored data: validation must catch it and roll back.
      const validation = await executeDbRestore(o, plan, { afterSwap: async () => void (await device.mutate.pgInsertRows(5)) });
      if (!validation.ok) await rollbackDbRestore(c, plan);
      return validation;
    });
    expect(outcome.ok).toBe(false);
    expect(outcome.problems.join('\n')).toMatch(/public\.deposits: \d+ rows, snapshot has \d+/);
    expect(await pgPrint()).toBe(before);
    expect(await jvDatabases()).toBe('');
  }, 180_000);

  it('restores into another database name for inspection, leaving the live one alone', async () => {
    const live = await pgPrint();
    const plan = await withDevice(async (c) => {
      const o = await options(c, 'db', 'pginsp1', { database: 'myrvm_inspect' });
      const p = await planDbRestore(o);
      expect(p.inPlace).toBe(false);
      await executeDbRestore(o, p);
      return p;
    });
    expect(await pgPrint()).toBe(live);
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname = 'myrvm_inspect'`)).toBe('1');
    const inspected = await device.mutate.sql(`SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'myrvm%' AND datname <> 'myrvm'`);
    expect(inspected).toBe('myrvm_inspect');
    // The name is never overwritten.
    await expect(withDevice(async (c) => planDbRestore(await options(c, 'db', 'pginsp2', { database: 'myrvm_inspect' })))).rejects.toThrow(/already exists/);
    await withDevice((c) => dropScratch(c, plan));
    expect(await device.mutate.sql(`SELECT count(*) FROM pg_database WHERE datname = 'myrvm_inspect'`)).toBe('0');
  }, 180_000);

  it('a scratch restore validates against the recorded counts and cleans up (drills)', async () => {
    const result = await withDevice(async (c) => {
      const repo = await services.repository.fresh();
      return restoreDatabaseScratch({ repo, runner: c, snapshot: await findSnapshot(repo, snap.db!), source: source('db') });
    });
    expect(result).toMatchObject({ ok: true, kind: 'postgres', removed: true, problems: [] });
    expect(result.rows).toEqual(result.expectedRows);
    expect(result.rows['public.deposits']).toBe(atBackup.pgCounts.deposits);
    expect(result.durationMs).toBeGreaterThan(0);
    expect(await jvDatabases()).toBe('');
  }, 180_000);
});

describe('SQLite restore on a device', () => {
  it('stages, checks and renames into place, moving a stale -wal aside; the previous file waits for confirmation', async () => {
    await device.mutate.sqliteDeleteRows(400);
    await device.mutate.sqliteInsertRows(50);
    // An app killed with rows only in its -wal: that WAL must never be applied to the restored file.
    const writer = await device.mutate.sqliteOpenWriter(120);
    process.kill(writer.pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(`${device.sqlitePath}-wal`)).toBe(true);
    const result = await withDevice(async (c) => {
      const o = await options(c, 'local', 'sqswap1');
      const plan = await planDbRestore(o);
      expect(plan).toMatchObject({ inPlace: true, target: device.sqlitePath, targetExists: true });
      expect(plan.expectedRows).toMatchObject({ scans: atBackup.scans });
      return { plan, validation: await executeDbRestore(o, plan) };
    });
    expect(result.validation).toMatchObject({ ok: true, integrity: 'ok', problems: [] });
    expect(await sqlitePrint()).toBe(atBackup.sqlite);
    const previous = path.join(result.plan.workDir, 'previous', 'local.db');
    expect(existsSync(previous)).toBe(true);
    expect(existsSync(`${previous}-wal`)).toBe(true);
    await withDevice((c) => confirmDbRestore(c, result.plan));
    expect(existsSync(result.plan.workDir)).toBe(false);
  }, 180_000);

  it('rolls back to the previous file (with its -wal) on demand', async () => {
    await device.mutate.sqliteInsertRows(33);
    const before = await sqlitePrint();
    const plan = await withDevice(async (c) => {
      const o = await options(c, 'local', 'sqback1');
      const p = await planDbRestore(o);
      const validation = await executeDbRestore(o, p);
      expect(validation.ok).toBe(true);
      return p;
    });
    expect(await sqlitePrint()).toBe(atBackup.sqlite);
    await withDevice((c) => rollbackDbRestore(c, plan));
    expect(await sqlitePrint()).toBe(before);
    expect(existsSync(plan.workDir)).toBe(false);
  }, 180_000);

  it('restores to another path, never over an existing file', async () => {
    const other = path.join(path.dirname(device.sqlitePath), 'inspect copy.db');
    const live = await sqlitePrint();
    await withDevice(async (c) => {
      const o = await options(c, 'local', 'sqinsp1', { path: other });
      await executeDbRestore(o, await planDbRestore(o));
    });
    expect(existsSync(other)).toBe(true);
    expect(await sqlitePrint()).toBe(live);
    await expect(withDevice(async (c) => planDbRestore(await options(c, 'local', 'sqinsp2', { path: other })))).rejects.toThrow(/already exists/);
    rmSync(other);
  }, 120_000);

  it('a copy altered on its way to the device is refused before it is used; the live file is untouched', async () => {
    const live = await sqlitePrint();
    const plan = await withDevice(async (c) => {
      // One byte of the stream flipped on its way into the staged file: only the sha256 on the device can tell.
      let at = 0;
      const tampering = tamperingRunner(c, 'umask 077 && cat >', (chunk) => {
        const copy = Buffer.from(chunk);
        if (at <= 100 && at + copy.length > 100) copy[100 - at] = copy[100 - at]! ^ 0xff;
        at += copy.length;
        return copy;
      });
      const o = { ...(await options(c, 'local', 'sqbad1')), runner: tampering };
      const planned = await planDbRestore(o);
      await expect(executeDbRestore(o, planned)).rejects.toThrow(/does not match the snapshot/);
      await rollbackDbRestore(c, planned);
      return planned;
    });
    expect(await sqlitePrint()).toBe(live);
    expect(existsSync(plan.staged!)).toBe(false);
  }, 120_000);
});

describe('interrupted database restores', () => {
  it('recovery drops a half-made database and keeps a completed swap for confirmation', async () => {
    const original = await pgPrint();
    // Left behind by a console that died after staging: a new database and a work folder.
    const plan = await withDevice(async (c) => {
      const o = await options(c, 'db', 'pgcut1');
      const p = await planDbRestore(o);
      await stageDbRestore(o, p);
      return p;
    });
    expect(await jvDatabases()).toBe('myrvm_jv_new_pgcut1');
    const found = await withDevice((c) => recoverDbRestores(c, { postgres: [source('db') as PostgresSource] }));
    expect(found.map((f) => [f.plan.restoreId, f.outcome])).toEqual([['pgcut1', 'rolled-back']]);
    expect(await jvDatabases()).toBe('');
    expect(await pgPrint()).toBe(original);
    expect(existsSync(plan.workDir)).toBe(false);
  }, 180_000);
});

/** Runs a restore in a child process and SIGKILLs it `delayMs` after it reports `killAt` (a killed console). */
function killedRestore(name: 'db' | 'local', restoreId: string, killAt: string, delayMs: number): Promise<{ killed: boolean; steps: string[]; out: string }> {
  const d = device;
  const args = {
    repo: services.repository.location(),
    password: PASSWORD,
    device: { host: d.host, port: d.port, user: d.user, identityFile: d.identityFile, hostKey: d.hostKeyFingerprint },
    snapshotId: snap[name]!,
    source: source(name),
    restoreId,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const steps: string[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      for (const m of b.toString().matchAll(/^STEP (\S+)$/gm)) {
        steps.push(m[1]!);
        if (m[1] === killAt) setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' || code === 0) resolve({ killed: signal === 'SIGKILL', steps, out });
      else reject(new Error(`the restore child failed (${code}): ${err}`));
    });
  });
}

const workDirs = () => {
  const home = path.join(device.root, 'home', device.user, '.jetvault-restore');
  return existsSync(home) ? readdirSync(home) : [];
};

describe('a console killed (kill -9) in every phase of a database restore', () => {
  // [step reported by the child, delay before the kill]: before/while sending, verifying, loading
  // (pg_restore running on the device), checking, right before and during the swap, after it.
  const points: [string, number][] = [
    ['send', 0],
    ['send-half', 0],
    ['verify', 0],
    ['load', 0],
    ['load', 400],
    ['check', 0],
    ['swap', 0],
    ['swap', 30],
    ['swapped', 0],
  ];

  it.each(points)('PostgreSQL, killed at %s (+%i ms): the database is original or fully restored, and recovery settles it', async (killAt, delayMs) => {
    await device.mutate.pgDeleteRows(11);
    const original = await pgPrint();
    const id = `pgkill${killAt.replace(/[^a-z]/g, '')}${delayMs}`;
    const before = new Set(device.sessionProcesses());
    const { killed, steps } = await killedRestore('db', id, killAt, delayMs);
    expect(steps).toContain(killAt);
    // The swap is one transaction: even while what the console left on the device still runs, the
    // database is one or the other.
    expect([original, atBackup.pg]).toContain(await pgPrint());
    // What the killed console left running on the device (pg_restore, the swap script) ends by itself.
    await device.sessionsEnded(before);
    expect([original, atBackup.pg]).toContain(await pgPrint());
    const found = await withDevice((c) => recoverDbRestores(c, { postgres: [source('db') as PostgresSource] }));
    const swapped = found.find((f) => f.outcome === 'swapped');
    if (swapped) {
      // Fully restored, waiting for the technician: the original is still there to roll back to.
      expect(await pgPrint()).toBe(atBackup.pg);
      expect(await jvDatabases()).toBe(swapped.plan.previous);
      await withDevice((c) => rollbackDbRestore(c, swapped.plan));
    } else {
      expect(killed).toBe(true); // a restore that ran to its end waits for confirmation
    }
    expect(await pgPrint()).toBe(original);
    expect(await jvDatabases()).toBe('');
    expect(workDirs()).toEqual([]);
  }, 180_000);

  it.each([
    ['send', 0],
    ['verify', 0],
    ['check', 0],
    ['swap', 0],
    ['swap', 15],
    ['swapped', 0],
  ] as [string, number][])('SQLite, killed at %s (+%i ms): the file is original or fully restored, and recovery settles it', async (killAt, delayMs) => {
    await device.mutate.sqliteInsertRows(7);
    const original = await sqlitePrint();
    const before = new Set(device.sessionProcesses());
    const { killed, steps } = await killedRestore('local', `sqkill${killAt.replace(/[^a-z]/g, '')}${delayMs}`, killAt, delayMs);
    expect(steps).toContain(killAt);
    // A swap script the killed console left running (two renames, services stopped) finishes first.
    await device.sessionsEnded(before);
    expect([original, atBackup.sqlite]).toContain(await sqlitePrint());
    const found = await withDevice((c) => recoverDbRestores(c));
    const swapped = found.find((f) => f.outcome === 'swapped');
    if (swapped) {
      expect(await sqlitePrint()).toBe(atBackup.sqlite);
      await withDevice((c) => rollbackDbRestore(c, swapped.plan));
    } else {
      expect(killed).toBe(true); // a restore that ran to its end waits for confirmation
    }
    expect(await sqlitePrint()).toBe(original);
    expect(workDirs()).toEqual([]);
  }, 120_000);

  it('after all that, the next restore runs through', async () => {
    const result = await withDevice(async (c) => {
      await recoverDbRestores(c, { postgres: [source('db') as PostgresSource] });
      const o = await options(c, 'db', 'pgafter1');
      const plan = await planDbRestore(o);
      const validation = await executeDbRestore(o, plan);
      await confirmDbRestore(c, plan);
      return validation;
    });
    expect(result.ok).toBe(true);
    expect(await pgPrint()).toBe(atBackup.pg);
    expect(await jvDatabases()).toBe('');
  }, 180_000);
});

describe('a full disk on the device', () => {
  const workRel = () => path.join('home', device.user, '.jetvault-restore');

  it('PostgreSQL: no room to stage the dump is refused before anything changes', async () => {
    mkdirSync(path.join(device.root, workRel()), { recursive: true });
    chownSync(path.join(device.root, workRel()), device.account.uid, device.account.gid);
    const live = await pgPrint();
    await device.mutate.fillDisk(workRel(), { sizeMB: 4 });
    try {
      await expect(
        withDevice(async (c) => {
          const o = await options(c, 'db', 'pgfull1');
          await executeDbRestore(o, await planDbRestore(o));
        }),
      ).rejects.toThrow(/Not enough space .* Nothing was changed/);
      expect(await pgPrint()).toBe(live);
      expect(await jvDatabases()).toBe('');
    } finally {
      await device.mutate.releaseDisk(workRel());
    }
  }, 120_000);

  it('SQLite: with the home folder on another file system the file is staged beside itself, and recovery finds it there', async () => {
    // A (small, nearly full) tmpfs over the home work folder puts it on another file system.
    await device.mutate.fillDisk(workRel(), { sizeMB: 2 });
    try {
      const dir = path.dirname(device.sqlitePath);
      const live = await sqlitePrint();
      const plan = await withDevice(async (c) => {
        const o = await options(c, 'local', 'sqbeside1');
        const p = await planDbRestore(o);
        expect(path.dirname(p.workDir)).toBe(dir);
        await stageDbRestore(o, p);
        return p;
      });
      expect(existsSync(plan.workDir)).toBe(true);
      const found = await withDevice((c) => recoverDbRestores(c, { besideDirs: [dir] }));
      expect(found.map((f) => [f.plan.restoreId, f.outcome])).toEqual([['sqbeside1', 'rolled-back']]);
      expect(existsSync(plan.workDir)).toBe(false);
      expect(await sqlitePrint()).toBe(live);
      const validation = await withDevice(async (c) => {
        const o = await options(c, 'local', 'sqbeside2');
        const p = await planDbRestore(o);
        const v = await executeDbRestore(o, p);
        await confirmDbRestore(c, p);
        return v;
      });
      expect(validation.ok).toBe(true);
      expect(await sqlitePrint()).toBe(atBackup.sqlite);
      expect(readdirSync(dir).filter((n) => n.startsWith('.jetvault-'))).toEqual([]);
    } finally {
      await device.mutate.releaseDisk(workRel());
    }
  }, 120_000);
});

/** A job's record once it has ended (bounded wait). */
describe('PostgreSQL restore onto a server without the roles the snapshot needs (a reflashed device)', () => {
  it('recreates the missing owner and grantee roles as the snapshot recorded them and says so; a login that cannot create roles is told which to create', async () => {
    const su = (sql: string, db = device.app) => psqlAs(device.pg.socketDir, db, sql);
    // The app's role logs in, may create databases, is limited to 5 connections and is in a group
    // the grants go to; the group may replicate, which only a superuser may give.
    await su(`CREATE ROLE jv_reader NOLOGIN REPLICATION; CREATE ROLE "jv owner" LOGIN CREATEDB CONNECTION LIMIT 5 IN ROLE jv_reader;
CREATE TABLE reflash_probe (id int); INSERT INTO reflash_probe SELECT generate_series(1, 42);
ALTER TABLE reflash_probe OWNER TO "jv owner"; GRANT SELECT ON reflash_probe TO jv_reader;`);
    const run = (await startDeviceBackup(services, device.name, ['db']).done).value!;
    // The device is flashed again: the app's data and its roles are gone; PostgreSQL is back.
    await su(`DROP TABLE reflash_probe; DROP ROLE "jv owner"; DROP ROLE jv_reader;`);
    const roles = () =>
      su(
        `SELECT coalesce(string_agg(concat_ws(':', rolname, rolcanlogin, rolcreatedb, rolconnlimit, rolreplication, pg_has_role(rolname, 'jv_reader', 'MEMBER')), ',' ORDER BY rolname), '') FROM pg_roles WHERE rolname IN ('jv owner', 'jv_reader');`,
        'postgres',
      );
    expect(await roles()).toBe('');
    try {
      // A login that may not create roles: told which ones to create, nothing loaded.
      await su(`CREATE ROLE jv_plain LOGIN CREATEDB;`, 'postgres');
      const profile = services.devices.get(device.name).profile;
      services.devices.update(device.name, { ...profile, sources: profile.sources.map((s) => (s.name === 'db' ? { ...s, user: 'jv_plain' } : s)) }, {}, 'test');
      const plain = services.restores.start({ device: device.name, scope: 'source', sources: ['db'], snapshotId: run.snapshots[0]!.snapshotId, targetDatabase: 'myrvm_reflash' });
      const refused = (await jobEnded(services.jobs, plain.jobId)).error?.message ?? '';
      expect(refused).toMatch(/needs the roles "jv owner", "jv_reader", which PostgreSQL on .* does not have, and the source's login cannot create them .*permission denied.*Nothing was changed/s);
      // How to create them as they were, ready to run as the database superuser.
      expect(refused).toContain(`sudo -u postgres psql -c 'CREATE ROLE "jv owner" LOGIN CREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT 5; CREATE ROLE "jv_reader" NOLOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT -1 REPLICATION; GRANT "jv_reader" TO "jv owner"'`);
      services.devices.update(device.name, profile, {}, 'test');
      expect(await roles()).toBe('');
      expect(await su(`SELECT count(*) FROM pg_database WHERE datname LIKE 'myrvm%' AND datname <> 'myrvm';`, 'postgres')).toBe('0');

      const { jobId } = services.restores.start({ device: device.name, scope: 'source', sources: ['db'], snapshotId: run.snapshots[0]!.snapshotId, targetDatabase: 'myrvm_reflash' });
      const job = await jobEnded(services.jobs, jobId);
      expect(job.error).toBeNull();
      const notes = (job.result as { notes: string[] }).notes.join(' ');
      expect(notes).toMatch(/no role "jv owner", "jv_reader", which the snapshot of "db" gives its objects and grants to .*: created as the snapshot recorded them, with "jv owner" in "jv_reader", but without a password/);
      expect(notes).toMatch(/Not given, as only a superuser may: "jv_reader": REPLICATION\./);
      expect(await roles()).toBe('jv owner:t:t:5:f:t,jv_reader:f:f:-1:f:t');
      // Every owner and grant as it was.
      expect(await su(`SELECT pg_get_userbyid(relowner) || ':' || has_table_privilege('jv_reader', 'reflash_probe', 'SELECT') || ':' || (SELECT count(*) FROM reflash_probe) FROM pg_class WHERE relname = 'reflash_probe';`, 'myrvm_reflash')).toBe('jv owner:true:42');
    } finally {
      await su(`DROP DATABASE IF EXISTS myrvm_reflash;`, 'postgres');
      await su(`DROP ROLE IF EXISTS "jv owner"; DROP ROLE IF EXISTS jv_reader; DROP ROLE IF EXISTS jv_plain;`, 'postgres');
    }
  }, 180_000);
});

describe('the roles a pg_dump needs', () => {
  it('are read from its schema SQL: owners, grantees, default privileges; quoted names; never PUBLIC', () => {
    const sql = [
      'ALTER TABLE public.deposits OWNER TO myrvm;',
      'ALTER SCHEMA "odd ""schema""" OWNER TO "App Owner";',
      'GRANT SELECT ON TABLE public.deposits TO reader;',
      'GRANT ALL ON SCHEMA public TO PUBLIC;',
      'REVOKE ALL ON TABLE public.deposits FROM "x y";',
      'GRANT USAGE ON SCHEMA s TO "with ""quote""" WITH GRANT OPTION;',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "def role" IN SCHEMA public GRANT SELECT ON TABLES TO reader;',
      "COMMENT ON TABLE x IS 'GRANT SELECT ON t TO nobody;';",
    ].join('\n');
    expect(rolesInSchemaSql(sql)).toEqual(['App Owner', 'def role', 'myrvm', 'reader', 'with "quote"', 'x y']);
  });
});
