import { prune } from '../../main/repository/prune/prune';
import type { Command } from '../command';
import { UsageError } from '../command';
import { formatBytes, pruneIncomplete, pruneWarnings, REPO_OPTIONS, REPO_USAGE, ttyProgress, withRepository } from './repo-common';

export const repoPruneCommand: Command = {
  name: 'prune',
  summary: 'delete data no snapshot needs and repack partly used packs',
  usage: [
    'Usage: jetvault prune [--dry-run] [--max-unused 20%] [--json]',
    '',
    'Takes the exclusive lock: no backup can run meanwhile. A pack holding damaged data that snapshots',
    'need is kept as it is and named (exit code 1); `jetvault check --read-data` shows what it affects.',
    'On a disk without room for the packs it rewrites, the packs to repack are kept and the rest is',
    'pruned (exit code 1): run it again.',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, 'dry-run': { type: 'boolean', short: 'n' }, 'max-unused': { type: 'string' } },
  async run({ values }, io) {
    let maxUnused: number | undefined;
    if (typeof values['max-unused'] === 'string') {
      // "abc" was read as no limit at all (and every partly used pack repacked); 200% as "never".
      const m = /^(\d+(?:\.\d+)?)%?$/.exec(values['max-unused']);
      if (!m || Number(m[1]) > 100) throw new UsageError('--max-unused needs a percentage from 0% to 100%, like 20%');
      maxUnused = Number(m[1]) / 100;
    }
    return withRepository(values, io, 'exclusive', async (repo, lease) => {
      const progress = ttyProgress();
      const report = await prune(repo, { dryRun: values['dry-run'] === true, ...(maxUnused !== undefined ? { maxUnused } : {}), onProgress: progress.onProgress, ...(lease ? { lease } : {}) });
      progress.done();
      if (values.json) io.out(JSON.stringify(report));
      else {
        io.out(`${report.blobsUsed} blobs in use, ${report.blobsRemoved} unused`);
        io.out(`${values['dry-run'] ? 'would delete' : 'deleted'} ${report.packsDeleted} of ${report.packsBefore} packs (${report.packsRepacked} repacked into ${report.packsWritten}), freeing ${formatBytes(report.bytesFreed)}`);
      }
      for (const line of pruneWarnings(report)) io.err(line);
      return pruneIncomplete(report) ? 1 : 0;
    });
  },
};
