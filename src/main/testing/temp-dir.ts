import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';

/** A fresh temp directory per call (inside a test), removed when that test finishes. */
export function tempDir(prefix = 'jetvault-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  onTestFinished(() => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      spawnSync('rm', ['-rf', '--', dir]); // folders nested past PATH_MAX: Node's rm names them by their whole path
    }
  });
  return dir;
}
