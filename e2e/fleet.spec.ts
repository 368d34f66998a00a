/**
 * The console against a real Jetson stand-in (sshd + PostgreSQL + SQLite): add it with fingerprint
 * confirmation, discover its sources, create the repository, back it up while watching progress,
 * and browse the snapshot's files.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Device } from '../fleet/index';
import { psql } from '../fleet/postgres';
import { describeTree } from '../src/main/repository/testing/fixtures';
import { expect, testWithFleet } from './fixtures';
import { chooseSourcesToRestore } from './device-steps';

const SCREENSHOTS = path.join('test-results', 'screenshots');

/**
 * What a whole-device restore must bring back byte for byte (names, modes, mtimes, symlinks, hard
 * links): the app, config and log folders. The SQLite file (its own source, restored as a checked
 * copy) and the mtime of the folder holding it are left out.
 */
async function deviceFiles(device: Device) {
  const described = await Promise.all([`opt/${device.app}`, `etc/${device.app}`, `var/log/${device.app}`].map((d) => describeTree(path.join(device.root, d))));
  const app = Object.fromEntries(Object.entries(described[0]!).filter(([rel]) => !rel.startsWith('data/local.db')));
  app.data = { ...app.data!, mtimeMs: 0 };
  return { app, config: described[1], logs: described[2] };
}

// The second device serves as a jump host (bastion) for the first in one test. Password login is on
// as well as keys, as on a stock JetPack image.
const test = testWithFleet({ devices: 2, sharedModelMB: 8, uniqueModelMB: 4, passwords: true });

