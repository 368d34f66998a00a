/** Test helper: where a secret appears in plain text under a folder (history, WAL, logs, caches). */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The files under `dir` whose bytes contain `secret` (UTF-8), as paths relative to `dir`. */
export function filesHolding(dir: string, secret: string): string[] {
  const needle = Buffer.from(secret, 'utf8');
  const found: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && readFileSync(full).includes(needle)) found.push(path.relative(dir, full));
    }
  };
  walk(dir);
  return found;
}
