import { check } from '../../main/repository/checker/checker';
import type { Command } from '../command';
import { UsageError } from '../command';
import { REPO_OPTIONS, REPO_USAGE, shortId, ttyProgress, withRepository } from './repo-common';
import { counted } from '../../shared/plural';

export const repoCheckCommand: Command = {
  name: 'check',
  summary: 'verify the repository (structure, or data too)',
  usage: [
    'Usage: jetvault check [--read-data | --read-data-subset P%] [--json]',
    '',
    'Without options: every pack, index, snapshot and tree is checked, no file data is read.',
    '--read-data decrypts and verifies all data; --read-data-subset 10% a random tenth of the packs.',
    'Exit code 1 when a problem is found; damaged packs are listed with the snapshots and files they affect.',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, 'read-data': { type: 'boolean' }, 'read-data-subset': { type: 'string' } },
  async run({ values }, io) {
    let subset: number | undefined;
    if (typeof values['read-data-subset'] === 'string') {
      const m = /^(\d+(?:\.\d+)?)%?$/.exec(values['read-data-subset']);
      if (!m || Number(m[1]) <= 0 || Number(m[1]) > 100) throw new UsageError('--read-data-subset needs a percentage like 10%');
      subset = Number(m[1]) / 100;
    }
    return withRepository(values, io, 'read', async (repo) => {
      const progress = ttyProgress();
      const report = await check(repo, { readData: values['read-data'] === true || subset !== undefined, ...(subset !== undefined ? { subset } : {}), onProgress: progress.onProgress });
      progress.done();
      if (values.json) {
        io.out(JSON.stringify(report, null, 2));
        return report.ok ? 0 : 1;
      }
      for (const w of report.warnings) io.err(`warning: ${w}`);
      for (const e of report.errors) io.err(`error: ${e}`);
      io.out(`${report.snapshots} snapshots, ${report.packs} packs checked${report.packsRead > 0 ? `; ${report.packsRead} packs (${report.blobsRead} blobs) read and verified` : ''}`);
      if (report.affected.length > 0) {
        io.out('\nDamaged data affects:');
        for (const a of report.affected) io.out(`  snapshot ${shortId(a.snapshot)} (${a.time}): /${a.path}`);
      }
      io.out(report.ok ? 'no errors were found' : `${counted(report.errors.length, 'error')} found`);
      if (report.damagedPacks.length > 0) {
        // While a damaged pack is indexed, every backup reuses its damaged data: say how to store it again.
        io.out(
          `\nTo store the damaged data again: \`jetvault repair-packs ${report.damagedPacks.map((id) => id.slice(0, 12)).join(' ')}\` (keeps what still reads), then back up the affected devices or paths again; a copy of the repository may still hold the files meanwhile.`,
        );
      }
      return report.ok ? 0 : 1;
    });
  },
};
