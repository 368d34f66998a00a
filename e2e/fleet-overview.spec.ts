/**
 * The fleet overview, dashboards, audit log and device report against a history seeded with a
 * fleet and 90 days of runs (in the test host's own data directory, before it starts): the summary
 * strip, filters and sorting, a device turning red when its RPO is breached, the charts in light
 * and dark, the audit CSV export and a device report.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HistoryStore } from '../src/main/history/history-store';
import { seedDeviceName, seedFleet } from '../src/main/fleet/seed';
import { prepareSeedStatements } from '../src/main/history/statements';
import { rebuildGoodRuns } from '../src/main/testing/seed-runs';
import type { SeedResult } from '../src/main/fleet/seed';
import { expect, test as base } from './fixtures';
import { startHost } from './test-host';
import type { RunningHost } from './test-host';

const SCREENSHOTS = path.join('test-results', 'screenshots');
const DEVICES = 30;

/** 30 devices, 90 days, no random failures: devices 7, 17 (27 too, but stale) went offline 12 h ago; 3, 11, 19, 27 stopped backing up 2 days ago. */
/** A host whose history is seeded first (the store opened for `seed` and closed again before the host starts). */
function seedWith(seed: (store: HistoryStore) => void): (dataDir: string) => void {
  return (dataDir) => {
    const store = new HistoryStore(dataDir);
    try {
      seed(store);
      // Seeds below delete jobs and move their times by hand; the good runs follow them as they would
      // have followed the app's own writes.
      rebuildGoodRuns(store.db);
    } finally {
      store.close();
    }
  };
}

const test = base.extend<{ seeded: { host: RunningHost; seed: SeedResult } }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
  seeded: async ({}, use) => {
    let seed: SeedResult | undefined;
    const host = await startHost(
      seedWith((store) => {
        seed = seedFleet(store, { devices: DEVICES, days: 90, now: Date.now(), failureRate: 0, unreachableEvery: 10, staleEvery: 8 });
      }),
    );
    try {
      await use({ host, seed: seed! });
    } finally {
      await host.stop();
    }
  },
});

const OFFLINE = [7, 17].map(seedDeviceName);
const STALE = [3, 11, 19, 27].map(seedDeviceName);

