/** Test helper: unmounts a test's small file system, retrying while files on it are still being closed. */
import { execFileSync } from 'node:child_process';

/** Up to 5 s: pack uploads or a database in flight when a run failed may still hold files open. */
export async function unmount(mount: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      execFileSync('umount', [mount], { stdio: 'ignore' });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  execFileSync('umount', [mount]);
}
