import { findSnapshot, walkTree } from '../../main/repository/snapshot/snapshot';
import type { Command } from '../command';
import { UsageError } from '../command';
import { REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';

export const repoLsCommand: Command = {
  name: 'ls',
  summary: "list a snapshot's files",
  usage: ['Usage: jetvault ls SNAP [--long] [--json]', '', 'SNAP is a snapshot id, a unique id prefix, or "latest".', REPO_USAGE].join('\n'),
  options: { ...REPO_OPTIONS, long: { type: 'boolean', short: 'l' } },
  async run({ values, positionals }, io) {
    const [ref, ...extra] = positionals;
    if (ref === undefined || extra.length > 0) throw new UsageError('give exactly one snapshot');
    return withRepository(values, io, 'none', async (repo) => {
      const snapshot = await findSnapshot(repo, ref);
      for await (const { path, node } of walkTree(repo, snapshot.tree)) {
        if (values.json) {
          const { content: _content, subtree: _subtree, ...meta } = node;
          io.out(JSON.stringify({ path: `/${path}`, ...meta }));
        } else if (values.long) {
          const mtime = new Date(Number(BigInt(node.mtime) / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
          io.out(`${node.type.padEnd(7)} ${node.mode.toString(8).padStart(4, '0')} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${String(node.size).padStart(12)} ${mtime} ${JSON.stringify(`/${path}`)}${node.target !== undefined ? ` -> ${JSON.stringify(node.target)}` : ''}`);
        } else io.out(`/${path}`);
      }
      return 0;
    });
  },
};
