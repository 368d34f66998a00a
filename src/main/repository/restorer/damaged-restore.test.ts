import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { NAMES } from '../backend/backend';
import { findSnapshot, loadTree } from '../snapshot/snapshot';
import { LocalBackend } from '../backend/local-backend';
import { Repository } from '../repo/repository';
import { flipByte, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { restore } from './restorer';

describe('a restore from a repository with a damaged pack', () => {
  for (const workers of [undefined, 0]) {
    it(`restores every other file and names the damaged ones (${workers === 0 ? 'main thread, as for remote stores' : 'chunk workers'})`, { timeout: 60_000 }, async () => {
      const src = await tempDir('jv-src-');
      // "big" sorts first: its data is read before the files that are whole.
      await writeFile(join(src, 'big.bin'), randomBytes(600_000));
      await writeFile(join(src, 'config.yaml'), 'fps: 30\n');
      await writeFile(join(src, 'labels.txt'), 'cat\ndog\n');
      const { dir, repo } = await newRepo();
      const made = await backup(repo, new LocalSource([src]));
      // The pack holding the start of big.bin is cut short, as a failing disk leaves it.
      let tree = await loadTree(repo, made.snapshot.tree);
      for (const part of src.split('/').filter(Boolean)) tree = await loadTree(repo, tree.nodes.find((n) => n.name === part)!.subtree!);
      const big = tree.nodes.find((n) => n.name === 'big.bin')!;
      const pack = repo.index.get(big.content![0]!)!.pack;
      await truncate(join(dir, NAMES.pack(pack)), 1000);

      const target = await tempDir('jv-dst-');
      const restoring = restore(repo, await findSnapshot(repo, made.id), target, workers === 0 ? { workers: 0 } : {});
      await expect(restoring).rejects.toThrow(/^1 file could not be restored, their data is damaged or missing in the repository \(every other file was restored.*big\.bin/);
      const out = join(target, src.replace(/^\//, ''));
      expect(await readFile(join(out, 'config.yaml'), 'utf8')).toBe('fps: 30\n');
      expect(await readFile(join(out, 'labels.txt'), 'utf8')).toBe('cat\ndog\n');
    });
  }

  it("restores everything else when a subfolder's listing is damaged, and names the folder", { timeout: 60_000 }, async () => {
    const src = await tempDir('jv-src-');
    await mkdir(join(src, 'models'));
    await writeFile(join(src, 'models', 'a.bin'), randomBytes(50_000));
    await writeFile(join(src, 'config.yaml'), 'fps: 30\n');
    const { dir, repo } = await newRepo();
    const made = await backup(repo, new LocalSource([src]));
    let tree = await loadTree(repo, made.snapshot.tree);
    for (const part of src.split('/').filter(Boolean)) tree = await loadTree(repo, tree.nodes.find((n) => n.name === part)!.subtree!);
    const where = repo.index.get(tree.nodes.find((n) => n.name === 'models')!.subtree!)!;
    await flipByte(join(dir, NAMES.pack(where.pack)), where.offset + 10);
    const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);
    const target = await tempDir('jv-dst-');
    await expect(restore(reopened, await findSnapshot(reopened, made.id), target)).rejects.toThrow(/^the contents of 1 folder could not be restored.*models\/ \(the folder's contents\): .*authentication failed/);
    const out = join(target, src.replace(/^\//, ''));
    expect(await readFile(join(out, 'config.yaml'), 'utf8')).toBe('fps: 30\n');
    expect(await readdir(join(out, 'models'))).toEqual([]);
  });
});
