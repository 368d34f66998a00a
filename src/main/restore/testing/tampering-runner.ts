/**
 * A CommandRunner whose commands starting with `prefix` get their stdin altered on the way to the
 * device: damage that only the on-device sha256 check can catch (tests of the verify step).
 */
import { Transform } from 'node:stream';
import { commandText } from '../../devices/shell-quote';
import type { CommandRunner } from '../../devices/ssh-connection';

export function tamperingRunner(runner: CommandRunner, prefix: string, alter: (chunk: Buffer) => Buffer): CommandRunner {
  return {
    target: runner.target,
    run: (command, opts) => runner.run(command, opts),
    async exec(command, signal) {
      const running = await runner.exec(command, signal);
      if (!commandText(command).startsWith(prefix)) return running;
      const through = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          callback(null, alter(chunk));
        },
      });
      through.pipe(running.stdin);
      return { ...running, stdin: through };
    },
  };
}
