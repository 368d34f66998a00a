import { diffTrees } from '../../main/repository/snapshot/diff';
import { findSnapshot, listSnapshots } from '../../main/repository/snapshot/snapshot';
import type { Command } from '../command';
import { listedName, UsageError } from '../command';
import { REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';

const MARK = { added: '+', removed: '-', modified: 'M', metadata: 'U' } as const;

export const repoDiffCommand: Command = {
  name: 'diff',
  summary: 'show what changed between two snapshots',
  usage: ['Usage: jetvault diff SNAP_A SNAP_B [--json]', '', '+ added, - removed, M content changed, U metadata changed', REPO_USAGE].join('\n'),
  options: REPO_OPTIONS,
  async run({ values, positionals }, io) {
    const [a, b, ...extra] = positionals;
    if (a === undefined || b === undefined || extra.length > 0) throw new UsageError('give exactly two snapshots');
    return withRepository(values, io, 'none', async (repo) => {
      const all = await listSnapshots(repo);
      const left = await findSnapshot(repo, a, all);
      const right = await findSnapshot(repo, b, all);
      const changes = await diffTrees(repo, left.tree, right.tree);
      if (values.json) io.out(JSON.stringify(changes.map((c) => ({ ...c, path: `/${c.path}` }))));
      else {
        for (const c of changes) io.out(`${MARK[c.kind]}    ${listedName(io, `/${c.path}`)}${c.type === 'dir' ? '/' : ''}`);
        const count = (k: keyof typeof MARK): number => changes.filter((c) => c.kind === k).length;
        io.out(`\n${count('added')} added, ${count('removed')} removed, ${count('modified')} modified, ${count('metadata')} metadata changes`);
      }
      return 0;
    });
  },
};
