/**
 * The catalog's file browser at scale: a snapshot whose folder holds 100,000 files (made with the
 * CLI into the host's own repository) opens in a virtualized list that keeps only the rows in view
 * in the page, and scrolls to the last file.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from './fixtures';

const FILES = 100_000;
const PASSWORD = 'catalog scale test password';

test('a folder of 100,000 files browses in a virtualized list', async ({ host, console: app, page }) => {
  test.setTimeout(240_000);
  const source = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-100k-'));
  try {
    const big = path.join(source, 'big');
    mkdirSync(big);
    for (let i = 0; i < FILES; i++) writeFileSync(path.join(big, `f-${String(i).padStart(6, '0')}.txt`), `${i}\n`);
    const env = { ...process.env, JETVAULT_HOME: host.dataDir, JETVAULT_PASSWORD: PASSWORD };
    for (const args of [['init'], ['backup', source, '--json']]) {
      const r = spawnSync(process.execPath, ['bin/jetvault.js', ...args], { env, encoding: 'utf8', timeout: 180_000 });
      expect(r.status, `jetvault ${args[0]}: ${r.stderr}`).toBe(0);
    }

    await app.open(host.url);
    await app.goTo('catalog');
    await page.getByTestId('repository-password').fill(PASSWORD);
    await page.getByTestId('repository-submit').click();
    await expect(page.getByTestId('repository-unlocked')).toBeVisible();
    await page.getByTestId('snapshots-table').locator('tbody tr a').first().click();

    // Down the snapshot's path to the big folder.
    for (const part of [...source.split('/').filter(Boolean), 'big']) {
      await page.getByTestId('snapshot-entries').getByRole('button', { name: `${part}/`, exact: true }).click();
    }
    const list = page.getByTestId('snapshot-entries');
    await expect(list).toHaveAttribute('data-count', String(FILES));
    await expect(list.getByText('f-000000.txt', { exact: true })).toBeVisible();
    expect(await list.getByRole('listitem').count()).toBeLessThan(60);

    await list.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await expect(list.getByText(`f-${String(FILES - 1).padStart(6, '0')}.txt`, { exact: true })).toBeVisible();
    expect(await list.getByRole('listitem').count()).toBeLessThan(60);
    await page.screenshot({ path: path.join('test-results', 'screenshots', 'catalog-100k.png') });
  } finally {
    rmSync(source, { recursive: true, force: true });
  }
});
