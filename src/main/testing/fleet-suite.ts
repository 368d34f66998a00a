/**
 * Test helper: one fleet (real sshd + PostgreSQL devices) for a test file, started before its tests
 * and stopped after them; on a machine that is not root (the fleet makes device accounts) the file's
 * suites skip with the reason printed, never silently. CI runs as root.
 */
import { afterAll, beforeAll } from 'vitest';
import { startFleet } from '../../../fleet/index';
import type { Fleet, FleetOptions } from '../../../fleet/index';

export function fleetForFile(what: string, options: FleetOptions): { skip: boolean; fleet: () => Fleet } {
  const skip = process.getuid?.() !== 0;
  if (skip) console.log(`${what} skipped: the fleet needs root (device accounts, sshd); CI runs as root`);
  let fleet: Fleet | undefined;
  beforeAll(async () => {
    if (!skip) fleet = await startFleet(options);
  }, 240_000);
  afterAll(async () => {
    await fleet?.stop();
  }, 120_000);
  return {
    skip,
    fleet: () => {
      if (!fleet) throw new Error('the fleet has not started');
      return fleet;
    },
  };
}
