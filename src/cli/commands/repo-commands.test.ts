import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../main/repository/backend/local-backend';
import { RepositoryLock } from '../../main/repository/lock/lock';
import { Repository } from '../../main/repository/repo/repository';
import type { CliIo } from '../command';
import { runCli } from '../main';
import { tempDir } from '../../main/testing/temp-dir';

function io(env: Record<string, string>): CliIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), env: { ...env } };
}

/** A data folder (`data/a.conf`) backed up once into a new repository under a temp JETVAULT_HOME. */
async function backedUpHome(extra: Record<string, string> = {}): Promise<{ home: string; data: string; env: Record<string, string> }> {
  const home = tempDir('jv-cli-');
  const data = join(home, 'data');
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'a.conf'), 'a=1\n');
  const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1', ...extra };
  expect(await runCli(['init'], io(env))).toBe(0);
  expect(await runCli(['backup', data], io(env))).toBe(0);
  return { home, data, env };
}

describe('backup of a path given twice, or inside another path given', () => {
  it('stores each folder once and counts each file once', { timeout: 60_000 }, async () => {
    const { data, env } = await backedUpHome();
    await mkdir(join(data, 'sub'));
    await writeFile(join(data, 'sub', 'b.conf'), 'b=2\n');
    for (const paths of [[data, join(data, 'sub')], [data, `${data}/`]]) {
      const run = io(env);
      expect(await runCli(['backup', ...paths, '--json'], run)).toBe(0);
      expect(JSON.parse(run.lines[0]!)).toMatchObject({ files: 2 });
      const ls = io(env);
      expect(await runCli(['ls', 'latest', data], ls)).toBe(0);
      expect(ls.lines).toEqual([data, join(data, 'a.conf'), join(data, 'sub'), join(data, 'sub', 'b.conf')]);
    }
  });
});

describe('backup of a path that is a symbolic link', () => {
  it('says only the link was stored and where the data is, exit 3', { timeout: 60_000 }, async () => {
    const { home, data, env } = await backedUpHome();
    // A data folder moved to another disk and linked back; and a link to a disk not mounted.
    await symlink(data, join(home, 'data-link'));
    await symlink(join(home, 'not-mounted'), join(home, 'usb'));
    const linked = io(env);
    expect(await runCli(['backup', join(home, 'data-link')], linked)).toBe(3);
    expect(linked.errors).toContain(`warning: ${join(home, 'data-link')}: a symbolic link to ${data}: only the link was stored, nothing it points to was copied; give ${data} to back that up`);
    expect(linked.errors.join('\n')).not.toMatch(/could not be read/);
    const dangling = io(env);
    expect(await runCli(['backup', join(home, 'usb')], dangling)).toBe(3);
    expect(dangling.errors).toContain(`warning: ${join(home, 'usb')}: a symbolic link to ${join(home, 'not-mounted')}, which does not exist (a disk not mounted?): only the link was stored`);
  });
});

