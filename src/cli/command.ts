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

/**
 * A command's arguments by its options. Mistakes are usage errors in the command's words: an
 * unknown option with the option it was probably meant as, and an option that takes one value given
 * twice — parseArgs would keep the last, so `backup --device a --device b` backed up b alone.
 */
export function parseCommandArgs(command: Command, argv: string[]): { values: Record<string, unknown>; positionals: string[] } {
  const options = command.options ?? {};
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
  } catch (error) {
    const unknown = /^Unknown option '([^']+)'/.exec((error as Error).message);
    if (!unknown) throw new UsageError((error as Error).message);
    const near = unknown[1]!.startsWith('--') ? closestNames(unknown[1]!.slice(2), Object.keys(options)) : [];
    throw new UsageError(`unknown option ${unknown[1]}${near.length > 0 ? ` (did you mean ${near.map((n) => `--${n}`).join(' or ')}?)` : ''}`);
  }
  const given = new Map<string, string[]>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || options[token.name]?.type !== 'string' || options[token.name]?.multiple) continue;
    given.set(token.name, [...(given.get(token.name) ?? []), token.value ?? '']);
  }
  for (const [name, values] of given) {
    if (values.length > 1) throw new UsageError(`--${name} takes one value, and was given ${values.length}: ${values.map((v) => JSON.stringify(v)).join(', ')}`);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** The names a mistyped one was probably meant as: a prefix of a name, or one or two edits away. */
export function closestNames(typed: string, names: readonly string[]): string[] {
  const text = typed.toLowerCase();
  const distance = (name: string) => editDistance(text, name.toLowerCase());
  const near = names.filter((name) => (text.length >= 2 && name.toLowerCase().startsWith(text)) || distance(name) <= Math.min(2, Math.floor(name.length / 3)));
  return near.sort((a, b) => distance(a) - distance(b)).slice(0, 3);
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
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

