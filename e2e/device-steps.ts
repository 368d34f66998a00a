/** Steps the device e2e tests share, taken through the page's own api (what the test is not about). */
import type { Page } from '@playwright/test';
import type { ConsolePage } from './console-page';
import { expect } from './fixtures';

/** Imports `profile` and creates the repository, as a technician's first minutes would. */
export async function importWithRepository(page: Page, profile: unknown, password = 'a good long repository password'): Promise<void> {
  await page.evaluate(
    async ({ profile, password }) => {
      await window.api!.devices.import({ json: JSON.stringify(profile) });
      await window.api!.repository.init({ password });
    },
    { profile, password },
  );
}

/** Backs `device` up and waits until its job has succeeded. */
export async function backUp(page: Page, device: string): Promise<void> {
  const { jobId } = await page.evaluate((name) => window.api!.backups.start({ device: name }), device);
  await expect
    .poll(async () => (await page.evaluate(() => window.api!.jobs.list({ limit: 20 }))).find((j) => j.id === jobId)?.status, { timeout: 120_000 })
    .toBe('succeeded');
}

/** The Restore page with `device` and `sources` chosen (step 3: Sources), before any preview. */
export async function chooseSourcesToRestore(app: ConsolePage, page: Page, device: string, sources: string[]): Promise<void> {
  await app.goTo('restore');
  await page.locator('[data-testid=restore-device] label', { hasText: device }).click();
  await page.getByTestId('restore-scope-source').click();
  for (const source of sources) await page.getByTestId(`restore-source-${source}`).click();
}

/** The console open with `device` imported, the repository created and one backup of it made. */
export async function openBackedUp(app: ConsolePage, page: Page, url: string, device: { name: string; profile(): unknown }): Promise<void> {
  await app.open(url);
  await importWithRepository(page, device.profile());
  await backUp(page, device.name);
}
