/**
 * Vitest global setup: one parent folder for the temp folders a test run makes through the
 * repository fixtures (`JETVAULT_TEST_TMP`, inherited by the test processes), removed when the run
 * ends — a run of the suite otherwise left ~1,000 folders and several GB in the system temp folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jetvault-tests-'));
  process.env.JETVAULT_TEST_TMP = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
