/**
 * Detached watchdog of one fleet: when the fleet's owning process dies without stopping it (a test
 * worker killed on timeout, a SIGKILL), this undoes everything in its fleet.json. It exits on its own
 * once the fleet dir is gone. Usage: node --import tsx fleet/reaper.ts <fleetDir>
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isAlive } from './exec';
import { cleanupDeadFleet, readRecord, startTimeOf } from './registry';

const dir = process.argv[2];
if (!dir) throw new Error('usage: reaper.ts <fleetDir>');
process.on('SIGINT', () => {});
process.on('SIGHUP', () => {});

const timer = setInterval(() => {
  if (!existsSync(path.join(dir, 'fleet.json'))) {
    clearInterval(timer);
    return;
  }
  const record = readRecord(dir);
  if (!record) return;
  if (isAlive(record.owner.pid) && startTimeOf(record.owner.pid) === record.owner.start) return;
  clearInterval(timer);
  cleanupDeadFleet(dir, record.id);
}, 250);