test('add a device, discover its sources, back it up with live progress and browse the snapshot', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const device = fleet.devices[0]!;
  await app.open(host.url);

  // Add the device: the fingerprint is shown for confirmation before anything is trusted.
  await page.getByTestId('add-device').click();
  await page.getByTestId('device-name').fill(device.name);
  await page.getByTestId('device-host').fill(device.host);
  await page.getByTestId('device-port').fill(String(device.port));
  await page.getByTestId('device-user').fill(device.user);
  await page.getByTestId('device-identity').fill(device.identityFile);
  await page.getByText('Advanced').click();
  await page.getByTestId('device-sysroot').fill(device.root);
  await page.getByTestId('device-check-key').click();
  await expect(page.getByTestId('host-key-fingerprint')).toHaveText(device.hostKeyFingerprint);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'add-device-fingerprint.png') });
  await page.getByTestId('host-key-trust').click();
  await expect(page.getByTestId('device-page')).toBeVisible();
  await expect(page.getByTestId('device-host-key')).toHaveText(device.hostKeyFingerprint);

  // Discover and accept what the device has. A second PostgreSQL socket whose server hangs up: the
  // facts say the login could not list it, and why.
  const refusing = createServer((connection) => connection.destroy());
  const socket = path.join(device.pg.socketDir, '.s.PGSQL.5999');
  await new Promise<void>((resolve) => refusing.listen(socket, resolve));
  chmodSync(socket, 0o777);
  await page.getByTestId('device-discover').click();
  await expect(page.getByTestId('device-facts')).toContainText(/L4T\s*R3[56]/);
  await expect(page.getByTestId('facts-database-errors')).toContainText(`PostgreSQL at ${device.pg.socketDir}:5999: psql: error:`);
  await new Promise((resolve) => refusing.close(resolve));
  await expect(page.getByTestId('proposals')).toBeVisible();
  // Where the technician is looking when discovery ends, not below the history and drill cards.
  await expect(page.getByTestId('proposals')).toBeInViewport();
  await expect(page.getByTestId('proposal-db-myrvm')).toBeVisible();
  await page.screenshot({ path: path.join(SCREENSHOTS, 'device-discovered.png') });
  await page.getByTestId('proposals-accept').click();
  await expect(page.getByTestId('source-db-myrvm')).toBeVisible();
  await expect(page.getByTestId('source-sqlite-local')).toBeVisible();

  // The repository is created once, with a password.
  await app.goTo('catalog');
  await page.getByTestId('repository-password').fill('a good long repository password');
  await page.getByTestId('repository-password-again').fill('a good long repository password');
  await page.getByTestId('repository-submit').click();
  await expect(page.getByTestId('repository-unlocked')).toBeVisible();

  const depositsAtBackup = await device.mutate.pgCount('deposits');
  const scansAtBackup = await device.mutate.sqliteCount('scans');
  const filesAtBackup = await deviceFiles(device);
  // Back up now, with progress in the jobs tray.
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('device-page')).toBeVisible();
  await page.getByTestId('device-backup').click();
  await expect(page.getByTestId('jobs-tray')).toBeVisible();
  await expect(page.getByTestId('jobs-tray')).toContainText(`Back up ${device.name}`);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'backup-progress.png') });
  await expect(page.getByTestId('device-last-backup')).toContainText('succeeded', { timeout: 120_000 });

  // The fleet overview now counts it as protected within its RPO.
  await app.goTo('fleet');
  await expect(page.getByTestId(`device-row-${device.name}`)).toHaveAttribute('data-protection', 'protected');
  await expect(page.getByTestId('fleet-summary')).toContainText('1 protected');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-protected.png') });

  // The snapshots are in the catalog (the device page links to its own); the app's files can be
  // browsed, odd names included.
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await page.getByTestId('device-last-backup').getByRole('link', { name: 'see the snapshots' }).click();
  await expect(page.getByTestId('catalog-device')).toHaveValue(device.name);
  const appRow = page.getByTestId(new RegExp(`^snapshot-${device.name}-app-`));
  await expect(appRow).toBeVisible();
  const dbRow = page.getByTestId(`snapshot-${device.name}-db-myrvm`);
  await expect(dbRow).toBeVisible();
  const all = await page.getByTestId('snapshots-table').locator('tbody tr').count();
  await expect(page.getByTestId('catalog-count')).toHaveText(`${all} of ${all} snapshots`);
  // One source of it: the other rows go.
  await page.getByTestId('catalog-source').selectOption('db-myrvm');
  await expect(page.getByTestId('snapshots-table').locator('tbody tr')).toHaveCount(1);
  await expect(dbRow).toBeVisible();
  await expect(page.getByTestId('catalog-count')).toHaveText(`1 of ${all} snapshots`);
  await page.getByTestId('catalog-source').selectOption('');
  await expect(appRow).toBeVisible();
  await appRow.getByRole('link').click();
  const browser = page.getByTestId('snapshot-browser');
  await expect(browser).toBeVisible();
  for (const part of path.relative(device.root, path.join(device.root, 'opt', device.app, 'data', 'files')).split('/')) {
    await browser.getByRole('button', { name: `${part}/`, exact: true }).last().click();
  }
  await expect(page.getByTestId('snapshot-entries')).toContainText('ünïcødé');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'catalog-browse.png') });

  // A bad update on the device, then a guided restore of the app folder: preview, restore, keep.
  const appPy = path.join(device.root, 'opt', device.app, 'VERSION');
  const original = readFileSync(appPy, 'utf8');
  writeFileSync(appPy, 'broken-update\n');
  const appDir = path.join(device.root, 'opt', device.app);
  // Left by the update, with a line break in its name: the plan shows it on one line, as `ls -b` would.
  const stray = path.join(appDir, 'stray\nupdate.tmp');
  writeFileSync(stray, 'left by the update');
  // The update also left the app folder read-only: the restore must still swap it, and give it back its mode.
  const appMode = statSync(appDir).mode & 0o777;
  chmodSync(appDir, 0o555);
  // And a `sudo pip install` left requirements.txt root's, its bytes unchanged: it goes back to the device's account.
  const requirements = path.join(appDir, 'requirements.txt');
  chownSync(requirements, 0, 0);
  await chooseSourcesToRestore(app, page, device.name, ['app-myrvm']);
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('restore-plan')).toBeVisible();
  await expect(page.getByTestId('plan-replace').first()).toHaveText('2');
  await expect(page.getByTestId('plan-remove').first()).toHaveText('1');
  await expect(page.getByTestId('restore-plan')).toContainText('~ VERSION');
  await expect(page.getByTestId('restore-plan')).toContainText('~ requirements.txt');
  await expect(page.locator('.plan-samples li', { hasText: 'stray' })).toHaveText('- stray\\nupdate.tmp');
  await expect(page.getByTestId('plan-mode').first()).toContainText(`goes back from 0555 to 0${appMode.toString(8)}`);
  await expect(page.getByTestId('plan-owners').first()).toHaveText('One of them gets its owner (uid:gid) from the snapshot back.');
  expect(readFileSync(appPy, 'utf8')).toBe('broken-update\n'); // the preview changed nothing
  await page.screenshot({ path: path.join(SCREENSHOTS, 'restore-plan.png') });
  // A file damaged on the device with its size, times and mode intact: only a content check finds it.
  const rotted = device.mutate.files().find((f) => f.startsWith(`${appDir}/`) && !f.endsWith('VERSION') && f !== requirements && statSync(f).size > 16 && statSync(f).size < 65536)!;
  const rottedBefore = readFileSync(rotted);
  const times = path.join(mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-')), 'times');
  spawnSync('cp', ['-p', rotted, times]);
  writeFileSync(rotted, Buffer.from(rottedBefore.map((b, i) => (i === 8 ? b ^ 0x01 : b))));
  spawnSync('touch', ['-r', times, rotted]);
  // And a model one bad write damaged: the preview says it may cross as the blocks that differ.
  const model = device.mutate.patchModel(4096);
  await page.getByTestId('restore-check-contents').click();
  await expect(page.getByTestId('restore-plan')).toHaveCount(0); // a changed choice asks for a new preview
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('plan-contents').first()).toContainText(/Contents checked: \d+ files read on the device, 1 differ/);
  await expect(page.getByTestId('plan-replace').first()).toHaveText('4');
  await expect(page.getByTestId('restore-plan')).toContainText(`~ ${path.relative(appDir, rotted)}`);
  await expect(page.getByTestId('restore-plan')).toContainText(`Sends at most`);
  await expect(page.getByTestId('restore-plan')).toContainText(`(${(statSync(model).size / 2 ** 20).toFixed(1)} MiB of it large files the device has a copy of: only the blocks that differ cross`);
  // A destructive restore asks for the device's name first.
  await expect(page.getByTestId('restore-start')).toBeDisabled();
  await page.getByTestId('restore-confirm-name').fill(device.name);
  await page.getByTestId('restore-start').click();
  await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 60_000 });
  // What the restore reported: its steps' times, and that loopback is a fast link (nothing gzip'ed).
  await expect(page.getByTestId('restore-last-result')).toContainText(/stage:app-myrvm \d+\.\d s/);
  // One sentence, then the notes (it read "(fast link) 1 large file…").
  await expect(page.getByTestId('restore-last-result')).toContainText('sent as it is (fast link). 1 large file');
  await expect(page.getByTestId('restore-last-result')).toContainText(/1 large file \(.+\) sent as the .+ of blocks that differed from the device's copy\./);
  expect(readFileSync(appPy, 'utf8')).toBe(original);
  expect(readFileSync(rotted)).toEqual(rottedBefore);
  expect(existsSync(stray)).toBe(false);
  expect(statSync(appDir).mode & 0o777).toBe(appMode);
  expect([statSync(requirements).uid, statSync(requirements).gid]).toEqual([device.account.uid, device.account.gid]);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'restore-pending.png') });
  // The window is closed and opened again: the restore still waits for a decision and the wizard
  // still has the device and the source chosen.
  await app.open(host.url);
  await app.goTo('restore');
  await expect(page.getByTestId('restore-pending')).toContainText(`${device.name}: restored`);
  // It says which point in time it went back to, how long that took and how it was sent.
  await expect(page.getByTestId('restore-pending')).toContainText(/to the state of .+ at .+ in \d+\.\d s, sent as it is \(fast link\)\. The previous state is kept/);
  await expect(page.getByTestId('restore-source-app-myrvm')).toHaveAttribute('data-selected', 'true');
  // Set apart from the wizard's first step below it (they touched).
  const waiting = (await page.getByTestId('restore-pending').boundingBox())!;
  const step1 = (await page.getByTestId('restore-device').locator('xpath=..').boundingBox())!; // its card
  expect(step1.y - (waiting.y + waiting.height)).toBeGreaterThanOrEqual(12);
  await page.getByTestId('restore-confirm').click();
  await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  expect(readdirSync(path.join(device.root, 'opt')).filter((n) => n.startsWith('.jetvault-restore-'))).toEqual([]);
  // The content check was remembered with the wizard's other choices; the next restores go without it.
  await expect(page.getByTestId('restore-check-contents')).toHaveAttribute('data-selected', 'true');
  await page.getByTestId('restore-check-contents').click();

  // Damaged databases, restored through the wizard together with the app folder (still selected):
  // files and databases in one job; the plan lists the databases, row counts come back.
  await device.mutate.pgDeleteRows(500);
  await device.mutate.sqliteDeleteRows(300);
  await expect(page.getByTestId('restore-source-app-myrvm')).toHaveAttribute('data-selected', 'true');
  await page.getByTestId('restore-source-db-myrvm').click();
  await page.getByTestId('restore-source-sqlite-local').click();
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('plan-database-db-myrvm')).toContainText('replaces');
  await expect(page.getByTestId('plan-database-sqlite-local')).toContainText('rows checked');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'restore-plan-databases.png') });
  await page.getByTestId('restore-confirm-name').fill(device.name);
  await page.getByTestId('restore-start').click();
  await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 90_000 });
  await expect(page.getByTestId('restore-pending')).toContainText('previous database');
  expect(await device.mutate.pgCount('deposits')).toBe(depositsAtBackup);
  expect(await device.mutate.sqliteCount('scans')).toBe(scansAtBackup);
  // Rolled back on demand: the damaged state returns.
  await page.getByTestId('restore-rollback').click();
  await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  expect(await device.mutate.pgCount('deposits')).toBe(depositsAtBackup - 500);
  expect(await device.mutate.sqliteCount('scans')).toBe(scansAtBackup - 300);

  // A second run backs up the damaged state; the wizard then takes the whole device back to the first run.
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  const lastBefore = await page.getByTestId('device-last-backup').textContent();
  await page.getByTestId('device-backup').click();
  await expect
    .poll(async () => {
      const text = (await page.getByTestId('device-last-backup').textContent()) ?? '';
      return text !== lastBefore && text.includes('succeeded');
    }, { timeout: 120_000 })
    .toBe(true);
  // More damage: files deleted, a config changed, the SQLite file corrupted.
  const damaged = device.mutate.files().filter((f) => f.includes('/assets/') || f.endsWith('.py')).slice(0, 5);
  expect(damaged.length).toBeGreaterThan(0);
  for (const f of damaged) rmSync(f);
  const config = device.mutate.files().find((f) => f.includes(`/etc/${device.app}/`))!;
  writeFileSync(config, 'changed = by hand\n');
  device.mutate.corruptFile(path.relative(device.root, device.sqlitePath), 4096);
  // A service running as root left a folder of its own in the app folder: the device's login (not
  // root) cannot remove it from the previous state when the restore is kept, and the console says so.
  const rootsCache = path.join(device.root, 'opt', device.app, 'cache');
  mkdirSync(rootsCache);
  writeFileSync(path.join(rootsCache, 'index.bin'), 'built by a root service\n');
  chownSync(path.join(rootsCache, 'index.bin'), 0, 0);
  chownSync(rootsCache, 0, 0);
  expect(await deviceFiles(device)).not.toEqual(filesAtBackup);
  await app.goTo('restore');
  await page.locator('[data-testid=restore-device] label', { hasText: device.name }).click();
  const runChoices = page.locator('[data-testid=restore-run] label');
  await expect(runChoices).toHaveCount(3); // latest, the second run, the first run
  await runChoices.nth(2).click();
  await page.getByTestId('restore-scope-device').click();
  await page.getByTestId('restore-preview').click();
  await expect(page.getByTestId('plan-database-db-myrvm')).toContainText('replaces');
  await expect(page.getByTestId('plan-snapshots')).toContainText('app-myrvm');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'restore-plan-whole-device.png') });
  await page.getByTestId('restore-confirm-name').fill(device.name);
  await page.getByTestId('restore-start').click();
  await expect(page.getByTestId('restore-pending')).toBeVisible({ timeout: 120_000 });
  expect(await device.mutate.pgCount('deposits')).toBe(depositsAtBackup);
  expect(await device.mutate.sqliteCount('scans')).toBe(scansAtBackup);
  expect((await device.mutate.sqlite('PRAGMA integrity_check;')).trim()).toBe('ok');
  await page.getByTestId('restore-confirm').click();
  await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  const opt = path.join(device.root, 'opt');
  const left = readdirSync(opt).filter((name) => name.startsWith('.jetvault-restore-'));
  expect(left).toHaveLength(1);
  await expect(page.getByTestId('restore-leftovers')).toContainText(path.join(opt, left[0]!));
  await expect(page.getByTestId('restore-leftovers')).toContainText("files of another account, and the device's login is not root");
  rmSync(path.join(opt, left[0]!), { recursive: true });
  // The device's files are the first run's, byte for byte, with their modes and mtimes.
  expect(await deviceFiles(device)).toEqual(filesAtBackup);
});

