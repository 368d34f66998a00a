/**
 * The Add device dialog on a slow link: a host key that answers late belongs to the check it was
 * asked for, not to whatever the dialog shows by then.
 */
import type { Page } from '@playwright/test';
import type { Fleet } from '../fleet/index';
import { expect, testWithFleet } from './fixtures';
import { routeIpc } from './ipc-route';

const test = testWithFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });

/** A slow link: the host key's answer takes `ms` to come. */
async function slowProbes(page: Page, ms: number): Promise<void> {
  await routeIpc(page, { up: (call) => (call?.channel === 'devices:probeHostKey' ? { delayMs: ms } : undefined) });
}

async function fillDevice(page: Page, fleet: Fleet, name: string): Promise<void> {
  const device = fleet.devices[0]!;
  await page.getByTestId('add-device').click();
  await page.getByTestId('device-name').fill(name);
  await page.getByTestId('device-host').fill(device.host);
  await page.getByTestId('device-port').fill(String(device.port));
  await page.getByTestId('device-user').fill(device.user);
  await page.getByTestId('device-identity').fill(device.identityFile);
}

test('a host key that answers after Cancel does not greet the dialog opened again', async ({ host, console: app, page, fleet }) => {
  await slowProbes(page, 2500);
  await app.open(host.url);
  await fillDevice(page, fleet, 'rvm-first');
  await page.getByTestId('device-check-key').click();
  await expect(page.getByTestId('device-check-key')).toHaveText('Contacting device…');
  // The technician gives up on the slow link, and opens the dialog again later.
  await page.getByTestId('add-device-dialog').getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('add-device-dialog')).toHaveCount(0);
  await page.getByTestId('add-device').click();
  await expect(page.getByTestId('device-check-key')).toHaveText('Check host key', { timeout: 10_000 });
  // The earlier check's answer came meanwhile: the dialog still asks for the details.
  await expect(page.getByTestId('host-key-confirm')).toHaveCount(0);
  await expect(page.getByTestId('device-name')).toBeVisible();
});

test('a host key that answers after the address was corrected is not shown as the key of the corrected address', async ({ host, console: app, page, fleet }) => {
  await slowProbes(page, 2500);
  await app.open(host.url);
  await fillDevice(page, fleet, 'rvm-second');
  await page.getByTestId('device-check-key').click();
  await expect(page.getByTestId('device-check-key')).toHaveText('Contacting device…');
  // While the key is on its way, the technician corrects the address.
  await page.getByTestId('device-host').fill('127.0.0.250');
  await expect(page.getByTestId('add-device-error')).toContainText('The address changed while the host key of', { timeout: 10_000 });
  await expect(page.getByTestId('host-key-confirm')).toHaveCount(0);
  await expect(page.getByTestId('device-check-key')).toHaveText('Check host key');
});

test("a key pinned on the device page on a slow link lets the page's next save through", async ({ host, console: app, page, fleet }) => {
  const device = fleet.devices[0]!;
  // Slow answers to reading a device: the push's reload after the pin takes seconds to come.
  await routeIpc(page, { up: (call) => (call?.channel === 'devices:get' ? { delayMs: 8000 } : undefined) });
  await app.open(host.url);
  const { hostKey: _pinned, ...unconfirmed } = device.profile();
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), { ...unconfirmed, name: 'rvm-pin' });
  await page.evaluate(() => (window.location.hash = '#/fleet/rvm-pin'));
  await expect(page.getByTestId('device-settings')).toBeVisible({ timeout: 15_000 });
  await page.getByTestId('key-card-check').click();
  await expect(page.getByTestId('key-card-presented-device')).toHaveText(device.hostKeyFingerprint, { timeout: 15_000 });
  await page.getByTestId('key-card-compared-device').click();
  await page.getByTestId('key-card-pin-device').click();
  // Said as soon as the pin is answered, not once the device is read again seconds later.
  await expect(page.getByTestId('key-card-result')).toContainText('Pinned.', { timeout: 3000 });
  await expect(page.getByTestId('key-card-pinned')).toHaveText(device.hostKeyFingerprint);
  // Straight on, the technician saves a site: made on the profile as pinned, it is not refused as stale.
  await page.getByTestId('device-setting-site').fill('Depot South');
  await page.getByTestId('device-settings-save').click();
  await expect(page.getByTestId('device-settings-saved')).toBeVisible();
  await expect(page.getByTestId('device-settings-error')).toHaveCount(0);
  expect((await page.evaluate(() => window.api!.devices.get({ name: 'rvm-pin' }))).profile).toMatchObject({ site: 'Depot South', hostKey: device.hostKeyFingerprint });
});
