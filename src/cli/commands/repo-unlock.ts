import { listLocks, removeLocks, STALE_MS } from '../../main/repository/lock/lock';
import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';
import { counted } from '../../shared/plural';

export const repoUnlockCommand: Command = {
  name: 'unlock',
  summary: 'remove stale locks',
  usage: [
    'Usage: jetvault unlock [--remove-all] [--json]',
    '',
    'Stale: not refreshed for 5 minutes, or its process on this host is gone. --remove-all also removes live locks:',
    'only when no other console is using the repository (a prune that lost its lock stops within seconds, deleting data until then).',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, 'remove-all': { type: 'boolean' } },
  async run({ values }, io) {
    return withRepository(values, io, 'none', async (repo) => {
      const before = await listLocks(repo);
      const removed = await removeLocks(repo, values['remove-all'] === true);
      if (values.json) io.out(JSON.stringify({ removed, remaining: before.length - removed }));
      else {
        io.out(`removed ${counted(removed, 'lock')}; ${before.length - removed} still held`);
        // Say who holds what is left, and when it would turn stale if its console is gone.
        if (values['remove-all'] !== true) {
          for (const l of before.filter((x) => !x.stale)) {
            io.out(`  ${l.exclusive ? 'exclusive' : 'shared'} lock of pid ${l.pid} on ${l.host}, refreshed ${l.refreshed}; stale from ${new Date(Date.parse(l.refreshed) + STALE_MS).toISOString()} if not refreshed`);
          }
        }
      }
      return 0;
    });
  },
};