test('the overview shows the seeded fleet with its summary, filters and sorting', async ({ seeded, console: app, page }) => {
  await app.open(seeded.host.url);
  await expect(page.getByTestId('page-fleet')).toBeVisible();
  const table = page.getByTestId('fleet-table');
  await expect(table).toHaveAttribute('data-count', String(DEVICES));
  await expect(page.getByTestId('fleet-summary')).toContainText(`${DEVICES - OFFLINE.length - STALE.length} protected`);
  await expect(page.getByTestId('fleet-summary')).toContainText(`${STALE.length} at risk`);
  await expect(page.getByTestId('fleet-summary')).toContainText(`${OFFLINE.length} unreachable`);
  for (const name of OFFLINE) await expect(page.getByTestId(`device-row-${name}`)).toHaveAttribute('data-protection', 'unreachable');
  for (const name of STALE) await expect(page.getByTestId(`device-row-${name}`)).toHaveAttribute('data-rpo', 'breached');
  // The monitoring rules raise an alert for a breached RPO; the overview counts it on the device.
  await expect(page.getByTestId(`alerts-${STALE[0]}`)).toHaveText(/^[1-9]\d*$/, { timeout: 30_000 });
  await expect(page.getByTestId(`alerts-${seedDeviceName(0)}`)).toHaveText('0');
  // Sorted by urgency by default: unreachable first, then at risk.
  const firstRows = await table.locator('tbody tr[data-protection]').evaluateAll((rows) => rows.slice(0, 6).map((r) => r.getAttribute('data-protection')));
  expect(firstRows).toEqual(['unreachable', 'unreachable', 'at-risk', 'at-risk', 'at-risk', 'at-risk']);
  // The RTO column comes from drills, the health column from facts.
  await expect(page.getByTestId(`device-row-${seedDeviceName(1)}`)).toContainText(/\d+m \d+s \/ 1 h|\d+s \/ 1 h/);
  await expect(page.getByTestId(`device-row-${seedDeviceName(1)}`)).toContainText('DB up');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-overview.png') });
  // Ten columns are wider than this window: scrolled sideways to the alerts, the device names stay in view.
  const scroller = page.locator('.fleet-scroll');
  expect(await scroller.evaluate((s) => s.scrollWidth > s.clientWidth)).toBe(true);
  await scroller.evaluate((s) => (s.scrollLeft = s.scrollWidth));
  await expect(page.getByTestId(`alerts-${seedDeviceName(0)}`)).toBeInViewport();
  const name = (await page.getByTestId(`device-row-${seedDeviceName(0)}`).locator('td').first().boundingBox())!;
  expect(Math.abs(name.x - (await scroller.boundingBox())!.x)).toBeLessThanOrEqual(2);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'fleet-overview-scrolled.png') });
  await scroller.evaluate((s) => (s.scrollLeft = 0));

  // Filters: by site, by tag, by status, by name; each narrows the rows shown.
  const site = seeded.seed.devices[2]!.site;
  await page.getByTestId('filter-site').selectOption(site);
  const atSite = seeded.seed.devices.filter((d) => d.site === site).length;
  await expect(page.getByTestId('fleet-count')).toHaveText(`Showing ${atSite} of ${DEVICES}`);
  await expect(table.locator('tbody tr[data-protection]')).toHaveCount(atSite);
  await page.getByTestId('filter-site').selectOption('');
  await page.getByTestId('filter-tag').selectOption('tier:important');
  const important = seeded.seed.devices.filter((d) => d.tier === 'important').map((d) => d.name);
  await expect(table.locator('tbody tr[data-protection]')).toHaveCount(important.length);
  for (const name of important) await expect(page.getByTestId(`device-row-${name}`)).toContainText('important · 1 h');
  await page.getByTestId('filter-tag').selectOption('');
  await page.getByTestId('filter-status').selectOption('unreachable');
  await expect(table.locator('tbody tr[data-protection]')).toHaveCount(OFFLINE.length);
  // A short list leaves no empty band: the card is as tall as its table, not a fixed minimum.
  const [card, rowsBox] = await Promise.all([page.getByTestId('fleet-scroll').boundingBox(), table.boundingBox()]);
  expect(card!.height).toBeLessThanOrEqual(rowsBox!.height + 4);
  await page.getByTestId('filter-status').selectOption('');
  await page.getByTestId('filter-text').fill('jet-001');
  await expect(table.locator('tbody tr[data-protection]')).toHaveCount(10);
  await page.getByTestId('filter-text').fill('');
  // Sort by name: A to Z, and the header says so (urgency, the default, puts the highest first).
  await expect(table.getByRole('columnheader', { name: 'Status' })).toHaveAttribute('aria-sort', 'descending');
  await page.getByTestId('sort-name').click();
  await expect(table.locator('tbody tr[data-protection]').first()).toHaveAttribute('data-testid', `device-row-${seedDeviceName(0)}`);
  await expect(table.getByRole('columnheader', { name: 'Device' })).toHaveAttribute('aria-sort', 'ascending');
  await expect(table.getByRole('columnheader', { name: 'Status' })).toHaveAttribute('aria-sort', 'none');
  await page.getByTestId('sort-site').click();
  await expect(table.getByRole('columnheader', { name: 'Site' })).toHaveAttribute('aria-sort', 'ascending');
  await page.getByTestId('sort-alerts').click();
  await expect(table.getByRole('columnheader', { name: 'Alerts' })).toHaveAttribute('aria-sort', 'descending');
  expect(app.cspViolations).toEqual([]);
});

test('a device turns red when its RPO is breached', async ({ seeded, console: app, page }) => {
  await app.open(seeded.host.url);
  // A standard-tier device backed up within the last ~6 h: protected against its 24 h RPO.
  const name = seedDeviceName(20);
  const row = page.getByTestId(`device-row-${name}`);
  await expect(row).toHaveAttribute('data-protection', 'protected');
  await expect(page.getByTestId(`rpo-${name}`)).toHaveClass(/status-ok/);
  const before = await page.getByTestId('fleet-summary').innerText();
  // Tighten its RPO to 1 minute (as an operator would in its profile): its last good backup is now too old.
  await page.evaluate(async (device) => {
    const detail = await window.api!.devices.get({ name: device });
    await window.api!.devices.update({ name: device, profile: { ...detail.profile, rpoMinutes: 1 } });
  }, name);
  await expect(row).toHaveAttribute('data-protection', 'at-risk');
  await expect(row).toHaveAttribute('data-rpo', 'breached');
  await expect(page.getByTestId(`rpo-${name}`)).toHaveClass(/status-bad/);
  await expect(page.getByTestId(`rpo-${name}`)).toContainText('breached');
  await expect(page.getByTestId('fleet-summary')).toContainText(`${STALE.length + 1} at risk`);
  expect(await page.getByTestId('fleet-summary').innerText()).not.toBe(before);
  await row.screenshot({ path: path.join(SCREENSHOTS, 'fleet-rpo-breached-row.png') });
});