test('add a device behind a jump host: both fingerprints confirmed, facts read through the tunnel', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const [device, bastion] = fleet.devices as [(typeof fleet.devices)[0], (typeof fleet.devices)[0]];
  await app.open(host.url);

  await page.getByTestId('add-device').click();
  await page.getByTestId('device-name').fill('rvm-far');
  await page.getByTestId('device-host').fill(device.direct.host);
  await page.getByTestId('device-port').fill(String(device.direct.port));
  await page.getByTestId('device-user').fill(device.user);
  await page.getByTestId('device-identity').fill(device.identityFile);
  await page.getByText('Advanced').click();
  await page.getByTestId('device-sysroot').fill(device.root);
  await page.getByTestId('device-jump').fill(`${bastion.user}@${bastion.host}:${bastion.port}`);
  await page.getByTestId('device-jump-identity').fill(bastion.identityFile);
  await page.getByTestId('device-check-key').click();

  // First the jump host's own key, then the device's, fetched through the jump host.
  await expect(page.getByTestId('jump-host-key-fingerprint')).toHaveText(bastion.hostKeyFingerprint);
  await page.getByTestId('jump-host-key-trust').click();
  await expect(page.getByTestId('host-key-fingerprint')).toHaveText(device.hostKeyFingerprint);
  await expect(page.getByTestId('host-key-confirm')).toContainText(`through ${bastion.user}@${bastion.host}`);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'add-device-jump-host.png') });
  await page.getByTestId('host-key-trust').click();
  await expect(page.getByTestId('device-page')).toBeVisible();

  await page.getByTestId('device-discover').click();
  await expect(page.getByTestId('device-facts')).toContainText(/L4T\s*R3[56]/);
  const exported = JSON.parse((await page.evaluate(() => window.api!.devices.export({ names: ['rvm-far'] }))).json) as { devices: { jump: { hostKey: string } }[] };
  expect(exported.devices[0]!.jump.hostKey).toBe(bastion.hostKeyFingerprint);
});

