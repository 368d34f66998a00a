import { RepositoryError } from '../../main/repository/errors';
import type { Repository } from '../../main/repository/repo/repository';
import { findSnapshot, loadTree, walkTree } from '../../main/repository/snapshot/snapshot';
import type { SnapshotWithId } from '../../main/repository/snapshot/snapshot';
import type { TreeNode } from '../../main/repository/snapshot/tree';
import type { Command } from '../command';
import { listedName, UsageError } from '../command';
import { REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';

export const repoLsCommand: Command = {
  name: 'ls',
  summary: "list a snapshot's files",
  usage: [
    'Usage: jetvault ls SNAP [PATH...] [--long] [--json]',
    '',
    'SNAP is a snapshot id, a unique id prefix, or "latest". With PATHs, only those files and folders',
    '(and what the folders hold) are listed, e.g. `jetvault ls latest /etc/myrvm`.',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, long: { type: 'boolean', short: 'l' } },
  async run({ values, positionals }, io) {
    const [ref, ...paths] = positionals;
    if (ref === undefined) throw new UsageError('give a snapshot');
    return withRepository(values, io, 'none', async (repo) => {
      const snapshot = await findSnapshot(repo, ref);
      const entries = paths.length === 0 ? walkTree(repo, snapshot.tree) : under(repo, snapshot, paths);
      for await (const { path, node } of entries) {
        if (values.json) {
          const { content: _content, subtree: _subtree, ...meta } = node;
          io.out(JSON.stringify({ path: `/${path}`, ...meta }));
        } else if (values.long) {
          const mtime = new Date(Number(BigInt(node.mtime) / 1_000_000n)).toISOString().replace('T', ' ').slice(0, 19);
          io.out(`${node.type.padEnd(7)} ${node.mode.toString(8).padStart(4, '0')} ${String(node.uid).padStart(5)} ${String(node.gid).padStart(5)} ${String(node.size).padStart(12)} ${mtime} ${JSON.stringify(`/${path}`)}${node.target !== undefined ? ` -> ${JSON.stringify(node.target)}` : ''}`);
        } else io.out(listedName(io, `/${path}`));
      }
      return 0;
    });
  },
};

/** The nodes at `paths` (absolute, as `ls` prints them) and everything below those that are folders. */
async function* under(repo: Repository, snapshot: SnapshotWithId, paths: string[]): AsyncGenerator<{ path: string; node: TreeNode }> {
  for (const wanted of paths) {
    const parts = wanted.split('/').filter((p) => p !== '' && p !== '.');
    if (!wanted.startsWith('/') || parts.includes('..')) throw new UsageError(`"${wanted}": give a path as ls prints it, from / (e.g. /etc/myrvm)`);
    let tree = snapshot.tree;
    let node: TreeNode | undefined;
    for (const [i, name] of parts.entries()) {
      node = (await loadTree(repo, tree)).nodes.find((n) => n.name === name);
      if (!node || (i < parts.length - 1 && !node.subtree)) throw new RepositoryError('not-found', `${wanted} is not in snapshot ${snapshot.id.slice(0, 8)}`);
      if (node.subtree) tree = node.subtree;
    }
    const path = parts.join('/');
    if (node) yield { path, node };
    if (!node || node.subtree) yield* walkTree(repo, tree, path);
  }
}