describe('repository CLI', () => {
  it('runs init → backup → snapshots → ls → restore, with documented exit codes for failures', { timeout: 60_000 }, async () => {
    const home = tempDir('jv-cli-');
    const data = join(home, 'data');
    await mkdir(join(data, 'etc'), { recursive: true });
    await writeFile(join(data, 'etc/app.conf'), 'key=value\n');
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1' };

    expect(await runCli(['snapshots'], io(env))).toBe(10);
    // A location that cannot name a repository is a usage error (2), not "no repository" (10).
    for (const [location, why] of [
      ['s3:', /"s3:" is not an S3 location: expected s3:https/],
      ['sftp:ops@host:2222', /has no path \(2222 looks like a port\)/],
    ] as const) {
      const refused = io(env);
      expect(await runCli(['snapshots', '-r', location], refused)).toBe(2);
      expect(refused.errors.join('\n')).toMatch(why);
    }
    await writeFile(join(home, 'a-file'), 'not a folder');
    const onFile = io(env);
    expect(await runCli(['init', '-r', join(home, 'a-file')], onFile)).toBe(2);
    expect(onFile.errors.join('\n')).toMatch(/a-file is a file: give a folder \(new or empty\) for the repository/);
    expect(readFileSync(join(home, 'a-file'), 'utf8')).toBe('not a folder');
    expect(await runCli(['init'], io(env))).toBe(0);
    const b = io(env);
    expect(await runCli(['backup', data, '--json', '--tag', 'nightly'], b)).toBe(0);
    const summary = JSON.parse(b.lines[0]!) as { id: string; files: number };
    expect(summary.files).toBe(1);

    // A path that is not there (a typo, a disk not mounted) writes no empty snapshot; one of two missing is a warning (3).
    const missing = io(env);
    expect(await runCli(['backup', join(home, 'dta')], missing)).toBe(1);
    expect(missing.errors.join('\n')).toMatch(/nothing to back up: .*\/dta does not exist; no snapshot was written/);
    expect(await runCli(['backup', join(home, 'dta'), join(home, 'dat')], io(env))).toBe(1);
    const underFile = io(env);
    expect(await runCli(['backup', join(data, 'etc/app.conf/x')], underFile)).toBe(1);
    expect(underFile.errors.join('\n')).toMatch(/app\.conf\/x does not exist; no snapshot was written/);
    // An empty folder (a mount point whose disk is not mounted) writes no empty snapshot either, unless asked for.
    const mountPoint = join(home, 'mnt-usb');
    await mkdir(mountPoint);
    const unmounted = io(env);
    expect(await runCli(['backup', mountPoint], unmounted)).toBe(1);
    expect(unmounted.errors.join('\n')).toMatch(/nothing to back up: .*\/mnt-usb is an empty folder \(a disk not mounted there\?\); no snapshot was written\. Mount it, or give --allow-empty/);
    const emptyAndMissing = io(env);
    expect(await runCli(['backup', mountPoint, join(home, 'dta')], emptyAndMissing)).toBe(1);
    expect(emptyAndMissing.errors.join('\n')).toMatch(/mnt-usb is an empty folder and .*\/dta does not exist/);
    const s = io(env);
    expect(await runCli(['snapshots', '--json'], s)).toBe(0);
    expect(JSON.parse(s.lines.join('\n'))).toHaveLength(1);
    expect((JSON.parse(s.lines.join('\n')) as { id: string; tags: string[] }[])[0]).toMatchObject({ id: summary.id, tags: ['nightly'] });
    const allowed = io(env);
    expect(await runCli(['backup', mountPoint, '--allow-empty', '--json'], allowed)).toBe(0);
    expect(JSON.parse(allowed.lines[0]!)).toMatchObject({ files: 0 });
    // Beside a folder with files, an empty one is backed up as it is.
    expect(await runCli(['backup', data, mountPoint], io(env))).toBe(0);
    const half = io(env);
    expect(await runCli(['backup', data, join(home, 'dta')], half)).toBe(3);
    expect(half.errors.join('\n')).toMatch(/\/dta: ENOENT/);
    const ls = io(env);
    expect(await runCli(['ls', summary.id.slice(0, 8)], ls)).toBe(0);
    expect(ls.lines).toContain(`${data}/etc/app.conf`);
    // Only what is at (and under) the paths given.
    for (const path of [`${data}/etc`, `${data}/etc/`, `${data}/etc/app.conf`]) {
      const some = io(env);
      expect(await runCli(['ls', 'latest', path], some)).toBe(0);
      expect(some.lines).toEqual(path.endsWith('app.conf') ? [`${data}/etc/app.conf`] : [`${data}/etc`, `${data}/etc/app.conf`]);
    }
    const absent = io(env);
    expect(await runCli(['ls', 'latest', `${data}/nope`], absent)).toBe(1);
    expect(absent.errors.join('\n')).toMatch(/\/nope is not in snapshot [0-9a-f]{8}/);
    expect(await runCli(['ls', 'latest', 'etc'], io(env))).toBe(2);

    const wrong = io({ ...env, JETVAULT_PASSWORD: 'nope' });
    expect(await runCli(['snapshots'], wrong)).toBe(12);
    expect(wrong.errors.join()).toMatch(/wrong password/);

    const repo = await Repository.open(new LocalBackend(join(home, 'repository')), 'pw-1');
    const lock = await RepositoryLock.acquire(repo, true);
    const locked = io(env);
    expect(await runCli(['backup', data], locked)).toBe(11);
    expect(locked.errors.join()).toMatch(/locked/);
    await lock.release();

    const target = join(home, 'out');
    expect(await runCli(['restore', 'latest', '--target', target], io(env))).toBe(0);
    // A pattern that matches nothing (a typo) is a failure that says so, not "0 files" and success.
    const typo = io(env);
    expect(await runCli(['restore', 'latest', '--target', join(home, 'typo'), '--include', `${data}/ect`], typo)).toBe(1);
    expect(typo.errors.join('\n')).toMatch(/nothing in snapshot [0-9a-f]{8} matches --include ".*\/ect"; `jetvault ls [0-9a-f]{8} PATH` shows what it holds/);
    expect(await runCli(['restore', 'latest', '--target', join(home, 'some'), '--include', `${data}/etc`], io(env))).toBe(0);
    expect(readFileSync(join(home, 'some', data, 'etc', 'app.conf'), 'utf8')).toBe('key=value\n');
    expect(await runCli(['check', '--read-data-subset', '50%', '--json'], io(env))).toBe(0);
    expect(await runCli(['ls', 'ffffffffff'], io(env))).toBe(1);
  });

  it('init takes the password from --password-file over $JETVAULT_PASSWORD, as every later command reads it', { timeout: 30_000 }, async () => {
    const home = tempDir('jv-cli-');
    const file = join(home, 'pw');
    await writeFile(file, 'from-the-file\r\n');
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'from-the-environment' };
    expect(await runCli(['init', '--password-file', file], io(env))).toBe(0);
    expect(await runCli(['snapshots', '--password-file', file], io(env))).toBe(0);
    expect(await runCli(['snapshots'], io(env))).toBe(12);
  });

  it('a damaged key slot locks out only itself: the others open, it is listed and can be removed', { timeout: 30_000 }, async () => {
    const home = tempDir('jv-cli-');
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1' };
    expect(await runCli(['init'], io(env))).toBe(0);
    // Sorted before the real slot, so it is the first one tried; half a slot file, as bit rot or a cut copy leaves it.
    await writeFile(join(home, 'repository', 'keys', '00000000000000000000000000000000'), '{"version":1,"kdf":"scr');
    expect(await runCli(['snapshots'], io(env))).toBe(0);
    const listed = io(env);
    expect(await runCli(['key', 'list'], listed)).toBe(0);
    expect(listed.lines.join('\n')).toMatch(/00000000 +\(damaged\)/);
    const wrong = io({ ...env, JETVAULT_PASSWORD: 'nope' });
    expect(await runCli(['snapshots'], wrong)).toBe(12);
    expect(wrong.errors.join()).toMatch(/wrong password.*00000000 .*damaged/);
    expect(await runCli(['key', 'remove', '00000000'], io(env))).toBe(0);
    const after = io(env);
    expect(await runCli(['key', 'list'], after)).toBe(0);
    expect(after.lines).toHaveLength(1);
    expect(after.lines[0]).toMatch(/^\* .* initial /);
  });

  it('key add and passwd: one password per key slot, so a slot removed or changed takes its password away', { timeout: 60_000 }, async () => {
    const home = tempDir('jv-cli-');
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1' };
    expect(await runCli(['init'], io(env))).toBe(0);
    const file = async (name: string, text: string) => {
      await writeFile(join(home, name), text);
      return join(home, name);
    };
    expect(await runCli(['key', 'add', '--label', 'ana', '--new-password-file', await file('ana', 'pw-ana\n')], io(env))).toBe(0);
    for (const [text, why] of [
      ['\n', /an empty password is not allowed/],
      ['pw-1\n', /that is the password of the key slot in use already/],
      ['pw-ana\n', /that password already opens key slot [0-9a-f]{8}: give every key slot a password of its own/],
    ] as const) {
      const refused = io(env);
      expect(await runCli(['key', 'add', '--new-password-file', await file('again', text)], refused)).toBe(2);
      expect(refused.errors.join('\n')).toMatch(why);
    }
    const passwd = io(env);
    expect(await runCli(['key', 'passwd', '--new-password-file', await file('ana-too', 'pw-ana\n')], passwd)).toBe(2);
    expect(await runCli(['key', 'passwd', '--new-password-file', await file('new', 'pw-2\n')], io(env))).toBe(0);
    expect(await runCli(['snapshots'], io(env))).toBe(12); // the old password opens nothing now
    expect(await runCli(['snapshots'], io({ ...env, JETVAULT_PASSWORD: 'pw-2' }))).toBe(0);
    const listed = io({ ...env, JETVAULT_PASSWORD: 'pw-ana' });
    expect(await runCli(['key', 'list'], listed)).toBe(0);
    expect(listed.lines).toHaveLength(2);
  });

  it('forget refuses --keep-* 0 (a script whose variable was unset) instead of removing every snapshot; malformed durations and percentages are usage errors', { timeout: 60_000 }, async () => {
    const { data, env } = await backedUpHome();
    expect(await runCli(['backup', data], io(env))).toBe(0);
    for (const k of ['last', 'daily', 'yearly']) {
      const refused = io(env);
      expect(await runCli(['forget', `--keep-${k}`, '0', '--prune'], refused)).toBe(2);
      expect(refused.errors.join('\n')).toMatch(new RegExp(`--keep-${k} needs 1 or more`));
    }
    // Malformed numbers are usage errors, refused before anything is touched.
    for (const args of [['forget', '--keep-within', '7x'], ['prune', '--max-unused', 'abc'], ['prune', '--max-unused', '200%']]) {
      const refused = io(env);
      expect(await runCli(args, refused)).toBe(2);
      expect(refused.errors.join('\n')).toMatch(/invalid duration "7x"|--max-unused needs a percentage/);
    }
    // Counts are digits: "0x10" is not 16, "1e1" not 10, "" not 0 (Number() read each as a count).
    for (const count of ['0x10', '1e1', '', ' 3', '2.0', '-1']) {
      const refused = io(env);
      expect(await runCli(['forget', `--keep-last=${count}`, '--prune'], refused)).toBe(2);
      expect(refused.errors.join('\n')).toContain(`--keep-last needs a whole number, like 7 (got "${count}")`);
    }
    const listed = io(env);
    expect(await runCli(['snapshots', '--json'], listed)).toBe(0);
    expect(JSON.parse(listed.lines.join('\n'))).toHaveLength(2);
  });

  it('forget --keep-within longer than dates go (300000y, "forever") keeps everything instead of nothing', { timeout: 60_000 }, async () => {
    const { data, env } = await backedUpHome();
    expect(await runCli(['backup', data], io(env))).toBe(0);
    for (const within of ['300000y', '99999999999d', '1y']) {
      const dry = io(env);
      expect(await runCli(['forget', '--keep-within', within, '--dry-run', '--json'], dry)).toBe(0);
      const plan = JSON.parse(dry.lines.join('\n')) as { keep: unknown[]; remove: unknown[] };
      expect([within, plan.keep.length, plan.remove.length]).toEqual([within, 2, 0]);
    }
    expect(await runCli(['forget', '--keep-within', '300000y', '--prune'], io(env))).toBe(0);
    const listed = io(env);
    expect(await runCli(['snapshots', '--json'], listed)).toBe(0);
    expect(JSON.parse(listed.lines.join('\n'))).toHaveLength(2);
  });

  // A read-only bind mount needs root (CI runs as root).
  it.skipIf(process.getuid?.() !== 0)('check, restore and copy read a repository on a write-protected disk (no lease can be written there)', { timeout: 60_000 }, async () => {
    const { home, data, env } = await backedUpHome();
    const mounted = join(home, 'offsite');
    await mkdir(mounted);
    execFileSync('mount', ['--bind', join(home, 'repository'), mounted]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', mounted]);
      const checked = io(env);
      expect(await runCli(['check', '-r', mounted, '--read-data'], checked)).toBe(0);
      expect(checked.errors.join('\n')).toMatch(/read-only here, so no lease was taken/);
      expect(await runCli(['restore', '-r', mounted, 'latest', '--target', join(home, 'out')], io(env))).toBe(0);
      expect(readFileSync(join(home, 'out', data, 'a.conf'), 'utf8')).toBe('a=1\n');
      // Copied back from (a new primary made from the offsite copy).
      expect(await runCli(['init', '-r', join(home, 'new-primary')], io(env))).toBe(0);
      const copied = io({ ...env, JETVAULT_TO_PASSWORD: 'pw-1' });
      expect(await runCli(['copy', '-r', mounted, '--to', join(home, 'new-primary')], copied)).toBe(0);
      expect(copied.errors.join('\n')).toMatch(/source repository is read-only here/);
      // What writes is still refused.
      expect(await runCli(['backup', '-r', mounted, data], io(env))).not.toBe(0);
    } finally {
      execFileSync('umount', [mounted]);
    }
  });

  it('one damaged snapshot object stops no backup, restore or copy of the others; prune refuses until forget --damaged removes it', { timeout: 60_000 }, async () => {
    const { home, data, env } = await backedUpHome({ JETVAULT_TO_PASSWORD: 'pw-1' });
    await writeFile(join(home, 'repository', 'snapshots', '00'.repeat(32)), 'bit rot');
    const backedUp = io(env);
    expect(await runCli(['backup', data], backedUp)).toBe(0);
    expect(backedUp.errors.join('\n')).toMatch(/warning: snapshot 00000000 is damaged and was left out/);
    const listed = io(env);
    expect(await runCli(['snapshots', '--json'], listed)).toBe(0);
    expect(JSON.parse(listed.lines.join('\n'))).toHaveLength(2);
    expect(await runCli(['restore', 'latest', '--target', join(home, 'out')], io(env))).toBe(0);
    expect(await runCli(['init', '-r', join(home, 'offsite')], io(env))).toBe(0);
    expect(await runCli(['copy', '--to', join(home, 'offsite')], io(env))).toBe(0);
    // What the damaged snapshot used cannot be known, so nothing is pruned, saying what frees it; check names it.
    const refused = io(env);
    expect(await runCli(['prune'], refused)).toBe(1);
    expect(refused.errors.join('\n')).toMatch(/nothing is removed.*`jetvault forget --damaged` removes it/);
    const checked = io(env);
    expect(await runCli(['check'], checked)).toBe(1);
    expect(checked.errors.join('\n')).toMatch(/snapshot 0{64}.*`jetvault forget --damaged` removes it/);
    // forget --damaged: a dry run names it and keeps it; then it goes, prune runs and check is clean.
    const dry = io(env);
    expect(await runCli(['forget', '--damaged', '--dry-run', '--prune', '--json'], dry)).toBe(0);
    expect(JSON.parse(dry.lines.join('\n'))).toMatchObject({ dryRun: true, damaged: [{ id: '00'.repeat(32) }], snapshotsRemoved: 1 });
    expect(readdirSync(join(home, 'repository', 'snapshots'))).toContain('00'.repeat(32));
    const forgot = io(env);
    expect(await runCli(['forget', '--damaged', '--prune'], forgot)).toBe(0);
    expect(forgot.lines.join('\n')).toMatch(/remove snapshot 00000000 damaged: .*bytes do not match its name/);
    expect(forgot.errors.join('\n')).not.toMatch(/left out/);
    expect(readdirSync(join(home, 'repository', 'snapshots'))).not.toContain('00'.repeat(32));
    expect(await runCli(['check', '--read-data'], io(env))).toBe(0);
    const after = io(env);
    expect(await runCli(['snapshots', '--json'], after)).toBe(0);
    expect(JSON.parse(after.lines.join('\n'))).toHaveLength(2);
    // Nothing to remove is not an error; --device belongs to --keep-*.
    expect(await runCli(['forget', '--damaged'], io(env))).toBe(0);
    expect(await runCli(['forget', '--damaged', '--device', 'x'], io(env))).toBe(2);
  });
});
