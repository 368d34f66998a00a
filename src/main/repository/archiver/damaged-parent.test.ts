import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NAMES } from '../backend/backend';
import { check } from '../checker/checker';
import { rebuildIndex } from '../index/rebuild-index';
import { restore } from '../restorer/restorer';
import { findSnapshot } from '../snapshot/snapshot';
import { LocalSource } from '../walker/local-walker';
import { newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalBackend } from '../backend/local-backend';
import { Repository } from '../repo/repository';
import { backup } from './archiver';

describe('a backup after rebuild-index left a damaged pack out', () => {
  it('stores the files whose chunks the repository lost again, instead of reusing them from the parent', { timeout: 60_000 }, async () => {
    const src = await tempDir('jv-src-');
    const big = Buffer.alloc(600 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919 + (i >> 9)) & 0xff;
    await writeFile(join(src, 'big'), big);
    await writeFile(join(src, 'small'), 'small file\n');
    const made = await newRepo();
    const dir = made.dir;
    let repo = made.repo;
    const first = await backup(repo, new LocalSource([src]));

    // The largest pack (data of `big`) is truncated, as a disk or a copy tool can leave it.
    const packs = await repo.backend.list(NAMES.data);
    const largest = packs.reduce((a, b) => (b.size > a.size ? b : a));
    await truncate(join(dir, largest.name), Math.floor(largest.size / 2));
    const rebuilt = await rebuildIndex(repo);
    expect(rebuilt.unreadable).toEqual([NAMES.packId(largest.name)]);
    // The next command opens the repository afresh (as `jetvault backup` after `jetvault rebuild-index`).
    repo = await Repository.open(new LocalBackend(dir), PASSWORD);

    // check does not call the damaged pack a leftover that the next backup reuses or prune removes.
    const damaged = await check(repo);
    expect(damaged.warnings).toEqual([expect.stringMatching(/^pack \w+ is not indexed and is damaged \(.*bad header length\): its blobs cannot be read/)]);
    expect(damaged.errors.join('\n')).toMatch(/blobs? referenced by snapshots (is|are) not in the index/);

    // The files are unchanged since the parent: the new snapshot must still hold all of them.
    const second = await backup(repo, new LocalSource([src]), { parent: await findSnapshot(repo, first.id) });
    expect(second.snapshot.summary.filesRead).toBeGreaterThan(0);
    const target = await tempDir('jv-dst-');
    await restore(repo, await findSnapshot(repo, second.id), target);
    const restored = join(target, src.replace(/^\//, ''));
    expect((await readFile(join(restored, 'big'))).equals(big)).toBe(true);
    expect((await stat(join(restored, 'small'))).size).toBe(11);
    // The chunks stored again are the ones the first snapshot lost: it is whole again too.
    const report = await check(repo, { readData: true });
    expect(report.affected).toEqual([]);
    expect(report.errors).toEqual([]);
  });
});
