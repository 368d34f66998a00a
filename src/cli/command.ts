/**
 * The shape of one `jetvault` subcommand. Each lives in its own file under ./commands and is
 * listed in ./commands/index.ts; the CLI shares services and engine with the app.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { visibleName } from '../shared/visible-name';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
  /** Whether `out` goes to a terminal (a person reading) rather than a pipe or file (a script). */
  terminal?: boolean;
  /** Reads a secret (a repository password) without echo; from JETVAULT_PASSWORD / --password-file otherwise. */
  readSecret?(prompt: string): Promise<string>;
}

export interface Command {
  name: string;
  /** One line for `jetvault --help`. */
  summary: string;
  /** Full usage text for `jetvault NAME --help`. */
  usage: string;
  options?: ParseArgsConfig['options'];
  /** Returns the process exit code. */
  run(args: { values: Record<string, unknown>; positionals: string[] }, io: CliIo): Promise<number>;
}

/** A command-line mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseCommandArgs(command: Command, argv: string[]): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: command.options ?? {}, allowPositionals: true, strict: true });
    return { values: values, positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * A time given to an option: `2026-11-01`, `2026-11-01T08:00`, `2026-11-01T08:00:00Z`, or an age
 * back from now: `90m`, `36h`, `7d`, `2w`. Anything else is a usage error — JavaScript's own date
 * parsing would read `1` as the year 2001 and `May 3` as 2001 too.
 */
export function parseTimeOption(option: string, text: string, now = Date.now()): Date {
  const age = /^(\d+)([mhdw])$/.exec(text.trim());
  if (age) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[age[2] as 'm' | 'h' | 'd' | 'w'];
    return new Date(now - Number(age[1]) * unit);
  }
  const at = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim()) || Number.isNaN(at)) {
    throw new UsageError(`${option} needs a date/time (2026-11-01, 2026-11-01T08:00, 2026-11-01T08:00:00Z) or an age (90m, 36h, 7d, 2w), not "${text}"`);
  }
  return new Date(at);
}

/**
 * A file name in a listing's text: on a terminal as the console shows names (`visibleName`: a line
 * break as \n, a right-to-left override as \u202E), so each entry stays one line and none looks like
 * another; piped, byte for byte as before (scripts read it; --json escapes anyway).
 */
export function listedName(io: CliIo, name: string): string {
  return io.terminal ? visibleName(name) : name;
}

