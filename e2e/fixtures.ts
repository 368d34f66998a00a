import { test as base } from '@playwright/test';
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

export { expect } from '@playwright/test';