test('the dashboards chart the seeded history in light and dark, fleet-wide and per device', async ({ seeded, console: app, page }) => {
  // Tall enough for every chart in one screenshot.
  await page.setViewportSize({ width: 1280, height: 1500 });
  await app.open(seeded.host.url);
  const main = await app.goTo('dashboards');
  await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '30d');
  const charts = ['chart-duration', 'chart-dedup', 'chart-success', 'chart-rpo', 'chart-storage', 'chart-disks', 'chart-rto'];
  for (const id of charts) await expect(main.getByTestId(id).locator('svg.recharts-surface[role="application"]')).toBeVisible();
  await expect(main.getByTestId('chart-duration').locator('.recharts-line-curve').first()).toBeVisible();
  await expect(main.getByTestId('chart-dedup').locator('.recharts-bar-rectangle').first()).toBeVisible();
  // Byte axes read round sizes (0, 20, 40 MiB), not round numbers of bytes (19.1, 38.1 MiB).
  for (const id of ['chart-dedup', 'chart-storage']) {
    const labels = await main.getByTestId(id).locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value').allTextContents();
    expect(labels.length).toBeGreaterThanOrEqual(3);
    for (const label of labels) expect(label).toMatch(/^\d+(\.5)? (B|KiB|MiB|GiB|TiB)$/);
  }
  // Durations likewise: whole minutes (the seeded runs take 1–2 min), not 35s, 1m 10s, 1m 45s.
  const durations = await main.getByTestId('chart-duration').locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value').allTextContents();
  expect(durations.length).toBeGreaterThanOrEqual(3);
  for (const label of durations) expect(label).toMatch(/^(0s|\d+m|\d+m 30s)$/);
  // The drills' axis in the same words, up to the 1 h default objective (it read "15 min", "60 min").
  const rto = await main.getByTestId('chart-rto').locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value').allTextContents();
  expect(rto).toEqual(['0s', '15m', '30m', '45m', '1h']);
  await page.getByTestId('range-90d').click();
  await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '90d');
  await expect(main.getByTestId('chart-rpo').locator('.recharts-area-area')).toBeVisible();
  await page.mouse.move(0, 0); // no tooltip in the picture
  await main.getByTestId('dashboards').screenshot({ path: path.join(SCREENSHOTS, 'dashboards-light.png') });

  await page.evaluate(() => window.api!.settings.update({ theme: 'dark' }));
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await main.getByTestId('dashboards').screenshot({ path: path.join(SCREENSHOTS, 'dashboards-dark.png') });

  await page.getByTestId('dashboard-device').selectOption(seedDeviceName(1));
  await expect(main.getByTestId('dashboards')).toHaveAttribute('data-device', seedDeviceName(1));
  await expect(main.getByTestId('chart-rto').locator('.recharts-line-dot').first()).toBeVisible();
  await page.mouse.move(0, 0);
  await main.getByTestId('dashboards').screenshot({ path: path.join(SCREENSHOTS, 'dashboards-device-dark.png') });
  expect(app.cspViolations).toEqual([]);
});

test('the audit log filters and exports CSV, and a device report downloads as one HTML page', async ({ seeded, console: app, page }) => {
  await app.open(seeded.host.url);
  const name = seedDeviceName(4);
  await page.evaluate(async (device) => {
    const detail = await window.api!.devices.get({ name: device });
    await window.api!.devices.update({ name: device, profile: { ...detail.profile, site: 'Depot, "North"' } });
    await window.api!.settings.update({ defaultRpoMinutes: 90 });
  }, name);
  const main = await app.goTo('audit');
  await expect(main.getByTestId('audit-row')).toHaveCount(2);
  await page.getByTestId('audit-action').selectOption('device.update');
  await expect(main.getByTestId('audit-row')).toHaveCount(1);
  await expect(main.getByTestId('audit-row')).toContainText(name);
  // What the edit changed, not an empty "{}".
  await expect(main.getByTestId('audit-row')).toContainText(/site: .+ → Depot, "North"/);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'audit-log.png') });

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
  expect(download.suggestedFilename()).toMatch(/^jetvault-audit-.*\.csv$/);
  const csv = readFileSync(await download.path(), 'utf8').split('\r\n');
  expect(csv[0]).toBe('at,actor,action,target,result,message,detail');
  expect(csv.filter(Boolean)).toHaveLength(2);
  expect(csv[1]).toMatch(new RegExp(`^\\d{4}-.*,console:websocket,device\\.update,${name},ok,,`));
  await expect(page.getByTestId('audit-exported')).toContainText('jetvault-audit-');

  await page.goto(`${seeded.host.origin}/#/fleet/${name}`);
  await expect(page.getByTestId('device-page')).toBeVisible();
  const [report] = await Promise.all([page.waitForEvent('download'), page.getByTestId('device-report').click()]);
  expect(report.suggestedFilename()).toMatch(new RegExp(`^jetvault-report-${name}-\\d{4}-\\d{2}-\\d{2}\\.html$`));
  const html = readFileSync(await report.path(), 'utf8');
  expect(html).toContain(`<h1>${name}</h1>`);
  expect(html).toContain('Depot, &quot;North&quot;');
  expect(html).toMatch(/<h2>Restore drills<\/h2>\s*<table>/);
  expect(html).not.toMatch(/<script/i);
  // Open for printing: the test host cannot open files, so the saved report's location is shown.
  await page.getByTestId('device-report-print').click();
  await expect(page.getByTestId('device-report-note')).toContainText(`Saved to ${path.join(seeded.host.dataDir, 'reports', `jetvault-report-${name}-`)}`);
  expect(readFileSync(path.join(seeded.host.dataDir, 'reports', report.suggestedFilename()), 'utf8')).toContain('@media print');
  // The device page links to its own charts.
  await page.getByTestId('device-charts').click();
  await expect(page.getByTestId('dashboards')).toHaveAttribute('data-device', name);
  // The export and the report are themselves audited.
  await app.goTo('audit');
  await page.getByTestId('audit-action').selectOption('');
  await expect(page.getByTestId('audit-table')).toContainText('report.device');
  await expect(page.getByTestId('audit-table')).toContainText('audit.export');
  // A failed operation is recorded with its result and message, and the result filter finds it.
  const failed = await page.evaluate(() => window.api!.devices.remove({ name: 'no-such-device' }).then(() => 'removed', (e: { message: string }) => e.message));
  expect(failed).toMatch(/no-such-device/);
  await page.getByTestId('audit-result').selectOption('failed');
  await expect(page.getByTestId('audit-row')).toHaveCount(1);
  await expect(page.getByTestId('audit-row-result')).toContainText(`Failed — ${failed}`);
});

