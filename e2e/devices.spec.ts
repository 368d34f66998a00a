import path from 'node:path';
import { expect, test } from './fixtures';

const SCREENSHOTS = path.join('test-results', 'screenshots');

const profiles = {
  devices: [
    {
      name: 'rvm-017',
      host: '127.0.0.17',
      port: 2222,
      user: 'jetson',
      identityFile: '/home/me/.ssh/id_ed25519',
      hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
      site: 'Depot North',
      tags: ['critical'],
      rpoMinutes: 15,
      sources: [
        { name: 'db', kind: 'postgres', database: 'myrvm', host: '/run/postgresql' },
        { name: 'app', kind: 'files', paths: ['/opt/myrvm'], exclude: ['data/local.db*'] },
      ],
    },
    { name: 'rvm-018', host: '127.0.0.18', user: 'jetson', site: 'Depot South' },
  ],
};

test('device profiles import from a file, list in the fleet and open a device page', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await expect(page.getByTestId('fleet-empty')).toBeVisible();
  await page.getByTestId('import-file').setInputFiles({ name: 'fleet.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(profiles)) });
  await expect(page.getByTestId('fleet-message')).toContainText('Imported 2 devices: rvm-017, rvm-018');
  await expect(page.getByTestId('device-row-rvm-017')).toContainText('Depot North');
  await expect(page.getByTestId('device-row-rvm-017')).toContainText('pinned');
  await expect(page.getByTestId('device-row-rvm-018')).toContainText('not confirmed');
  // The notice stands apart from the summary under it (they touched).
  const notice = (await page.getByTestId('fleet-message').boundingBox())!;
  expect((await page.getByTestId('fleet-summary').boundingBox())!.y - (notice.y + notice.height)).toBeGreaterThanOrEqual(12);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-devices.png') });

  // The backup queue: a confirmed device with sources is due (never backed up), the other is not ready.
  await expect(page.getByTestId('queue-rvm-017')).toContainText('due');
  await expect(page.getByTestId('queue-rvm-017')).toContainText('never backed up');
  await expect(page.getByTestId('queue-rvm-018')).toContainText('not ready');
  // No repository yet: nothing starts, and the button says why (it seemed to do nothing).
  await page.getByTestId('queue-run-due').click();
  await expect(page.getByTestId('schedule-queue-error')).toContainText('No backup starts:');
  await expect(page.getByTestId('queue-rvm-017')).toContainText('due');
  // With one, nothing answers at the device's address: it is marked offline rather than started.
  await page.evaluate(() => window.api!.repository.init({ password: 'a good long repository password' }));
  await page.getByTestId('queue-run-due').click();
  await expect(page.getByTestId('queue-rvm-017')).toContainText('offline');
  await expect(page.getByTestId('schedule-queue-error')).toHaveCount(0);

  await page.getByTestId('device-row-rvm-017').getByRole('link', { name: 'rvm-017' }).click();
  await expect(page.getByTestId('device-page')).toBeVisible();
  await expect(page.getByTestId('device-host-key')).toHaveText('SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8');
  await expect(page.getByTestId('source-db')).toContainText('PostgreSQL database myrvm');
  // Never backed up: no line about copies of a latest run there is not.
  await page.waitForTimeout(500);
  await expect(page.getByTestId('device-copies')).toHaveCount(0);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'device.png') });

  // A device nobody can reach says so, and nothing changes.
  await page.getByTestId('device-discover').click();
  await expect(page.getByTestId('device-error')).toContainText(/unreachable|key file/i);

  const exported = await page.evaluate(() => window.api!.devices.export({}));
  expect(JSON.parse(exported.json)).toMatchObject({ devices: [{ name: 'rvm-017', rpoMinutes: 15 }, { name: 'rvm-018' }] });
  expect(exported.json).not.toMatch(/password|passphrase/i);
});

test('a bad profiles file is refused as a whole with the reason', async ({ host, console: app, page }) => {
  await app.open(host.url);
  const bad = { devices: [profiles.devices[1], { name: 'x', host: 'not a host!', user: 'jetson' }] };
  await page.getByTestId('import-file').setInputFiles({ name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bad)) });
  await expect(page.getByTestId('fleet-message')).toContainText('Nothing was imported');
  await expect(page.getByTestId('fleet-message')).toContainText('x.host: ');
  await page.getByTestId('import-file').setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from('{"devices": [') });
  await expect(page.getByTestId('fleet-message')).toContainText('not valid JSON');
  // Too large to be a fleet's profiles: refused by its size before it is read or sent.
  await page.getByTestId('import-file').setInputFiles({ name: 'huge.json', mimeType: 'application/json', buffer: Buffer.alloc(5 * 1024 * 1024, ' ') });
  await expect(page.getByTestId('fleet-message')).toContainText('huge.json is 5.0 MiB, and a profiles file holds at most 4.0 MiB');
  await expect(page.getByTestId('fleet-empty')).toBeVisible();
  expect(await page.evaluate(() => window.api!.devices.list())).toEqual([]);
});

