/**
 * The console's repository is on a USB disk that is not connected: its folder is not there. The
 * Catalog's form says so and does not offer to create a repository there until the operator says
 * it is a new one — creating it made a new, empty repository on the laptop's own disk at the mount
 * point, where the old one's snapshots seemed gone and the disk hid the new one once mounted.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from './fixtures';

const mountPoint = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-usb-'));
const location = path.join(mountPoint, 'jetvault');

test.use({ hostEnv: { JETVAULT_REPOSITORY: location } });
test.afterAll(() => rmSync(mountPoint, { recursive: true, force: true }));

test('a repository folder that is not there is not created over without the operator saying it is a new repository', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('catalog');
  const warning = page.getByTestId('repository-folder-missing');
  await expect(warning).toContainText(`The folder ${location} is not there. If the repository is on a disk, connect it`);
  await page.getByTestId('repository-password').fill('a new repository password');
  await page.getByTestId('repository-password-again').fill('a new repository password');
  await expect(page.getByTestId('repository-submit')).toBeDisabled();
  expect(readdirSync(mountPoint)).toEqual([]);

  await page.getByTestId('repository-create-folder').click();
  await page.getByTestId('repository-submit').click();
  await expect(page.getByTestId('repository-unlocked')).toBeVisible();
  expect(existsSync(path.join(location, 'config'))).toBe(true);
});