test('the duration chart of short runs labels its axis with distinct, true durations', async ({ console: app, page }) => {
  // Two devices whose runs each took between 0.5 and 2 seconds.
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 2, days: 2, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      store.db.prepare("UPDATE jobs SET finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', started_at, '+' || (0.5 + (rowid % 4) * 0.5) || ' seconds')").run();
    }),
  );
  try {
    await app.open(host.url);
    const main = await app.goTo('dashboards');
    await page.getByTestId('range-24h').click();
    await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '24h');
    const ticks = main.getByTestId('chart-duration').locator('.recharts-yAxis-tick-labels .recharts-cartesian-axis-tick-value');
    await expect(ticks.first()).toBeVisible();
    const labels = await ticks.allTextContents();
    expect(labels.length).toBeGreaterThanOrEqual(3);
    expect(new Set(labels).size).toBe(labels.length);
    expect(labels).toEqual(expect.arrayContaining(['500ms', '1s', '1.5s']));
  } finally {
    await host.stop();
  }
});

test('with one device of 251 out of its RPO the compliance tooltip says 99.6 % of the time, not 100 %, and how long was outside', async ({ console: app, page }) => {
  // 251 devices backed up on time but one, which stopped two days ago.
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 251, days: 3, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 250 });
    }),
  );
  try {
    await app.open(host.url);
    const main = await app.goTo('dashboards');
    await page.getByTestId('range-24h').click();
    await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '24h');
    const chart = main.getByTestId('chart-rpo');
    const surface = chart.locator('svg.recharts-surface');
    await expect(chart.locator('.recharts-area-area')).toBeVisible();
    const box = (await surface.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const tooltip = chart.locator('.recharts-tooltip-wrapper');
    // Of the hour's device-time, the stopped device's hour was outside RPO: 1 of 251 device-hours.
    await expect(tooltip).toContainText('compliant : 99.6 % of the time (251 devices; 60 min outside RPO in all)');
    await expect(tooltip).not.toContainText('100 %');
  } finally {
    await host.stop();
  }
});

test('a device that made no backups for three days shows a gap in its run charts, not a line joining the days either side', async ({ console: app, page }) => {
  // A critical device (backed up every 10 minutes): every six-hour bucket has runs but those of its silence.
  const name = seedDeviceName(0);
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 2, days: 8, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      // Off the network from five to two days ago: the scheduler found it silent and started no backup.
      const device = store.db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE name = ?').get(name)!;
      store.db
        .prepare("DELETE FROM jobs WHERE device_id = ? AND kind = 'backup' AND started_at BETWEEN ? AND ?")
        .run(device.id, new Date(Date.now() - 5 * 86_400_000).toISOString(), new Date(Date.now() - 2 * 86_400_000).toISOString());
    }),
  );
  try {
    await app.open(host.url);
    await page.goto(`${host.origin}/#/dashboards/${name}`);
    const main = page.getByTestId('page-dashboards');
    await page.getByTestId('range-7d').click();
    await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '7d');
    await expect(main.getByTestId('dashboards')).toHaveAttribute('data-device', name);
    // The success line is drawn in two pieces, before and after the silence.
    const line = main.getByTestId('chart-success').locator('.recharts-line-curve');
    await expect(line).toHaveAttribute('d', /^M[^M]+M[^M]+$/);
  } finally {
    await host.stop();
  }
});

