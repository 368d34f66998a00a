/**
 * The catalog's file browser at scale: a snapshot whose folder holds 100,000 files (made with the
 * CLI into the host's own repository) opens in a virtualized list that keeps only the rows in view
 * in the page, and scrolls to the last file. A catalog of more snapshots than one page shows.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalBackend } from '../src/main/repository/backend/local-backend';
import { backup } from '../src/main/repository/archiver/archiver';
import { findSnapshot, saveSnapshot } from '../src/main/repository/snapshot/snapshot';
import { Repository } from '../src/main/repository/repo/repository';
import { FAST } from '../src/main/repository/testing/fixtures';
import { LocalSource } from '../src/main/repository/walker/local-walker';
import type { Source } from '../src/main/repository/archiver/source';
import type { Locator, Page } from '@playwright/test';
import type { ConsolePage } from './console-page';
import { expect, test } from './fixtures';

const FILES = 100_000;
const PASSWORD = 'catalog scale test password';

type Snapshot = Awaited<ReturnType<typeof findSnapshot>>;

/** A new repository where the host's console looks for it. */
function consoleRepository(host: { dataDir: string }): Promise<Repository> {
  return Repository.init(new LocalBackend(path.join(host.dataDir, 'repository')), PASSWORD, FAST);
}

/** Opens each folder of `folder` (an absolute path) in turn in the snapshot browser's `list`. */
async function enterFolder(list: Locator, folder: string): Promise<void> {
  for (const part of folder.split('/').filter(Boolean)) await list.getByRole('button', { name: `${part}/`, exact: true }).click();
}

