/**
 * Cancelling a backup from the jobs tray while its link has gone silent: the tray showed live
 * bytes and files, then how long nothing has moved; the cancel ends the run at once (no waiting on the dead link), no snapshot of
 * the run is left, and once the link is back the next backup succeeds (naming the one file the
 * device's login could not read), having first stopped what the cancelled run left running on the
 * device (its sshd never heard of the cancel).
 */
import path from 'node:path';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { expectOneLine } from './console-page';
import { expect, testWithFleet } from './fixtures';

const SCREENSHOTS = path.join('test-results', 'screenshots');

// A delay proxy in front of the device: its link can be slowed and then stalled mid-transfer.
const test = testWithFleet({ devices: 1, proxy: true, sharedModelMB: 8, uniqueModelMB: 4 });

test('a backup cancelled from the jobs tray while its link is stalled ends at once and leaves no snapshot', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  const proxy = device.proxy!;
  // 48 MB that does not compress, behind 100 ms each way: the transfer takes seconds, not milliseconds.
  writeFileSync(path.join(device.root, 'opt', device.app, 'models', 'large.bin'), randomBytes(48 * 1024 * 1024));
  await app.open(host.url);
  // A minute before a silent link is given up on: the tray has time to say how long it has been still.
  await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify({ ...device.profile(), silentLinkSeconds: 60 }));
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('device-page')).toBeVisible();

  proxy.delayMs = 100;
  try {
    await page.getByTestId('device-backup').click();
    const tray = page.getByTestId('jobs-tray');
    // Live progress: bytes and files move while the run transfers.
    await expect(tray.getByTestId('job-bytes')).not.toHaveText(/^0 B/, { timeout: 60_000 });
    await expect(tray.getByTestId('job-items')).toContainText(/[1-9][\d,]* files/);
    await expect(tray).toContainText('transfer');
    // Dead: the device hears nothing more, not even the console closing the run's connection.
    proxy.stall({ deviceHearsNothing: true });
    // Stalled: the tray's rate falls to nothing and its ETA is no longer a countdown.
    await expect(tray).toContainText('0 B/s', { timeout: 10_000 });
    await expect(tray).toContainText('ETA unknown');
    // Still for ten seconds: the tray says how long, so a pause reads apart from a link that is gone.
    await expect(tray.getByTestId('job-stalled')).toHaveText(/^No progress for 1\ds$/, { timeout: 20_000 });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'backup-stalled.png') });

    // The button names its job, and says the cancel has started (the tray may close before a look).
    const cancel = tray.getByRole('button', { name: `Cancel Back up ${device.name}`, exact: true });
    await expect(cancel).toBeEnabled();
    await tray.evaluate((element) => {
      const seen: string[] = [];
      (window as unknown as { trayButtons: string[] }).trayButtons = seen;
      new MutationObserver(() => element.querySelectorAll('button').forEach((b) => seen.push(`${b.textContent ?? ''}|${b.disabled}`))).observe(element, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    const cancelled = Date.now();
    await cancel.click();
    // Well before keepalives (5 s × 3) would give up on the stalled connection.
    await expect(page.getByTestId('device-last-backup')).toContainText('cancelled', { timeout: 10_000 });
    expect(Date.now() - cancelled).toBeLessThan(5_000);
    await expect(tray).toHaveCount(0);
    expect(await page.evaluate(() => (window as unknown as { trayButtons: string[] }).trayButtons)).toContain('Cancelling…|true');
    // A run is complete or absent: sources that had finished before the cancel left nothing either.
    expect(await page.evaluate((name) => window.api!.snapshots.list({ device: name }), device.name)).toEqual([]);
  } finally {
    proxy.delayMs = 0;
    proxy.restore();
  }

  // A file only root may read (as on a stock image): the next run is kept and names it.
  writeFileSync(path.join(device.root, 'etc', device.app, 'tls.key'), 'private\n', { mode: 0o600 });
  await page.getByTestId('device-backup').click();
  await expect(page.getByTestId('device-last-backup')).toContainText('succeeded', { timeout: 90_000 });
  await expect(page.getByTestId('device-last-backup')).toContainText('1 file or folder could not be read (see Recent backups)');
  await expect(page.getByTestId('device-last-backup')).toHaveClass(/banner-warn/);
  // The device's history keeps both runs: the cancelled one with its reason, the good one with its figures.
  const history = page.getByTestId('backup-history');
  await expect(history.getByTestId('backup-run-cancelled')).toContainText('was cancelled');
  await expect(history.getByTestId('backup-run-succeeded')).toContainText(`${device.profile().sources.length} snapshots`);
  await expect(history.getByTestId('backup-run-succeeded')).toContainText(/\d+(\.\d+)? MiB/);
  await expect(history.getByTestId('backup-run-succeeded')).toContainText('1 file or folder could not be read');
  // The cancelled run's tar was still on the device, blocked on the dead link: stopped first, and said.
  await expect(history.getByTestId('backup-run-succeeded')).toContainText(/first stopped what an earlier run had left running on the device \([^)]*\btar\b/);
  await history.getByText('1 thing to look at').click();
  await expect(history.getByTestId('backup-run-problems')).toContainText(`config: etc/${device.app}/tls.key — Cannot open: Permission denied (the device's login cannot read it)`);
  await history.scrollIntoViewIfNeeded();
  // Times and sizes beside the long notes keep to one line ("10.5" over "s", "64.5" over "MiB").
  const cells = await history.locator('[data-testid=backup-run-took], [data-testid=backup-run-added]').all();
  expect(cells.length).toBe(4); // the succeeded run and the cancelled one
  for (const cell of cells) await expectOneLine(cell);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'device-backup-history.png') });
  const sources = (await page.evaluate((name) => window.api!.snapshots.list({ device: name }), device.name)).map((s) => s.source).sort();
  expect(sources).toEqual(device.profile().sources.map((s) => s.name).sort());

  // Backed up again with nothing written to its SQLite database since: no copy made on the device,
  // and the history says the previous copy and its integrity check were kept. The large file was
  // rewritten all over meanwhile: it crosses whole, and the history says why.
  writeFileSync(path.join(device.root, 'opt', device.app, 'models', 'large.bin'), randomBytes(48 * 1024 * 1024));
  const sqlite = device.profile().sources.find((s) => s.kind === 'sqlite')!.name;
  await page.getByTestId('device-backup').click();
  const again = history.getByTestId('backup-run-succeeded').filter({ hasText: `${sqlite}: database not written since the last run, its copy and check kept` });
  await expect(again).toHaveCount(1, { timeout: 90_000 });
  await expect(again).toContainText('1 large file (48.0 MiB) sent whole: 48.0 MiB of its 48.0 MiB changed');

  // A copy of it in another folder (a new release): the stored copy is found, only hashes cross.
  mkdirSync(path.join(device.root, 'opt', device.app, 'releases'), { recursive: true });
  copyFileSync(path.join(device.root, 'opt', device.app, 'models', 'large.bin'), path.join(device.root, 'opt', device.app, 'releases', 'large.bin'));
  await page.getByTestId('device-backup').click();
  const copied = history.getByTestId('backup-run-succeeded').filter({ hasText: 'found at another path or on another device' });
  await expect(copied).toHaveCount(1, { timeout: 90_000 });
  await expect(copied).toContainText('1 large file (48.0 MiB) sent as the blocks that changed, its copy found at another path or on another device');
});
