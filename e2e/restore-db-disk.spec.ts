/**
 * The restore wizard for a PostgreSQL database that keeps its data on a disk of its own (a tablespace
 * on a small file system of the device): the plan names that disk with what the restored copy needs
 * there, and when another program has filled it, the line turns red, the plan warns, and a restore
 * started anyway stops before changing anything, saying why on the page.
 */
import { chownSync, closeSync, mkdirSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import path from 'node:path';
import { psql } from '../fleet/postgres';
import { expect, testWithFleet } from './fixtures';
import { chooseSourcesToRestore, openBackedUp } from './device-steps';

const test = testWithFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 });
const MiB = 2 ** 20;

test('a database on its own disk: the plan measures that disk, and no room there is said before anything changes', async ({ host, console: app, page, fleet }) => {
  test.setTimeout(240_000);
  const device = fleet.devices[0]!;
  const superSql = (sql: string) => psql(device.pg.socketDir, 'postgres', sql);
  const database = (device.profile() as { sources: { name: string; database?: string }[] }).sources.find((s) => s.name === 'db')!.database!;
  await openBackedUp(app, page, host.url, device);

  // The database moves to a tablespace on a file system of its own, with room for about three copies.
  const liveBytes = Number(await superSql(`SELECT pg_database_size('${database}');`));
  const space = path.join(device.root, 'var/lib/pgspace');
  mkdirSync(space, { recursive: true });
  chownSync(space, device.account.uid, device.account.gid);
  const { mount } = await device.mutate.fillDisk('var/lib/pgspace', { sizeMB: Math.ceil((3 * liveBytes) / MiB) + 8, leaveBytes: Number.MAX_SAFE_INTEGER });
  const tsDir = path.join(mount, 'ts');
  mkdirSync(tsDir, { mode: 0o700 });
  chownSync(tsDir, device.account.uid, device.account.gid);
  await superSql(`CREATE TABLESPACE jv_space LOCATION '${tsDir}';`);
  await superSql(`ALTER DATABASE "${database}" SET TABLESPACE jv_space;`);

  await chooseSourcesToRestore(app, page, device.name, ['db']);
  await page.getByTestId('restore-preview').click();
  const line = page.getByTestId('plan-database-space-db');
  await expect(line).toContainText(`written on its own disk (${tsDir}): needs about`, { timeout: 30_000 });
  await expect(line).not.toHaveClass(/status-bad/);
  // (The plan's other warning, no services stopped around the swap, is not about space.)
  const diskWarning = page.getByTestId('plan-warning').filter({ hasText: /disk holding PostgreSQL's data/ });
  await expect(diskWarning).toHaveCount(0);

  // Another program fills that disk, leaving half of what the copy needs.
  const filler = path.join(mount, 'other-program.bin');
  const fd = openSync(filler, 'w');
  try {
    const chunk = Buffer.alloc(MiB, 0x5a);
    for (let i = 0; i < 10_000; i++) {
      const { bavail, bsize } = statfsSync(mount);
      const free = bavail * bsize - Math.floor(liveBytes / 2);
      if (free <= 0) break;
      writeSync(fd, chunk, 0, Math.min(chunk.length, free));
    }
  } finally {
    closeSync(fd);
  }
  await page.getByTestId('restore-preview').click();
  await expect(line).toHaveClass(/status-bad/, { timeout: 30_000 });
  await expect(diskWarning).toContainText(/The disk holding PostgreSQL's data on .* has .* free; the restored ".*" needs about .* the restore will stop before changing anything/);

  // Started anyway: refused before anything changed, and the page says why.
  const before = await device.mutate.sql('SELECT count(*) FROM deposits;');
  await page.getByTestId('restore-confirm-name').fill(device.name);
  await page.getByTestId('restore-start').click();
  await expect(page.getByTestId('restore-last-error')).toContainText(/Not enough space on .*: the disk holding PostgreSQL's data \(.*\/ts\) has .* free, the restored database needs about .*\. Nothing was changed\./, { timeout: 60_000 });
  await expect(page.getByTestId('restore-pending')).toHaveCount(0);
  expect(await device.mutate.sql('SELECT count(*) FROM deposits;')).toBe(before);
  expect(await superSql(`SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_jv\\_%';`)).toBe('0');
  rmSync(filler);
});