// Secrets (a key passphrase here) are stored encrypted at rest: outside the app that takes a passphrase.
test.describe('with secrets at rest', () => {
  test.use({ hostEnv: { JETVAULT_SECRETS_PASSPHRASE: 'e2e secrets passphrase' } });
  test("a device's settings are edited on its page: a bad schedule is refused at its field, the rest saved as typed", async ({ host, console: app, page }) => {
    await app.open(host.url);
    await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify(profiles));
    await page.goto(`${host.origin}/#/fleet/rvm-017`);
    const card = page.getByTestId('device-settings');
    await expect(card.getByTestId('device-setting-site')).toHaveValue('Depot North');
    await expect(card.getByTestId('device-setting-rpoMinutes')).toHaveValue('15');

    await card.getByTestId('device-setting-site').fill('Depot East');
    await card.getByTestId('device-setting-tags').fill('critical,  north ');
    await card.getByTestId('device-setting-host').fill('127.0.0.27');
    await card.getByTestId('device-setting-rpoMinutes').fill('30');
    await card.getByTestId('device-setting-schedule').fill('61 2 * * *');
    await card.getByTestId('device-setting-rtoMinutes').fill('45');
    await card.getByTestId('device-setting-stop').fill('sudo systemctl stop myrvm\n\nsudo systemctl stop myrvm-sync');
    await card.getByTestId('device-setting-start').fill('sudo systemctl start myrvm');
    await card.getByTestId('device-setting-healthCommand').fill('systemctl is-active myrvm');
    await card.getByText('Always').click();
    await card.getByTestId('device-setting-silentLinkSeconds').fill('120');
    await card.getByTestId('device-settings-save').click();
    await expect(card.getByTestId('device-settings-error')).toHaveText('Invalid device profile. The marked field says why.');
    await expect(card.locator('.field', { has: page.getByTestId('device-setting-schedule') })).toContainText('"61" is out of range for the minute');
    expect((await page.evaluate(() => window.api!.devices.get({ name: 'rvm-017' }))).profile.site).toBe('Depot North');

    await card.getByTestId('device-setting-schedule').fill('0 2 * * *');
    expect((await page.evaluate(() => window.api!.devices.get({ name: 'rvm-017' }))).hasPassphrase).toBe(false);
    await card.getByTestId('device-setting-passphrase').fill('new key passphrase');
    await card.getByTestId('device-settings-save').click();
    await expect(card.getByTestId('device-settings-saved')).toBeVisible();
    await expect(card.getByTestId('device-setting-passphrase')).toHaveValue('');
    const { profile, hasPassphrase } = await page.evaluate(() => window.api!.devices.get({ name: 'rvm-017' }));
    // Kept in the secret store, never in the profile.
    expect(hasPassphrase).toBe(true);
    expect(JSON.stringify(profile)).not.toContain('new key passphrase');
    expect(profile).toMatchObject({
      site: 'Depot East',
      tags: ['critical', 'north'],
      host: '127.0.0.27',
      port: 2222,
      rpoMinutes: 30,
      schedule: '0 2 * * *',
      rtoMinutes: 45,
      services: { stop: ['sudo systemctl stop myrvm', 'sudo systemctl stop myrvm-sync'], start: ['sudo systemctl start myrvm'] },
      healthCommand: 'systemctl is-active myrvm',
      wireCompression: 'on',
      silentLinkSeconds: 120,
      // Untouched by this form: the pinned key and the sources.
      hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
      sources: profiles.devices[0]!.sources,
    });
    await expect(page.getByTestId('device-drill')).toContainText("objective of 45 min (this device's)");
    await page.screenshot({ path: path.join(SCREENSHOTS, 'device-settings.png') });

    // Emptied, an optional setting is removed, not stored blank: the RPO then follows the critical tag.
    await card.getByTestId('device-setting-rpoMinutes').fill('');
    await card.getByTestId('device-setting-healthCommand').fill('');
    await card.getByTestId('device-setting-silentLinkSeconds').fill('');
    await card.getByText('When the link is slow').click();
    await card.getByTestId('device-settings-save').click();
    await expect.poll(async () => (await page.evaluate(() => window.api!.devices.get({ name: 'rvm-017' }))).profile).not.toHaveProperty('rpoMinutes');
    const after = (await page.evaluate(() => window.api!.devices.get({ name: 'rvm-017' }))).profile;
    expect(after).not.toHaveProperty('healthCommand');
    expect(after).not.toHaveProperty('wireCompression');
    expect(after).not.toHaveProperty('silentLinkSeconds');
    await app.goTo('fleet');
    await expect(page.getByTestId('device-row-rvm-017')).toContainText('Depot East');
    await expect(page.getByTestId('device-row-rvm-017')).toContainText('critical · 15 min');

    // The key file emptied by mistake: refused at its field, not saved as a device that now logs in
    // through an SSH agent (its stored passphrase forgotten there).
    await page.goto(`${host.origin}/#/fleet/rvm-017`);
    await card.getByTestId('device-setting-identityFile').fill('');
    await card.getByTestId('device-settings-save').click();
    await expect(card.locator('.field', { has: page.getByTestId('device-setting-identityFile') })).toContainText('key file');
    const kept = await page.evaluate(() => window.api!.devices.get({ name: 'rvm-017' }));
    expect(kept.profile.identityFile).toBe('/home/me/.ssh/id_ed25519');
    expect((await page.evaluate(() => window.api!.devices.list())).find((d) => d.name === 'rvm-017')?.auth).toBe('key');
  });
});

test("a device's Remove asks again only for a moment: focus moving away or a few seconds undo the first press", async ({ host, console: app, page }) => {
  await app.open(host.url);
  await page.evaluate((json) => window.api!.devices.import({ json }), JSON.stringify(profiles));
  await page.goto(`${host.origin}/#/fleet/rvm-018`);
  const remove = page.getByTestId('device-remove');
  await remove.click();
  await expect(remove).toHaveText('Press again to remove');
  await page.keyboard.press('Tab');
  await expect(remove).toHaveText('Remove', { timeout: 1000 }); // at once, not after the 5 s lapse

  await remove.click();
  await expect(remove).toHaveText('Press again to remove');
  await expect(remove).toHaveText('Remove', { timeout: 10_000 });
  // Pressed once more after that, it only asks again: the device stays.
  await remove.click();
  await expect(remove).toHaveText('Press again to remove');
  expect((await page.evaluate(() => window.api!.devices.list())).map((d) => d.name)).toContain('rvm-018');
});
