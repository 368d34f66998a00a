/**
 * `npm run fleet -- --devices 3 [--netns] [--dir /tmp]`: starts a demo fleet, prints one device
 * profile per line (JSON, ready for the console's import), and stops everything on Ctrl-C/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { cleanupStale, startFleet } from './index';
import type { Fleet } from './index';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '3' },
    netns: { type: 'boolean', default: false },
    dir: { type: 'string' },
    seed: { type: 'string' },
    'model-mb': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(`usage: npm run fleet -- [--devices N] [--netns] [--dir BASE] [--seed S] [--model-mb SHARED,UNIQUE] [--json]
Starts N stand-in Jetson devices (sshd + PostgreSQL + SQLite + files), prints their profiles, and
stops them all on Ctrl-C. Needs root, openssh-server, postgresql and sqlite3.`);
  process.exit(0);
}

const devices = Number(values.devices);
if (!Number.isInteger(devices) || devices < 1 || devices > 200) {
  console.error('--devices must be a whole number from 1 to 200');
  process.exit(2);
}
const [sharedModelMB, uniqueModelMB] = (values['model-mb'] ?? '40,20').split(',').map(Number);

const stale = cleanupStale(values.dir ?? '/tmp');
if (stale.length > 0) console.error(`Removed leftovers of dead fleets: ${stale.join(', ')}`);

// Signal handlers first, so they (not the library's fallback) own Ctrl-C, also during start-up.
let fleet: Fleet | undefined;
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  if (!fleet) {
    console.error(`\n${signal}: aborting start-up`);
    process.exit(130); // the library's exit handler removes whatever was already created
  }
  console.error(`\n${signal}: stopping fleet ${fleet.id}…`);
  fleet.stop().then(
    () => (console.error('Stopped.'), process.exit(0)),
    (error: unknown) => (console.error(error instanceof Error ? error.message : error), process.exit(1)),
  );
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => shutdown(signal));

try {
  console.error(`Starting ${devices} device(s)${values.netns ? ' in network namespaces' : ''}…`);
  fleet = await startFleet({
    devices,
    netns: values.netns,
    ...(values.dir ? { baseDir: values.dir } : {}),
    ...(values.seed ? { seed: values.seed } : {}),
    ...(sharedModelMB !== undefined && Number.isFinite(sharedModelMB) ? { sharedModelMB } : {}),
    ...(uniqueModelMB !== undefined && Number.isFinite(uniqueModelMB) ? { uniqueModelMB } : {}),
  });
  const profiles = fleet.devices.map((d) => d.profile());
  if (values.json) console.log(JSON.stringify(profiles, null, 2));
  else for (const p of profiles) console.log(JSON.stringify(p));
  console.error(`\nFleet ${fleet.id} up in ${(fleet.startMs / 1000).toFixed(1)} s, files under ${fleet.dir}.`);
  for (const d of fleet.devices) {
    console.error(`  ${d.name}: ssh -i ${d.identityFile} -p ${d.port} ${d.user}@${d.host}   (host key ${d.hostKeyFingerprint})`);
  }
  console.error('Press Ctrl-C to stop the fleet.');
  setInterval(() => {}, 1 << 30); // stay up until a signal
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
}
