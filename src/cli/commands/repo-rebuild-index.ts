import { rebuildIndex } from '../../main/repository/index/rebuild-index';
import type { Command } from '../command';
import { REPO_OPTIONS, REPO_USAGE, withRepository } from './repo-common';
import { counted } from '../../shared/plural';

export const repoRebuildIndexCommand: Command = {
  name: 'rebuild-index',
  summary: 'rebuild the index from the pack files alone',
  usage: ['Usage: jetvault rebuild-index [--json]', REPO_USAGE].join('\n'),
  options: REPO_OPTIONS,
  async run({ values }, io) {
    return withRepository(values, io, 'shared', async (repo) => {
      const report = await rebuildIndex(repo);
      if (values.json) io.out(JSON.stringify(report));
      else {
        io.out(`indexed ${report.blobs} blobs in ${report.packs} packs; replaced ${counted(report.oldIndexes, 'index object')}`);
        for (const id of report.unreadable) io.err(`warning: pack ${id} is unreadable and was left out`);
      }
      return report.unreadable.length > 0 ? 1 : 0;
    });
  },
};
