import { test as base } from '@playwright/test';
import { startFleet } from '../fleet/index';
import type { Fleet, FleetOptions } from '../fleet/index';
import { ConsolePage } from './console-page';
import { startHost } from './test-host';
import type { RunningHost } from './test-host';

/**
 * Every test gets its own test host with a fresh data directory, and a console page object.
 * `test.use({ hostEnv: { … } })` adds variables to the host's environment for a spec.
 */
export const test = base.extend<{ hostEnv: Record<string, string>; host: RunningHost; console: ConsolePage }>({
  hostEnv: [{}, { option: true }],
  host: async ({ hostEnv }, use) => {
    const host = await startHost(undefined, hostEnv);
    try {
      await use(host);
    } finally {
      await host.stop();
    }
  },
  console: async ({ page }, use) => {
    await use(new ConsolePage(page));
  },
});

/** The test above plus a fleet of real devices started once per worker (`options` as startFleet's). */
export function testWithFleet(options: FleetOptions) {
  return test.extend<object, { fleet: Fleet }>({
    fleet: [
      // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
      async ({}, use) => {
        const fleet = await startFleet(options);
        try {
          await use(fleet);
        } finally {
          await fleet.stop();
        }
      },
      { scope: 'worker', timeout: 240_000 },
    ],
  });
}

export { expect } from '@playwright/test';
