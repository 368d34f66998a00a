/**
 * The page the app's window shows during a long history upgrade (src/main/history/upgrade-page.ts),
 * as Electron shows it: a data: URL, JavaScript off. Its CSP admits its one style block by hash, so an
 * edit to the style that left the hash stale would show an unstyled white page: checked here.
 */
import { expect, test } from '@playwright/test';
import { upgradePageHtml } from '../src/main/history/upgrade-page';

test.use({ javaScriptEnabled: false });

test('the history upgrade window says what happens, styled under its own strict CSP', async ({ page }) => {
  const refused: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused/.test(message.text())) refused.push(message.text());
  });
  await page.setViewportSize({ width: 520, height: 220 });
  await page.goto(`data:text/html;charset=utf-8,${encodeURIComponent(upgradePageHtml({ from: 17, to: 19, pending: [] }))}`);
  await expect(page.getByRole('heading', { name: 'Upgrading the history store' })).toBeVisible();
  await expect(page.getByRole('status')).toContainText('From version 17 to 19');
  await expect(page.getByRole('status')).toContainText('The repositories and their snapshots are not touched');
  await expect(page.locator('body')).toHaveCSS('background-color', 'rgb(15, 20, 25)');
  await expect(page.locator('.bar i')).toHaveCSS('background-color', 'rgb(74, 163, 255)');
  // Everything fits the window it is shown in, without scrolling.
  const overflow = await page.locator('body').evaluate((body) => body.scrollHeight - body.clientHeight);
  expect(overflow).toBeLessThanOrEqual(0);
  expect(refused).toEqual([]);
});
