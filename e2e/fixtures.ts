import { test as base } from '@playwright/test';
import { ConsolePage } from './console-page';
import { startHost } from './test-host';
import type { RunningHost } from './test-host';

/** Every test gets its own test host with a fresh data directory, and a console page object. */
export const test = base.extend<{ host: RunningHost; console: ConsolePage }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
  host: async ({}, use) => {
    const host = await startHost();
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

export { expect } from '@playwright/test';
