import { listLocks, removeLocks } from '../../main/repository/lock/lock';
import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';

export const repoUnlockCommand: Command = {
  name: 'unlock',
  summary: 'remove stale locks',
  usage: ['Usage: jetvault unlock [--remove-all] [--json]', '', 'Stale: not refreshed for 5 minutes, or its process on this host is gone.', REPO_USAGE].join('\n'),
  options: { ...REPO_OPTIONS, 'remove-all': { type: 'boolean' } },
  async run({ values }, io) {
    return withRepository(values, io, 'none', async (repo) => {
      const before = await listLocks(repo);
      const removed = await removeLocks(repo, values['remove-all'] === true);
      if (values.json) io.out(JSON.stringify({ removed, remaining: before.length - removed }));
      else io.out(`removed ${removed} lock(s); ${before.length - removed} still held`);
      return 0;
    });
  },
};