test('cancelled runs do not lower the success rate: the day reads 100 % of the runs that ended, and says how many were cancelled', async ({ console: app, page }) => {
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 1, days: 10, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      // Three backups of today cancelled (the operator freed the link; the app was quit mid-run).
      const job = prepareSeedStatements(store.db).job;
      const device = store.db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE name = ?').get(seedDeviceName(0))!.id;
      const at = (secondsAgo: number) => new Date(Date.now() - secondsAgo * 1000).toISOString();
      for (const n of [1, 2, 3]) job.run(`job_cancelled${n}`, 'backup', 'Back up', device, 'cancelled', '["connect","transfer","commit"]', 'transfer', at(40 - n), at(35 - n), 0, 0, '{"code":"CANCELLED","message":"Cancelled"}', null);
    }),
  );
  try {
    await app.open(host.url);
    const main = await app.goTo('dashboards');
    await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '30d');
    const chart = main.getByTestId('chart-success');
    await expect(chart.locator('.recharts-line-curve')).toHaveCount(1);
    const box = (await chart.locator('svg.recharts-surface').boundingBox())!;
    await page.mouse.move(box.x + box.width - 6, box.y + box.height / 2);
    const tip = chart.locator('.recharts-tooltip-wrapper');
    await expect(tip).toContainText('; 3 cancelled)');
    const [, percent, succeeded, ended] = /(\d+(?:\.\d+)?) ?% \((\d+) of (\d+) runs; 3 cancelled\)/.exec((await tip.textContent()) ?? '') ?? [];
    expect([percent, succeeded]).toEqual(['100', ended]);
  } finally {
    await host.stop();
  }
});

test('an audit log longer than the page shows says how many match, and the CSV holds more than the 500 the page lists', async ({ console: app, page }) => {
  // A busy fleet's day: every job and every scheduled start is an entry.
  const ENTRIES = 12_000;
  const host = await startHost(
    seedWith((store) => {
      store.db.transaction(() => {
        for (let i = 0; i < ENTRIES; i++) store.audit('scheduler', 'backup.scheduled', seedDeviceName(i % 500), { reason: 'RPO due' });
      })();
    }),
  );
  try {
    await app.open(host.url);
    const main = await app.goTo('audit');
    await expect(main.getByTestId('audit-row')).toHaveCount(500);
    await expect(main.getByTestId('audit-count')).toHaveText('The newest 500 of 12,000 matching entries: narrow the dates or filters to see older ones.');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
    const lines = readFileSync(await download.path(), 'utf8').split('\r\n').filter(Boolean);
    expect(lines).toHaveLength(1 + 10_000);
    await expect(page.getByTestId('audit-exported')).toContainText('the newest 10,000 of 12,000 matching entries');

    // Filtered to fewer than a page: all of them, and no count line.
    await page.getByTestId('audit-target').fill(seedDeviceName(7));
    await expect(main.getByTestId('audit-row')).toHaveCount(ENTRIES / 500);
    await expect(main.getByTestId('audit-count')).toHaveCount(0);
    const [filtered] = await Promise.all([page.waitForEvent('download'), page.getByTestId('audit-export').click()]);
    expect(readFileSync(await filtered.path(), 'utf8').split('\r\n').filter(Boolean)).toHaveLength(1 + ENTRIES / 500);
    await expect(page.getByTestId('audit-exported')).toContainText(`: ${ENTRIES / 500} entries`);
  } finally {
    await host.stop();
  }
});

test('a Fleet page left open turns a device red when its RPO runs out, with no event to tell it', async ({ console: app, page }) => {
  test.setTimeout(90_000);
  // One critical device (RPO 15 min) whose last backup finished 14 min 35 s before the host starts.
  const seededAt = Date.now();
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 1, days: 1, now: seededAt, failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      const lastGood = new Date(seededAt - 15 * 60_000 + 25_000).toISOString();
      store.db.prepare("DELETE FROM jobs WHERE kind = 'backup' AND finished_at > ?").run(lastGood);
      store.db.prepare("UPDATE jobs SET finished_at = ? WHERE rowid = (SELECT rowid FROM jobs WHERE kind = 'backup' ORDER BY finished_at DESC LIMIT 1)").run(lastGood);
    }),
  );
  try {
    await page.clock.install();
    await app.open(host.url);
    // The RPO alert only at twice the RPO, so no alert reloads the page when the RPO runs out.
    await page.evaluate(async () => {
      const { monitoringRules } = await window.api!.settings.get();
      await window.api!.settings.update({ monitoringRules: { ...monitoringRules, rpoBreached: { enabled: true, threshold: 2 } } });
    });
    const row = page.getByTestId(`device-row-${seedDeviceName(0)}`);
    await expect(row).toHaveAttribute('data-protection', 'protected');
    // Wait out the RPO, then let the page's own minute pass.
    await page.waitForTimeout(Math.max(0, seededAt + 27_000 - Date.now()));
    await page.clock.fastForward('01:01');
    await expect(row).toHaveAttribute('data-protection', 'at-risk');
    await expect(page.getByTestId(`rpo-${seedDeviceName(0)}`)).toContainText('15 min ago · breached');
  } finally {
    await host.stop();
  }
});

