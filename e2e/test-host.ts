/**
 * Starts and stops the console's test host (plain Node, same services and contract as the app)
 * for one test, with its own fresh data directory.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

export interface RunningHost {
  url: string;
  origin: string;
  token: string;
  dataDir: string;
  /** Stops the host and starts a new one on the same data directory (a new token and port). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function launch(dataDir: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/host/cli.ts'], {
    // The scheduler stays off: a test decides itself when a device backs up (and with it, by
    // default, the copy policy: `JETVAULT_COPY_POLICY: 'on'` in `env` turns that one on).
    env: { ...process.env, JETVAULT_HOME: dataDir, JETVAULT_LOG_LEVEL: 'warn', JETVAULT_SCHEDULER: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`test host did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /^JETVAULT_HOST_URL=(\S+)$/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`test host exited with ${code} before it was ready:\n${output}`));
    });
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * `prepare` runs on the fresh data directory before the host opens it (e.g. to seed its history);
 * `env` is added to the host's environment (on every restart too).
 */
export async function startHost(prepare?: (dataDir: string) => void | Promise<void>, env: Record<string, string> = {}): Promise<RunningHost> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-'));
  await prepare?.(dataDir);
  let current = await launch(dataDir, env);
  const host: RunningHost = {
    url: current.url,
    origin: new URL(current.url).origin,
    token: new URL(current.url).hash.replace('#token=', ''),
    dataDir,
    async restart() {
      await terminate(current.child);
      current = await launch(dataDir, env);
      host.url = current.url;
      host.origin = new URL(current.url).origin;
      host.token = new URL(current.url).hash.replace('#token=', '');
    },
    async stop() {
      await terminate(current.child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return host;
}
