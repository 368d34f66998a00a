/** For tests: runs `jetvault` commands in-process with an environment, collecting what they print. */
import type { CliIo } from './command';
import { runCli } from './main';

export function cliRunner(env: NodeJS.ProcessEnv): (...argv: string[]) => Promise<{ code: number; out: string; err: string }> {
  return async (...argv) => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), env };
    const code = await runCli(argv, io);
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
}
