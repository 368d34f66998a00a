import { listSnapshots } from '../../main/repository/snapshot/snapshot';
import { inCompleteRun } from '../../main/services/catalog-service';
import type { Command } from '../command';
import { formatBytes, REPO_OPTIONS, REPO_USAGE, shortId, withRepository } from './repo-common';
import { counted } from '../../shared/plural';

export const repoSnapshotsCommand: Command = {
  name: 'snapshots',
  summary: 'list snapshots',
  usage: ['Usage: jetvault snapshots [--device NAME] [--json]', REPO_USAGE].join('\n'),
  options: { ...REPO_OPTIONS, device: { type: 'string' } },
  async run({ values }, io) {
    return withRepository(values, io, 'none', async (repo) => {
      let snapshots = await listSnapshots(repo);
      if (typeof values.device === 'string') snapshots = snapshots.filter((s) => s.device === values.device);
      // Snapshots of a run killed part-way (the console's catalog leaves them out): said, not hidden.
      const complete = inCompleteRun(snapshots);
      if (values.json) {
        io.out(JSON.stringify(snapshots.map((s) => (complete(s) ? s : { ...s, incompleteRun: true })), null, 2));
        return 0;
      }
      io.out(`${'ID'.padEnd(9)} ${'Time'.padEnd(19)} ${'Device'.padEnd(16)} ${'Size'.padStart(10)}  Tags / Paths`);
      for (const s of snapshots) {
        const time = new Date(s.time).toISOString().replace('T', ' ').slice(0, 19);
        io.out(`${shortId(s.id).padEnd(9)} ${time} ${s.device.slice(0, 16).padEnd(16)} ${formatBytes(s.summary.bytes).padStart(10)}  ${[...s.tags.map((t) => `#${t}`), ...s.paths].join(' ')}${complete(s) ? '' : '  (incomplete run)'}`);
      }
      const incomplete = snapshots.filter((s) => !complete(s)).length;
      io.out(`${counted(snapshots.length, 'snapshot')}${incomplete > 0 ? `, ${incomplete} of runs cut off part-way (the console's catalog leaves them out)` : ''}`);
      return 0;
    });
  },
};
