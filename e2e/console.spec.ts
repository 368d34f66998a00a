import path from 'node:path';
import { expect, test } from './fixtures';
import { PAGE_IDS } from './console-page';
import type { ConsolePage } from './console-page';

const SCREENSHOTS = path.join('test-results', 'screenshots');

test('the console loads and every page opens with an honest empty state', async ({ host, console: app, page }) => {
  await app.open(host.url);
  // The token left the address bar once the page took it.
  expect(page.url()).not.toContain('token=');
  await expect(page.getByTestId('app-version')).toContainText('test host');
  for (const id of PAGE_IDS) {
    const main = await app.goTo(id);
    await expect(main.locator('h1')).toBeVisible();
    if (id !== 'settings') await expect(main.getByTestId(`${id}-empty`)).toBeVisible();
    await page.screenshot({ path: path.join(SCREENSHOTS, `${id}.png`) });
    // The page scrolls inside its own pane; the window itself never scrolls (the sidebar slid away
    // and blank space showed below it where hidden inputs of switches far down a page were placed
    // against the document).
    const heights = await page.evaluate(() => ({ scrolls: document.scrollingElement!.scrollHeight, tall: innerHeight }));
    expect(heights.scrolls, `the window scrolls on the ${id} page`).toBe(heights.tall);
  }
  expect(app.cspViolations).toEqual([]);
});

test('pages are reachable by keyboard and the dark theme applies', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  // React Aria renders the radio input visually hidden inside its label: press the label.
  await page.locator('label.react-aria-Radio', { hasText: 'Dark' }).click();
  await expect(page.getByRole('radio', { name: 'Dark' })).toBeChecked();
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await page.getByTestId('nav-fleet').focus();
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('page-fleet')).toBeVisible();
  await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-dark.png') });
});

test('a setting survives a restart of the host', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  await app.field('repositoryPath').fill('/srv/jetvault/repo');
  await app.field('defaultRpoMinutes').fill('15');
  // Below its floor the field holds the floor (10 s), as the main process would refuse less.
  await app.setNumber('silentLinkSeconds', '5');
  await expect(app.field('silentLinkSeconds')).toHaveValue('10');
  await app.setNumber('silentLinkSeconds', '90');
  await app.field('desktopNotifications').click();
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'settings-saved.png') });

  await host.restart();
  await app.open(host.url);
  await app.goTo('settings');
  await expect(app.field('repositoryPath')).toHaveValue('/srv/jetvault/repo');
  await expect(app.field('defaultRpoMinutes')).toHaveValue('15');
  await expect(app.field('silentLinkSeconds')).toHaveValue('90');
  await expect(page.getByRole('switch', { name: /Desktop notifications/ })).not.toBeChecked();
  // And the same values come back through the api the renderer uses.
  const settings = await page.evaluate(() => window.api!.settings.get());
  expect(settings).toMatchObject({ repositoryPath: '/srv/jetvault/repo', defaultRpoMinutes: 15, silentLinkSeconds: 90, desktopNotifications: false });
});

