/**
 * A database source's password, given to the device's PostgreSQL or MySQL client without ever being
 * part of a command line (which `ps` shows to every user of the device) or of a file left behind.
 *
 * Each command of the source is prefixed with a few shell lines that read the password as the first
 * line of the command's stdin (the shell's `read` takes exactly that line; what follows — a dump
 * being restored — stays for the command). Then:
 *   postgres  it is exported as PGPASSWORD for psql, pg_dump and pg_restore: an environment only
 *             the device account (and root) can read in /proc, as it could read a ~/.pgpass;
 *   mysql     `mysql` and `mysqldump` become shell functions that hand each client an option file
 *             (`[client] password=…`) through a pipe (`--defaults-extra-file=/dev/fd/3`): nothing
 *             on disk, nothing in any environment. MySQL 8 deprecates MYSQL_PWD.
 * The password is looked up by source name on the runner (the connector gives each device
 * connection its own secrets), so every restore, drill and recovery step of the source uses it too.
 */
import { AppError } from '../../../shared/errors';
import { isServerDatabase } from '../../../shared/schemas/devices';
import { raw, sh } from '../shell-quote';
import type { RawShell } from '../shell-quote';
import type { CommandRunner, RunningCommand } from '../ssh-connection';
import { runToString } from '../ssh-connection';

/** What a password may not hold: the line break ends it on the way, a NUL cannot be passed at all. */
export function databasePasswordError(password: string): string | null {
  if (/[\n\r\0]/.test(password)) return 'A database password cannot contain a line break or a NUL byte';
  return null;
}

/**
 * What to add to a database error that is a refused login: where the password is set. MySQL says
 * "Access denied for user" both for a refused login (1045, "… (using password: YES)") and for a
 * privilege the user lacks once in (1044 "… to database", 1142 "… command denied"): only the first
 * is about the password; for the others it says that the user needs the privilege.
 */
export function loginHint(source: { name: string; kind: string }, error: string): string {
  if (!isServerDatabase(source.kind)) return '';
  if (/no password supplied|password authentication failed|Access denied for user [^\n]*\(using password: (?:YES|NO)\)/i.test(error)) {
    return ` The database refused the login: set the password of "${source.name}" under Sources on the device page (or with jetvault device db-password).`;
  }
  const user = /(?:Access denied|command denied) (?:for|to) user ('[^']*'@'[^']*')/i.exec(error)?.[1];
  if (source.kind === 'mysql' && user) {
    return ` The login worked, but ${user} lacks a privilege this needs (a password does not help): a backup needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the database; a restore also CREATE and DROP of the \`<database>_jv_*\` databases it works in, and ALTER, DROP and INSERT on the database's tables.`;
  }
  return '';
}

/**
 * A value for a MySQL option file: double-quoted, with `\` and `"` escaped. Unescaped, a quote in
 * the password would end the quoting and a `#` after it start a comment (both clients' parsers).
 */
export function mysqlOptionValue(password: string): string {
  return `"${password.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

const READ = `IFS= read -r JV_DBPW || { echo 'jetvault: the database password did not arrive' >&2; exit 2; }`;

const PRELUDE: Record<'postgres' | 'mysql', string> = {
  postgres: `${READ}\nPGPASSWORD=$JV_DBPW; export PGPASSWORD; unset JV_DBPW\n`,
  mysql:
    `${READ}\n` +
    ['mysql', 'mysqldump']
      .map((client) => `${client}() { { printf '[client]\\npassword=%s\\n' "$JV_DBPW" | command ${client} --defaults-extra-file=/dev/fd/3 "$@" 3<&0 0<&4 4<&-; } 4<&0; }\n`)
      .join(''),
};

/** Runs every command with the password handed over first (see above). */
class PasswordRunner implements CommandRunner {
  constructor(
    readonly inner: CommandRunner,
    private readonly kind: 'postgres' | 'mysql',
    private readonly password: string,
  ) {}

  get target(): string {
    return this.inner.target;
  }

  async exec(command: RawShell, signal?: AbortSignal): Promise<RunningCommand> {
    const running = await this.inner.exec(sh`${raw(PRELUDE[this.kind])}${command}`, signal);
    running.stdin.write(`${this.kind === 'mysql' ? mysqlOptionValue(this.password) : this.password}\n`);
    return running;
  }

  run(command: RawShell, options?: { signal?: AbortSignal; maxBytes?: number }): Promise<string> {
    return runToString(this, command, options);
  }
}

/**
 * The runner for a database source's commands: with its stored password when it has one, else the
 * runner as it is (peer / unix-socket authentication, or the device account's ~/.pgpass, ~/.my.cnf).
 */
export function forDatabase(runner: CommandRunner, source: { name: string; kind: string }): CommandRunner {
  const base = runner instanceof PasswordRunner ? runner.inner : runner;
  if (!isServerDatabase(source.kind)) return base;
  const password = base.databasePassword?.(source.name);
  if (password === undefined) return base;
  const error = databasePasswordError(password);
  if (error) throw new AppError('VALIDATION', `${source.name}: ${error}`);
  return new PasswordRunner(base, source.kind, password);
}
