/**
 * The device page as a technician uses it against a real Jetson stand-in: Back up now, the
 * Recent backups list, the disks a backup read, the drill card.
 */
import { expect, testWithFleet } from './fixtures';
import { importWithRepository } from './device-steps';

const test = testWithFleet({ devices: 1, sharedModelMB: 2, uniqueModelMB: 1 });

test('Back up now pressed twice in a row starts one backup and shows no error', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  await app.open(host.url);
  await importWithRepository(page, device.profile());
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('device-page')).toBeVisible();
  await page.getByTestId('device-backup').dblclick();
  await expect(page.getByTestId('device-last-backup')).toContainText('succeeded', { timeout: 90_000 });
  await expect(page.getByTestId('device-error')).toHaveCount(0);
  const backups = await page.evaluate(async () => (await window.api!.jobs.list({ limit: 20 })).filter((j) => j.kind === 'backup').length);
  expect(backups).toBe(1);
  // Never discovered (imported from a profile): the backup read its disks, the page shows them once it ends.
  await expect(page.getByTestId('device-disks')).toContainText(/^\/: .+ free of .+/);
  await expect(page.getByTestId('facts-disks-at')).toContainText('read by the backup of');
  await app.goTo('fleet');
  await expect(page.getByTestId(`device-row-${device.name}`)).toContainText(/\d(\.\d)? [KMGT]?i?B/);
  await expect(page.getByTestId(`device-row-${device.name}`)).not.toContainText('disk ?');
});

test('Run a restore drill pressed twice in a row runs one drill', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  await app.open(host.url);
  await importWithRepository(page, device.profile());
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await page.getByTestId('device-backup').click();
  await expect(page.getByTestId('device-last-backup')).toContainText('succeeded', { timeout: 90_000 });
  await page.getByTestId('drill-start').dblclick();
  await expect(page.getByTestId('drill-last-result')).toHaveText(/passed|partial/, { timeout: 120_000 });
  await expect(page.getByTestId('drill-start')).toBeEnabled({ timeout: 60_000 });
  const drills = await page.evaluate(async () => (await window.api!.jobs.list({ limit: 20 })).filter((j) => j.kind === 'drill').map((j) => j.status));
  expect(drills).toEqual(['succeeded']);
  await expect(page.getByTestId('drill-error')).toHaveCount(0);
});
