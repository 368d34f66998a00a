import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import type { ConsolePage } from './console-page';
import { expect, test } from './fixtures';
import { routeIpc, unavailable } from './ipc-route';

test('a page that fails to render says what broke on that page, and the other pages keep working', async ({ host, console: app, page }) => {
  await app.open(host.url);
  // Something to list in the audit log: a saved setting.
  await app.goTo('settings');
  await app.setNumber('defaultRpoMinutes', '45');
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  // The Audit page writes each entry's time with toLocaleString: make that throw, as a render bug would.
  await page.evaluate(() => {
    const original = Object.getOwnPropertyDescriptor(Date.prototype, 'toLocaleString')!;
    (window as unknown as { restoreDates: () => void }).restoreDates = () => Object.defineProperty(Date.prototype, 'toLocaleString', original);
    Date.prototype.toLocaleString = () => {
      throw new Error('dates broke');
    };
  });
  const audit = await app.goTo('audit');
  await expect(audit.getByTestId('page-error')).toContainText('The Audit log page could not be shown');
  await expect(audit.getByTestId('page-error-message')).toHaveText('dates broke');
  // The rest of the console is still there and works.
  await expect(page.getByTestId('nav-fleet')).toBeVisible();
  const settings = await app.goTo('settings');
  await expect(settings.locator('h1')).toHaveText('Settings');
  await expect(app.field('defaultRpoMinutes')).toHaveValue('45');
  // Back on the page once the cause is gone, it renders; and Try again does the same in place.
  await app.goTo('audit');
  await expect(page.getByTestId('page-error')).toBeVisible();
  await page.evaluate(() => (window as unknown as { restoreDates: () => void }).restoreDates());
  await page.getByTestId('page-error-retry').click();
  await expect(page.getByTestId('page-error')).toHaveCount(0);
  await expect(page.getByTestId('audit-row').first()).toBeVisible();
});

/** A flaky link: the answers to `channels` come back as the backend unreachable, everything else passes. */
async function failChannels(page: Page, channels: string[]): Promise<void> {
  await routeIpc(page, { up: (call) => (call?.channel && channels.includes(call.channel) ? unavailable(`The link dropped (${call.channel})`) : undefined) });
}

const profile = { name: 'rvm-031', host: '127.0.0.31', user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', site: 'Depot East', rpoMinutes: 15, sources: [] };

test('a page whose first load fails says so, and not "Loading…" under the error', async ({ host, console: app, page }) => {
  await failChannels(page, ['overview:get', 'audit:list', 'alerts:list', 'repositories:list', 'scheduler:queue']);
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), profile);

  const fleet = await app.goTo('fleet');
  await expect(fleet.getByTestId('overview-error')).toContainText('The link dropped (overview:get)');
  await expect(fleet.getByText('Loading…')).toHaveCount(0);
  // The backup queue's card says its load failed too, rather than vanishing.
  await expect(fleet.getByTestId('schedule-queue-error')).toContainText('The link dropped (scheduler:queue)');

  const audit = await app.goTo('audit');
  await expect(audit.getByTestId('audit-error')).toContainText('The link dropped (audit:list)');
  await expect(audit.getByText('Loading…')).toHaveCount(0);

  const alerts = await app.goTo('alerts');
  await expect(alerts.getByTestId('alerts-error')).toContainText('The link dropped (alerts:list)');
  await expect(alerts.getByTestId('alerts-empty')).toHaveCount(0);

  const settings = await app.goTo('settings');
  await expect(settings.getByTestId('repositories-error')).toContainText('The link dropped (repositories:list)');
  await expect(settings.getByText('Loading…')).toHaveCount(0);
});

test('a console whose backend did not answer at start offers to try again, and the second try opens it', async ({ host, page }) => {
  // The first start's first call fails (a backend still starting); every later connection goes through.
  let connections = 0;
  await routeIpc(page, {
    up: (call, connection) => {
      connections = connection;
      return connection === 1 && call?.channel === 'app:info' ? unavailable('The history store is busy') : undefined;
    },
  });
  await page.goto(host.url);
  await expect(page.locator('html')).toHaveAttribute('data-ready', 'error');
  await expect(page.getByRole('alert')).toHaveText('Jetvault could not reach its backend: The history store is busy');
  await page.getByRole('button', { name: 'Try again' }).click();
  await expect(page.locator('html')).toHaveAttribute('data-ready', 'true');
  await expect(page.getByTestId('nav-fleet')).toBeVisible();
  expect(connections).toBe(2);
});

