/**
 * `jetvault` — the console's engine from a terminal, for scripting and servers. It opens the
 * same data directory as the app (JETVAULT_HOME, or the app's own user-data folder).
 */
import { packageVersion } from '../main/version';
import { AppError } from '../shared/errors';
import { closestNames, parseCommandArgs, UsageError } from './command';
import type { CliIo } from './command';
import { COMMANDS } from './commands/index';

export function helpText(commands: readonly { name: string; summary: string }[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'Usage: jetvault <command> [options]',
    '',
    'Back up and restore a fleet of NVIDIA Jetson devices.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also: jetvault <command> --help)',
    '  -v, --version  print the version',
    '',
    'Environment:',
    '  JETVAULT_HOME  data directory (default: the desktop app\'s user-data folder)',
  ].join('\n');
}

/** A usage text's synopsis: its lines up to the first blank one (the forms of the command, not the prose). */
export function synopsis(usage: string): string {
  const lines = usage.split('\n');
  const end = lines.findIndex((line) => line.trim() === '');
  return (end < 0 ? lines : lines.slice(0, end)).join('\n');
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    io.out(helpText());
    return name === undefined ? 2 : 0;
  }
  if (name === '-v' || name === '--version') {
    io.out(packageVersion());
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    const near = closestNames(name, COMMANDS.map((c) => c.name));
    const hint = near.length > 0 ? `\nDid you mean ${near.map((n) => `"jetvault ${n}"`).join(' or ')}?` : '';
    io.err(`jetvault: unknown command "${name}"${hint}\nRun "jetvault --help" to list the commands.`);
    return 2;
  }
  const command = await entry.load();
  if (rest.includes('-h') || rest.includes('--help')) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(parseCommandArgs(command, rest), io);
  } catch (error) {
    if (error instanceof UsageError) {
      // The error and the command's forms, not its pages of prose: the error stays on screen.
      io.err(`jetvault ${command.name}: ${error.message}\n\n${synopsis(command.usage)}\nRun "jetvault ${command.name} --help" for the details.`);
      return 2;
    }
    if (error instanceof AppError) {
      io.err(`jetvault ${command.name}: ${error.message}`);
      for (const issue of error.issues ?? []) io.err(`  ${issue.path}: ${issue.message}`);
      return 1;
    }
    io.err(`jetvault ${command.name}: ${(error as Error).message ?? String(error)}`);
    return 1;
  }
}

/**
 * A line as a terminal should show it: control characters other than tab and line break as `\xNN`.
 * What the CLI prints holds what devices named (file names, facts, stderr), and a file name may hold
 * ESC: printed raw, a compromised device's name could retitle the terminal, clear it or rewrite the
 * lines above. Only on a terminal: piped output stays byte for byte (and --json escapes anyway).
 */
export function terminalSafe(line: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === 9 || c === 10 || (c > 0x1f && c < 0x7f) || c > 0x9f) continue;
    out += `${line.slice(from, i)}\\x${c.toString(16).padStart(2, '0')}`;
    from = i + 1;
  }
  return from === 0 ? line : out + line.slice(from);
}

export const processIo: CliIo = {
  out: (line) => process.stdout.write(`${process.stdout.isTTY ? terminalSafe(line) : line}\n`),
  err: (line) => process.stderr.write(`${process.stderr.isTTY ? terminalSafe(line) : line}\n`),
  env: process.env,
  terminal: Boolean(process.stdout.isTTY),
};
