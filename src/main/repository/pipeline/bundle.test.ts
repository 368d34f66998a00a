/**
 * The workers run source text taken from functions (findBoundary, metaFromStat...). A release build
 * minifies and renames; this checks the engine still backs up and restores from a minified bundle.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../testing/fixtures';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

describe('engine in a minified bundle', () => {
  it('backs up and restores with the worker threads', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const entry = join(dir, 'entry.ts');
    await writeFile(
      entry,
      `
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { LocalBackend } from ${JSON.stringify(here('../backend/local-backend.ts'))};
import { Repository } from ${JSON.stringify(here('../repo/repository.ts'))};
import { backup } from ${JSON.stringify(here('../archiver/archiver.ts'))};
import { restore } from ${JSON.stringify(here('../restorer/restorer.ts'))};
import { findSnapshot } from ${JSON.stringify(here('../snapshot/snapshot.ts'))};
import { LocalSource } from ${JSON.stringify(here('../walker/local-walker.ts'))};
const dir = ${JSON.stringify(dir)};
mkdirSync(dir + '/repo'); mkdirSync(dir + '/src');
writeFileSync(dir + '/src/small', 'hello');
writeFileSync(dir + '/src/large', Buffer.alloc(300_000, 7));
const repo = await Repository.init(new LocalBackend(dir + '/repo'), 'pw', { kdf: { N: 1024, r: 8, p: 1 }, chunker: { min: 4096, avg: 16384, max: 65536 } });
const { id } = await backup(repo, new LocalSource([dir + '/src']));
await restore(repo, await findSnapshot(repo, id), dir + '/out');
const out = dir + '/out' + dir + '/src/';
console.log(readFileSync(out + 'small', 'utf8'), readFileSync(out + 'large').length);
`,
    );
    const outfile = join(dir, 'bundle.mjs');
    await build({ entryPoints: [entry], bundle: true, minify: true, platform: 'node', format: 'esm', target: 'node20', outfile, logLevel: 'error' });
    const { stdout } = await promisify(execFile)(process.execPath, [outfile]);
    expect(stdout.trim()).toBe('hello 300000');
  });
});
