/**
 * Alerts in the console: a rule threshold changed on the Alerts page raises an alert for a device
 * (RPO breached), the sidebar counts it, the technician acknowledges it, and it resolves by itself
 * when the condition clears; an unreachable webhook queues the deliveries. The webhook URL is kept
 * only in the secret store, so where secrets cannot be encrypted it is refused, saying why.
 */
import path from 'node:path';
import { expectOneLine } from './console-page';
import { expect, test } from './fixtures';

const SCREENSHOTS = path.join('test-results', 'screenshots');

test.use({ hostEnv: { JETVAULT_SECRETS_PASSPHRASE: 'e2e secrets passphrase' } });

const profile = { name: 'rvm-031', host: '127.0.0.31', user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', site: 'Depot East', rpoMinutes: 15, sources: [] };

test('an RPO alert is raised by a rule threshold, acknowledged, and resolved when the condition clears', async ({ host, console: app, page }) => {
  await app.open(host.url);
  await page.evaluate((p) => window.api!.devices.import({ json: JSON.stringify(p) }), profile);
  const alerts = await app.goTo('alerts');
  await expect(alerts.getByTestId('alerts-empty')).toBeVisible();

  // 0 × RPO: a device never backed up breaches at once. The webhook points where nothing listens.
  await page.getByTestId('rule-rpoBreached-threshold').fill('0');
  await page.getByTestId('webhook-url').fill('http://127.0.0.1:9/jetvault');
  await page.getByTestId('rules-save').click();
  const row = page.getByTestId('alert-rpoBreached-rvm-031');
  await expect(row).toContainText('never backed up');
  await expect(row).toContainText('critical');
  await expect(page.getByTestId('nav-alerts-count')).toHaveText('1');
  await expect(page.getByTestId('rules-form')).toContainText(/1 waiting/);
  // And why (read again while deliveries wait): port 9 is one HTTP clients never connect to.
  await expect(page.getByTestId('rules-form')).toContainText('the last try failed: port 9 is one that HTTP clients refuse to use (a blocked port)');
  await page.getByTestId('alerts-open').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(SCREENSHOTS, 'alerts-open.png'), fullPage: true });
  // The device's name on one line (it broke at its hyphen: "rvm-" over "031").
  await expectOneLine(row.getByRole('link', { name: 'rvm-031' }));

  await row.getByRole('button', { name: 'Acknowledge' }).click();
  await expect(row).toContainText('acknowledged (websocket)');
  await expect(page.getByTestId('alerts-summary')).toContainText('1 acknowledged');

  // Back to 1 × RPO: the condition no longer holds, the alert resolves and leaves the open list.
  await page.getByTestId('rule-rpoBreached-threshold').fill('1');
  await page.getByTestId('rule-rpoBreached-threshold').press('Tab'); // a number field commits on blur
  await page.getByTestId('rules-save').click();
  await expect(page.getByTestId('alerts-empty')).toBeVisible();
  await expect(page.getByTestId('nav-alerts-count')).toHaveCount(0);
  await page.getByTestId('alerts-history-toggle').click();
  await expect(page.getByTestId('alerts-history').getByTestId('alert-rpoBreached-rvm-031')).toContainText('resolved');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'alerts-history.png') });

  const stored = await page.evaluate(() => window.api!.settings.get());
  expect(stored.monitoringRules.rpoBreached).toEqual({ enabled: true, threshold: 1 });
});

test.describe('without a secrets passphrase', () => {
  test.use({ hostEnv: { JETVAULT_SECRETS_PASSPHRASE: '' } });

  test('a webhook URL is refused, saying what to set, and the rules saved with it are not half-saved', async ({ host, console: app, page }) => {
    await app.open(host.url);
    await app.goTo('alerts');
    await page.getByTestId('rule-rpoBreached-threshold').fill('3');
    await page.getByTestId('webhook-url').fill('https://chat.example/hooks/T0123/xK9sEcReTtOkEn');
    await page.getByTestId('rules-save').click();
    await expect(page.getByTestId('rules-form')).toContainText('stored only encrypted: set JETVAULT_SECRETS_PASSPHRASE');
    const stored = await page.evaluate(() => window.api!.settings.get());
    expect(stored.webhookUrl).toBe('');
    expect(stored.monitoringRules.rpoBreached.threshold).not.toBe(3);
  });
});
