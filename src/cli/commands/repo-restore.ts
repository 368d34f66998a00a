import { restore } from '../../main/repository/restorer/restorer';
import { findSnapshot, listSnapshots } from '../../main/repository/snapshot/snapshot';
import type { Command } from '../command';
import { UsageError } from '../command';
import { formatBytes, REPO_OPTIONS, REPO_USAGE, shortId, ttyProgress, withRepository } from './repo-common';

export const repoRestoreCommand: Command = {
  name: 'restore',
  summary: 'restore a snapshot into a folder',
  usage: [
    'Usage: jetvault restore SNAP --target DIR [--include PATTERN]... [--device NAME]',
    '',
    'PATTERN matches snapshot paths: * within a name, ** across directories; a matching directory brings its contents.',
    '--device NAME makes "latest" mean the latest snapshot of that device.',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, target: { type: 'string', short: 't' }, include: { type: 'string', short: 'i', multiple: true }, device: { type: 'string' } },
  async run({ values, positionals }, io) {
    const [ref, ...extra] = positionals;
    if (ref === undefined || extra.length > 0) throw new UsageError('give exactly one snapshot');
    if (typeof values.target !== 'string') throw new UsageError('--target DIR is required');
    const target = values.target;
    return withRepository(values, io, 'shared', async (repo) => {
      const all = (await listSnapshots(repo)).filter((s) => typeof values.device !== 'string' || s.device === values.device);
      const snapshot = await findSnapshot(repo, ref, all);
      const include = (values.include as string[] | undefined) ?? [];
      // Totals of the whole snapshot; with --include only a part is restored, so no total then.
      const progress = ttyProgress(include.length === 0 ? { bytes: snapshot.summary.bytes, items: snapshot.summary.files } : {});
      const result = await restore(repo, snapshot, target, { include, onProgress: progress.onProgress });
      progress.done();
      for (const w of result.warnings) io.err(`warning: ${w}`);
      if (values.json) io.out(JSON.stringify({ snapshot: snapshot.id, target, ...result }));
      else io.out(`restored snapshot ${shortId(snapshot.id)} to ${target}: ${result.files} files, ${result.dirs} dirs, ${formatBytes(result.bytes)}`);
      return 0;
    });
  },
};