test('a key never confirmed, or changed by a reinstall, is pinned on the device page only after it is compared', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const [device, other] = fleet.devices as [(typeof fleet.devices)[0], (typeof fleet.devices)[0]];
  await app.open(host.url);
  const { hostKey: _pinned, ...unpinned } = device.profile();
  // The second profile holds another device's key: as if this one had been reinstalled since.
  const json = JSON.stringify({ devices: [{ ...unpinned, name: 'rvm-new' }, { ...device.profile(), name: 'rvm-reinstalled', hostKey: other.hostKeyFingerprint }] });
  await page.evaluate((text) => window.api!.devices.import({ json: text }), json);

  await page.goto(`${host.origin}/#/fleet/rvm-reinstalled`);
  const card = page.getByTestId('key-card');
  await expect(card).not.toHaveClass(/card-attention/);
  await page.getByTestId('device-discover').click();
  await expect(page.getByTestId('device-error')).toContainText('has CHANGED');
  await expect(card).toHaveClass(/card-attention/);
  // A backup refused for the key shows on the fleet page too.
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await page.getByTestId('device-backup').click();
  await expect(page.getByTestId('device-last-backup')).toContainText('has CHANGED');
  await app.goTo('fleet');
  await expect(page.getByTestId('host-key-rvm-reinstalled')).toHaveText('· host key changed');
  await expect(page.getByTestId('host-key-rvm-new')).toHaveText('· key not confirmed');
  await page.goto(`${host.origin}/#/fleet/rvm-reinstalled`);
  await card.getByTestId('key-card-check').click();
  await expect(card.getByTestId('key-card-result-device')).toContainText('different key');
  await expect(card.getByTestId('key-card-presented-device')).toHaveText(device.hostKeyFingerprint);
  await expect(card.getByTestId('key-card-pin-device')).toBeDisabled();
  await page.screenshot({ path: path.join(SCREENSHOTS, 'host-key-changed.png') });
  await card.getByTestId('key-card-compared-device').click();
  await card.getByTestId('key-card-pin-device').click();
  await expect(card.getByTestId('key-card-result')).toHaveText('Pinned. The device presents the pinned key.');
  await expect(card.getByTestId('key-card-pinned')).toHaveText(device.hostKeyFingerprint);
  await page.getByTestId('device-discover').click();
  await expect(page.getByTestId('device-facts')).toContainText(/L4T\s*R3[56]/);
  // On record: who replaced which key with which.
  const { entries } = await page.evaluate(() => window.api!.audit.list({ action: 'device.pin-host-key', target: 'rvm-reinstalled' }));
  expect(entries.map((e) => e.detail)).toContainEqual(JSON.stringify({ previous: other.hostKeyFingerprint, fingerprint: device.hostKeyFingerprint }));

  // Imported without a key: the card says so first, and "Trust this key" pins what was compared.
  await page.goto(`${host.origin}/#/fleet/rvm-new`);
  await expect(card).toHaveClass(/card-attention/);
  await expect(card.getByTestId('key-card-pinned')).toContainText('Not confirmed yet');
  await card.getByTestId('key-card-check').click();
  await expect(card.getByTestId('key-card-presented-device')).toHaveText(device.hostKeyFingerprint);
  await card.getByTestId('key-card-compared-device').click();
  await card.getByTestId('key-card-pin-device').click();
  await expect(card.getByTestId('key-card-pinned')).toHaveText(device.hostKeyFingerprint);
  expect((await page.evaluate(() => window.api!.devices.get({ name: 'rvm-new' }))).profile.hostKey).toBe(device.hostKeyFingerprint);

  // Behind a jump host whose key changed: the jump host's key first, then both match.
  const jump = { user: other.user, host: other.host, port: other.port, identityFile: other.identityFile, hostKey: device.hostKeyFingerprint };
  const far = { ...device.profile(), name: 'rvm-far', host: device.direct.host, port: device.direct.port, jump };
  await page.evaluate((text) => window.api!.devices.import({ json: text }), JSON.stringify(far));
  await page.goto(`${host.origin}/#/fleet/rvm-far`);
  await expect(card.getByTestId('key-card-pinned-jump')).toHaveText(device.hostKeyFingerprint);
  await card.getByTestId('key-card-check').click();
  await expect(card.getByTestId('key-card-presented-jump')).toHaveText(other.hostKeyFingerprint);
  await expect(card.getByTestId('key-card-result-device')).toHaveCount(0); // read through the jump host: not yet
  await card.getByTestId('key-card-compared-jump').click();
  await card.getByTestId('key-card-pin-jump').click();
  await expect(card.getByTestId('key-card-result')).toHaveText('Pinned. The device presents the pinned key, and so does its jump host.');
  await expect(card.getByTestId('key-card-pinned-jump')).toHaveText(other.hostKeyFingerprint);
  await page.getByTestId('device-discover').click();
  await expect(page.getByTestId('device-facts')).toContainText(/L4T\s*R3[56]/);
});