test.describe('in California', () => {
  test.use({ timezoneId: 'America/Los_Angeles', locale: 'en-US' });

  test('a daily bucket is named by the UTC day it holds, not the local day it starts on', async ({ console: app, page }) => {
    const host = await startHost(
      seedWith((store) => {
        seedFleet(store, { devices: 1, days: 10, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      }),
    );
    try {
      await app.open(host.url);
      const main = await app.goTo('dashboards');
      await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '30d');
      const { to, bucketSeconds } = await page.evaluate(() => window.api!.dashboards.get({ range: '30d' }));
      // The last bucket is today's UTC day, which in California starts at 16:00 or 17:00 the day before.
      const last = new Date(Date.parse(to) - bucketSeconds * 1000);
      const utcDay = last.toLocaleDateString('en-US', { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
      const chart = main.getByTestId('chart-success');
      await expect(chart.locator('.recharts-line-curve')).toHaveCount(1);
      const box = (await chart.locator('svg.recharts-surface').boundingBox())!;
      await page.mouse.move(box.x + box.width - 6, box.y + box.height / 2);
      await expect(chart.locator('.recharts-tooltip-wrapper')).toContainText(`${utcDay} (UTC day)`);
      const ticks = await chart.locator('.recharts-xAxis-tick-labels .recharts-cartesian-axis-tick-value').allTextContents();
      const utcTicks = Array.from({ length: 30 }, (_, i) => new Date(last.getTime() - i * 86_400_000).toLocaleDateString('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' }));
      expect(ticks.length).toBeGreaterThan(2);
      for (const label of ticks) expect(utcTicks).toContain(label);
    } finally {
      await host.stop();
    }
  });
});

test.describe('in India (+05:30)', () => {
  test.use({ timezoneId: 'Asia/Kolkata', locale: 'en-US' });

  test('a six-hour bucket is labelled at the half hour it starts, not at the hour', async ({ console: app, page }) => {
    const host = await startHost(
      seedWith((store) => {
        seedFleet(store, { devices: 1, days: 8, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      }),
    );
    try {
      await app.open(host.url);
      const main = await app.goTo('dashboards');
      await page.getByTestId('range-7d').click();
      await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '7d');
      const { from, to, bucketSeconds } = await page.evaluate(() => window.api!.dashboards.get({ range: '7d' }));
      // Buckets start at 00:00, 06:00, 12:00 and 18:00 UTC: 05:30, 11:30, 17:30 and 23:30 in India.
      const starts: string[] = [];
      for (let t = Date.parse(from); t < Date.parse(to); t += bucketSeconds * 1000) {
        starts.push(new Date(t).toLocaleString('en-US', { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'Asia/Kolkata' }));
      }
      const chart = main.getByTestId('chart-success');
      await expect(chart.locator('.recharts-line-curve')).toHaveCount(1);
      const ticks = await chart.locator('.recharts-xAxis-tick-labels .recharts-cartesian-axis-tick-value').allTextContents();
      expect(ticks.length).toBeGreaterThan(2);
      for (const label of ticks) {
        expect(label).toMatch(/:30 [AP]M$/);
        expect(starts).toContain(label);
      }
    } finally {
      await host.stop();
    }
  });
});

test('sorted by RTO, a device whose newest drill failed comes first, not below those within their objective; one never measured says so', async ({ console: app, page }) => {
  const [failed, slow, quick, never, onlyFailed] = [0, 1, 2, 3, 4].map(seedDeviceName) as [string, string, string, string, string];
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 5, days: 3, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      store.db.prepare('DELETE FROM drills').run();
      const drill = prepareSeedStatements(store.db).drill;
      const id = (name: string) => store.db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE name = ?').get(name)!.id;
      const at = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3_600_000).toISOString();
      // Objective 1 h (the default). The failed device recovered in 2 min once; its newest drill failed.
      drill.run('drl_a1', id(failed), failed, at(50), at(49.9), 'passed', 2 * 60_000, null);
      drill.run('drl_a2', id(failed), failed, at(2), at(1.9), 'failed', null, 'validation failed');
      drill.run('drl_b', id(slow), slow, at(3), at(2), 'passed', 50 * 60_000, null);
      drill.run('drl_c', id(quick), quick, at(3), at(2.9), 'passed', 5 * 60_000, null);
      // Drilled once, and that drill failed: nothing measured.
      drill.run('drl_e', id(onlyFailed), onlyFailed, at(4), at(3.9), 'failed', null, 'validation failed');
    }),
  );
  try {
    await app.open(host.url);
    const table = page.getByTestId('fleet-table');
    await expect(table).toHaveAttribute('data-count', '5');
    await expect(page.getByTestId(`device-row-${failed}`)).toContainText('failed · 2m 0s / 1 h');
    await expect(page.getByTestId(`device-row-${onlyFailed}`)).toContainText('failed · none measured / 1 h');
    await expect(page.getByTestId(`device-row-${never}`)).toContainText('no drill yet / 1 h');
    await page.getByTestId('sort-rto').click();
    await expect(table.getByRole('columnheader', { name: 'RTO' })).toHaveAttribute('aria-sort', 'descending');
    const order = await table.locator('tbody tr[data-protection]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
    expect(order).toEqual([failed, onlyFailed, slow, quick, never].map((name) => `device-row-${name}`));
  } finally {
    await host.stop();
  }
});

