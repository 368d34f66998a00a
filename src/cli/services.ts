import { resolveDataDir } from '../main/data-dir';
import { createLogger } from '../main/log';
import type { LogLevel } from '../main/log';
import { createServices } from '../main/services/index';
import type { Services } from '../main/services/index';
import type { CliIo } from './command';

/** Opens the shared services for one CLI command and closes them afterwards. */
export async function withServices<T>(io: CliIo, use: (services: Services) => Promise<T> | T): Promise<T> {
  const level = (io.env.JETVAULT_LOG_LEVEL as LogLevel | undefined) ?? 'warn';
  const services = createServices({
    dataDir: resolveDataDir(io.env),
    env: io.env,
    log: createLogger(level, (line) => io.err(line)),
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
    services.dispose();
  }
}