// A locked key's passphrase is stored encrypted at rest: outside the app that takes a passphrase.
test.describe('with secrets at rest', () => {
  test.use({ hostEnv: { JETVAULT_SECRETS_PASSPHRASE: 'e2e secrets passphrase' } });
  test('a profile the console refuses, a key the device refuses or a locked key bring the form back with the reason at the field; fixed, the device is added', async ({ host, console: app, page, fleet }) => {
    test.setTimeout(60_000);
    const [other, device] = fleet.devices as [(typeof fleet.devices)[0], (typeof fleet.devices)[0]];
    await app.open(host.url);
    const trust = async () => {
      await page.getByTestId('device-check-key').click();
      await expect(page.getByTestId('host-key-fingerprint')).toHaveText(device.hostKeyFingerprint);
      await page.getByTestId('host-key-trust').click();
    };
    const field = (testId: string) => page.locator('.field', { has: page.getByTestId(testId) });

    await page.getByTestId('add-device').click();
    await page.getByTestId('device-name').fill('rvm 017!');
    await page.getByTestId('device-host').fill(device.host);
    await page.getByTestId('device-port').fill(String(device.port));
    await page.getByTestId('device-user').fill(device.user);
    // Another device's key: this one does not accept it.
    await page.getByTestId('device-identity').fill(other.identityFile);
    await page.getByTestId('device-check-key').click();

    // Refused before the device is contacted: the name field says why, nothing in the fleet.
    await expect(field('device-name')).toContainText('Use 1–64 letters');
    await expect(page.getByTestId('host-key-fingerprint')).toHaveCount(0);
    await expect(page.getByTestId('device-name')).toHaveValue('rvm 017!');
    expect(await page.evaluate(() => window.api!.devices.list())).toEqual([]);
    // A name already in the fleet, the same way.
    await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify({ name: 'rvm-taken', host: '127.0.0.99', user: 'jetson' }));
    await page.getByTestId('device-name').fill('rvm-taken');
    await page.getByTestId('device-check-key').click();
    await expect(field('device-name')).toContainText('A device named "rvm-taken" already exists');
    await expect(page.getByTestId('host-key-fingerprint')).toHaveCount(0);
    await page.evaluate(() => window.api!.devices.remove({ name: 'rvm-taken' }));

    // A valid profile, but the device refuses the key: said at the key file, still nothing added.
    await page.getByTestId('device-name').fill('rvm-017');
    await trust();
    await expect(page.getByTestId('add-device-error')).toContainText('refused the credentials');
    await expect(field('device-identity')).toContainText('The device refused this key');
    expect(await page.evaluate(() => window.api!.devices.list())).toEqual([]);

    // The .pub beside a key, or a file that is no key, picked by mistake: said at the key file, not
    // as a passphrase the key would need.
    await page.getByTestId('device-identity').fill(`${device.identityFile}.pub`);
    await trust();
    await expect(page.getByTestId('add-device-error')).toContainText(`${device.identityFile}.pub is a public key: name its private key (${device.identityFile})`);
    await expect(field('device-identity')).toContainText('A public key: name its private key');
    await expect(field('device-passphrase')).not.toContainText('passphrase of this key');
    await expect(field('device-passphrase')).not.toContainText('needs its passphrase');
    const notes = path.join(mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-key-')), 'notes.txt');
    writeFileSync(notes, 'ssh rvm-017 and run the backup\n');
    await page.getByTestId('device-identity').fill(notes);
    await trust();
    await expect(field('device-identity')).toContainText('Not an SSH private key');
    await expect(field('device-passphrase')).not.toContainText('needs its passphrase');
    expect(await page.evaluate(() => window.api!.devices.list())).toEqual([]);

    // A key the device accepts, but locked with a passphrase: without it this laptop cannot use the key.
    const locked = path.join(mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-key-')), 'id_locked');
    const keygen = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'key passphrase', '-C', 'e2e locked key', '-f', locked]);
    expect(keygen.status).toBe(0);
    appendFileSync(path.join(device.dir, 'authorized_keys'), readFileSync(`${locked}.pub`));
    await page.getByTestId('device-identity').fill(locked);
    await trust();
    await expect(field('device-passphrase')).toContainText('This key needs its passphrase');
    expect(await page.evaluate(() => window.api!.devices.list())).toEqual([]);

    await page.getByTestId('device-passphrase').fill('key passphrase');
    await trust();
    await expect(page.getByTestId('device-page')).toBeVisible();
    expect((await page.evaluate(() => window.api!.devices.list())).map((d) => d.name)).toEqual(['rvm-017']);
    // The passphrase was kept (encrypted): the console logs in with it again.
    await page.getByTestId('device-discover').click();
    await expect(page.getByTestId('device-facts')).toContainText('Kernel');
    await expect(page.getByTestId('device-error')).toHaveCount(0);
  });

  test("a device behind a jump host that takes the device's locked key: the passphrase typed opens it for the jump host's login too", async ({ host, console: app, page, fleet }) => {
    test.setTimeout(60_000);
    const [bastion, device] = fleet.devices as [(typeof fleet.devices)[0], (typeof fleet.devices)[0]];
    const locked = path.join(mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-key-')), 'id_locked');
    expect(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'key passphrase', '-C', 'e2e locked key', '-f', locked]).status).toBe(0);
    // One key for both, as `ssh -J` uses it.
    for (const at of [device, bastion]) appendFileSync(path.join(at.dir, 'authorized_keys'), readFileSync(`${locked}.pub`));
    await app.open(host.url);
    await page.getByTestId('add-device').click();
    await page.getByTestId('device-name').fill('rvm-far');
    await page.getByTestId('device-host').fill(device.host);
    await page.getByTestId('device-port').fill(String(device.port));
    await page.getByTestId('device-user').fill(device.user);
    await page.getByTestId('device-identity').fill(locked);
    await page.getByTestId('device-passphrase').fill('key passphrase');
    await page.getByText('Advanced').click();
    await page.getByTestId('device-jump').fill(`${bastion.user}@${bastion.host}:${bastion.port}`);
    await page.getByTestId('device-check-key').click();
    await expect(page.getByTestId('jump-host-key-fingerprint')).toHaveText(bastion.hostKeyFingerprint);
    await page.getByTestId('jump-host-key-trust').click();
    await expect(page.getByTestId('host-key-fingerprint')).toHaveText(device.hostKeyFingerprint);
    await page.getByTestId('host-key-trust').click();
    await expect(page.getByTestId('device-page')).toBeVisible();
    expect((await page.evaluate(() => window.api!.devices.list())).map((d) => d.name)).toEqual(['rvm-far']);
  });

  test('a device that logs in with a password: a wrong one is said at its field, the right one is kept encrypted for later logins', async ({ host, console: app, page, fleet }) => {
    test.setTimeout(60_000);
    const device = fleet.devices[0]!;
    await app.open(host.url);
    await page.getByTestId('add-device').click();
    await page.getByTestId('device-name').fill('rvm-pw');
    await page.getByTestId('device-host').fill(device.host);
    await page.getByTestId('device-port').fill(String(device.port));
    await page.getByTestId('device-user').fill(device.user);
    await page.getByText('Password', { exact: true }).click();
    await page.getByTestId('device-password').fill('not the password');
    await page.getByTestId('device-check-key').click();
    await expect(page.getByTestId('host-key-fingerprint')).toHaveText(device.hostKeyFingerprint);
    await page.getByTestId('host-key-trust').click();
    await expect(page.locator('.field', { has: page.getByTestId('device-password') })).toContainText('The device refused this password');
    expect(await page.evaluate(() => window.api!.devices.list())).toEqual([]);

    await page.getByTestId('device-password').fill(device.password!);
    await page.getByTestId('device-check-key').click();
    await page.getByTestId('host-key-trust').click();
    await expect(page.getByTestId('device-page')).toBeVisible();
    const stored = await page.evaluate(() => window.api!.devices.get({ name: 'rvm-pw' }));
    expect(stored.profile.auth).toBe('password');
    expect(JSON.stringify(stored)).not.toContain(device.password!);
    await page.getByTestId('device-discover').click();
    await expect(page.getByTestId('device-facts')).toContainText('Kernel');
  });

  test("a database source's password is typed in the source editor, kept encrypted, and the backup logs in with it", async ({ host, console: app, page, fleet }) => {
    test.setTimeout(90_000);
    const device = fleet.devices[0]!;
    // A role that logs in only with its password (scram-sha-256), as an app's own database user does.
    const secret = `e2e db pa'ss"w$rd #${Date.now()}`;
    await psql(device.pg.socketDir, 'postgres', `DROP ROLE IF EXISTS jv_e2e; CREATE ROLE jv_e2e LOGIN SUPERUSER PASSWORD $jvpw$${secret}$jvpw$;`);
    const hba = path.join(device.pg.dataDir, 'pg_hba.conf');
    const rules = readFileSync(hba, 'utf8');
    if (!rules.startsWith('local all jv_e2e')) writeFileSync(hba, `local all jv_e2e scram-sha-256\n${rules}`);
    await psql(device.pg.socketDir, 'postgres', 'SELECT pg_reload_conf();');
    await app.open(host.url);
    const profile = device.profile();
    const db = { ...profile.sources.find((s) => s.name === 'db')!, user: 'jv_e2e' };
    await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify({ ...profile, name: 'rvm-dbpw', sources: [db] }));
    await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
    await page.goto(`${host.origin}/#/fleet/rvm-dbpw`);
    await expect(page.getByTestId('source-describe-db')).toHaveText(new RegExp(`PostgreSQL database ${device.app} .* as jv_e2e$`));

    // Without it, the backup fails saying where to set it.
    await page.getByTestId('device-backup').click();
    await expect(page.getByTestId('device-last-backup')).toContainText('failed', { timeout: 60_000 });
    await expect(page.getByTestId('device-last-backup')).toContainText('set the password of "db"');

    const editor = page.getByTestId('source-editor');
    await page.getByTestId('source-edit-db').click();
    await editor.getByTestId('source-field-password').fill(secret);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'source-editor-password.png') });
    await editor.getByTestId('source-save').click();
    await expect(editor).toHaveCount(0);
    await expect(page.getByTestId('source-describe-db')).toContainText('as jv_e2e · password stored');
    const stored = await page.evaluate(() => window.api!.devices.get({ name: 'rvm-dbpw' }));
    expect(stored.databasePasswords).toEqual(['db']);
    expect(JSON.stringify(stored)).not.toContain(secret);

    await page.getByTestId('device-backup').click();
    await expect(page.getByTestId('device-last-backup')).toContainText('succeeded', { timeout: 60_000 });
    expect((await page.evaluate(() => window.api!.snapshots.list({ device: 'rvm-dbpw' }))).map((s) => s.source)).toEqual(['db']);

    // Forgotten again from the editor.
    await page.getByTestId('source-edit-db').click();
    await expect(editor.getByTestId('source-field-password')).toHaveAttribute('placeholder', /stored/);
    await editor.getByTestId('source-field-forget-password').click();
    await editor.getByTestId('source-save').click();
    await expect(page.getByTestId('source-describe-db')).not.toContainText('password stored');
    expect((await page.evaluate(() => window.api!.devices.get({ name: 'rvm-dbpw' }))).databasePasswords).toEqual([]);
  });
});

