/**
 * Child process for the crash tests: `backup REPO SRC`, `backup-many REPO SRC...` (one backup per
 * source, all at once), `restore REPO SNAP TARGET` or `copy REPO DEST` (every snapshot), with the
 * test password. Prints "running" once the work is under way (for a backup: once it has read file
 * bytes; for a copy: once it stores its first blobs), so a kill right after it lands mid-work however
 * fast the machine is.
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
} else if (mode === 'backup' || mode === 'backup-many') {
  let announced = false;
  const onProgress = (p: { bytes?: number }): void => {
    if (announced || !p.bytes) return;
    announced = true;
    process.stdout.write('running\n');
  };
  const sources = mode === 'backup' ? [a!] : [a!, ...(b === undefined ? [] : [b]), ...more];
  await Promise.all(sources.map((src) => withLock(repo, false, (lease) => backup(repo, new LocalSource([src]), { workers: 2, lease, onProgress }))));
} else {
  process.stdout.write('running\n');
  await withLock(repo, false, async () => restore(repo, await findSnapshot(repo, a!), b!));
}
process.stdout.write('done\n');
