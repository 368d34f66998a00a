/**
 * Database passwords through a real shell (/bin/sh) and the real MySQL/MariaDB client's option
 * parser: the password reaches the client intact whatever it holds, is never in the command text,
 * and what the command reads after it on stdin is untouched.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LocalRunner } from '../local-runner';
import { commandText, sh } from '../shell-quote';
import type { RawShell } from '../shell-quote';
import type { RunningCommand } from '../ssh-connection';
import { execCompressed } from '../wire-compression';
import { forDatabase, mysqlOptionValue } from './db-password';

const HOSTILE = `p'a"s$s \\w#o;rd\`$(id)\` ünï ${'x'.repeat(200)}\t|&`;

/** This machine as the device, with stored passwords by source name; records every command it is given. */
class Device extends LocalRunner {
  readonly commands: string[] = [];
  constructor(readonly databasePassword: (source: string) => string | undefined) {
    super();
  }

  override exec(command: RawShell, signal?: AbortSignal): Promise<RunningCommand> {
    this.commands.push(commandText(command));
    return super.exec(command, signal);
  }
}

const mysqlClient = spawnSync('sh', ['-c', 'command -v mysql'], { encoding: 'utf8' }).stdout.trim();

describe('database passwords on the device', () => {
  it('postgres: PGPASSWORD holds the password exactly; it is in no command text; stdin after it is intact', async () => {
    const device = new Device((source) => (source === 'db' ? HOSTILE : undefined));
    const runner = forDatabase(device, { name: 'db', kind: 'postgres' });
    expect(await runner.run(sh`printf '%s' "$PGPASSWORD"`)).toBe(HOSTILE);
    // Data sent after it (a dump being restored) arrives byte for byte, line breaks and all.
    const data = Buffer.concat([randomBytes(100_000), Buffer.from('\n\nlast line\n')]);
    const running = await runner.exec(sh`cat`);
    const out: Buffer[] = [];
    running.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    running.stdin.end(data);
    expect((await running.done).code).toBe(0);
    expect(Buffer.concat(out).equals(data)).toBe(true);
    // The shell variable it was read into is gone; nothing of it is in the commands sent.
    expect(await runner.run(sh`printf '%s' "\${JV_DBPW-unset}"`)).toBe('unset');
    expect(device.commands.length).toBe(3);
    for (const text of device.commands) expect(text).not.toContain('w#o;rd');
  });

  it('reaches commands whose output is gzip\'ed on the wire (a slow link)', async () => {
    const runner = forDatabase(new Device(() => HOSTILE), { name: 'db', kind: 'postgres' });
    const running = await execCompressed(runner, sh`printf '%s' "$PGPASSWORD"`);
    running.stdin.end();
    const out: Buffer[] = [];
    for await (const chunk of running.stdout as AsyncIterable<Buffer>) out.push(chunk);
    expect((await running.done).code).toBe(0);
    expect(Buffer.concat(out).toString()).toBe(HOSTILE);
  });

  it('uses the runner as it is for sources without a password, for SQLite and files, and refuses a password with a line break', async () => {
    const device = new Device((source) => ({ db: 'secret', broken: 'two\nlines' })[source]);
    expect(forDatabase(device, { name: 'other', kind: 'postgres' })).toBe(device);
    expect(forDatabase(device, { name: 'db', kind: 'sqlite' })).toBe(device);
    expect(forDatabase(device, { name: 'db', kind: 'files' })).toBe(device);
    // Asked twice (a restore step given an already prepared runner) it does not hand it over twice.
    const once = forDatabase(device, { name: 'db', kind: 'postgres' });
    expect(await forDatabase(once, { name: 'db', kind: 'postgres' }).run(sh`printf '%s' "$PGPASSWORD"; cat`)).toBe('secret');
    expect(() => forDatabase(device, { name: 'broken', kind: 'postgres' })).toThrow(/line break/);
    // Without any lookup (this computer's own folders), nothing changes.
    const local = new LocalRunner();
    expect(forDatabase(local, { name: 'db', kind: 'postgres' })).toBe(local);
  });

  it.skipIf(!mysqlClient)('mysql: the client reads the password from an option file on a pipe, escapes and all, for every client in a pipeline', async () => {
    const device = new Device(() => HOSTILE);
    const runner = forDatabase(device, { name: 'db', kind: 'mysql' });
    // --print-defaults: the real client parses its option files and prints what it would use.
    const printed = await runner.run(sh`mysql --print-defaults --user=app | tr ' ' '\\n' | grep -c '^--user=app$'; mysql --print-defaults | sed -n 's/.*--password=//p'`);
    const [count, password] = printed.split('\n');
    expect(count).toBe('1');
    // The client prints the option as parsed (then a space): the value it holds is the password exactly.
    expect(password).toBe(`${HOSTILE} `);
    // Two clients in one pipeline (the row counts do this): each gets its own copy.
    expect(await runner.run(sh`mysql --print-defaults | mysql --print-defaults | sed -n 's/.*--password=//p'`)).toBe(`${HOSTILE} \n`);
    // stdin after the password still reaches the client (a dump being loaded).
    const running = await runner.exec(sh`mysql --print-defaults >/dev/null; cat`);
    const out: Buffer[] = [];
    running.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    running.stdin.end('CREATE TABLE t (x int);\n');
    expect((await running.done).code).toBe(0);
    expect(Buffer.concat(out).toString()).toBe('CREATE TABLE t (x int);\n');
    for (const text of device.commands) expect(text).not.toContain('w#o;rd');
    expect(mysqlOptionValue('a\\b"c')).toBe('"a\\\\b\\"c"');
    // Edge cases of the option file's quoting: a lone quote or backslash, one at the end, spaces around.
    for (const password of ['"', '\\', 'ends with \\', '#starts', " it's ", '\\n is not a line break']) {
      const edge = forDatabase(new Device(() => password), { name: 'db', kind: 'mysql' });
      expect(await edge.run(sh`mysql --print-defaults | sed -n 's/.*--password=//p'`), password).toBe(`${password} \n`);
    }
  });
});