test('sources are added, edited and removed on the device page, and the next backup follows them', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(120_000);
  const device = fleet.devices[1]!;
  await app.open(host.url);
  const { sources: _sources, ...bare } = device.profile();
  await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify(bare));
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await page.goto(`${host.origin}/#/fleet/${device.name}`);
  await expect(page.getByTestId('device-page')).toBeVisible();
  const editor = page.getByTestId('source-editor');

  // A files source: a relative path is refused at its field, the dialog stays, corrected it is added.
  await page.getByTestId('source-add').click();
  await editor.getByTestId('source-field-name').fill('settings');
  await editor.getByTestId('source-field-paths').fill(`etc/${device.app}`);
  await editor.getByTestId('source-save').click();
  // The banner points at the field rather than repeating its reason under the profile's path.
  await expect(editor.getByTestId('source-error')).toHaveText('Invalid device profile. The marked field says why.');
  await expect(editor.locator('.field', { has: page.getByTestId('source-field-paths') })).toContainText('Paths on the device must be absolute');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'source-editor-refused.png') });
  await editor.getByTestId('source-field-paths').fill(`${device.root}/etc/${device.app}`);
  await editor.getByTestId('source-save').click();
  await expect(editor).toHaveCount(0);
  await expect(page.getByTestId('source-settings')).toContainText(`${device.root}/etc/${device.app}`);

  // A database source next to it, then removed again (two presses).
  await page.getByTestId('source-add').click();
  await editor.getByTestId('source-kind-postgres').click();
  await editor.getByTestId('source-field-name').fill('db');
  await editor.getByTestId('source-field-database').fill(device.app);
  await editor.getByTestId('source-field-host').fill(device.pg.socketDir);
  await editor.getByTestId('source-field-port').fill(String(device.pg.port));
  await editor.getByTestId('source-save').click();
  await expect(page.getByTestId('source-db')).toContainText(`PostgreSQL database ${device.app} at ${device.pg.socketDir}:${device.pg.port}`);
  await page.getByTestId('source-remove-db').click();
  await expect(page.getByTestId('source-remove-db')).toHaveText('Press again: stop backing it up');
  await page.keyboard.press('Tab'); // focus moves on: the first press lapses at once (not after its 5 s)
  await expect(page.getByTestId('source-remove-db')).toHaveText('Remove', { timeout: 1000 });
  await page.getByTestId('source-remove-db').click();
  await expect(page.getByTestId('source-db')).toBeVisible();
  await page.getByTestId('source-remove-db').click();
  await expect(page.getByTestId('source-db')).toHaveCount(0);
  await page.getByTestId('source-add').click();
  await editor.getByTestId('source-kind-sqlite').click();
  await editor.getByTestId('source-field-name').fill('local');
  await editor.getByTestId('source-field-path').fill(device.sqlitePath);
  await editor.getByTestId('source-save').click();
  await expect(page.getByTestId('source-local')).toContainText(`SQLite ${device.sqlitePath}`);

  // Edited: the name stays, an exclude is added.
  await page.getByTestId('source-edit-settings').click();
  await expect(editor.getByTestId('source-field-name')).toHaveAttribute('readonly', '');
  await editor.getByTestId('source-field-exclude').fill('logging.yaml');
  await editor.getByTestId('source-save').click();
  await expect(page.getByTestId('source-settings')).toContainText('(except logging.yaml)');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'device-sources-edited.png') });
  const stored = await page.evaluate((name) => window.api!.devices.get({ name }), device.name);
  expect(stored.profile.sources).toEqual([
    { name: 'settings', kind: 'files', paths: [`${device.root}/etc/${device.app}`], exclude: ['logging.yaml'] },
    { name: 'local', kind: 'sqlite', path: device.sqlitePath },
  ]);

  // Each source says it has not been backed up yet (the repository is open, so that is known).
  await expect(page.getByTestId('source-latest-settings')).toContainText('not backed up yet');

  // The backup takes the sources as they now are: one snapshot each, the excluded file left out.
  await page.getByTestId('device-backup').click();
  await expect(page.getByTestId('device-last-backup')).toContainText('succeeded', { timeout: 90_000 });
  await expect(page.getByTestId('source-latest-settings')).toContainText('last snapshot');
  await expect(page.getByTestId('source-latest-local')).toContainText('last snapshot');
  const snapshots = await page.evaluate((name) => window.api!.snapshots.list({ device: name }), device.name);
  expect(snapshots.map((s) => s.source).sort()).toEqual(['local', 'settings']);
  const settings = snapshots.find((s) => s.source === 'settings')!;
  const folder = await page.evaluate(([id, app]) => window.api!.snapshots.browse({ id: id!, path: `etc/${app}` }), [settings.id, device.app]);
  const names = folder.entries.map((e) => e.name);
  expect(names).toContain(`${device.app}.yaml`);
  expect(names).not.toContain('logging.yaml');

  // A source added after the backup is the one not backed up yet; the others keep their snapshots.
  await page.getByTestId('source-add').click();
  await editor.getByTestId('source-field-name').fill('logs');
  await editor.getByTestId('source-field-paths').fill(`${device.root}/var/log/${device.app}`);
  await editor.getByTestId('source-save').click();
  await expect(page.getByTestId('source-latest-logs')).toContainText('not backed up yet: the next run of the device takes it');
  await expect(page.getByTestId('source-latest-settings')).toContainText('last snapshot');
});

