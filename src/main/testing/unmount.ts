/** Test helper: unmounts a test's small file system, retrying while files on it are still being closed. */
import { execFileSync } from 'node:child_process';

/**
 * Up to 10 s: pack uploads or a database in flight when a run failed may still hold files open (under
 * the whole suite's load that took over 5 s once). Then detached lazily (`umount -l`): the file system
 * goes once its last file is closed, and the test — its assertions already made — does not fail on it.
 */
export async function unmount(mount: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      execFileSync('umount', [mount], { stdio: 'ignore' });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  execFileSync('umount', ['-l', mount]);
}
