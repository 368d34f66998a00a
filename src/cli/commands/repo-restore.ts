import { restore } from '../../main/repository/restorer/restorer';
import { findSnapshot, listSnapshots } from '../../main/repository/snapshot/snapshot';
import type { Command } from '../command';
import { UsageError } from '../command';
import { EXIT, formatBytes, REPO_OPTIONS, REPO_USAGE, shortId, ttyProgress, withRepository } from './repo-common';

export const repoRestoreCommand: Command = {
  name: 'restore',
  summary: 'restore a snapshot into a folder, or onto a device',
  usage: [
    'Usage: jetvault restore SNAP --target DIR [--include PATTERN]... [--device NAME]',
    '       jetvault restore SNAP --device NAME [--source S]... [--include PATTERN]... [--at TIME] [--dry-run] [--yes] [--json]',
    '                             [--into-folder DIR] [--into-database NAME] [--into-file PATH] [--check-contents]',
    '',
    'PATTERN matches snapshot paths: * within a name, ** across directories; a matching directory brings its contents.',
    'With --target, the snapshot goes to a folder on this machine (--device NAME makes "latest" mean that device\'s).',
    'Without --target, it is restored onto the device: staged, verified, swapped in with its services stopped, and',
    'checked; SNAP "latest" with --at TIME takes the run in force at that time (whole device, or --source ones).',
    'The plan is printed first; a restore that replaces data needs --yes (exit 3 without). The previous state',
    'stays on the device until `jetvault keep --device NAME` or `jetvault rollback --device NAME`.',
    'Beside the live data instead, for inspection (nothing live changes, nothing existing is overwritten):',
    '--into-folder DIR (files, below DIR on the device), --into-database NAME (a new PostgreSQL/MySQL',
    'database), --into-file PATH (a new SQLite file). --check-contents also reads the files that look unchanged',
    '(same size, time and mode) on the device and in the repository, and restores those whose contents differ.',
    REPO_USAGE,
  ].join('\n'),
  options: {
    ...REPO_OPTIONS,
    target: { type: 'string', short: 't' },
    include: { type: 'string', short: 'i', multiple: true },
    device: { type: 'string' },
    source: { type: 'string', multiple: true },
    at: { type: 'string' },
    'dry-run': { type: 'boolean', short: 'n' },
    yes: { type: 'boolean', short: 'y' },
    'into-folder': { type: 'string' },
    'into-database': { type: 'string' },
    'into-file': { type: 'string' },
    'check-contents': { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [ref, ...extra] = positionals;
    if (ref === undefined || extra.length > 0) throw new UsageError('give exactly one snapshot');
    if (typeof values.target !== 'string') {
      if (typeof values.device !== 'string') throw new UsageError('give --target DIR (to this machine) or --device NAME (onto the device)');
      return (await import('./device-restore')).deviceRestore(values, ref, io);
    }
    if (values.source || values.at || values['dry-run'] || values.yes || values['into-folder'] || values['into-database'] || values['into-file'] || values['check-contents']) {
      throw new UsageError('--source, --at, --dry-run, --yes, --into-… and --check-contents are for restores onto a device (without --target)');
    }
    const target = values.target;
    return withRepository(values, io, 'read', async (repo) => {
      const all = (await listSnapshots(repo)).filter((s) => typeof values.device !== 'string' || s.device === values.device);
      const snapshot = await findSnapshot(repo, ref, all);
      const include = (values.include as string[] | undefined) ?? [];
      // Totals of the whole snapshot; with --include only a part is restored, so no total then.
      const progress = ttyProgress(include.length === 0 ? { bytes: snapshot.summary.bytes, items: snapshot.summary.files } : {});
      const result = await restore(repo, snapshot, target, { include, onProgress: progress.onProgress });
      progress.done();
      for (const w of result.warnings) io.err(`warning: ${w}`);
      if (include.length > 0 && result.files + result.dirs === 0) {
        // A mistyped pattern restored nothing and said "0 files" with success.
        io.err(`jetvault: nothing in snapshot ${shortId(snapshot.id)} matches ${include.map((p) => `--include ${JSON.stringify(p)}`).join(' ')}; \`jetvault ls ${shortId(snapshot.id)} PATH\` shows what it holds`);
        return EXIT.failure;
      }
      if (values.json) io.out(JSON.stringify({ snapshot: snapshot.id, target, ...result }));
      else io.out(`restored snapshot ${shortId(snapshot.id)} to ${target}: ${result.files} files, ${result.dirs} dirs, ${formatBytes(result.bytes)}`);
      return 0;
    });
  },
};
