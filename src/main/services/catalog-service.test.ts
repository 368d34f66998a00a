import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSources } from '../devices/device-backup';
import { LocalRunner } from '../devices/local-runner';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { silentLogger } from '../log';
import { NAMES } from '../repository/backend/backend';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import { CatalogService } from './catalog-service';
import { RepositoryService } from './repository-service';
import { SettingsService } from './settings-service';

describe('CatalogService', () => {
  it('lists complete runs newest first, hides interrupted ones, and browses one folder at a time', async () => {
    const data = tempDir();
    const store = new HistoryStore(data);
    const settings = new SettingsService(store, new EventBus(), silentLogger);
    const repository = new RepositoryService(data, settings, {});
    await repository.init(PASSWORD, FAST);
    const catalog = new CatalogService(repository);

    const root = tempDir();
    await mkdir(path.join(root, 'etc/myrvm/conf.d'), { recursive: true });
    await writeFile(path.join(root, 'etc/myrvm/config.yaml'), 'fps: 30\n');
    await writeFile(path.join(root, 'etc/myrvm/conf.d/odd name\n.yaml'), 'x: 1\n');
    const ctx = { phase: () => undefined, advance: () => undefined, setTotals: () => undefined, signal: new AbortController().signal };
    const sources = [
      { name: 'config', kind: 'files' as const, paths: [path.join(root, 'etc/myrvm')] },
      { name: 'etc', kind: 'files' as const, paths: [path.join(root, 'etc')] },
    ];
    const repo = await repository.open();
    const first = await runSources(repo, new LocalRunner(), { name: 'rvm-017', sysroot: root }, sources, ctx);
    const second = await runSources(repo, new LocalRunner(), { name: 'rvm-017', sysroot: root }, sources, ctx);

    const listed = await catalog.list('rvm-017');
    expect(listed.map((s) => s.runId)).toEqual([second.runId, second.runId, first.runId, first.runId]);
    expect(listed[0]).toMatchObject({ device: 'rvm-017', kind: 'files' });
    expect(await catalog.list('another-device')).toEqual([]);

    // A run that lost a member (as after a crash mid-run) is not offered.
    await repo.backend.delete(`${NAMES.snapshots}${second.snapshots[0]!.snapshotId}`);
    expect((await catalog.list()).map((s) => s.runId)).toEqual([first.runId, first.runId]);

    const config = first.snapshots.find((s) => s.source === 'config')!;
    expect((await catalog.browse(config.snapshotId, '')).entries.map((e) => e.name)).toEqual(['etc']);
    const inside = await catalog.browse(config.snapshotId, 'etc/myrvm/conf.d');
    expect(inside.entries).toEqual([expect.objectContaining({ name: 'odd name\n.yaml', type: 'file', size: 5 })]);
    await expect(catalog.browse(config.snapshotId, 'etc/nope')).rejects.toThrow(/No directory etc\/nope/);
    store.close();
  });
});
