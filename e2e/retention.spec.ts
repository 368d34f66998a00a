/**
 * A device's retention policy from its page: the preview says which runs it would forget and
 * changes nothing; once saved, the next backup of the device applies it (whole runs).
 */
import path from 'node:path';
import { startDevice } from '../fleet/index';
import type { Device } from '../fleet/index';
import { expect, test } from './fixtures';
import { backUp } from './device-steps';

let device: Device;
test.beforeAll(async () => {
  test.setTimeout(240_000);
  device = await startDevice({ sharedModelMB: 1, uniqueModelMB: 1 });
});
test.afterAll(async () => {
  await device?.stop();
});

test('a retention policy is previewed, saved, and applied by the next backup', async ({ host, console: app, page }) => {
  test.setTimeout(120_000);
  const profile = device.profile();
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), { ...profile, sources: profile.sources.filter((s) => s.name === 'config') });
  await page.evaluate(() => window.api!.repository.init({ password: 'retention e2e repository password' }));
  await backUp(page, device.name);
  await backUp(page, device.name);

  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  const card = page.getByTestId('retention');
  await card.getByTestId('retention-last').fill('1');
  await card.getByTestId('retention-last').press('Tab');
  await card.getByTestId('retention-preview-button').click();
  await expect(card.getByTestId('retention-preview')).toContainText('With these values, once saved: would forget 1 of 2 runs');
  expect(await page.evaluate((d) => window.api!.snapshots.list({ device: d }), device.name)).toHaveLength(2); // a preview changes nothing
  await page.screenshot({ path: path.join('test-results', 'screenshots', 'retention-preview.png') });
  // Edited after the preview: that preview goes (it was of the values before), until asked again.
  await card.getByTestId('retention-last').fill('2');
  await card.getByTestId('retention-last').press('Tab');
  await expect(card.getByTestId('retention-preview')).toHaveCount(0);
  await card.getByTestId('retention-preview-button').click();
  await expect(card.getByTestId('retention-preview')).toContainText('With these values, once saved: keeps all 2 runs');
  await card.getByTestId('retention-last').fill('1');
  await card.getByTestId('retention-last').press('Tab');
  await card.getByTestId('retention-save').click();
  await expect(page.getByTestId('retention-in-force')).toHaveText('In force: the last 1. It applies after each backup.');

  await backUp(page, device.name);
  const left = await page.evaluate((d) => window.api!.snapshots.list({ device: d }), device.name);
  expect(left).toHaveLength(1);
  const exported = JSON.parse((await page.evaluate((d) => window.api!.devices.export({ names: [d] }), device.name)).json) as { devices: { retention: unknown }[] };
  expect(exported.devices[0]!.retention).toEqual({ last: 1 });
});
