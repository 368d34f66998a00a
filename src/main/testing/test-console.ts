/**
 * Test helper: a console's services as the CLI opens them (no Electron), over a fresh data folder,
 * with its repository initialised at test speed (FAST). `closeTestConsole` disposes them and removes
 * the folder; it takes what was opened so far (a failed `beforeAll` leaves either unset).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../log';
import { FAST } from '../repository/testing/fixtures';
import { createServices } from '../services';
import type { Services } from '../services';

/** Services over `dataDir` as `jetvault` (the CLI) opens them, logging nothing. */
export function cliServices(dataDir: string, env?: NodeJS.ProcessEnv): Services {
  return createServices({ dataDir, log: silentLogger, platform: { transport: 'cli', openExternal: () => Promise.resolve() }, env });
}

export async function openTestConsole(label: string, password: string, env?: NodeJS.ProcessEnv): Promise<{ services: Services; dataDir: string }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `jetvault-${label}-test-`));
  const services = cliServices(dataDir, env);
  try {
    await services.repository.init(password, FAST);
  } catch (error) {
    closeTestConsole(services, dataDir);
    throw error;
  }
  return { services, dataDir };
}

export function closeTestConsole(services: Services | undefined, dataDir: string | undefined): void {
  services?.dispose();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