test('a drill that skipped sources it cannot drill reads partial, not green: on the Fleet page and on the device page', async ({ console: app, page }) => {
  const name = seedDeviceName(0);
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 1, days: 3, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      store.db.prepare('DELETE FROM drills').run();
      const device = store.db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE name = ?').get(name)!.id;
      const at = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3_600_000).toISOString();
      // 2 min of a 1 h objective, for the sources the drill could restore.
      prepareSeedStatements(store.db).drill.run('drl_partial', device, name, at(2), at(1.9), 'partial', 2 * 60_000, null);
    }),
  );
  try {
    await app.open(host.url);
    const cell = page.getByTestId(`device-row-${name}`).locator('td.status-warn', { hasText: '2m 0s / 1 h' });
    await expect(cell).toHaveText('partial · 2m 0s / 1 h');
    await page.goto(`${host.origin}/#/fleet/${name}`);
    const status = page.getByTestId('drill-rto-status');
    await expect(status).toHaveText('within the objective for the sources drilled');
    await expect(status).toHaveClass('rto-partial');
    await expect(page.getByTestId('drill-last-result')).toHaveText('partial');
  } finally {
    await host.stop();
  }
});

test('the charts of a device no longer in the inventory say so, not "Loading…" under "Whole fleet"', async ({ host, console: app, page }) => {
  await app.open(host.url);
  // A link from an old alert or report to a device removed since.
  await page.goto(`${host.origin}/#/dashboards/rvm-gone`);
  const main = page.getByTestId('page-dashboards');
  await expect(main.getByTestId('dashboards-error')).toHaveText('No device named "rvm-gone"');
  await expect(page.getByTestId('dashboard-device')).toHaveValue('rvm-gone');
  await expect(page.getByTestId('dashboard-device').locator('option:checked')).toHaveText('rvm-gone (not in the inventory)');
  await expect(main.getByText('Loading…')).toHaveCount(0);
  // The whole fleet instead: its (empty) history, and no error.
  await page.getByTestId('dashboard-device').selectOption('');
  await expect(main.getByTestId('dashboards-empty')).toBeVisible();
  await expect(main.getByTestId('dashboards-error')).toHaveCount(0);
  // Another device's link followed while the page is open shows that device, not the last one.
  await page.goto(`${host.origin}/#/dashboards/rvm-also-gone`);
  await expect(page.getByTestId('dashboard-device')).toHaveValue('rvm-also-gone');
  await expect(main.getByTestId('dashboards-error')).toHaveText('No device named "rvm-also-gone"');
});

test('a verification of more than a year ago shows its year, not the same day of this year', async ({ console: app, page }) => {
  const yearAgo = Date.now() - 366 * 86_400_000;
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 1, days: 3, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      // Its only check: 366 days ago.
      store.db.prepare("UPDATE jobs SET started_at = ?, finished_at = ? WHERE kind = 'verify'").run(new Date(yearAgo).toISOString(), new Date(yearAgo + 30_000).toISOString());
    }),
  );
  try {
    await app.open(host.url);
    const row = page.getByTestId(`device-row-${seedDeviceName(0)}`);
    const shown = await page.evaluate((at) => new Date(at).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' }), yearAgo);
    await expect(row).toContainText(`${shown} · `);
  } finally {
    await host.stop();
  }
});

test('the fleet RTO chart counts the drills over their own device\'s objective, which the default objective line hides', async ({ console: app, page }) => {
  // Drills of 4–14 minutes; the default objective is 60 min, but every device has one of 3 min.
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 6, days: 20, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      store.db.prepare("UPDATE devices SET profile = json_set(profile, '$.rtoMinutes', 3)").run();
      store.db.prepare("UPDATE drills SET result = 'passed', total_ms = 600000, error = NULL").run();
    }),
  );
  try {
    await app.open(host.url);
    const main = await app.goTo('dashboards');
    await expect(main.getByTestId('dashboards')).toHaveAttribute('data-range', '30d');
    const chart = main.getByTestId('chart-rto');
    await expect(chart.getByText('default objective')).toBeVisible();
    await chart.scrollIntoViewIfNeeded();
    const box = (await chart.locator('svg.recharts-surface[role="application"]').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 3);
    // Each bucket holds one drill per device, each of 10 minutes: all over their 3 minutes.
    await expect(chart.locator('.recharts-tooltip-wrapper')).toContainText("6 drills: 6 over their device's objective");
  } finally {
    await host.stop();
  }
});

