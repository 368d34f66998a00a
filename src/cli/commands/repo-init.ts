import { mkdir, stat } from 'node:fs/promises';
import { backendForInit } from '../../main/repository/backend/open-backend';
import { Repository } from '../../main/repository/repo/repository';
import { RepositoryError } from '../../main/repository/errors';
import type { Command } from '../command';
import { openOtherRepository, readNewPassword, readOtherPassword, repoPath, reportFailures, REPO_OPTIONS, REPO_USAGE } from './repo-common';

export const repoInitCommand: Command = {
  name: 'init',
  summary: 'create an encrypted repository',
  usage: [
    'Usage: jetvault init [--repo DIR] [--password-file FILE] [--copy-chunker-params-from REPO [--from-password-file FILE]]',
    '',
    '--copy-chunker-params-from REPO: the new repository cuts data into the same chunks with the same ids',
    'as REPO (its chunker parameters, chunker key and id key are copied; the encryption key is new),',
    'so `jetvault copy` between the two stores only what is missing and dedup carries over. Anyone',
    "holding either repository's password then knows both repositories' id and chunker keys (not the",
    "other's encryption key). REPO's password: --from-password-file, else $JETVAULT_FROM_PASSWORD, else a prompt.",
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, 'copy-chunker-params-from': { type: 'string' }, 'from-password-file': { type: 'string' } },
  async run({ values }, io) {
    return reportFailures(io, async () => {
      const dir = repoPath(values, io.env);
      const from = typeof values['copy-chunker-params-from'] === 'string' ? values['copy-chunker-params-from'] : null;
      // The source first: a wrong password there must not leave a half-made repository behind.
      const shareIdsWith = from
        ? await openOtherRepository(from, () => readOtherPassword(values['from-password-file'], 'JETVAULT_FROM_PASSWORD', io, `enter password of ${from}: `), io, `--copy-chunker-params-from ${from}`)
        : undefined;
      try {
        // --password-file first, as every other command reads it: the new repository must open with what was given.
        const file = values['password-file'];
        const password = typeof file === 'string' || io.env.JETVAULT_PASSWORD === undefined ? await readNewPassword(io, file) : io.env.JETVAULT_PASSWORD;
        if (!/^(s3|sftp):/.test(dir)) {
          if ((await stat(dir).catch(() => null))?.isDirectory() === false) throw new RepositoryError('invalid', `${dir} is a file: give a folder (new or empty) for the repository`);
          await mkdir(dir, { recursive: true });
        }
        const backend = await backendForInit(dir, io.env);
        const repo = await Repository.init(backend, password, shareIdsWith ? { shareIdsWith } : {}).finally(() => backend.close?.());
        if (values.json) io.out(JSON.stringify({ id: repo.config.id, repository: dir, ...(shareIdsWith ? { chunkerParamsFrom: shareIdsWith.config.id } : {}) }));
        else {
          io.out(`created repository ${repo.config.id.slice(0, 10)} at ${dir}`);
          if (shareIdsWith) io.out(`chunker parameters and ids shared with repository ${shareIdsWith.config.id.slice(0, 10)} at ${from}`);
          io.out('\nKeep the password safe: without it the data cannot be recovered.');
        }
        return 0;
      } finally {
        shareIdsWith?.backend.close?.();
      }
    });
  },
};