test('a device page opened before a CLI import --replace says the profile changed instead of undoing the import, and the edit made again keeps both', async ({ host, console: app, page }) => {
  const device = { ...profile, sources: [{ name: 'config', kind: 'files', paths: ['/etc/rvm'] }] };
  // The console looks for other processes' edits every 2 s: here the operator saves before that push arrives.
  let holdPushes = false;
  await routeIpc(page, { down: (message) => !(holdPushes && typeof message === 'string' && message.includes('"devices:changed"')) });
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), device);
  await page.evaluate((name) => (window.location.hash = `#/fleet/${name}`), device.name);
  await expect(page.getByTestId('source-config')).toBeVisible();

  // Meanwhile a colleague adds a source from the CLI (another process).
  holdPushes = true;
  const file = path.join(host.dataDir, 'profiles.json');
  writeFileSync(file, JSON.stringify({ ...device, sources: [...device.sources, { name: 'logs', kind: 'files', paths: ['/var/log/rvm'] }] }));
  const cli = spawnSync(process.execPath, ['bin/jetvault.js', 'device', 'import', file, '--replace'], { env: { ...process.env, JETVAULT_HOME: host.dataDir }, encoding: 'utf8', timeout: 60_000 });
  expect(cli.status, cli.stderr).toBe(0);
  await expect(page.getByTestId('source-logs')).toHaveCount(0);

  // The operator changes the site on the page they opened before and saves.
  await page.getByTestId('device-setting-site').fill('Depot South');
  await page.getByTestId('device-settings-save').click();
  await expect(page.getByTestId('device-settings-error')).toContainText('changed since it was opened here');
  // Nothing of the CLI's import was undone, and the page now shows it, the site edit still typed.
  await expect(page.getByTestId('source-logs')).toBeVisible();
  await expect(page.getByTestId('device-setting-site')).toHaveValue('Depot South');
  const stored = await page.evaluate((name) => window.api!.devices.get({ name }), device.name);
  expect(stored.profile.sources.map((s) => s.name)).toEqual(['config', 'logs']);
  expect(stored.profile.site).toBe('Depot East');
  // Saved again, on the profile as it is now: both changes stay.
  await page.getByTestId('device-settings-save').click();
  await expect(page.getByTestId('device-settings-saved')).toBeVisible();
  const after = await page.evaluate((name) => window.api!.devices.get({ name }), device.name);
  expect(after.profile).toMatchObject({ site: 'Depot South', sources: [{ name: 'config' }, { name: 'logs' }] });
});

test('a device imported and a setting changed from the CLI show on the open console without a reload', async ({ host, console: app, page }) => {
  await app.open(host.url);
  const fleet = await app.goTo('fleet');
  await expect(page.getByTestId(`device-row-${profile.name}`)).toHaveCount(0);
  const file = path.join(host.dataDir, 'profiles.json');
  writeFileSync(file, JSON.stringify(profile));
  const jetvault = (...args: string[]) => spawnSync(process.execPath, ['bin/jetvault.js', ...args], { env: { ...process.env, JETVAULT_HOME: host.dataDir }, encoding: 'utf8', timeout: 60_000 });
  const imported = jetvault('device', 'import', file);
  expect(imported.status, imported.stderr).toBe(0);
  await expect(fleet.getByTestId(`device-row-${profile.name}`)).toContainText('Depot East', { timeout: 10_000 });

  await app.goTo('settings');
  await expect(app.field('defaultRpoMinutes')).not.toHaveValue('45');
  const set = jetvault('settings', 'set', 'defaultRpoMinutes', '45');
  expect(set.status, set.stderr).toBe(0);
  await expect(app.field('defaultRpoMinutes')).toHaveValue('45', { timeout: 10_000 });

  const removed = jetvault('device', 'remove', profile.name);
  expect(removed.status, removed.stderr).toBe(0);
  await app.goTo('fleet');
  await expect(page.getByTestId(`device-row-${profile.name}`)).toHaveCount(0, { timeout: 10_000 });
});

