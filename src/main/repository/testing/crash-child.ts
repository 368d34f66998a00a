/**
 * Child process for the crash tests: `backup REPO SRC`, `backup-many REPO SRC...` (one backup per
 * source, all at once), `restore REPO SNAP TARGET` or `copy REPO DEST` (every snapshot), with the
 * test password. Prints "running" once the work is under way (for a copy: once it stores its first
 * blobs), so the parent's kill lands mid-work.
 */
import { backup } from '../archiver/archiver';
import { LocalBackend } from '../backend/local-backend';
import { copyBetween } from '../copy/copy';
import { withLock } from '../lock/lock';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { findSnapshot } from '../snapshot/snapshot';
import { LocalSource } from '../walker/local-walker';
import { PASSWORD } from './fixtures';

const [mode, repoDir, a, b, ...more] = process.argv.slice(2);
const repo = await Repository.open(new LocalBackend(repoDir!), PASSWORD);
if (mode === 'copy') {
  let announced = false;
  const onProgress = (p: { blobsUploaded: number }): void => {
    if (announced || p.blobsUploaded === 0) return;
    announced = true;
    process.stdout.write('running\n');
  };
  await copyBetween(repo, await Repository.open(new LocalBackend(a!), PASSWORD), { workers: 2, onProgress });
} else {
  process.stdout.write('running\n');
  if (mode === 'backup-many') {
    const sources = [a!, ...(b === undefined ? [] : [b]), ...more];
    await Promise.all(sources.map((src) => withLock(repo, false, (lease) => backup(repo, new LocalSource([src]), { workers: 2, lease }))));
  } else {
    await withLock(repo, false, async (lease) => {
      if (mode === 'backup') await backup(repo, new LocalSource([a!]), { workers: 2, lease });
      else await restore(repo, await findSnapshot(repo, a!), b!);
    });
  }
}
process.stdout.write('done\n');
