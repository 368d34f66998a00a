import { expect, test } from './fixtures';

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
