import { repairPacks } from '../../main/repository/prune/repair';
import type { Command } from '../command';
import { UsageError } from '../command';
import { REPO_OPTIONS, REPO_USAGE, ttyProgress, withRepository } from './repo-common';
import { counted, verb } from '../../shared/plural';

export const repoRepairPacksCommand: Command = {
  name: 'repair-packs',
  summary: 'rewrite damaged packs without what no longer reads, so backups store it again',
  usage: [
    'Usage: jetvault repair-packs PACK... [--json]',
    '',
    'For the packs `jetvault check --read-data` names as damaged: every blob that still reads is stored',
    'again in a new pack and the damaged packs are removed. What could not be read is then gone from the',
    'repository: back up the affected devices or paths again and their unchanged files are read and stored',
    'again (while a damaged pack stays, every backup reuses its damaged data). Snapshots that need data no',
    'backup stores again stay damaged (`jetvault check` names them). Takes the exclusive lock.',
    REPO_USAGE,
  ].join('\n'),
  options: REPO_OPTIONS,
  async run({ values, positionals }, io) {
    if (positionals.length === 0) throw new UsageError('name the damaged packs (as `jetvault check --read-data` prints them)');
    return withRepository(values, io, 'exclusive', async (repo, lease) => {
      const progress = ttyProgress();
      const report = await repairPacks(repo, positionals, { ...(lease ? { lease } : {}), onProgress: progress.onProgress });
      progress.done();
      if (values.json) io.out(JSON.stringify(report));
      else {
        io.out(`removed ${counted(report.packs.length, 'damaged pack')}; ${counted(report.blobsSalvaged, 'blob')} that still read ${verb(report.blobsSalvaged, 'was', 'were')} stored again in ${counted(report.packsWritten, 'new pack')}`);
        if (report.blobsLost.length > 0) {
          io.out(`${counted(report.blobsLost.length, 'blob')} could not be read and ${verb(report.blobsLost.length, 'is', 'are')} gone: back up the affected devices or paths again to store them again, then run \`jetvault check\``);
        }
      }
      return 0;
    });
  },
};
