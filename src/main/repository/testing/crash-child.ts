/**
 * Child process for the crash tests: `backup REPO SRC`, `backup-many REPO SRC...` (one backup per
 * source, all at once) or `restore REPO SNAP TARGET`, with the test password. Prints "running" once the repository is open, so the parent's kill lands mid-work.
 */
import { backup } from '../archiver/archiver';
import { LocalBackend } from '../backend/local-backend';
import { withLock } from '../lock/lock';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { findSnapshot } from '../snapshot/snapshot';
import { LocalSource } from '../walker/local-walker';
import { PASSWORD } from './fixtures';

const [mode, repoDir, a, b, ...more] = process.argv.slice(2);
const repo = await Repository.open(new LocalBackend(repoDir!), PASSWORD);
process.stdout.write('running\n');
if (mode === 'backup-many') {
  const sources = [a!, ...(b === undefined ? [] : [b]), ...more];
  await Promise.all(sources.map((src) => withLock(repo, false, (lease) => backup(repo, new LocalSource([src]), { workers: 2, lease }))));
} else await withLock(repo, false, async (lease) => {
  if (mode === 'backup') await backup(repo, new LocalSource([a!]), { workers: 2, lease });
  else await restore(repo, await findSnapshot(repo, a!), b!);
});
process.stdout.write('done\n');