test("Import profiles says which key files this machine cannot read, as the CLI does, not at the first backup", async ({ host, console: app, page }) => {
  const here = path.join(host.dataDir, 'id_here');
  writeFileSync(here, 'not checked for being a key, only for being readable\n', { mode: 0o600 });
  const profiles = [
    { ...profile, name: 'rvm-040', auth: 'key', identityFile: '/home/colleague/.ssh/id_ed25519' },
    { ...profile, name: 'rvm-041', auth: 'key', identityFile: here, jump: { user: 'ops', host: '127.0.0.3', identityFile: '/home/colleague/.ssh/jump_key' } },
    { ...profile, name: 'rvm-042', auth: 'key', identityFile: here },
  ];
  await app.open(host.url);
  await page.getByTestId('import-file').setInputFiles({ name: 'fleet.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(profiles)) });
  const message = page.getByTestId('fleet-message');
  await expect(message).toContainText('Imported 3 devices: rvm-040, rvm-041, rvm-042');
  const warnings = page.getByTestId('fleet-message-warnings').locator('li');
  await expect(warnings).toHaveText([
    'rvm-040: its key file /home/colleague/.ssh/id_ed25519 cannot be read on this machine (ENOENT): put it there, or import a profile naming where it is, before its first backup',
    'rvm-041: its jump host key file /home/colleague/.ssh/jump_key cannot be read on this machine (ENOENT): put it there, or import a profile naming where it is, before its first backup',
  ]);
});

/** The note under the Add device dialog's password field, and under the device page's key passphrase. */
async function secretsNotes(app: ConsolePage, page: Page): Promise<{ dialog: string; devicePage: string }> {
  await app.goTo('fleet');
  await page.getByTestId('add-device').click();
  await page.locator('label.react-aria-Radio', { hasText: 'Password' }).click();
  const dialog = (await page.getByTestId('add-device-dialog').getByTestId('secrets-note').textContent()) ?? '';
  await page.keyboard.press('Escape');
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), { ...profile, auth: 'key', identityFile: '/home/me/.ssh/id_ed25519' });
  await page.evaluate((name) => (window.location.hash = `#/fleet/${name}`), profile.name);
  const devicePage = (await page.getByTestId('device-settings').getByTestId('secrets-note').textContent()) ?? '';
  return { dialog, devicePage };
}

test.describe('with the secrets passphrase', () => {
  test.use({ hostEnv: { JETVAULT_SECRETS_PASSPHRASE: 'e2e secrets passphrase' } });
  test('password fields say the secrets passphrase encrypts them, not a keychain there is none of', async ({ host, console: app, page }) => {
    await app.open(host.url);
    const notes = await secretsNotes(app, page);
    expect(notes.dialog).toBe('Stored encrypted under the secrets passphrase (JETVAULT_SECRETS_PASSPHRASE), never in plain text.');
    expect(notes.devicePage).toContain('secrets passphrase (JETVAULT_SECRETS_PASSPHRASE)');
    expect(notes.devicePage).not.toContain('keychain');
  });
});

test.describe('without a keychain or a secrets passphrase', () => {
  test.use({ hostEnv: { JETVAULT_SECRETS_PASSPHRASE: '' } });
  test('password fields say a password cannot be stored here, before one is typed', async ({ host, console: app, page }) => {
    await app.open(host.url);
    const notes = await secretsNotes(app, page);
    expect(notes.dialog).toContain('Cannot be stored here');
    expect(notes.devicePage).toContain('Cannot be stored here');
  });
});

test('names read in natural order: rvm-2 before rvm-10 on the Fleet page, its filters and the Restore wizard', async ({ host, console: app, page }) => {
  await app.open(host.url);
  const names = ['rvm-10', 'rvm-2', 'rvm-1', 'rvm-9'];
  const sites = { 'rvm-10': 'Depot 10', 'rvm-2': 'Depot 2', 'rvm-1': 'Depot 1', 'rvm-9': 'Depot 9' };
  await page.evaluate((list) => window.api!.devices.import({ json: JSON.stringify(list) }), names.map((name, i) => ({ ...profile, name, host: `127.0.0.${40 + i}`, site: sites[name as keyof typeof sites] })));
  await app.goTo('fleet');
  await page.getByTestId('sort-name').click();
  const rows = page.locator('tr[data-testid^="device-row-"]');
  await expect(rows).toHaveCount(4);
  expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-testid')))).toEqual(['device-row-rvm-1', 'device-row-rvm-2', 'device-row-rvm-9', 'device-row-rvm-10']);
  expect(await page.getByTestId('filter-site').locator('option').allTextContents()).toEqual(['All sites', 'Depot 1', 'Depot 2', 'Depot 9', 'Depot 10']);

  // The wizard lists the devices once a repository is open.
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await app.goTo('restore');
  await expect(page.getByTestId('restore-device').getByRole('radio')).toHaveCount(4);
  expect(await page.getByTestId('restore-device').getByRole('radio').evaluateAll((radios) => radios.map((r) => (r as HTMLInputElement).value))).toEqual(['rvm-1', 'rvm-2', 'rvm-9', 'rvm-10']);
});

