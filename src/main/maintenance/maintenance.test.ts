/**
 * Retention by runs and scheduled upkeep, on a real repository with real runs (the device scripts
 * run locally through LocalRunner, the same text that runs over SSH): a policy keeps or forgets
 * whole runs; verification and prune run as jobs when due; a damaged pack fails the data check and
 * raises the verification alert.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../cli/main';
import { runSources } from '../devices/device-backup';
import { LocalRunner } from '../devices/local-runner';
import { silentLogger } from '../log';
import { backup } from '../repository/archiver/archiver';
import { NAMES } from '../repository/backend/backend';
import { forget } from '../repository/prune/forget';
import { findSnapshot, listSnapshots, loadTree } from '../repository/snapshot/snapshot';
import { flipByte, FAST, PASSWORD } from '../repository/testing/fixtures';
import { LocalSource } from '../repository/walker/local-walker';
import type { Services } from '../services/index';
import { tempDir } from '../testing/temp-dir';
import { planDeviceRetention, applyDeviceRetention } from './device-retention';
import { Maintenance, RETRY_FAILED_MS } from './maintenance';
import { cliServices } from '../testing/test-console';

const open: Services[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.dispose();
});

async function setup(): Promise<{ services: Services; run: (only?: string[]) => Promise<string>; root: string }> {
  const services = cliServices(tempDir(), { JETVAULT_PASSWORD: PASSWORD });
  open.push(services);
  await services.repository.init(PASSWORD, FAST);
  const root = tempDir();
  await mkdir(path.join(root, 'etc/myrvm'), { recursive: true });
  await mkdir(path.join(root, 'var/log/myrvm'), { recursive: true });
  await writeFile(path.join(root, 'etc/myrvm/config.yaml'), 'fps: 30\n');
  await writeFile(path.join(root, 'var/log/myrvm/app.log'), 'started\n'.repeat(5000));
  const sources = [
    { name: 'config', kind: 'files' as const, paths: [path.join(root, 'etc/myrvm')] },
    { name: 'logs', kind: 'files' as const, paths: [path.join(root, 'var/log/myrvm')] },
  ];
  const ctx = { phase: () => undefined, advance: () => undefined, setTotals: () => undefined, signal: new AbortController().signal };
  let n = 0;
  const run = async (only?: string[]) => {
    await writeFile(path.join(root, 'etc/myrvm/config.yaml'), `fps: ${30 + ++n}\n`);
    const repo = await services.repository.open();
    const chosen = only ? sources.filter((x) => only.includes(x.name)) : sources;
    return (await runSources(repo, new LocalRunner(), { name: 'rvm-017', sysroot: root }, chosen, ctx)).runId;
  };
  return { services, run, root };
}

describe('retention by runs', () => {
  it('keeps or forgets whole runs, never one source of a run', async () => {
    const { services, run } = await setup();
    const runs = [await run(), await run(), await run()];
    const repo = await services.repository.open();
    const plan = await planDeviceRetention(repo, 'rvm-017', { last: 2 });
    expect(plan.map((r) => [r.runId, r.keep, r.sources])).toEqual([
      [runs[2], true, ['config', 'logs']],
      [runs[1], true, ['config', 'logs']],
      [runs[0], false, ['config', 'logs']],
    ]);
    expect(await listSnapshots(repo)).toHaveLength(6); // a plan changes nothing

    const applied = await applyDeviceRetention(repo, 'rvm-017', { last: 2 });
    expect(applied).toMatchObject({ runsForgotten: 1, snapshotsForgotten: 2 });
    const left = await services.catalog.list('rvm-017');
    expect(new Set(left.map((s) => s.runId))).toEqual(new Set([runs[1], runs[2]]));
    expect(left).toHaveLength(4);
    // Another device's runs are not touched by this device's policy.
    expect(await planDeviceRetention(repo, 'rvm-018', { last: 1 })).toEqual([]);

    // The config on its own schedule, twice: the newest run still holding the logs stays kept.
    const alone = [await run(['config']), await run(['config'])];
    const after = await planDeviceRetention(await services.repository.fresh(), 'rvm-017', { last: 1 });
    expect(after.map((r) => [r.runId, r.keep, r.reasons])).toEqual([
      [alone[1], true, ['last']],
      [alone[0], false, []],
      [runs[2], true, ['last (logs)']],
      [runs[1], false, []],
    ]);
  });

  it('the CLI forget --device keeps whole runs, each source its own newest: no run is left with some of its sources, none is pushed out by a source on its own schedule', async () => {
    const { services, run } = await setup();
    // Three whole runs, then the config alone twice (a source on its own schedule).
    const runs = [await run(), await run(), await run(), await run(['config']), await run(['config'])];
    const location = services.repository.location();
    const env = { JETVAULT_PASSWORD: PASSWORD, JETVAULT_HOME: tempDir() };
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const errors: string[] = [];
      const code = await runCli(['forget', '--repo', location, ...args], { out: (l) => out.push(l), err: (l) => errors.push(l), env });
      return { code, out, errors };
    };

    const dry = await cli('--device', 'rvm-017', '--keep-last', '2', '--dry-run', '--json');
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.out.join('\n')) as { remove: { unit: string; id: string; sources: string[]; snapshots: string[] }[]; keep: { id: string; reasons: string[] }[]; snapshotsRemoved: number };
    // Per source: the config keeps its two newest (runs 4 and 3), the logs theirs (runs 2 and 1), so
    // the config-only runs do not push out the last runs that hold the logs; run 0 goes whole.
    expect(plan.remove.map((r) => [r.unit, r.id, r.sources])).toEqual([['run', runs[0], ['config', 'logs']]]);
    expect(plan.keep.map((k) => [k.id, k.reasons])).toEqual([
      [runs[4], ['last']],
      [runs[3], ['last']],
      [runs[2], ['last (logs)']],
      [runs[1], ['last (logs)']],
    ]);
    expect(plan.snapshotsRemoved).toBe(2);
    const repo = await services.repository.fresh();
    expect(await listSnapshots(repo)).toHaveLength(8); // --dry-run changes nothing

    const text = await cli('--device', 'rvm-017', '--keep-last', '2');
    expect(text.code).toBe(0);
    expect(text.out.at(-1)).toBe('removed 2 snapshots (1 whole run), kept 4 runs or snapshots');
    const left = await listSnapshots(repo);
    const perRun = new Map<string, number>();
    for (const s of left) {
      const id = s.tags.find((t) => t.startsWith('run:'))!.slice(4);
      perRun.set(id, (perRun.get(id) ?? 0) + 1);
    }
    expect(Object.fromEntries(perRun)).toEqual({ [runs[1]!]: 2, [runs[2]!]: 2, [runs[3]!]: 1, [runs[4]!]: 1 });
    expect((await cli('--device', 'rvm-017')).code).toBe(2); // no policy: a usage error, nothing removed
    expect(await listSnapshots(repo)).toHaveLength(6);
  });
});

describe('scheduled upkeep', () => {
  it('verifies (data sample) and prunes when due, as jobs; a damaged pack fails verification and raises the alert', async () => {
    const { services, run } = await setup();
    await run();
    const { maintenance } = services;
    expect(maintenance.due()).toEqual(['verify-data', 'prune']);

    const verified = await maintenance.start('verify-data').done;
    expect(verified.record).toMatchObject({ kind: 'verify', status: 'succeeded', result: { readData: true } });
    expect(maintenance.due()).toEqual(['prune']); // a data verification counts as the daily one too
    const pruned = await maintenance.start('prune').done;
    expect(pruned.record.status).toBe('succeeded');
    expect(maintenance.due()).toEqual([]);
    // A busy fleet's many backups since do not hide when upkeep last ran.
    for (let i = 0; i < 250; i++) await services.jobs.start({ kind: 'backup', title: `b${i}`, phases: ['x'] }, () => Promise.resolve(i)).done;
    expect(maintenance.due()).toEqual([]);
    expect(await maintenance.tick()).toEqual([]);
    expect(services.alerts.evaluate().raised.map((a) => a.rule)).not.toContain('verificationFailed');

    // Flip one byte in the middle of every pack: reading the data must notice.
    const dataDir = path.join(services.repository.location(), 'data');
    const packs = readdirSync(dataDir, { recursive: true }).map(String).filter((p) => statSync(path.join(dataDir, p)).isFile());
    expect(packs.length).toBeGreaterThan(0);
    for (const p of packs) {
      const file = path.join(dataDir, p);
      const bytes = readFileSync(file);
      const at = Math.floor(bytes.length / 2);
      bytes[at] = bytes[at]! ^ 0xff;
      writeFileSync(file, bytes);
    }
    const failed = await maintenance.start('verify-data').done;
    expect(failed.record.status).toBe('failed');
    expect(failed.record.error?.message).toMatch(/Verification found \d+ problem/);
    // What to do next: a backup alone would reuse the damaged data.
    expect(failed.record.error?.message).toMatch(/To store the damaged data again: `jetvault repair-packs [0-9a-f]{12}( [0-9a-f]{12})*`, then back up the affected devices again$/);
    const alert = services.alerts.evaluate().raised.find((a) => a.rule === 'verificationFailed');
    expect(alert?.message).toMatch(/verification failed/i);

    // The scheduler's next tick (30 s on, nothing else to do) does not read the damaged data again at
    // once, nor every 30 s after: a failed upkeep task waits RETRY_FAILED_MS. Nor does the daily
    // structure check take its place and resolve the alert while the data stays damaged.
    // (The good data check above as if a week ago: the data check is overdue, as when the damage is found weekly.)
    const weekAgo = new Date(Date.now() - 8 * 86_400_000).toISOString();
    services.history.db.prepare('UPDATE jobs SET started_at = ?, finished_at = ? WHERE id = ?').run(weekAgo, weekAgo, verified.record.id);
    let now = Date.now();
    const later = new Maintenance({ store: services.history, jobs: services.jobs, repository: services.repository, log: silentLogger, clock: () => now });
    now += 30_000;
    expect(later.due()).toEqual([]);
    expect(await later.tick()).toEqual([]);
    now += RETRY_FAILED_MS;
    expect(later.due()).toEqual(['verify-data']);

    // Cancelled because the console quit (not failed): due again at once after the restart.
    const quit = later.start('verify-data');
    await services.jobs.stopAll(30_000);
    expect((await quit.done).record).toMatchObject({ status: 'cancelled', error: { message: 'Verify the repository (10% of the data) was cancelled: Jetvault stopped while it ran' } });
    now = Date.now() + 30_000; // restarted at once
    expect(later.due()).toEqual(['verify-data']);
  });
});

describe('scheduled prune beside damaged data', () => {
  it('prunes the rest and fails naming the pack it kept for its damaged data and what to run', async () => {
    const { services } = await setup();
    const src = tempDir();
    // Both in one pack (FAST packs close at 256 KiB), which the forgotten file leaves half unused.
    await writeFile(path.join(src, 'keep.bin'), randomBytes(60_000));
    await writeFile(path.join(src, 'gone.bin'), randomBytes(60_000));
    const repo = await services.repository.open();
    await backup(repo, new LocalSource([src]));
    await rm(path.join(src, 'gone.bin'));
    const second = await backup(repo, new LocalSource([src]));
    let tree = await loadTree(repo, (await findSnapshot(repo, second.id)).tree);
    for (const part of src.split('/').filter(Boolean)) tree = await loadTree(repo, tree.nodes.find((n) => n.name === part)!.subtree!);
    const where = repo.index.get(tree.nodes.find((n) => n.name === 'keep.bin')!.content![0]!)!;
    await flipByte(path.join(services.repository.location(), NAMES.pack(where.pack)), where.offset + 10);
    await forget(repo, { last: 1 });

    const pruned = await services.maintenance.start('prune').done;
    expect(pruned.record.status).toBe('failed');
    expect(pruned.record.error?.message).toMatch(new RegExp(`kept 1 pack as it is \\(${where.pack.slice(0, 12)}\\).*jetvault check --read-data`));
    // The snapshot forgotten had its own tree pack: that went, the damaged pack stayed.
    const packs = (await repo.backend.list(NAMES.data)).map((o) => NAMES.packId(o.name));
    expect(packs).toContain(where.pack);
    expect(pruned.record.error?.message).toMatch(/^Prune freed [1-9]\d* bytes/);
  });
});
