/**
 * The shape of one `jetvault` subcommand. Each lives in its own file under ./commands and is
 * listed in ./commands/index.ts; the CLI shares services and engine with the app.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
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
