import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { silentLogger } from '../log';
import { backup } from '../repository/archiver/archiver';
import { check } from '../repository/checker/checker';
import { listLocks } from '../repository/lock/lock';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { LocalSource } from '../repository/walker/local-walker';
import { tempDir } from '../testing/temp-dir';
import { RepositoryService } from './repository-service';
import { SettingsService } from './settings-service';

function service(): RepositoryService {
  const data = tempDir();
  return new RepositoryService(data, new SettingsService(new HistoryStore(data), new EventBus(), silentLogger), {});
}

describe('RepositoryService opening', () => {
  it('tells a first backup with no repository yet to create one, and one with a locked repository to unlock it', async () => {
    const repository = service();
    await expect(repository.open()).rejects.toMatchObject({
      code: 'NOT_FOUND',
      failure: 'missing',
      message: `There is no repository at ${repository.location()} yet: create one on the Catalog page (or with "jetvault init") before the first backup`,
    });
    await repository.init(PASSWORD, FAST);
    repository.lock();
    await expect(repository.open()).rejects.toMatchObject({ code: 'UNAVAILABLE', message: `The repository at ${repository.location()} is locked: unlock it with its password first` });
    await repository.unlock(PASSWORD);
    await expect(repository.open()).resolves.toBeDefined();
  });
});

describe('RepositoryService writers', () => {
  it('runs backups at once under shared leases, and exclusive work alone', { timeout: 60_000 }, async () => {
    const repository = service();
    await repository.init(PASSWORD, FAST);
    const roots: string[] = [];
    for (let d = 0; d < 4; d++) {
      const root = tempDir();
      await mkdir(path.join(root, 'data'));
      await writeFile(path.join(root, 'data/shared.bin'), Buffer.alloc(200_000, 7));
      await writeFile(path.join(root, 'data/own.bin'), randomBytes(100_000));
      roots.push(root);
    }
    const events: string[] = [];
    let running = 0;
    let most = 0;
    let leasesSeen = 0;
    const backups = roots.map((root, d) =>
      repository.write(async (repo, lease) => {
        running++;
        most = Math.max(most, running);
        // Wait until all four are in, so the overlap is certain rather than timing-dependent.
        for (let i = 0; i < 200 && running < roots.length; i++) await new Promise((r) => setTimeout(r, 10));
        leasesSeen = Math.max(leasesSeen, (await listLocks(repo)).filter((l) => !l.exclusive && !l.stale).length);
        const result = await backup(repo, new LocalSource([root]), { lease, device: `dev${d}` });
        events.push(`backup ${d}`);
        running--;
        return result;
      }),
    );
    // Queued while backups run: starts only once they are done, and holds back a backup asked for meanwhile.
    await new Promise((r) => setTimeout(r, 30));
    const exclusive = repository.exclusive(async (repo) => {
      events.push(`exclusive start (running ${running})`);
      expect((await listLocks(repo)).filter((l) => !l.stale).map((l) => l.exclusive)).toEqual([true]);
      await new Promise((r) => setTimeout(r, 50));
      events.push('exclusive end');
    });
    const late = repository.write(() => {
      events.push('late writer');
      return Promise.resolve();
    });
    const results = await Promise.all(backups);
    await Promise.all([exclusive, late]);
    expect(most).toBe(roots.length);
    expect(leasesSeen).toBe(roots.length);
    expect(events.slice(roots.length)).toEqual(['exclusive start (running 0)', 'exclusive end', 'late writer']);
    const repo = await repository.fresh();
    expect((await check(repo, { readData: true })).errors).toEqual([]);
    expect(results.map((r) => r.snapshot.summary.bytesAdded).reduce((a, b) => a + b, 0)).toBeLessThan(4 * 110_000 + 20_000);
  });
});
