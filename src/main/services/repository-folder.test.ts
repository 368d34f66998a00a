/**
 * The console's repository on a disk that is not connected: its folder (chosen in Settings) is not
 * there. The status says so, the console's create form refuses to make a new, empty repository
 * there unless asked to, and a backup says to connect the disk rather than to create a repository.
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { silentLogger } from '../log';
import { FAST, PASSWORD } from '../repository/testing/fixtures';
import { tempDir } from '../testing/temp-dir';
import { RepositoryService } from './repository-service';
import { SettingsService } from './settings-service';

describe('a repository folder that is not there', () => {
  it('is told apart from a repository not made yet: no new empty repository at the mount point unless asked, and a backup says to connect the disk', async () => {
    const data = tempDir();
    const mountPoint = path.join(tempDir(), 'usb-backup');
    await mkdir(mountPoint);
    const location = path.join(mountPoint, 'jetvault');
    const repository = new RepositoryService(data, new SettingsService(new HistoryStore(data), new EventBus(), silentLogger), { JETVAULT_REPOSITORY: location });

    expect(await repository.status()).toEqual({ location, exists: false, unlocked: false, folderMissing: true });
    await expect(repository.open()).rejects.toMatchObject({
      failure: 'missing',
      message: expect.stringMatching(/^The repository folder .*jetvault is not there: if the repository is on a disk, connect it so that it is mounted at that path/) as unknown,
    });
    await expect(repository.init(PASSWORD, FAST, { createFolder: false })).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringMatching(/tick "Create the folder" only for a new repository/) as unknown });
    expect(await readdir(mountPoint)).toEqual([]);

    // Asked to: a new repository is made there.
    expect(await repository.init(PASSWORD, FAST, { createFolder: true })).toMatchObject({ exists: true, unlocked: true, folderMissing: false });
  });

  it('is not said of the data folder’s own repository, which the first init makes, nor of an empty folder there', async () => {
    const data = tempDir();
    const repository = new RepositoryService(data, new SettingsService(new HistoryStore(data), new EventBus(), silentLogger), {});
    expect(await repository.status()).toMatchObject({ exists: false, folderMissing: false });
    expect(await repository.init(PASSWORD, FAST, { createFolder: false })).toMatchObject({ exists: true, folderMissing: false });

    const empty = path.join(tempDir(), 'empty');
    await mkdir(empty);
    const other = new RepositoryService(data, new SettingsService(new HistoryStore(tempDir()), new EventBus(), silentLogger), { JETVAULT_REPOSITORY: empty });
    expect(await other.status()).toMatchObject({ exists: false, folderMissing: false });
    expect(await other.init(PASSWORD, FAST, { createFolder: false })).toMatchObject({ exists: true });
  });
});