test('an invalid IPC payload sent by hand is rejected with a validation error and changes nothing', async ({ host, console: app, page }) => {
  await app.open(host.url);
  const before = await page.evaluate(() => window.api!.settings.get());

  // A hand-made message on the page's own authenticated socket.
  const raw = await page.evaluate(
    async ({ token }) => {
      const socket = new WebSocket(`ws://${location.host}/ipc`, ['jetvault.v1', `jetvault-token.${token}`]);
      await new Promise((resolve, reject) => {
        socket.onopen = resolve;
        socket.onerror = reject;
      });
      const ask = (message: unknown) =>
        new Promise<unknown>((resolve) => {
          socket.onmessage = (event) => resolve(JSON.parse(event.data as string));
          socket.send(JSON.stringify(message));
        });
      const invalid = await ask({ type: 'invoke', id: 7, channel: 'settings:update', input: { theme: 'neon', defaultRpoMinutes: -5 } });
      const unknownKey = await ask({ type: 'invoke', id: 8, channel: 'settings:update', input: { sql: 'DROP TABLE settings' } });
      const unknownChannel = await ask({ type: 'invoke', id: 9, channel: 'settings:drop', input: {} });
      const garbage = await ask('not even an object');
      socket.close();
      return { invalid, unknownKey, unknownChannel, garbage };
    },
    { token: host.token },
  );
  expect(raw.invalid).toMatchObject({ type: 'result', id: 7, result: { ok: false, error: { code: 'VALIDATION' } } });
  const issues = (raw.invalid as { result: { error: { issues: { path: string }[] } } }).result.error.issues.map((i) => i.path).sort();
  expect(issues).toEqual(['defaultRpoMinutes', 'theme']);
  expect(raw.unknownKey).toMatchObject({ id: 8, result: { ok: false, error: { code: 'VALIDATION' } } });
  expect(raw.unknownChannel).toMatchObject({ id: 9, result: { ok: false, error: { code: 'UNKNOWN_CHANNEL' } } });
  expect(raw.garbage).toMatchObject({ result: { ok: false, error: { code: 'VALIDATION' } } });

  // Through window.api the error arrives with its code.
  const viaApi = await page.evaluate(() =>
    window.api!.settings.update({ maxParallelDevices: 0 }).then(
      () => null,
      (error: { code: string; message: string }) => ({ code: error.code, message: error.message }),
    ),
  );
  expect(viaApi).toMatchObject({ code: 'VALIDATION' });

  expect(await page.evaluate(() => window.api!.settings.get())).toEqual(before);
});

test('the backend refuses a WebSocket without the token', async ({ host, console: app, page }) => {
  await app.open(host.url);
  const outcome = await page.evaluate(
    () =>
      new Promise<string>((resolve) => {
        const socket = new WebSocket(`ws://${location.host}/ipc`, ['jetvault.v1', 'jetvault-token.wrong']);
        socket.onopen = () => resolve('opened');
        socket.onerror = () => resolve('refused');
      }),
  );
  expect(outcome).toBe('refused');
});

/** Opens Settings and saves a repository path longer than the schema allows: refused. */
async function saveTooLongPath(app: ConsolePage, url: string): Promise<void> {
  await app.open(url);
  await app.goTo('settings');
  await app.field('repositoryPath').fill('x'.repeat(5000));
  await app.save();
  await expect(app.status()).toHaveText('One value was not accepted. The marked field says why.');
}

test('the settings form shows the validation error of a bad value and keeps the stored one; corrected, it saves', async ({ host, console: app, page }) => {
  await saveTooLongPath(app, host.url);
  await expect(page.getByText(/Too big|at most|<=\s*4096/i).first()).toBeVisible();
  const stored = await page.evaluate(() => window.api!.settings.get());
  expect(stored.repositoryPath).toBe('');

  // The field's reason stands until the field is edited; then the form can be sent again.
  await app.field('repositoryPath').fill('/srv/jetvault');
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  expect((await page.evaluate(() => window.api!.settings.get())).repositoryPath).toBe('/srv/jetvault');
});

test('Discard changes after a refused save drops its reasons, so the next change saves', async ({ host, console: app, page }) => {
  await saveTooLongPath(app, host.url);

  // The refused value goes back to the stored one, and its reason with it.
  await page.getByRole('button', { name: 'Discard changes' }).click();
  await expect(app.field('repositoryPath')).toHaveValue('');
  await expect(page.getByText(/Too big|at most|<=\s*4096/i)).toHaveCount(0);
  await expect(app.status()).toHaveCount(0);

  await app.setNumber('defaultRpoMinutes', '30');
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  expect((await page.evaluate(() => window.api!.settings.get())).defaultRpoMinutes).toBe(30);
});

test('after a save nothing is left to save or discard', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  await app.setNumber('defaultRpoMinutes', '20');
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  // The settings pushed back after the save equal the form's: the buttons say there is no change.
  await page.waitForTimeout(500);
  await expect(page.getByTestId('settings-save')).toBeDisabled();
  await expect(page.getByRole('button', { name: 'Discard changes' })).toBeDisabled();
});

