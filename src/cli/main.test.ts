import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../main/testing/temp-dir';
import { COMMANDS } from './commands/index';
import { runCli } from './main';
import { closestNames, parseTimeOption } from './command';
import type { CliIo } from './command';

function io(env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const value: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env };
  return { io: value, out, err };
}

describe('jetvault CLI', () => {
  it('reads a time option strictly: a date, a date and time, or an age — not whatever Date.parse makes of it', async () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    expect(parseTimeOption('--at', '90m', now).toISOString()).toBe('2026-11-30T10:30:00.000Z');
    expect(parseTimeOption('--at', '2026-11-30T08:00:00Z', now).toISOString()).toBe('2026-11-30T08:00:00.000Z');
    expect(parseTimeOption('--at', '2026-11-30T08:00+02:00', now).toISOString()).toBe('2026-11-30T06:00:00.000Z');
    // Without a zone: this computer's local time, as a technician reads the clock.
    expect(parseTimeOption('--at', '2026-11-30 08:00', now).getTime()).toBe(new Date(2026, 10, 30, 8, 0).getTime());
    // Date.parse reads each of these as some day in 2001 (or another year): refused instead.
    for (const text of ['1', '12', 'May 3', 'yesterday', '2026-11-30 noon', '30/11/2026']) expect(() => parseTimeOption('--at', text, now)).toThrow(/--at needs a date\/time/);
    const t = io({ JETVAULT_HOME: tempDir() });
    expect(await runCli(['restore', 'latest', '--device', 'rvm-017', '--at', '1'], t.io)).toBe(2);
    expect(t.err.join('\n')).toMatch(/--at needs a date\/time .* not "1"/);
  });

  it('prints help listing its commands', async () => {
    const t = io({});
    expect(await runCli(['--help'], t.io)).toBe(0);
    expect(t.out.join('\n')).toMatch(/Usage: jetvault <command>[\s\S]*settings/);
    expect(await runCli([], io({}).io)).toBe(2);
  });

  it('says a command-line mistake in a few lines: the error, the forms of the command, and what was probably meant', async () => {
    const env = { JETVAULT_HOME: tempDir() };
    const port = io(env);
    expect(await runCli(['device', 'add', 'rvm-017', '--host', '127.0.0.1', '--port', '99999'], port.io)).toBe(2);
    const said = port.err.join('\n');
    // The error first, then the command's forms and where the rest is — not the prose of --help.
    expect(said.split('\n')[0]).toMatch(/^jetvault device: --port: .*65535/);
    expect(said).toContain('jetvault device add NAME --host HOST');
    expect(said).toContain('Run "jetvault device --help" for the details.');
    expect(said).not.toContain('exits with status 3');
    expect(said.split('\n').length).toBeLessThan(20);

    const typo = io(env);
    expect(await runCli(['snapshot', '--json'], typo.io)).toBe(2);
    expect(typo.err.join('\n')).toBe('jetvault: unknown command "snapshot"\nDid you mean "jetvault snapshots"?\nRun "jetvault --help" to list the commands.');
    const option = io(env);
    expect(await runCli(['restore', 'latest', '--device', 'rvm-017', '--dry-rn'], option.io)).toBe(2);
    expect(option.err[0]).toMatch(/^jetvault restore: unknown option --dry-rn \(did you mean --dry-run\?\)\n/);
    expect(closestNames('frobnicate', COMMANDS.map((c) => c.name))).toEqual([]);
    expect(closestNames('ke', COMMANDS.map((c) => c.name)).sort()).toEqual(['keep', 'key']);
  });

  it('refuses an option that takes one value given twice, instead of acting on the last alone', async () => {
    const env = { JETVAULT_HOME: tempDir() };
    const twice = io(env);
    // parseArgs keeps the last: this drilled rvm-018 alone, and said nothing of rvm-017.
    expect(await runCli(['drill', '--device', 'rvm-017', '--device', 'rvm-018'], twice.io)).toBe(2);
    expect(twice.err[0]).toMatch(/^jetvault drill: --device takes one value, and was given 2: "rvm-017", "rvm-018"/);
    // Options that take many stay many.
    const many = io(env);
    expect(await runCli(['backup', '--device', 'rvm-017', '--source', 'db', '--source', 'config'], many.io)).toBe(1);
    expect(many.err.join('\n')).toMatch(/No device named "rvm-017"/);
  });

  it('lists each command with the name and summary its own module declares', async () => {
    for (const entry of COMMANDS) {
      const command = await entry.load();
      expect({ name: command.name, summary: command.summary }).toEqual({ name: entry.name, summary: entry.summary });
    }
    expect(new Set(COMMANDS.map((c) => c.name)).size).toBe(COMMANDS.length);
  });

  it('starts a local backup without loading SSH or the history database', () => {
    // A fresh Node process: which modules does `jetvault backup --help` pull in?
    const script = [
      "const { register } = await import('tsx/esm/api');",
      'register();',
      "const { runCli } = await import('./src/cli/main.ts');",
      "await runCli(['backup', '--help'], { out: () => {}, err: () => {}, env: {} });",
      "const { createRequire } = await import('node:module');",
      'const loaded = Object.keys(createRequire(import.meta.url).cache);',
      "console.log(JSON.stringify(loaded.filter((p) => /node_modules\\/(ssh2|better-sqlite3)\\//.test(p))));",
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url).pathname }).toString();
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual([]);
  });

  it('reads and changes settings in the shared data directory', async () => {
    const env = { JETVAULT_HOME: tempDir() };
    expect(await runCli(['settings', 'set', 'defaultRpoMinutes', '15'], io(env).io)).toBe(0);
    expect(await runCli(['settings', 'set', 'desktopNotifications', 'false'], io(env).io)).toBe(0);
    const shown = io(env);
    expect(await runCli(['settings', '--json'], shown.io)).toBe(0);
    expect(JSON.parse(shown.out.join('\n'))).toMatchObject({ defaultRpoMinutes: 15, desktopNotifications: false });
    // One value, as JSON, for scripts.
    const one = io(env);
    expect(await runCli(['settings', 'get', 'defaultRpoMinutes'], one.io)).toBe(0);
    expect(one.out).toEqual(['15']);
    expect(await runCli(['settings', 'get', 'colour'], io(env).io)).toBe(2);
  });

  it('explains bad input with a non-zero exit and changes nothing', async () => {
    const env = { JETVAULT_HOME: tempDir() };
    const bad = io(env);
    expect(await runCli(['settings', 'set', 'defaultRpoMinutes', '0'], bad.io)).toBe(1);
    expect(bad.err.join('\n')).toMatch(/defaultRpoMinutes: .*(>=|too small|at least)/i);
    const unknown = io(env);
    expect(await runCli(['settings', 'set', 'colour', 'red'], unknown.io)).toBe(2);
    expect(unknown.err.join('\n')).toMatch(/unknown setting "colour"/);
    const typo = io(env);
    expect(await runCli(['settings', 'set', 'defaultRpo', '15'], typo.io)).toBe(2);
    expect(typo.err[0]).toMatch(/^jetvault settings: unknown setting "defaultRpo" \(did you mean defaultRpoMinutes\?\); the settings are theme, /);
    expect(await runCli(['settings', '--frobnicate'], io(env).io)).toBe(2);
    expect(await runCli(['frobnicate'], io(env).io)).toBe(2);
    const shown = io(env);
    await runCli(['settings', '--json'], shown.io);
    expect(JSON.parse(shown.out.join('\n'))).toMatchObject({ defaultRpoMinutes: 60 });
  });

  it('names a device that is not in the inventory before it asks for the repository password', async () => {
    const env = { JETVAULT_HOME: tempDir() };
    const missing = io(env);
    expect(await runCli(['backup', '--device', 'rvm-0177'], missing.io)).toBe(1);
    expect(missing.err.join('\n')).toMatch(/No device named "rvm-0177"/);
    expect(missing.err.join('\n')).not.toMatch(/password/);
    const drill = io(env);
    expect(await runCli(['drill', '--device', 'rvm-0177'], drill.io)).toBe(1);
    expect(drill.err.join('\n')).toMatch(/No device named "rvm-0177"/);
    expect(drill.err.join('\n')).not.toMatch(/password/);
  });

  it('runs as `npx jetvault` from the repository root', () => {
    const output = execFileSync('npx', ['--no-install', 'jetvault', '--help'], { encoding: 'utf8', env: { ...process.env, JETVAULT_HOME: tempDir() } });
    expect(output).toMatch(/Usage: jetvault/);
  });
});
