import { mkdir } from 'node:fs/promises';
import { backendForInit } from '../../main/repository/backend/open-backend';
import { Repository } from '../../main/repository/repo/repository';
import type { Command } from '../command';
import { readNewPassword, repoPath, reportFailures, REPO_OPTIONS, REPO_USAGE } from './repo-common';

export const repoInitCommand: Command = {
  name: 'init',
  summary: 'create an encrypted repository',
  usage: ['Usage: jetvault init [--repo DIR] [--password-file FILE]', REPO_USAGE].join('\n'),
  options: REPO_OPTIONS,
  async run({ values }, io) {
    return reportFailures(io, async () => {
      const dir = repoPath(values, io.env);
      const password = io.env.JETVAULT_PASSWORD ?? (await readNewPassword(io, values['password-file']));
      if (!/^(s3|sftp):/.test(dir)) await mkdir(dir, { recursive: true });
      const backend = await backendForInit(dir, io.env);
      const repo = await Repository.init(backend, password).finally(() => backend.close?.());
      if (values.json) io.out(JSON.stringify({ id: repo.config.id, repository: dir }));
      else io.out(`created repository ${repo.config.id.slice(0, 10)} at ${dir}\n\nKeep the password safe: without it the data cannot be recovered.`);
      return 0;
    });
  },
};