test('the fleet page backs up the devices it shows: a second press starts one job each, and what could not start is said', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(180_000);
  const [first, second] = fleet.devices as [Device, Device];
  await app.open(host.url);
  const profiles = [
    { ...first.profile(), site: 'Depot East' },
    { ...second.profile(), site: 'Depot East' },
    // Not backed up: added, never given sources; and a device at another site, not shown.
    { name: 'rvm-bare', host: '127.0.0.99', user: 'jetson', site: 'Depot East' },
    { name: 'rvm-west', host: '127.0.0.98', user: 'jetson', site: 'Depot West' },
  ];
  await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify(profiles));
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await page.goto(`${host.origin}/#/fleet`);
  await page.getByTestId('filter-site').selectOption('Depot East');
  await expect(page.getByTestId('fleet-count')).toHaveText('Showing 3 of 4');

  // Nothing shown, nothing to start.
  const button = page.getByTestId('fleet-backup-shown');
  await page.getByTestId('filter-text').fill('no such device');
  await expect(button).toBeDisabled();
  await expect(button).toHaveText('No device shown to back up');
  await page.getByTestId('filter-text').fill('');
  // Three devices at once ask for a second press; focus moving away disarms it.
  await expect(button).toHaveText('Back up these 3 devices');
  await button.click();
  await expect(button).toHaveText('Press again to back up 3 devices');
  await page.getByTestId('filter-status').focus();
  await expect(button).toHaveText('Back up these 3 devices');
  await button.click();
  await button.click();

  const message = page.getByTestId('fleet-message');
  await expect(message).toContainText('Started 2 backups. Skipped 1 device:');
  await expect(page.getByTestId('fleet-message-warnings')).toHaveText('rvm-bare has no sources to back up yet: discover or add some first');
  // One job each, side by side in the tray, which says how many and scrolls when they are more than fit.
  const tray = page.getByTestId('jobs-tray');
  await expect(tray.locator('li.job')).toHaveCount(2);
  await expect(page.getByTestId('jobs-tray-count')).toHaveText('2 jobs running');
  expect(await tray.evaluate((element) => ({ overflow: getComputedStyle(element).overflowY, max: element.style.maxHeight || getComputedStyle(element).maxHeight }))).toEqual({ overflow: 'auto', max: `${Math.round(0.6 * page.viewportSize()!.height)}px` });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-backup-shown.png') });
  for (const device of [first, second]) await expect(page.getByTestId(`rpo-${device.name}`)).toContainText('just now', { timeout: 120_000 });
  await expect(page.getByTestId('rpo-rvm-bare')).toContainText('never');
  const snapshots = await page.evaluate(() => window.api!.snapshots.list());
  expect(new Set(snapshots.map((s) => s.device))).toEqual(new Set([first.name, second.name]));
  expect(snapshots).toHaveLength(first.profile().sources.length + second.profile().sources.length);
});
