/**
 * Private key files as OpenSSH takes them: one that other users of this computer can read or change
 * (any group or other permission bit, on a file of the user's own) is refused — ssh says
 * "UNPROTECTED PRIVATE KEY FILE" and ignores it — with the command that fixes it.
 */
import { statSync } from 'node:fs';
import type { Stats } from 'node:fs';

/** Why `file` may not be used as a private key, or null. */
export function keyPermissionProblem(file: string, stats: Pick<Stats, 'mode' | 'uid'>): string | null {
  if (process.platform === 'win32' || stats.uid !== process.getuid?.()) return null;
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) === 0) return null;
  return `the key file ${file} can be read by other users of this computer (mode 0${mode.toString(8)}); ssh refuses such a key: run chmod 600 ${file}`;
}

/** keyPermissionProblem for a file by name (null when it cannot be looked at: reading it says why). */
export function keyFileProblem(file: string): string | null {
  try {
    return keyPermissionProblem(file, statSync(file));
  } catch {
    return null;
  }
}
