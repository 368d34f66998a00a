/**
 * Settings → Repositories with a real device: after a backup, a copy of the repository on a second
 * local disk is added as a secondary, tested (a missing one fails clearly, the copy opens and lists
 * the device's run), marked offsite, and the fleet and the device page count two copies, one offsite.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDevice } from '../fleet/index';
import type { Device } from '../fleet/index';
import { expect, test } from './fixtures';
import { backUp } from './device-steps';

// The test host stores repository passwords in its secret store: it needs a passphrase there (no OS keyring).
process.env.JETVAULT_SECRETS_PASSPHRASE ??= 'e2e secrets passphrase';

const PASSWORD = 'repositories e2e repository password';

let device: Device;
/** Folders a test made for repositories ("disks"), removed at the end. */
const folders: string[] = [];
test.beforeAll(async () => {
  test.setTimeout(240_000);
  device = await startDevice({ sharedModelMB: 1, uniqueModelMB: 1 });
});
test.afterAll(async () => {
  await device?.stop();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

test('a second local repository is added, tested, marked offsite and counted as a copy', async ({ host, console: app, page }) => {
  test.setTimeout(120_000);
  const profile = device.profile();
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), { ...profile, sources: profile.sources.filter((s) => s.name === 'config') });
  await page.evaluate((password) => window.api!.repository.init({ password }), PASSWORD);
  await backUp(page, device.name);

  const settings = await app.goTo('settings');
  const panel = settings.getByTestId('repositories');
  await expect(panel.getByTestId('repository-row-Primary').getByTestId('repository-role')).toHaveText('Primary');

  // A folder that does not exist: added, and its test says so.
  const disks = mkdtempSync(path.join(os.tmpdir(), 'jv-e2e-disks-'));
  folders.push(disks);

  await panel.getByTestId('repository-location').fill(path.join(disks, 'unplugged'));
  await panel.getByTestId('repository-name').fill('Unplugged');
  await panel.getByTestId('repository-password').fill(PASSWORD);
  await panel.getByTestId('repository-add').click();
  const unplugged = panel.getByTestId('repository-row-Unplugged');
  await expect(unplugged).toContainText('Not tested yet');
  await unplugged.getByTestId('repository-test').click();
  await expect(unplugged.getByTestId('repository-test-result')).toContainText('the folder or bucket does not exist');

  // Bad input is refused with the reason.
  await panel.getByTestId('repository-location').fill('relative/folder');
  await panel.getByTestId('repository-password').fill(PASSWORD);
  await panel.getByTestId('repository-add').click();
  await expect(panel.getByTestId('repository-add-error')).toContainText('absolute folder path');

  // The repository copied to a second disk (a USB drive in the field).
  const second = path.join(disks, 'usb');
  cpSync(path.join(host.dataDir, 'repository'), second, { recursive: true });
  await panel.getByTestId('repository-location').fill(second);
  await panel.getByTestId('repository-name').fill('USB disk');
  await panel.getByTestId('repository-password').fill(PASSWORD);
  await panel.getByTestId('repository-add').click();
  const usb = panel.getByTestId('repository-row-USB disk');
  await expect(usb.getByTestId('repository-role')).toHaveText('Secondary');
  await usb.getByTestId('repository-test').click();
  await expect(usb.getByTestId('repository-test-result')).toContainText('Reachable, initialised, 1 snapshot of 1 device');
  await usb.getByTestId('repository-offsite-toggle').click(); // saved at once; checked once the console answers
  await expect(usb.getByTestId('repository-offsite-toggle')).toBeChecked();
  await page.screenshot({ path: path.join('test-results', 'screenshots', 'repositories.png'), fullPage: true });
  // A row's buttons on one line each: "Make primary" as tall as "Test" (it broke into "Make" over "primary").
  const height = async (id: string) => (await usb.getByTestId(id).boundingBox())!.height;
  expect(await height('repository-set-primary')).toBe(await height('repository-test'));
  // Both boxes of the offsite cell say what they are, one per line.
  const offsite = usb.locator('label', { has: page.getByTestId('repository-offsite-toggle') });
  const copying = usb.locator('label', { has: page.getByTestId('repository-copy-when-reachable') });
  await expect(offsite).toHaveText('offsite');
  await expect(copying).toHaveText('copy when reachable');
  expect((await copying.boundingBox())!.y).toBeGreaterThan((await offsite.boundingBox())!.y);

  // The password went to the secret store, not to the settings.
  const stored = await page.evaluate(() => window.api!.settings.get());
  expect(JSON.stringify(stored)).not.toContain(PASSWORD);

  await app.goTo('fleet');
  await expect(page.getByTestId(`copies-${device.name}`)).toHaveText('2× off');
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('device-copies')).toContainText('2 copies of the latest run, one offsite');

  // A newer run in the primary only: one copy of the latest run, until the USB disk gets it too.
  await backUp(page, device.name);
  await app.goTo('fleet');
  await expect(page.getByTestId(`copies-${device.name}`)).toHaveText('1×');
});