test('a point in time the date box takes but no backup can be at is said at the box, and the Restore page stays', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), profile);
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await app.goTo('restore');
  await page.getByTestId('restore-device').getByRole('radio', { name: new RegExp(profile.name) }).check({ force: true });
  await page.getByTestId('restore-at').fill('275760-09-13T00:00:00');
  await expect(page.getByTestId('restore-at-error')).toContainText('not a time a backup can be at');
  await expect(page.getByTestId('page-error')).toHaveCount(0);
  // Not previewed as "latest" meanwhile: the preview waits for a time it can use.
  await expect(page.getByTestId('restore-preview')).toBeDisabled();
  // The time is remembered: the page opens again as it was, the message with it.
  await app.goTo('fleet');
  await app.goTo('restore');
  await expect(page.getByTestId('restore-at-error')).toBeVisible();
  await page.getByTestId('restore-at').fill('2026-01-02T03:04:05');
  await expect(page.getByTestId('restore-at-error')).toHaveCount(0);
  await expect(page.getByTestId('restore-preview')).toBeEnabled();
});

test('settings typed and not saved yet stay when another window saves a setting, and the other change shows', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  await app.setNumber('defaultRpoMinutes', '45');
  // Another window (the same backend) saves the theme meanwhile: its push reaches this form.
  await page.evaluate(() => window.api!.settings.update({ theme: 'dark' }));
  await expect(page.getByRole('radio', { name: 'Dark' })).toBeChecked();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(app.field('defaultRpoMinutes')).toHaveValue('45');
  await expect(page.getByTestId('settings-save')).toBeEnabled();
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  expect(await page.evaluate(() => window.api!.settings.get())).toMatchObject({ theme: 'dark', defaultRpoMinutes: 45 });
  await expect(page.getByTestId('settings-save')).toBeDisabled();
});

test('Reset to defaults asks for a second press before every setting, the repository path with them, goes back', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await page.evaluate(() => window.api!.settings.update({ repositoryPath: '/srv/jetvault/repo', defaultRpoMinutes: 30 }));
  await app.goTo('settings');
  await page.getByTestId('settings-reset').click();
  await expect(page.getByTestId('settings-reset')).toHaveText('Press again to reset every setting');
  expect(await page.evaluate(() => window.api!.settings.get())).toMatchObject({ repositoryPath: '/srv/jetvault/repo', defaultRpoMinutes: 30 });
  await page.getByTestId('settings-reset').click();
  await expect(app.status()).toHaveText('Settings reset to defaults.');
  expect(await page.evaluate(() => window.api!.settings.get())).toMatchObject({ repositoryPath: '', defaultRpoMinutes: 60 });
  await expect(page.getByTestId('settings-reset')).toHaveText('Reset to defaults');
});

test('a save on a slow link says it is on its way, and nothing can be discarded under it', async ({ host, console: app, page }) => {
  await routeIpc(page, { up: (call) => (call?.channel === 'settings:update' ? { delayMs: 2500 } : undefined) });
  await app.open(host.url);
  await app.goTo('settings');
  await app.setNumber('defaultRpoMinutes', '45');
  await app.save();
  await expect(page.getByTestId('settings-save')).toHaveText('Saving…');
  await expect(page.getByTestId('settings-save')).toBeDisabled();
  await expect(page.getByTestId('settings-discard')).toBeDisabled();
  await expect(app.status()).toHaveText('Settings saved.', { timeout: 10_000 });
  await expect(page.getByTestId('settings-save')).toHaveText('Save');
  await expect(app.field('defaultRpoMinutes')).toHaveValue('45');
  expect((await page.evaluate(() => window.api!.settings.get())).defaultRpoMinutes).toBe(45);
});

test('restores waiting for Keep or Roll back that cannot be read are said to be unknown, not left out', async ({ host, console: app, page }) => {
  await failChannels(page, ['restore:pending']);
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), profile);
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  const restore = await app.goTo('restore');
  await expect(restore.getByTestId('restore-pending-error')).toContainText('Restores waiting for Keep or Roll back could not be read: The link dropped (restore:pending)');
});

test('a link cut short in the middle of an escape opens the console and says the device is not there', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await page.evaluate(() => (window.location.hash = '#/fleet/rvm%2'));
  await expect(page.getByTestId('page-fleet')).toContainText('rvm%2');
  // Opened as is (a reload, a bookmark), the console starts.
  await page.reload();
  await expect(page.locator('html')).toHaveAttribute('data-ready', 'true');
  await expect(page.getByTestId('page-fleet')).toContainText('rvm%2');
});
