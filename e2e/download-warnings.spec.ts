/**
 * A download that could not write everything says so at its button: entries a folder on a laptop
 * cannot hold (a FIFO, a device node) or that a snapshot should never have had (names that would
 * leave the folder) are named, not hidden behind "Downloaded".
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, testWithFleet } from './fixtures';
import { openBackedUp } from './device-steps';

const test = testWithFleet({ devices: 1 });

test('a download names what it left out', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  const configDir = path.join(device.root, 'etc', device.app);
  const fifo = path.join(configDir, 'control.fifo');
  execFileSync('mkfifo', [fifo]);
  chownSync(fifo, device.account.uid, device.account.gid);
  const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-download-'));
  try {
    await openBackedUp(app, page, host.url, device);
    await page.goto(`${host.origin}/#/fleet/${device.name}`);
    await page.getByTestId('source-download-config').click();
    await page.getByTestId('source-download-config-folder').fill(folder);
    await page.getByTestId('source-download-config-go').click();
    await expect(page.getByTestId('source-download-config-target')).toContainText(`Downloaded → ${folder}`, { timeout: 60_000 });
    const [made] = readdirSync(folder);
    expect(existsSync(path.join(folder, made!, path.relative(device.root, configDir), `${device.app}.yaml`))).toBe(true);
    const warnings = page.getByTestId('source-download-config-warnings');
    await expect(warnings).toContainText('1 entry was not written');
    await expect(warnings).toContainText(`${path.relative(device.root, fifo)}: fifo not restored`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
    rmSync(fifo, { force: true });
  }
});