/** A folder `fill` makes, backed up into the console's new repository and removed again: its path. */
async function backedUpFolder(host: { dataDir: string }, prefix: string, fill: (folder: string) => void | Promise<void>): Promise<string> {
  const folder = mkdtempSync(path.join(os.tmpdir(), prefix));
  try {
    await fill(folder);
    await backup(await consoleRepository(host), new LocalSource([folder]));
    return folder;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** The catalog unlocked, and its first snapshot opened in the browser. */
async function openFirstSnapshot(app: ConsolePage, page: Page, url: string): Promise<void> {
  await openCatalog(app, page, url);
  await page.getByTestId('snapshots-table').locator('tbody tr a').first().click();
}

/** The host's repository with one real backup (of a folder holding config.yaml) in it. */
async function repositoryWithOneBackup(dataDir: string): Promise<{ repo: Repository; first: Snapshot }> {
  const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-catalog-'));
  try {
    writeFileSync(path.join(folder, 'config.yaml'), 'fps: 30\n');
    const repo = await consoleRepository({ dataDir });
    return { repo, first: await findSnapshot(repo, (await backup(repo, new LocalSource([folder]))).id) };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/** That backup again as run `i` of `device`'s `source`, `minutes` earlier (later when negative), as a fleet's unchanged runs are. */
function saveRun(repo: Repository, first: Snapshot, device: string, source: string, i: number, minutes = i, extra: Partial<Snapshot> = {}) {
  return saveSnapshot(repo, {
    ...first,
    ...extra,
    device,
    time: new Date(Date.parse(first.time) - minutes * 60_000).toISOString(),
    tags: [`device:${device}`, `source:${source}`, 'kind:files', `run:${device}-${i}`, 'run-size:1'],
  });
}

async function openCatalog(app: ConsolePage, page: Page, url: string): Promise<void> {
  await app.open(url);
  await app.goTo('catalog');
  await page.getByTestId('repository-password').fill(PASSWORD);
  await page.getByTestId('repository-submit').click();
}

test('a folder of 100,000 files browses in a virtualized list, and a file in it is found by part of its name', async ({ host, console: app, page }) => {
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
    // The snapshot's file count as the browser counts its entries (it read "100000" over "100,000 entries").
    await expect(page.getByTestId('snapshots-table').locator('tbody tr').first()).toContainText('100,000');
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

    // One file found by part of its name, and reached from the keyboard.
    const find = page.getByTestId('entries-find');
    await find.fill('f-054321');
    await expect(page.getByTestId('entries-count')).toHaveText('1 of 100,000');
    await expect(list.getByRole('listitem')).toHaveCount(1);
    await expect(list.getByRole('listitem')).toContainText('f-054321.txt');
    await find.press('Tab');
    await expect(list.getByRole('button', { name: 'Download' })).toBeFocused();
    await find.fill('F-00000');
    await expect(page.getByTestId('entries-count')).toHaveText('10 of 100,000');
    await expect(list).toHaveAttribute('data-count', '10');
    await find.fill('no such frame');
    await expect(page.getByTestId('entries-none')).toHaveText('No name in this folder contains “no such frame”.');
    await find.fill('');
    await expect(list).toHaveAttribute('data-count', String(FILES));
    await expect(page.getByTestId('entries-count')).toHaveText('100,000 entries');
  } finally {
    rmSync(source, { recursive: true, force: true });
  }
});

test('a catalog of more than 500 snapshots shows the newest 500 and more on demand; a filter starts again from the first page', async ({ host, console: app, page }) => {
  test.setTimeout(180_000);
  // A fleet's day of backups, written into the host's repository with the engine itself: one real
  // backup (of this computer), 523 more of the same tree a minute apart.
  const { repo, first } = await repositoryWithOneBackup(host.dataDir);
  for (let i = 0; i < 520; i++) await saveRun(repo, first, 'rvm-many', 'config', i);
  for (let i = 0; i < 3; i++) await saveRun(repo, first, 'rvm-few', 'logs', i);

  await openCatalog(app, page, host.url);
  const rows = page.getByTestId('snapshots-table').locator('tbody tr');
  await expect(page.getByTestId('catalog-count')).toHaveText('The newest 500 of 524 snapshots');
  await expect(rows).toHaveCount(500);
  await expect(page.getByTestId('catalog-more')).toHaveText('Show 24 more');
  await page.getByTestId('catalog-more').click();
  await expect(rows).toHaveCount(524);
  await expect(page.getByTestId('catalog-count')).toHaveText('524 of 524 snapshots');
  await expect(page.getByTestId('catalog-more')).toHaveCount(0);

  await page.getByTestId('catalog-device').selectOption('rvm-few');
  await expect(page.getByTestId('catalog-count')).toHaveText('3 of 524 snapshots');
  await expect(rows).toHaveCount(3);
  await page.getByTestId('catalog-device').selectOption('');
  await expect(rows).toHaveCount(500);
  await expect(page.getByTestId('catalog-more')).toHaveText('Show 24 more');
});

test('the folders a snapshot holds only as its paths\' parents show no time, not 1 January 1970', async ({ host, console: app, page }) => {
  // As a device's stream gives them: /etc/myrvm/app.yaml without /etc or /etc/myrvm, which the backup makes itself.
  const repo = await consoleRepository(host);
  const mtime = String(BigInt(Date.parse('2026-03-01T08:00:00Z')) * 1_000_000n);
  const source: Source = {
    paths: ['/etc/myrvm/app.yaml'],
    kind: 'files',
    warnings: [],
    async *entries() {
      await Promise.resolve();
      yield { path: 'etc/myrvm/app.yaml', meta: { type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: 8 }, open: async function* () { await Promise.resolve(); yield Buffer.from('fps: 30\n'); } };
    },
  };
  await backup(repo, source);

  await openFirstSnapshot(app, page, host.url);
  const list = page.getByTestId('snapshot-entries');
  await expect(list.getByRole('listitem')).toHaveCount(1);
  await expect(list.getByRole('listitem').first()).toContainText('—');
  await expect(list).not.toContainText(/19(69|70)/);
  // A file's own time is shown.
  await list.getByRole('button', { name: 'etc/', exact: true }).click();
  await list.getByRole('button', { name: 'myrvm/', exact: true }).click();
  await expect(list.getByRole('listitem').first()).toContainText('app.yaml');
  await expect(list.getByRole('listitem').first()).toContainText('2026');
});

test('a snapshot picked at the top of a long table opens its files in view', async ({ host, console: app, page }) => {
  const { repo, first } = await repositoryWithOneBackup(host.dataDir);
  for (let i = 1; i <= 40; i++) await saveRun(repo, first, 'rvm-pick', 'config', i);
  await openCatalog(app, page, host.url);
  await expect(page.getByTestId('snapshots-table').locator('tbody tr')).toHaveCount(41);
  await page.getByTestId('snapshots-table').locator('tbody tr a').first().click();
  await expect(page.getByTestId('snapshot-browser')).toBeInViewport();
});

test('a snapshot whose files cannot be read says why instead of loading for ever, and another snapshot opens without that error', async ({ host, console: app, page }) => {
  const { repo, first } = await repositoryWithOneBackup(host.dataDir);
  // A newer snapshot naming a root folder the repository does not hold.
  await saveRun(repo, first, 'rvm-broken', 'config', 1, -1, { tree: 'f'.repeat(64) });
  await openCatalog(app, page, host.url);
  const browser = page.getByTestId('snapshot-browser');
  await page.getByTestId('snapshot-rvm-broken-config').locator('a').click();
  await expect(browser.getByRole('alert')).toBeVisible();
  await expect(browser.getByText('Loading…')).toHaveCount(0);

  await page.getByTestId('snapshots-table').locator('tbody tr').filter({ hasNotText: 'rvm-broken' }).locator('a').click();
  await expect(browser.getByTestId('snapshot-entries').getByRole('listitem')).toHaveCount(1);
  await expect(browser.getByRole('alert')).toHaveCount(0);
});

test('names that are not UTF-8 or hide characters are shown as escapes, each its own', async ({ host, console: app, page }) => {
  // As a device's files can be named: Latin-1 bytes from an old camera tool, a right-to-left override, a newline.
  const folder = await backedUpFolder(host, 'jetvault-e2e-names-', (folder) => {
    const raw = (name: string) => Buffer.concat([Buffer.from(`${folder}/`), Buffer.from(name, 'latin1')]);
    writeFileSync(raw('caf\xe9.txt'), 'one\n');
    writeFileSync(raw('caf\xe8.txt'), 'two\n');
    writeFileSync(path.join(folder, 'invoice\u202Etxt.exe'), 'x');
    writeFileSync(path.join(folder, 'new\nline.txt'), 'x');
  });

  await openFirstSnapshot(app, page, host.url);
  const list = page.getByTestId('snapshot-entries');
  await enterFolder(list, folder);
  await expect(list.getByRole('listitem')).toHaveCount(4);
  const names = await list.locator('.entry-name').allTextContents();
  expect(names).toEqual(['caf\\xE8.txt', 'caf\\xE9.txt', 'invoice\\u202Etxt.exe', 'new\\nline.txt']);
  await expect(list.locator('.entry-name').nth(2)).toHaveAttribute('title', 'invoice\\u202Etxt.exe');
  // The download panel names the file as shown.
  await list.getByRole('listitem').filter({ hasText: 'caf\\xE9.txt' }).getByRole('button', { name: 'Download' }).click();
  await expect(page.getByTestId('download-panel').locator('code')).toHaveText(/\/caf\\xE9\.txt$/);
});

test('an empty folder says it is empty', async ({ host, console: app, page }) => {
  const folder = await backedUpFolder(host, 'jetvault-e2e-empty-', (folder) => {
    mkdirSync(path.join(folder, 'captures'));
    writeFileSync(path.join(folder, 'config.yaml'), 'fps: 30\n');
  });

  await openFirstSnapshot(app, page, host.url);
  const browser = page.getByTestId('snapshot-browser');
  await enterFolder(browser.getByTestId('snapshot-entries'), `${folder}/captures`);
  await expect(browser.getByTestId('snapshot-folder-empty')).toHaveText('This folder is empty.');
  await expect(browser.getByTestId('snapshot-entries')).toHaveCount(0);
  await expect(browser.getByText('Loading…')).toHaveCount(0);
});

test('another snapshot opens at its own top folder with nothing the last one offered, so no file is taken from the wrong snapshot', async ({ host, console: app, page }) => {
  // rvm-cam's snapshot of a folder holding config.yaml, and rvm-log's of another folder, a minute newer.
  const { repo, first } = await repositoryWithOneBackup(host.dataDir);
  const other = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-other-'));
  try {
    writeFileSync(path.join(other, 'camera.log'), 'frame 1\n');
    const logs = await findSnapshot(repo, (await backup(repo, new LocalSource([other]))).id);
    await saveRun(repo, first, 'rvm-cam', 'config', 1);
    await saveRun(repo, logs, 'rvm-log', 'logs', 1, -1);
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
  await openCatalog(app, page, host.url);
  const browser = page.getByTestId('snapshot-browser');
  const list = browser.getByTestId('snapshot-entries');
  await page.getByTestId('snapshot-rvm-cam-config').locator('a').click();
  // Down to config.yaml, and Download pressed for it.
  await enterFolder(list, first.paths[0]!);
  await list.getByRole('listitem').filter({ hasText: 'config.yaml' }).getByRole('button', { name: 'Download' }).click();
  await expect(page.getByTestId('download-panel')).toContainText('config.yaml');

  await page.getByTestId('snapshot-rvm-log-logs').locator('a').click();
  await expect(browser.getByRole('heading', { level: 2 })).toContainText('rvm-log');
  await expect(page.getByTestId('download-panel')).toHaveCount(0);
  await expect(browser.getByRole('alert')).toHaveCount(0);
  await expect(browser.getByRole('navigation', { name: 'Folder' }).getByRole('button')).toHaveCount(1);
  await expect(list.getByRole('listitem')).toHaveCount(1);
  // rvm-cam's snapshot again: the folder it was left in.
  await page.getByTestId('snapshot-rvm-cam-config').locator('a').click();
  await expect(list.getByRole('listitem').filter({ hasText: 'config.yaml' })).toHaveCount(1);
  await expect(page.getByTestId('download-panel')).toHaveCount(0);
});

test('two versions of a file that differ only in line endings or the final newline say so instead of an empty diff', async ({ host, console: app, page }) => {
  // rvm-cfg's config.yaml: written on the device (LF), saved again from a Windows editor (CRLF), then without its final newline.
  const repo = await consoleRepository(host);
  const contents = ['fps: 30\nexposure: auto\n', 'fps: 30\r\nexposure: auto\r\n', 'fps: 30\r\nexposure: auto'];
  const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-crlf-'));
  try {
    for (const [i, text] of contents.entries()) {
      writeFileSync(path.join(folder, 'config.yaml'), text);
      const snapshot = await findSnapshot(repo, (await backup(repo, new LocalSource([folder]))).id);
      await saveRun(repo, snapshot, 'rvm-cfg', 'config', i + 1, 10 - i);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  await openCatalog(app, page, host.url);
  await page.getByTestId('catalog-device').selectOption('rvm-cfg');
  await page.getByTestId('snapshots-table').locator('tbody tr a').first().click();
  const list = page.getByTestId('snapshot-entries');
  await enterFolder(list, folder);
  await list.getByTestId('entry-versions-config.yaml').click();
  await expect(page.getByTestId('version-row')).toHaveCount(3);
  // Newest against the one before: the final newline.
  await expect(page.getByTestId('diff-invisible')).toHaveText(/only in the newline at the end/);
  // The one before against the first: the line endings.
  await page.getByTestId('version-from-2').click();
  await page.getByTestId('version-to-1').click();
  await expect(page.getByTestId('diff-invisible')).toHaveText(/only in their line endings \(CRLF and LF\)/);
  await expect(page.getByTestId('diff')).toHaveCount(0);
});

test('a changed line that differs only in invisible characters shows them', async ({ host, console: app, page }) => {
  // A trailing space after a value, a byte-order mark before the first key, a no-break space pasted from a web page.
  const repo = await consoleRepository(host);
  const contents = ['fps: 30\nthreshold: 0.85\nmode: day\n', '\uFEFFfps: 30\nthreshold: 0.85 \nmode:\u00A0day\n'];
  const folder = mkdtempSync(path.join(os.tmpdir(), 'jetvault-e2e-ws-'));
  try {
    for (const [i, text] of contents.entries()) {
      writeFileSync(path.join(folder, 'config.yaml'), text);
      await saveRun(repo, await findSnapshot(repo, (await backup(repo, new LocalSource([folder]))).id), 'rvm-ws', 'config', i + 1, 10 - i);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  await openCatalog(app, page, host.url);
  await page.getByTestId('catalog-device').selectOption('rvm-ws');
  await page.getByTestId('snapshots-table').locator('tbody tr a').first().click();
  const list = page.getByTestId('snapshot-entries');
  await enterFolder(list, folder);
  await list.getByTestId('entry-versions-config.yaml').click();
  const added = page.getByTestId('diff').locator('.diff-add[data-testid=diff-changed]');
  await expect(added).toHaveCount(3);
  await expect(added.nth(0)).toContainText('+ \\uFEFFfps: 30');
  await expect(added.nth(1)).toContainText('+ threshold: 0.85·');
  await expect(added.nth(1).locator('.diff-hidden')).toHaveAttribute('title', 'trailing whitespace');
  await expect(added.nth(2)).toContainText('+ mode:\\u00A0day');
  // The removed side, which has none, reads as it is.
  await expect(page.getByTestId('diff').locator('.diff-del[data-testid=diff-changed]').nth(1)).toHaveText(/- threshold: 0\.85$/);
});

test('each row\'s buttons are named for their file, not "Download" a hundred times over', async ({ host, console: app, page }) => {
  const { repo, first } = await repositoryWithOneBackup(host.dataDir);
  await saveRun(repo, first, 'rvm-a11y', 'config', 1, -1);
  await openCatalog(app, page, host.url);
  await page.getByTestId('snapshot-rvm-a11y-config').locator('a').click();
  const list = page.getByTestId('snapshot-entries');
  await enterFolder(list, first.paths[0]!);
  await expect(list.getByRole('button', { name: 'Versions of config.yaml', exact: true })).toBeVisible();
  await expect(list.getByRole('button', { name: 'Download config.yaml', exact: true })).toBeVisible();
  await expect(list.getByRole('button', { name: 'Download', exact: true })).toHaveCount(0);
});

test('each entry of a windowed folder says where it stands in the whole folder', async ({ host, console: app, page }) => {
  const folder = await backedUpFolder(host, 'jetvault-e2e-posinset-', (folder) => {
    for (let i = 0; i < 300; i++) writeFileSync(path.join(folder, `frame-${String(i).padStart(3, '0')}.jpg`), String(i));
  });
  await openFirstSnapshot(app, page, host.url);
  const list = page.getByTestId('snapshot-entries');
  await enterFolder(list, folder);
  await expect(list).toHaveAttribute('data-count', '300');
  const last = list.getByRole('listitem').filter({ hasText: 'frame-299.jpg' });
  await list.evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(last).toHaveAttribute('aria-posinset', '300');
  await expect(last).toHaveAttribute('aria-setsize', '300');
});

test('a folder lists its newest or its largest files first on demand, folders before them', async ({ host, console: app, page }) => {
  const folder = await backedUpFolder(host, 'jetvault-e2e-order-', (folder) => {
    mkdirSync(path.join(folder, 'archive'));
    const files: [string, number, string][] = [
      ['a-small-new.log', 10, '2026-11-30T10:00:00Z'],
      ['b-big-old.log', 5000, '2026-01-15T10:00:00Z'],
      ['c-mid.log', 800, '2026-06-01T10:00:00Z'],
    ];
    for (const [name, size, at] of files) {
      writeFileSync(path.join(folder, name), 'x'.repeat(size));
      utimesSync(path.join(folder, name), new Date(at), new Date(at));
    }
  });
  await openFirstSnapshot(app, page, host.url);
  const list = page.getByTestId('snapshot-entries');
  await enterFolder(list, folder);
  const names = () => list.getByRole('listitem').evaluateAll((rows) => rows.map((r) => r.querySelector('.entry-name, button')?.textContent));
  await expect.poll(names).toEqual(['archive/', 'a-small-new.log', 'b-big-old.log', 'c-mid.log']);
  await page.getByTestId('entries-order').selectOption('time');
  await expect.poll(names).toEqual(['archive/', 'a-small-new.log', 'c-mid.log', 'b-big-old.log']);
  await page.getByTestId('entries-order').selectOption('size');
  await expect.poll(names).toEqual(['archive/', 'b-big-old.log', 'c-mid.log', 'a-small-new.log']);
  // The order holds while finding.
  await page.getByTestId('entries-find').fill('.log');
  await expect.poll(names).toEqual(['b-big-old.log', 'c-mid.log', 'a-small-new.log']);
});
