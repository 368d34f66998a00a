/**
 * A database restore in its own process, so tests can SIGKILL it in any phase (a killed console).
 * Input: one JSON argument { repo, password, device: {host, port, user, identityFile, hostKey},
 * snapshotId, source, restoreId }. Prints `STEP <name>` as it goes and `DONE <json>` at the end.
 */
import { readFileSync } from 'node:fs';
import { DeviceConnection } from '../../devices/ssh-connection';
import { LocalBackend } from '../../repository/backend/local-backend';
import { Repository } from '../../repository/repo/repository';
import { findSnapshot } from '../../repository/snapshot/snapshot';
import { executeDbRestore, planDbRestore } from '../db-restore';
import type { DatabaseSource } from '../db-restore';

interface ChildArgs {
  repo: string;
  password: string;
  device: { host: string; port: number; user: string; identityFile: string; hostKey: string };
  snapshotId: string;
  source: DatabaseSource;
  restoreId: string;
}

const args = JSON.parse(process.argv[2]!) as ChildArgs;
const step = (name: string) => process.stdout.write(`STEP ${name}\n`);

const repo = await Repository.open(new LocalBackend(args.repo), args.password);
const connection = await DeviceConnection.open({
  host: args.device.host,
  port: args.device.port,
  user: args.device.user,
  auth: { kind: 'key', privateKey: readFileSync(args.device.identityFile) },
  hostKey: args.device.hostKey,
});
const options = { repo, runner: connection, snapshot: await findSnapshot(repo, args.snapshotId), source: args.source, restoreId: args.restoreId };
const plan = await planDbRestore(options);
let sent = 0;
let halfway = false;
const validation = await executeDbRestore(options, plan, {
  step,
  advance: ({ bytes = 0 }) => {
    sent += bytes;
    if (!halfway && sent >= plan.dumpBytes / 2) {
      halfway = true;
      step('send-half');
    }
  },
  beforeSwap: () => {
    step('swap');
    return Promise.resolve();
  },
  afterSwap: () => {
    step('swapped');
    return Promise.resolve();
  },
});
process.stdout.write(`DONE ${JSON.stringify(validation)}\n`);
connection.close();