test('a number field left empty is said plainly at the field, nothing is sent, and the other edits stay', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  await app.field('repositoryPath').fill('/srv/jetvault');
  await app.setNumber('defaultRpoMinutes', '');
  await app.save();
  await expect(page.getByText('Enter a number', { exact: true })).toBeVisible();
  await expect(app.status()).toBeVisible();
  await expect(app.status()).not.toContainText(/not accepted|settings:update/);
  await expect(page.getByTestId('settings-form')).not.toContainText(/expected number|received null/);
  expect(await page.evaluate(() => window.api!.settings.get())).toMatchObject({ repositoryPath: '', defaultRpoMinutes: 60 });
  await expect(app.field('repositoryPath')).toHaveValue('/srv/jetvault');

  await app.setNumber('defaultRpoMinutes', '30');
  await app.save();
  await expect(app.status()).toHaveText('Settings saved.');
  expect(await page.evaluate(() => window.api!.settings.get())).toMatchObject({ repositoryPath: '/srv/jetvault', defaultRpoMinutes: 30 });
});

test('after the add-device form said a field was missing, one click on Check host key with the field filled sends it', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await page.getByTestId('add-device').click();
  await page.getByTestId('device-check-key').click();
  const identity = page.locator('.field', { has: page.getByTestId('device-identity') });
  await expect(identity.locator('[slot="errorMessage"]')).toBeVisible();
  await page.getByTestId('device-name').fill('rvm-017');
  await page.getByTestId('device-host').fill('127.0.0.1');
  // A port nothing listens on: the check fails at once with the reason, which proves it was sent.
  await page.getByTestId('device-port').fill('1');
  await page.getByTestId('device-user').fill('jetson');
  await page.getByTestId('device-identity').fill('/home/me/.ssh/id_ed25519');
  // What was typed stays (a field re-checked while typing must not lose the edit).
  await expect(page.getByTestId('device-name')).toHaveValue('rvm-017');
  await expect(page.getByTestId('device-port')).toHaveValue('1');
  await expect(page.getByTestId('device-identity')).toHaveValue('/home/me/.ssh/id_ed25519');
  // The identity field still has focus and its message: the press blurs it, the message goes, and
  // the button must not move out from under the pointer.
  await page.getByTestId('device-check-key').click();
  await expect(page.getByTestId('add-device-error')).toBeVisible();
});

test('a radio button keeps its size and shape: the same when selected, round beside a label that wraps', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  const light = page.locator('label.react-aria-Radio', { hasText: 'Light' });
  // A label long enough to wrap, as a restore point's list of sources does.
  await light.evaluate((label) => {
    label.style.maxWidth = '160px';
    label.append(' — a label long enough to wrap onto a second and a third line');
  });
  const sizes = await page.locator('label.react-aria-Radio').evaluateAll((labels) =>
    labels.map((label) => {
      const dot = getComputedStyle(label, '::before');
      return `${dot.width} × ${dot.height}`;
    }),
  );
  expect(sizes.length).toBeGreaterThanOrEqual(3);
  expect(new Set(sizes)).toEqual(new Set(['18px × 18px']));
});

test('a switch keeps its size beside a label that wraps, on or off', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await app.goTo('settings');
  // Settings' own switch labels wrap at this width ("Desktop notifications for alerts, and when a job…").
  const sizes = await page.locator('label.switch .switch-indicator').evaluateAll((indicators) =>
    indicators.map((indicator) => {
      const box = indicator.getBoundingClientRect();
      return `${box.width} × ${box.height}`;
    }),
  );
  expect(sizes.length).toBeGreaterThanOrEqual(2);
  expect(new Set(sizes)).toEqual(new Set(['34 × 20']));
});

test("a form's heading sits close over its first line, spaced by the form's gap alone", async ({ host, console: app }) => {
  await app.open(host.url);
  const main = await app.goTo('alerts');
  const form = main.getByTestId('rules-form');
  const heading = (await form.locator('> h2').boundingBox())!;
  const first = (await form.locator('> p').first().boundingBox())!;
  // The grid's 18 px; the heading's and paragraph's own margins on top of it made 40.
  expect(first.y - (heading.y + heading.height)).toBeLessThanOrEqual(20);
});
