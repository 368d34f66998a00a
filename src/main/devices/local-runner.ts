/**
 * Runs the same shell commands as a device would, on this machine: used to back up local folders
 * and to test the remote scripts against a real shell and real tools without SSH in between.
 */
import { spawn } from 'node:child_process';
import { AppError } from '../../shared/errors';
import { commandText } from './shell-quote';
import type { RawShell } from './shell-quote';
import { runToString } from './ssh-connection';
import type { CommandRunner, ExecResult, RunningCommand } from './ssh-connection';

const STDERR_LIMIT = 64 * 1024;

export class LocalRunner implements CommandRunner {
  readonly target = 'this computer';

  exec(command: RawShell, signal?: AbortSignal): Promise<RunningCommand> {
    const child = spawn('/bin/sh', ['-c', commandText(command)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_LIMIT) stderr += chunk.toString('utf8');
    });
    child.stdin.on('error', () => undefined); // the command may exit without reading its input
    const onAbort = () => child.kill('SIGTERM');
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = new Promise<ExecResult>((resolve, reject) => {
      child.once('error', (error) => reject(new AppError('UNAVAILABLE', `Cannot run /bin/sh: ${error.message}`)));
      child.once('close', (code, sig) => {
        signal?.removeEventListener('abort', onAbort);
        resolve({ code, signal: sig, stderr });
      });
    });
    done.catch(() => undefined);
    return Promise.resolve({ stdout: child.stdout, stdin: child.stdin, done });
  }

  run(command: RawShell, options: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<string> {
    return runToString(this, command, options);
  }
}
