import { resolveDataDir } from '../main/data-dir';
import { createLogger } from '../main/log';
import type { LogLevel } from '../main/log';
import type { Services } from '../main/services/index';
import type { CliIo } from './command';

/**
 * Opens the shared services for one CLI command and closes them afterwards. The service graph
 * (SSH, the history database, jobs) is imported here, on first use, so commands that do not need
 * it — a local `jetvault backup` — start without loading it.
 */
export async function withServices<T>(io: CliIo, use: (services: Services) => Promise<T> | T): Promise<T> {
  const { createServices } = await import('../main/services/index');
  const { upgradeHistory, upgradeMessage } = await import('../main/history/upgrade');
  const level = (io.env.JETVAULT_LOG_LEVEL as LogLevel | undefined) ?? 'warn';
  const log = createLogger(level, (line) => io.err(line));
  const dataDir = resolveDataDir(io.env);
  await upgradeHistory(dataDir, { onStart: (upgrade) => io.err(upgradeMessage(upgrade)), warn: (line) => log.warn(line) });
  const services = createServices({
    dataDir,
    env: io.env,
    log,
    platform: {
      transport: 'cli',
      openExternal: (url) => {
        io.out(url);
        return Promise.resolve();
      },
    },
  });
  try {
    return await use(services);
  } finally {
    // Jobs still running (run-scheduler stopped by SIGTERM mid-backup) are cancelled and seen to
    // their end — clean-up done, record written — before the history closes under them.
    await services.shutdown();
  }
}
