/**
 * `npm run host`: starts the test host on 127.0.0.1 and prints the URL to open in a browser.
 * Options: --port N (default: a free port). Data lives in JETVAULT_HOME (or the app's folder).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { resolveDataDir } from '../data-dir';
import { createLogger } from '../log';
import type { LogLevel } from '../log';
import { tuneGarbageCollection } from '../gc-tuning';
import { upgradeHistory, upgradeMessage } from '../history/upgrade';
import { createServices } from '../services/index';
import type { Services } from '../services/index';
import { startupFailure } from '../startup-failure';
import { startTestHost } from './test-host';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({ options: { port: { type: 'string' }, renderer: { type: 'string' } } });
const rendererDir = path.resolve(values.renderer ?? path.join(here, '../../../out/renderer'));
if (!existsSync(path.join(rendererDir, 'index.html'))) {
  process.stderr.write(`No built renderer in ${rendererDir}: run "npm run build" first (npm run host does).\n`);
  process.exit(1);
}
const port = values.port === undefined ? 0 : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`--port must be a port number, got "${values.port}"\n`);
  process.exit(2);
}
// JETVAULT_SCHEDULER=off keeps backups to what a test starts itself (the e2e fixtures set it); the
// copy policy follows the scheduler unless JETVAULT_COPY_POLICY=on|off says otherwise (an e2e spec
// turns on only the copy policy, so copies follow the backups it starts).
const scheduler = process.env.JETVAULT_SCHEDULER !== 'off';
const copyPolicySwitch = process.env.JETVAULT_COPY_POLICY;
if (copyPolicySwitch !== undefined && copyPolicySwitch !== 'on' && copyPolicySwitch !== 'off') {
  process.stderr.write(`JETVAULT_COPY_POLICY must be "on" or "off", got "${copyPolicySwitch}"\n`);
  process.exit(2);
}

const log = createLogger((process.env.JETVAULT_LOG_LEVEL as LogLevel | undefined) ?? 'info');
tuneGarbageCollection();
const dataDir = resolveDataDir();
let services: Services;
try {
  // A long migration runs in a worker while this says so; the services' open then applies nothing.
  await upgradeHistory(dataDir, { onStart: (upgrade) => process.stdout.write(`${upgradeMessage(upgrade)}\n`), warn: (line) => log.warn(line) });
  services = createServices({
    dataDir,
    log,
    platform: {
      transport: 'websocket',
      openExternal: (url) => {
        log.info(`test host: would open ${url} in the system browser`);
        return Promise.resolve();
      },
    },
  });
} catch (error) {
  const { title, detail } = startupFailure(error, dataDir);
  process.stderr.write(`${title}: ${detail}\n`);
  process.exit(1);
}
const host = await startTestHost({ services, rendererDir, port });
services.start({ scheduler, copyPolicy: copyPolicySwitch === undefined ? scheduler : copyPolicySwitch === 'on' });
process.stdout.write(`Jetvault test host (data: ${services.dataDir})\nOpen: ${host.url}\n`);
// Machine-readable line for the e2e fixtures.
process.stdout.write(`JETVAULT_HOST_URL=${host.url}\n`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await host.close();
  // A backup running now is cancelled and recorded so (not left "running" for the next start to call
  // interrupted, as a crash).
  await services.shutdown();
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop());
