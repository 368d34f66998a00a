/**
 * Restore tools in Chromium against a real Jetson stand-in: a config file's versions with their
 * diff and a one-version restore in two clicks, a download to a folder on this computer, and a
 * restore drill that shows the device's RTO.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, testWithFleet } from './fixtures';
import { backUp, openBackedUp } from './device-steps';

const SCREENSHOTS = path.join('test-results', 'screenshots');

const test = testWithFleet({ devices: 1, sharedModelMB: 4, uniqueModelMB: 2 });

test('config versions with a diff and a two-click restore, a download, and a drill with its RTO', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(240_000);
  const device = fleet.devices[0]!;
  const configFile = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
  const original = readFileSync(configFile, 'utf8');
  await openBackedUp(app, page, host.url, device);
  writeFileSync(configFile, original.replace('threshold: 0.85', 'threshold: 0.5'));
  await backUp(page, device.name);

  // The catalog: the newest config snapshot, down to the config file, its versions and their diff.
  await app.goTo('catalog');
  await page.getByTestId(`snapshot-${device.name}-config`).first().getByRole('link').click();
  const browser = page.getByTestId('snapshot-browser');
  for (const part of path.relative(device.root, path.dirname(configFile)).split('/')) {
    await browser.getByRole('button', { name: `${part}/`, exact: true }).last().click();
  }
  await page.getByTestId(`entry-versions-${device.app}.yaml`).click();
  const versions = page.getByTestId('file-versions');
  await expect(versions.getByTestId('version-row')).toHaveCount(2);
  await expect(versions.getByTestId('diff-changed')).toHaveCount(2);
  await expect(versions.getByTestId('diff')).toContainText('- threshold: 0.85');
  await expect(versions.getByTestId('diff')).toContainText('+ threshold: 0.5');
  await versions.screenshot({ path: path.join(SCREENSHOTS, 'config-versions-diff.png') });

  // Two clicks: restore the older version (row 1), then confirm its plan.
  await versions.getByTestId('version-restore-1').click();
  await expect(versions.getByTestId('version-restore-plan')).toContainText(`~ ${device.app}.yaml`);
  expect(readFileSync(configFile, 'utf8')).toContain('threshold: 0.5'); // the plan changed nothing
  await versions.getByTestId('version-restore-confirm').click();
  await expect(versions.getByTestId('version-restore-status')).toContainText('Restored', { timeout: 60_000 });
  expect(readFileSync(configFile, 'utf8')).toBe(original);

  // Download the file to a folder on this computer (typed: the test host has no native dialog).
  const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-download-'));
  try {
    await browser.getByTestId(`entry-download-${device.app}.yaml`).click();
    await page.getByTestId('download-choose').click();
    await page.getByTestId('download-choose-folder').fill(folder);
    await page.getByTestId('download-choose-go').click();
    await expect(page.getByTestId('download-choose-target')).toContainText(folder);
    const [made] = readdirSync(folder);
    const downloaded = path.join(folder, made!, path.relative(device.root, configFile));
    await expect.poll(() => existsSync(downloaded) && readFileSync(downloaded, 'utf8'), { timeout: 30_000 }).toContain('threshold: 0.5');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }

  // Keep the one-file restore, then drill the device from its page: the RTO appears.
  await app.goTo('restore');
  await page.getByTestId('restore-confirm').click();
  await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('drill-rto-status')).toHaveText('not measured yet');
  await page.getByTestId('drill-start').click();
  await expect(page.getByTestId('drill-last-result')).toHaveText(/passed|partial/, { timeout: 120_000 });
  await expect(page.getByTestId('drill-rto-status')).toHaveText(/^within the objective/);
  await expect(page.getByTestId('drill-source-app')).toContainText('passed');
  await expect(page.getByTestId('drill-rto-value')).not.toHaveText('—');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'device-drill-rto.png') });
  expect(readdirSync(path.join(device.root, 'var/tmp')).filter((n) => n.startsWith('.jetvault-drill-'))).toEqual([]);
});
