/**
 * Repository leases in the console: a backup in another process is killed -9 and leaves its lease
 * (stale: its pid is gone), another console holds a live exclusive lease (a prune). The stale one
 * breaks after a warning and one confirmation; the live one shows no plain "Break lease" at all,
 * only "Force…" and then a second, explicit confirmation — after which its holder notices.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalBackend } from '../src/main/repository/backend/local-backend';
import { RepositoryLock } from '../src/main/repository/lock/lock';
import { Repository } from '../src/main/repository/repo/repository';
import { expect, test } from './fixtures';

const PASSWORD = 'leases e2e repository password';

/** Lease objects in a local repository (none before the first lease made the folder). */
function leaseFiles(repoDir: string): string[] {
  try {
    return readdirSync(path.join(repoDir, 'locks')).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

/** `jetvault backup` in its own process, SIGKILLed as soon as its lease is in the repository; resolves with its pid. */
async function killedBackup(repoDir: string, src: string): Promise<number> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'jv-e2e-home-'));
  const child = spawn(process.execPath, ['bin/jetvault.js', 'backup', '-r', repoDir, src], { env: { ...process.env, JETVAULT_HOME: home, JETVAULT_PASSWORD: PASSWORD }, stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  await expect.poll(() => leaseFiles(repoDir).length, { timeout: 60_000, intervals: [20] }).toBeGreaterThan(0);
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  rmSync(home, { recursive: true, force: true });
  return child.pid!;
}

test('a killed console’s stale lease is broken after a warning; a live lease only with a second, force confirmation', async ({ host, console: app, page }) => {
  test.setTimeout(120_000);
  await app.open(host.url);
  await page.goto(`${host.origin}/#/settings`);
  const card = page.getByTestId('leases');
  await expect(card.getByTestId('leases-unavailable')).toContainText('Leases show once the repository is open');
  await page.evaluate((password) => window.api!.repository.init({ password }), PASSWORD);
  const repoDir = path.join(host.dataDir, 'repository');
  const src = mkdtempSync(path.join(os.tmpdir(), 'jv-e2e-src-'));
  for (let i = 0; i < 8; i++) writeFileSync(path.join(src, `model-${i}.engine`), randomBytes(8 * 1024 * 1024));
  const deadPid = await killedBackup(repoDir, src);
  // Another console on this laptop runs a prune: a live exclusive lease.
  const holder = await RepositoryLock.acquire(await Repository.open(new LocalBackend(repoDir), PASSWORD), true);

  await card.getByTestId('leases-refresh').click();
  await expect(card.getByTestId('leases-unavailable')).toHaveCount(0);
  const rows = card.getByTestId('lease-row');
  await expect(rows).toHaveCount(2);
  const stale = rows.filter({ hasText: `pid ${deadPid}` });
  const live = rows.filter({ hasText: `pid ${process.pid}` });
  await expect(stale.getByTestId('lease-state')).toHaveText('stale');
  await expect(stale).toContainText('shared');
  await expect(live.getByTestId('lease-state')).toHaveText('live');
  await expect(live).toContainText('exclusive (prune)');

  // The stale lease: a warning, one confirmation.
  await stale.getByTestId('lease-break').click();
  const dialog = page.getByTestId('lease-break-dialog');
  await expect(dialog.getByTestId('lease-break-warning')).toContainText('can corrupt the repository');
  await dialog.getByTestId('lease-break-confirm').click();
  await expect(card.getByTestId('leases-notice')).toHaveText(new RegExp(`Broke the shared lease of pid ${deadPid} on `));
  await expect(rows).toHaveCount(1);

  // The live lease: no plain break; "Force…" first, and cancelling there leaves it alone.
  await live.getByTestId('lease-break').click();
  await expect(dialog.getByTestId('lease-break-confirm')).toHaveCount(0);
  await expect(dialog.getByTestId('lease-break-warning')).toBeVisible();
  await dialog.getByTestId('lease-force').click();
  await expect(dialog.getByTestId('lease-force-confirm')).toContainText('Force-break it only if you have made sure that console is switched off');
  await page.screenshot({ path: path.join('test-results', 'screenshots', 'lease-force-break.png') });
  await dialog.getByTestId('lease-break-cancel').click();
  await expect(dialog).toHaveCount(0);
  await holder.assertHeld(); // still held

  await live.getByTestId('lease-break').click();
  await dialog.getByTestId('lease-force').click();
  await dialog.getByTestId('lease-force-break').click();
  await expect(card.getByTestId('leases-empty')).toBeVisible();
  // The prune that lost its lease stops before it deletes anything more.
  await expect(holder.assertHeld()).rejects.toThrow(/was removed/);
  await holder.release();
  expect(leaseFiles(repoDir)).toEqual([]);
  rmSync(src, { recursive: true, force: true });
});
