/**
 * The restore wizard as a technician drives it against a real Jetson stand-in, where the page's
 * state could drift from the device's: a long-used console (a full recent-jobs list), a choice
 * changed while a preview is on its way.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HistoryStore } from '../src/main/history/history-store';
import { prepareSeedStatements } from '../src/main/history/statements';
import { expect, testWithFleet } from './fixtures';
import { routeIpc } from './ipc-route';
import { backUp, chooseSourcesToRestore, openBackedUp } from './device-steps';
import { startHost } from './test-host';

// 8 MB of shared models: the detector (4.8 MB) is a large file, which a restore may stage from a copy on the device.
const test = testWithFleet({ devices: 1, sharedModelMB: 8, uniqueModelMB: 1 });

test('a restore that ends on a console with a full job history offers Keep and Roll back at once', async ({ console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  // A console in use for a while: more finished jobs than the page keeps in its recent list (50).
  const host = await startHost((dataDir) => {
    const store = new HistoryStore(dataDir);
    try {
      const seed = prepareSeedStatements(store.db);
      const t = Date.now() - 3_600_000;
      for (let i = 0; i < 60; i++) {
        const iso = (ms: number) => new Date(ms).toISOString();
        seed.job.run(`job_old${String(i).padStart(4, '0')}`, 'verify', 'Verify the repository', null, 'succeeded', '["check"]', 'check', iso(t + i * 1000), iso(t + i * 1000 + 500), 0, 0, null, null);
      }
    } finally {
      store.close();
    }
  });
  try {
    await openBackedUp(app, page, host.url, device);
    const configFile = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
    const original = readFileSync(configFile, 'utf8');
    writeFileSync(configFile, 'broken: true\n');

    await chooseSourcesToRestore(app, page, device.name, ['config']);
    await page.getByTestId('restore-preview').click();
    await expect(page.getByTestId('restore-plan')).toBeVisible();
    await page.getByTestId('restore-confirm-name').fill(device.name);
    await page.getByTestId('restore-start').click();
    // Read again until restored; between the swap's two renames the folder is briefly elsewhere
    // (decision 007: the journal covers that instant), which a read can land in.
    const current = () => {
      try {
        return readFileSync(configFile, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'mid-swap';
        throw error;
      }
    };
    await expect.poll(current, { timeout: 60_000 }).toBe(original);
    // The device waits for a decision: the page says so without being reloaded.
    await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 15_000 });
    await page.getByTestId('restore-confirm').click();
    await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  } finally {
    await host.stop();
  }
});

test('a choice changed while a preview is on its way leaves no plan of the old choice to restore', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  // A slow link: the preview's answer takes seconds to come.
  await routeIpc(page, { up: (call) => (call?.channel === 'restore:plan' ? { delayMs: 3000 } : undefined) });
  await openBackedUp(app, page, host.url, device);

  await chooseSourcesToRestore(app, page, device.name, ['logs']);
  await page.getByTestId('restore-preview').click();
  // Meanwhile the technician decides on the whole device instead.
  await page.getByTestId('restore-scope-device').click();
  await expect(page.getByTestId('restore-preview')).toBeEnabled({ timeout: 10_000 });
  // The logs-only plan that arrived is not the one on screen: Restore would send the whole device.
  await expect(page.getByTestId('restore-plan')).toHaveCount(0);
  await expect(page.getByTestId('restore-start')).toHaveCount(0);
  // A new preview plans the whole device.
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('plan-snapshots')).toContainText('app', { timeout: 15_000 });
  await expect(page.getByTestId('plan-snapshots')).toContainText('config');
});

test('a backup that lands between the preview and Restore does not change what Restore puts back', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  const configFile = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
  const original = readFileSync(configFile, 'utf8');
  await openBackedUp(app, page, host.url, device);
  writeFileSync(configFile, 'broken: true\n');
  try {
    await chooseSourcesToRestore(app, page, device.name, ['config']);
    await page.getByTestId('restore-preview').click();
    await expect(page.getByTestId('restore-plan')).toContainText(`~ ${device.app}.yaml`);
    // The scheduler backs the broken state up while the technician reads the plan.
    await backUp(page, device.name);
    await page.getByTestId('restore-confirm-name').fill(device.name);
    await page.getByTestId('restore-start').click();
    await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 60_000 });
    // What the preview said would come back came back.
    expect(readFileSync(configFile, 'utf8')).toBe(original);
    await page.getByTestId('restore-confirm').click();
    await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  } finally {
    writeFileSync(configFile, original);
  }
});

test('Files of one source after several sources were ticked previews the one source shown ticked', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  await openBackedUp(app, page, host.url, device);
  await chooseSourcesToRestore(app, page, device.name, ['db', 'config']);
  await page.getByTestId('restore-scope-files').click();
  // Only the files source stays ticked; the database's own field goes with it.
  await expect(page.getByTestId('restore-source-config')).toHaveAttribute('data-selected', 'true');
  await expect(page.getByTestId('restore-target-database')).toHaveCount(0);
  await page.getByTestId('restore-include').fill(`${device.app}.yaml`);
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('restore-plan')).toBeVisible({ timeout: 15_000 });
  await expect(page.getByTestId('restore-error')).toHaveCount(0);
  await expect(page.getByTestId('plan-snapshots')).toContainText('config (files');
  await expect(page.getByTestId('plan-snapshots')).not.toContainText('db (');
});

test('a running restore names the device it runs on, whichever device the wizard shows', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  await app.open(host.url);
  await page.evaluate(async (profile) => {
    await window.api!.devices.import({ json: JSON.stringify(profile) });
    await window.api!.devices.import({ json: JSON.stringify({ ...profile, name: 'spare-unit', sources: [] }) });
    await window.api!.repository.init({ password: 'a good long repository password' });
  }, device.profile());
  await backUp(page, device.name);
  // A slow link: the restore takes a while (some 50 s for the app's 3 MiB), into a new folder.
  await page.evaluate(() => window.api!.settings.update({ bandwidthLimitKiBps: 64 }));
  const into = path.join(device.root, 'var', 'tmp', `inspect-${Date.now()}`);
  try {
    await chooseSourcesToRestore(app, page, device.name, ['app']);
    await page.getByTestId('restore-target').fill(into);
    await page.getByTestId('restore-preview').click();
    await page.getByTestId('restore-start').click();
    await expect(page.getByTestId('restore-running')).toContainText(`Restoring ${device.name}`);
    // The technician looks at the next device meanwhile, then at another page and back.
    await page.locator('[data-testid=restore-device] label', { hasText: 'spare-unit' }).click();
    await expect(page.getByTestId('restore-running')).toContainText(`Restoring ${device.name}`);
    await app.goTo('fleet');
    await app.goTo('restore');
    await expect(page.getByTestId('restore-running')).toContainText(`Restoring ${device.name}`);
  } finally {
    await page.evaluate(() => window.api!.settings.update({ bandwidthLimitKiBps: 0 }));
    rmSync(into, { recursive: true, force: true });
  }
});

test('very long file names can be read whole in the catalog browser and stay inside the restore plan', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  // Two names alike but for their end, as a camera's calibration frames are.
  const long = `${'calibration_frame_'.repeat(12)}001.json`;
  const twin = `${'calibration_frame_'.repeat(12)}002.json`;
  const deep = path.join(device.root, 'opt', device.app, long);
  writeFileSync(deep, '{}\n');
  writeFileSync(path.join(device.root, 'opt', device.app, twin), '{}\n');
  try {
    await page.setViewportSize({ width: 1280, height: 800 });
    await openBackedUp(app, page, host.url, device);
    // Nothing inside a card, nor the page's own scrolling area, is wider than the space it has.
    const fits = () =>
      page.evaluate(() =>
        [...document.querySelectorAll('main, .card')].filter((el) => el.scrollWidth > el.clientWidth + 1).map((el) => `${el.getAttribute('data-testid') ?? el.className}: ${el.scrollWidth} > ${el.clientWidth}`),
      );

    await app.goTo('catalog');
    await page.getByTestId(new RegExp(`^snapshot-${device.name}-app`)).first().getByRole('link').click();
    const browser = page.getByTestId('snapshot-browser');
    for (const part of path.relative(device.root, path.join(device.root, 'opt', device.app)).split('/')) {
      await browser.getByRole('button', { name: `${part}/`, exact: true }).last().click();
    }
    await expect(page.getByTestId('snapshot-entries')).toContainText(long);
    // Cut short to fit its row, each name can still be read whole (and told from its twin).
    await expect(page.getByTestId('snapshot-entries').getByTitle(long, { exact: true })).toBeVisible();
    await expect(page.getByTestId('snapshot-entries').getByTitle(twin, { exact: true })).toBeVisible();
    expect(await fits()).toEqual([]);

    writeFileSync(deep, '{"changed": true}\n');
    await chooseSourcesToRestore(app, page, device.name, ['app']);
    await page.getByTestId('restore-preview').click();
    await expect(page.getByTestId('restore-plan')).toContainText(long);
    await page.getByTestId('restore-plan').scrollIntoViewIfNeeded();
    expect(await fits()).toEqual([]);
  } finally {
    rmSync(deep, { force: true });
    rmSync(path.join(device.root, 'opt', device.app, twin), { force: true });
  }
});

test('a download that fails on this computer says so where it was started', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  // A folder on a file system too small for the snapshot (a nearly full USB stick).
  const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-tiny-'));
  expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', folder]).status).toBe(0);
  try {
    await openBackedUp(app, page, host.url, device);
    await app.goTo('catalog');
    await page.getByTestId(new RegExp(`^snapshot-${device.name}-app`)).first().getByRole('link').click();
    await page.getByTestId('download-snapshot').click();
    await page.getByTestId('download-choose').click();
    await page.getByTestId('download-choose-folder').fill(folder);
    await page.getByTestId('download-choose-go').click();
    await expect(page.getByTestId('download-choose-error')).toContainText('The download failed', { timeout: 30_000 });
    await expect(page.getByTestId('download-choose-error')).toContainText('no space left on device');
    await expect(page.getByTestId('download-choose-target')).toContainText('Not downloaded');
  } finally {
    spawnSync('umount', [folder]);
    rmSync(folder, { recursive: true, force: true });
  }
});

test('Keep refused by a device gone silent says why at the restore waiting for the decision', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  await openBackedUp(app, page, host.url, device);
  const into = path.join(device.root, 'var', 'tmp', 'inspect-keep');
  await chooseSourcesToRestore(app, page, device.name, ['config']);
  await page.getByTestId('restore-target').fill(into);
  await page.getByTestId('restore-preview').click();
  await page.getByTestId('restore-start').click();
  await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 60_000 });
  // The link drops and the device stops answering.
  for (const pid of device.sessionProcesses()) if (pid !== device.sshd.pid) try { process.kill(pid, 'SIGKILL'); } catch {}
  process.kill(device.sshd.pid, 'SIGSTOP');
  try {
    await page.getByTestId('restore-confirm').click();
    // Said in the card whose button was pressed, in plain words; not down beside Preview.
    await expect(page.getByTestId('restore-pending').getByRole('alert')).toContainText('did not answer in time', { timeout: 90_000 });
    await expect(page.getByTestId('restore-error')).toHaveCount(0);
  } finally {
    process.kill(device.sshd.pid, 'SIGCONT');
  }
  await page.getByTestId('restore-confirm').click();
  await expect(page.getByTestId('restore-pending')).toHaveCount(0, { timeout: 60_000 });
  rmSync(into, { recursive: true, force: true });
});

test('Versions of a file with one version offers nothing to compare it with', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  await openBackedUp(app, page, host.url, device);
  await app.goTo('catalog');
  await page.getByTestId(`snapshot-${device.name}-config`).first().getByRole('link').click();
  const browser = page.getByTestId('snapshot-browser');
  for (const part of path.relative(device.root, path.join(device.root, 'etc', device.app)).split('/')) {
    await browser.getByRole('button', { name: `${part}/`, exact: true }).last().click();
  }
  await page.getByTestId(`entry-versions-${device.app}.yaml`).click();
  const versions = page.getByTestId('file-versions');
  await expect(versions.getByTestId('version-row')).toHaveCount(1);
  await expect(versions).toContainText('Only one version');
  // No "old" / "new" buttons that would only compare the version with itself.
  await expect(versions.getByTestId('version-from-0')).toHaveCount(0);
  await expect(versions.getByTestId('version-to-0')).toHaveCount(0);
  await expect(versions.getByTestId('version-restore-0')).toBeVisible();
});

test('Restore pressed from the keyboard leaves focus on the restore it started, one Tab from Keep', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  // The start's answer comes late (a busy console): the button is disabled meanwhile, and a focused
  // button that is disabled drops focus onto the page's body — unless focus moved on first.
  await routeIpc(page, { up: (call) => (call?.channel === 'restore:start' ? { delayMs: 1000 } : undefined) });
  await openBackedUp(app, page, host.url, device);
  const configFile = path.join(device.root, 'etc', device.app, `${device.app}.yaml`);
  const original = readFileSync(configFile, 'utf8');
  writeFileSync(configFile, 'broken: true\n');
  try {
    await chooseSourcesToRestore(app, page, device.name, ['config']);
    await page.getByTestId('restore-preview').click();
    await page.getByTestId('restore-confirm-name').fill(device.name);
    await page.getByTestId('restore-start').focus();
    await page.keyboard.press('Enter');
    // While the start is on its way, and once the Restore button is gone with the plan: focus is not dropped on the page's body.
    await expect(page.getByTestId('restore-start')).toBeDisabled();
    expect(await page.evaluate(() => document.activeElement !== document.body)).toBe(true);
    await expect(page.getByTestId('restore-status')).toBeFocused();
    await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 60_000 });
    await page.keyboard.press('Tab');
    await expect(page.getByTestId('restore-confirm')).toBeFocused();
    await page.keyboard.press('Enter');
    await expect(page.getByTestId('restore-pending')).toHaveCount(0);
    expect(readFileSync(configFile, 'utf8')).toBe(original);
  } finally {
    writeFileSync(configFile, original);
  }
});

test('restored into another folder, the large model is staged from its copy on the device: the preview and the result say so', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[0]!;
  const inspect = path.join(device.root, 'srv', 'inspect');
  try {
    await openBackedUp(app, page, host.url, device);
    await chooseSourcesToRestore(app, page, device.name, ['app']);
    await page.getByLabel('Restore files into another folder on the device (optional)').fill(inspect);
    await page.getByTestId('restore-preview').click();
    const model = path.join('opt', device.app, 'models', 'detector-v7.onnx');
    const size = readFileSync(path.join(device.root, model)).length;
    await expect(page.getByTestId('restore-plan')).toContainText(`(${(size / 2 ** 20).toFixed(1)} MiB of it large files the device has a copy of: only the blocks that differ cross`);
    await page.getByTestId('restore-start').click();
    await expect(page.getByTestId('restore-last-result')).toContainText(/1 large file \(.+\) staged from a copy the device holds at another path: none of it crossed the link\./, { timeout: 60_000 });
    expect(readFileSync(path.join(inspect, model)).equals(readFileSync(path.join(device.root, model)))).toBe(true);
    await expect(page.getByTestId('restore-pending')).toBeVisible();
    await page.getByTestId('restore-confirm').click();
    await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  } finally {
    rmSync(path.join(device.root, 'srv'), { recursive: true, force: true });
  }
});

test('a restore whose link dropped while the model crossed: the next preview and result say what was taken up, and the model ends whole', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  const opt = path.join(device.root, 'opt');
  const model = path.join(opt, device.app, 'models', 'detector-v7.onnx');
  const original = readFileSync(model);
  await openBackedUp(app, page, host.url, device);
  rmSync(model); // lost on the device: the restore sends it
  // A slow link (~10 s for the model), cut once a third of it is staged.
  await page.evaluate(() => window.api!.settings.update({ bandwidthLimitKiBps: 512 }));
  try {
    await chooseSourcesToRestore(app, page, device.name, ['app']);
    await page.getByTestId('restore-preview').click();
    await page.getByTestId('restore-start').click();
    const staged = () => readdirSync(opt).map((n) => path.join(opt, n, 'new', 'models', 'detector-v7.onnx')).find((f) => f.includes('.jetvault-restore-') && existsSync(f));
    await expect.poll(() => (staged() ? statSync(staged()!).size : 0), { timeout: 60_000 }).toBeGreaterThan(original.length / 3);
    // The link drops: every session of the device's sshd ends at once.
    for (const pid of device.sessionProcesses()) if (pid !== device.sshd.pid) try { process.kill(pid, 'SIGKILL'); } catch {}
    await expect(page.getByTestId('restore-last-error')).toContainText('they are kept beside their folder for 24 hours', { timeout: 60_000 });
  } finally {
    await page.evaluate(() => window.api!.settings.update({ bandwidthLimitKiBps: 0 }));
  }
  // Settled from the Restore page; the preview then counts what had crossed.
  await page.getByTestId('restore-recover').click();
  await expect(page.getByTestId('restore-recover-result')).toContainText('No restore');
  // What it settled, and what it kept for the next restore: where, and until when.
  await expect(page.getByTestId('restore-recover-result')).toContainText(`Rolled back the restore of ${path.join(opt, device.app)} (`);
  await expect(page.getByTestId('restore-recover-result')).toContainText(new RegExp(`Kept 1 large file \\(.+\\) a restore cut off had staged, in ${opt}/\\.jetvault-resume-${device.app} until \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC`));
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('restore-plan')).toContainText(/\); [\d.]+ MiB of it is on the device already, staged by an earlier restore its link cut off \(taken up, not sent again\); staging needs/);
  await page.getByTestId('restore-plan').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join('test-results', 'screenshots', 'restore-resume-preview.png') });
  await page.getByTestId('restore-start').click();
  await expect(page.getByTestId('restore-last-result')).toContainText(/1 large file \(.+\) taken up from what an earlier restore had staged before its link was cut: only the .+ it still lacked crossed the link\./, { timeout: 60_000 });
  await page.getByTestId('restore-confirm').click();
  await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  expect(readFileSync(model).equals(original)).toBe(true);
  expect(readdirSync(opt).filter((n) => n.startsWith('.jetvault-'))).toEqual([]);
});
