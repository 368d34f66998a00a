/**
 * "Copy when reachable" end to end: two offsite repositories on other disks are added in Settings →
 * Repositories and the box is ticked on both; a device backs up and, with nobody starting a copy,
 * both get the run (the fleet and the device page count three copies, one offsite; the audit log
 * shows the copy policy's jobs). Unticked on one of them, the next run goes only to the other.
 *
 * The test host runs with the scheduler off (tests start backups themselves); this spec turns on
 * only the copy policy (`JETVAULT_COPY_POLICY=on`), the same one the app starts with the scheduler.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from '@playwright/test';
import { startDevice } from '../fleet/index';
import type { Device } from '../fleet/index';
import { expect, test } from './fixtures';
import { backUp } from './device-steps';

// The test host stores repository passwords in its secret store: it needs a passphrase there (no OS keyring).
process.env.JETVAULT_SECRETS_PASSPHRASE ??= 'e2e secrets passphrase';

const PASSWORD = 'copy policy e2e repository password';
const OFFSITE_PASSWORD = 'copy policy e2e offsite password';

test.use({ hostEnv: { JETVAULT_COPY_POLICY: 'on' } });

let device: Device;
const disks: string[] = [];
test.beforeAll(async () => {
  test.setTimeout(240_000);
  device = await startDevice({ sharedModelMB: 1, uniqueModelMB: 1 });
});
test.afterAll(async () => {
  await device?.stop();
  for (const dir of disks.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** An empty repository made the way an operator makes one: `jetvault init --repo DIR`. */
async function initRepository(dir: string): Promise<void> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'jv-e2e-home-'));
  try {
    await promisify(execFile)(process.execPath, ['bin/jetvault.js', 'init', '--repo', dir], { env: { ...process.env, JETVAULT_HOME: home, JETVAULT_PASSWORD: OFFSITE_PASSWORD } });
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** Waits until no job runs (a copy the policy started has ended). */
async function settle(page: Page): Promise<void> {
  await expect.poll(async () => (await page.evaluate(() => window.api!.jobs.list({ limit: 20 }))).filter((j) => j.status === 'running').length, { timeout: 60_000 }).toBe(0);
}

test('offsite repositories with "copy when reachable" get each new run without a copy being started; unticked, one no longer does', async ({ host, console: app, page }) => {
  test.setTimeout(180_000);
  const disk = mkdtempSync(path.join(os.tmpdir(), 'jv-e2e-offsite-'));
  disks.push(disk);
  const vaultA = path.join(disk, 'vault-a');
  const vaultB = path.join(disk, 'vault-b');
  await Promise.all([initRepository(vaultA), initRepository(vaultB)]);
  const profile = device.profile();
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), { ...profile, sources: profile.sources.filter((s) => s.name === 'config') });
  await page.evaluate((password) => window.api!.repository.init({ password }), PASSWORD);

  const settings = await app.goTo('settings');
  const panel = settings.getByTestId('repositories');
  for (const [name, location] of [
    ['Vault A', vaultA],
    ['Vault B', vaultB],
  ] as const) {
    await panel.getByTestId('repository-location').fill(location);
    await panel.getByTestId('repository-name').fill(name);
    await panel.getByTestId('repository-password').fill(OFFSITE_PASSWORD);
    await panel.getByTestId('repository-offsite').check();
    await panel.getByTestId('repository-add').click();
    const row = panel.getByTestId(`repository-row-${name}`);
    await expect(row.getByTestId('repository-offsite-toggle')).toBeChecked();
    await expect(row.getByTestId('repository-copy-when-reachable')).not.toBeChecked();
    await row.getByTestId('repository-copy-when-reachable').click(); // saved at once; checked once the console answers
    await expect(row.getByTestId('repository-copy-when-reachable')).toBeChecked();
  }
  const rowA = panel.getByTestId('repository-row-Vault A');
  const rowB = panel.getByTestId('repository-row-Vault B');

  // A backup, and nothing else: the policy copies the run to both.
  await backUp(page, device.name);
  await app.goTo('fleet');
  await expect(page.getByTestId(`copies-${device.name}`)).toHaveText('3× off', { timeout: 60_000 });
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('device-copies')).toContainText('3 copies of the latest run, one offsite');
  await settle(page);
  const audit = await app.goTo('audit');
  await audit.getByTestId('audit-action').selectOption('job.copy');
  const copyRows = audit.getByTestId('audit-row');
  await expect(copyRows).toHaveCount(2);
  await expect(copyRows.filter({ hasText: 'Copy to Vault A' })).toHaveCount(1);
  await expect(copyRows.filter({ hasText: 'Copy to Vault B' })).toHaveCount(1);
  for (const row of await copyRows.all()) {
    await expect(row).toContainText('copy-policy');
    await expect(row.getByTestId('audit-row-result')).toHaveText('OK');
  }

  // Unticked on Vault B: the next run goes to Vault A only.
  await app.goTo('settings');
  await rowB.getByTestId('repository-copy-when-reachable').click();
  await expect(rowB.getByTestId('repository-copy-when-reachable')).not.toBeChecked();
  await expect(rowA.getByTestId('repository-copy-when-reachable')).toBeChecked();
  await backUp(page, device.name);
  await app.goTo('fleet');
  await expect(page.getByTestId(`copies-${device.name}`)).toHaveText('2× off', { timeout: 60_000 });
  // The pass that copied to Vault A also decided about Vault B: once nothing runs, nothing more comes.
  await settle(page);
  await app.goTo('audit');
  await audit.getByTestId('audit-action').selectOption('job.copy');
  await expect(copyRows).toHaveCount(3);
  await expect(copyRows.filter({ hasText: 'Copy to Vault A' })).toHaveCount(2);
  await expect(copyRows.filter({ hasText: 'Copy to Vault B' })).toHaveCount(1);
  await app.goTo('fleet');
  await expect(page.getByTestId(`copies-${device.name}`)).toHaveText('2× off');

  // What the two disks hold, as their tests read it.
  await app.goTo('settings');
  await rowA.getByTestId('repository-test').click();
  await expect(rowA.getByTestId('repository-test-result')).toContainText('Reachable, initialised, 2 snapshots of 1 device');
  await rowB.getByTestId('repository-test').click();
  await expect(rowB.getByTestId('repository-test-result')).toContainText('Reachable, initialised, 1 snapshot of 1 device');
  await page.screenshot({ path: path.join('test-results', 'screenshots', 'copy-when-reachable.png'), fullPage: true });
});