test('without a measured repository size (S3, SFTP) the growth chart names what it draws: what backups added in the range', async ({ console: app }) => {
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 2, days: 10, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      store.db.prepare("DELETE FROM metric_samples WHERE metric IN ('repository_bytes', 'laptop_free')").run();
    }),
  );
  try {
    await app.open(host.url);
    const main = await app.goTo('dashboards');
    const legend = main.getByTestId('chart-storage').locator('.recharts-legend-wrapper');
    await expect(legend).toContainText(/added by backups since \w+ \d+ \(left\)/);
    await expect(legend).not.toContainText('repository (left)');
  } finally {
    await host.stop();
  }
});

test('a backup within its RPO never reads as old as the RPO: 23 h 40 min is "23 h ago", not "24 h ago"', async ({ console: app, page }) => {
  const host = await startHost(
    seedWith((store) => {
      // Two standard devices (RPO 24 h): one backed up 23 h 40 min ago, one 24 h 20 min ago.
      seedFleet(store, { devices: 2, days: 3, now: Date.now(), mix: { critical: 0, important: 0 }, failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      for (const [i, minutes] of [[0, 23 * 60 + 40], [1, 24 * 60 + 20]] as const) {
        const device = store.db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE name = ?').get(seedDeviceName(i))!;
        const at = new Date(Date.now() - minutes * 60_000).toISOString();
        store.db.prepare("DELETE FROM jobs WHERE device_id = ? AND kind = 'backup' AND finished_at > ?").run(device.id, at);
        store.db.prepare("UPDATE jobs SET finished_at = ? WHERE rowid = (SELECT rowid FROM jobs WHERE device_id = ? AND kind = 'backup' ORDER BY finished_at DESC LIMIT 1)").run(at, device.id);
      }
    }),
  );
  try {
    await app.open(host.url);
    await expect(page.getByTestId(`rpo-${seedDeviceName(0)}`)).toHaveText('23 h ago');
    await expect(page.getByTestId(`device-row-${seedDeviceName(0)}`)).toHaveAttribute('data-protection', 'protected');
    await expect(page.getByTestId(`rpo-${seedDeviceName(1)}`)).toHaveText('24 h ago · breached');
  } finally {
    await host.stop();
  }
});

test('a screen reader is told how many devices the windowed table holds and where each row stands', async ({ seeded, console: app, page }) => {
  await app.open(seeded.host.url);
  const table = page.getByTestId('fleet-table');
  await expect(table).toHaveAttribute('data-count', String(DEVICES));
  await expect(table).toHaveAttribute('aria-rowcount', String(DEVICES + 1));
  await page.getByTestId('sort-name').click();
  await expect(page.getByTestId(`device-row-${seedDeviceName(0)}`)).toHaveAttribute('aria-rowindex', '2');
  await expect(page.getByTestId(`device-row-${seedDeviceName(DEVICES - 1)}`)).toHaveAttribute('aria-rowindex', String(DEVICES + 1));
});

test('a device last reached two weeks ago says so, not "reachable" in green', async ({ console: app, page }) => {
  const host = await startHost(
    seedWith((store) => {
      seedFleet(store, { devices: 2, days: 20, now: Date.now(), failureRate: 0, unreachableEvery: 0, staleEvery: 0 });
      // jet-0000: nothing has reached it for 14 days (the console was closed meanwhile).
      const device = store.db.prepare<[string], { id: string }>('SELECT id FROM devices WHERE name = ?').get(seedDeviceName(0))!;
      const then = new Date(Date.now() - 14 * 86_400_000 - 2 * 3_600_000).toISOString();
      store.db.prepare("DELETE FROM jobs WHERE device_id = ? AND started_at > ?").run(device.id, then);
      store.db.prepare('UPDATE devices SET facts_at = ? WHERE id = ?').run(then, device.id);
    }),
  );
  try {
    await app.open(host.url);
    const stale = page.getByTestId(`contact-${seedDeviceName(0)}`);
    await expect(stale).toHaveText('reachable 14 days ago');
    await expect(stale).not.toHaveClass(/status-ok/);
    const fresh = page.getByTestId(`contact-${seedDeviceName(1)}`);
    await expect(fresh).toHaveText('reachable');
    await expect(fresh).toHaveClass(/status-ok/);
  } finally {
    await host.stop();
  }
});

test('a To date the log cannot hold (year 275760, which the date box takes) is left out with a word, and the console stays up', async ({ host, console: app, page }) => {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await app.open(host.url);
  await page.evaluate(() => window.api!.settings.update({ defaultRpoMinutes: 90 }));
  const main = await app.goTo('audit');
  await expect(main.getByTestId('audit-row')).toHaveCount(1);
  await page.getByTestId('audit-to').fill('275760-09-13');
  await expect(main.getByTestId('audit-date-error')).toContainText('275760-09-13: not a day the log can be searched by');
  await expect(main.getByTestId('audit-row')).toHaveCount(1);
  await page.getByTestId('audit-to').fill('');
  await expect(main.getByTestId('audit-date-error')).toHaveCount(0);
  expect(errors).toEqual([]);
});
