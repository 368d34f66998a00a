/**
 * Where Jetvault keeps its data. The Electron app passes `app.getPath('userData')`; everything
 * else (CLI, test host, tests) uses JETVAULT_HOME or, without it, the same folder Electron would
 * pick, so the CLI and the app share one history.
 */
import os from 'node:os';
import path from 'node:path';

export const PRODUCT_NAME = 'Jetvault';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), PRODUCT_NAME);
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', PRODUCT_NAME);
  return path.join(env.XDG_CONFIG_HOME || path.join(home, '.config'), PRODUCT_NAME);
}

export function resolveDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.JETVAULT_HOME?.trim();
  return fromEnv ? path.resolve(fromEnv) : defaultDataDir(env);
}
