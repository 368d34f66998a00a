import { join } from 'node:path';
import { chmod, mkdir, open, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { LocalSource } from '../walker/local-walker';
import { restore } from '../restorer/restorer';
import { findSnapshot, listSnapshots, loadTree, treeLoader, walkTree } from '../snapshot/snapshot';
import { Repository } from '../repo/repository';
import { LocalBackend } from '../backend/local-backend';
import { describeTree, folderNode, makeAwkwardTree, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { backup } from './archiver';

const snapshotRoot = (src: string): string => src.replace(/^\//, '');

describe('backup and restore round trip', () => {
  it('restores a sparse file (an image with holes) sparse, byte-exact, by the workers and the main thread', async () => {
    const src = await tempDir('jv-src-');
    const image = join(src, 'disk.img');
    // 32 MiB: 5 KiB of data at the start, 4 KiB at 20 MiB, the rest holes; then a file ending in zeros.
    await writeFile(image, Buffer.alloc(5 * 1024, 7));
    await truncate(image, 32 * 1024 * 1024);
    const handle = await open(image, 'r+');
    await handle.write(Buffer.alloc(4096, 9), 0, 4096, 20 * 1024 * 1024);
    await handle.close();
    await writeFile(join(src, 'tail.bin'), Buffer.concat([Buffer.from('header'), Buffer.alloc(1024 * 1024)]));
    const { repo } = await newRepo();
    const snap = await findSnapshot(repo, (await backup(repo, new LocalSource([src]))).id);
    for (const workers of [2, 0]) {
      const target = await tempDir('jv-dst-');
      await restore(repo, snap, target, { workers });
      const restored = join(target, snapshotRoot(src));
      expect(await describeTree(restored), `workers: ${workers}`).toEqual(await describeTree(src));
      const { size, blocks } = await stat(join(restored, 'disk.img'));
      expect(size).toBe(32 * 1024 * 1024);
      expect(blocks * 512, `workers: ${workers}`).toBeLessThan(4 * 1024 * 1024);
      expect((await readFile(join(restored, 'tail.bin'))).length).toBe(1024 * 1024 + 6);
    }
  });

  it('restores every awkward name and file type byte-exact', async () => {
    const src = await tempDir('jv-src-');
    const markers = await makeAwkwardTree(src);
    const { dir, repo } = await newRepo();
    const first = await backup(repo, new LocalSource([src]), { workers: 2 });
    expect(first.warnings).toEqual([]);
    expect(first.snapshot.summary.files).toBeGreaterThan(10);

    const target = await tempDir('jv-dst-');
    const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);
    const snap = await findSnapshot(reopened, 'latest');
    await restore(reopened, snap, target);
    expect(await describeTree(join(target, snapshotRoot(src)))).toEqual(await describeTree(src));
    // The main-thread path (used for remote backends) restores the same.
    const plain = await tempDir('jv-dst-');
    await restore(reopened, snap, plain, { workers: 0 });
    expect(await describeTree(join(plain, snapshotRoot(src)))).toEqual(await describeTree(src));

    // No plaintext content or file name appears anywhere in the repository's files.
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else files.push(join(d, e.name));
      }
    };
    await walk(dir);
    for (const file of files) {
      const bytes = await readFile(file);
      for (const marker of markers) expect(bytes.includes(Buffer.from(marker)), `${marker} in ${file}`).toBe(false);
    }
  });

  it('a backup compares with its parent through the tree loader it is given, which reads each tree once', async () => {
    const src = await tempDir('jv-src-');
    await makeAwkwardTree(src);
    const { repo } = await newRepo();
    const parent = await findSnapshot(repo, (await backup(repo, new LocalSource([src]))).id);
    const load = treeLoader(repo);
    const first = await load(parent.tree);
    expect(await load(parent.tree)).toBe(first);
    expect(await loadTree(repo, parent.tree)).toEqual(first);
    const asked: string[] = [];
    const second = await backup(repo, new LocalSource([src]), { parent, loadTree: (id) => (asked.push(id), load(id)) });
    // Every directory of the parent was compared through it (and nothing was read again).
    const dirs: string[] = [];
    for await (const { node } of walkTree(repo, parent.tree)) if (node.type === 'dir' && node.subtree) dirs.push(node.subtree);
    expect(new Set(asked)).toEqual(new Set([parent.tree, ...dirs]));
    expect(second.snapshot.summary.filesRead).toBe(0);
    expect(await folderNode(repo, second.snapshot.tree, src)).toEqual(await folderNode(repo, parent.tree, src));
  });

  it('a second backup of unchanged data adds under 1% and reads no file', async () => {
    const src = await tempDir('jv-src-');
    await makeAwkwardTree(src);
    const { repo } = await newRepo();
    const first = await backup(repo, new LocalSource([src]));
    const parent = await findSnapshot(repo, first.id);
    const second = await backup(repo, new LocalSource([src]), { parent });
    expect(second.snapshot.summary.filesRead).toBe(0);
    expect(second.snapshot.summary.bytesAdded).toBeLessThan(first.snapshot.summary.bytesAdded * 0.01);
    // A changed file is read again and only its new chunks are added.
    await writeFile(join(src, 'text.sql'), 'changed');
    const third = await backup(repo, new LocalSource([src]), { parent: await findSnapshot(repo, second.id) });
    expect(third.snapshot.summary.filesRead).toBe(1);
    expect((await listSnapshots(repo)).length).toBe(3);
    const paths: string[] = [];
    for await (const { path } of walkTree(repo, third.snapshot.tree)) paths.push(path);
    expect(paths).toContain(`${snapshotRoot(src)}/sub/new\nline`);
  });

  it('an unchanged directory keeps its tree id; a chmod deep down gives new trees up to the root', async () => {
    const src = await tempDir('jv-src-');
    for (const d of ['a/deep', 'b']) await mkdir(join(src, d), { recursive: true });
    await writeFile(join(src, 'a/deep/run.sh'), 'echo hi\n');
    await writeFile(join(src, 'b/same.txt'), 'same\n');
    const { repo } = await newRepo();
    const trees = async (tree: string): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for await (const { path, node } of walkTree(repo, tree)) if (node.subtree) out.set(path, node.subtree);
      return out;
    };
    const first = await backup(repo, new LocalSource([src]));
    const second = await backup(repo, new LocalSource([src]), { parent: await findSnapshot(repo, first.id) });
    // (The snapshot's root tree holds /tmp itself, which other processes change meanwhile.)
    expect((await trees(second.snapshot.tree)).get(snapshotRoot(src))).toBe((await trees(first.snapshot.tree)).get(snapshotRoot(src)));
    // Only the mode (and ctime) changes: no content is read, but the node and its ancestors differ.
    await chmod(join(src, 'a/deep/run.sh'), 0o755);
    const third = await backup(repo, new LocalSource([src]), { parent: await findSnapshot(repo, second.id) });
    const [before, after] = [await trees(second.snapshot.tree), await trees(third.snapshot.tree)];
    const root = snapshotRoot(src);
    expect(after.get(`${root}/b`)).toBe(before.get(`${root}/b`));
    for (const changed of [`${root}/a/deep`, `${root}/a`, root]) expect(after.get(changed), changed).not.toBe(before.get(changed));
    const target = await tempDir('jv-dst-');
    await restore(repo, await findSnapshot(repo, third.id), target);
    expect((await stat(join(target, root, 'a/deep/run.sh'))).mode & 0o777).toBe(0o755);
  });

  it('restores only the paths matching include patterns', async () => {
    const src = await tempDir('jv-src-');
    await makeAwkwardTree(src);
    const { repo } = await newRepo();
    const { id } = await backup(repo, new LocalSource([src]));
    const target = await tempDir('jv-dst-');
    await restore(repo, await findSnapshot(repo, id), target, { include: [`${src}/sub/*dash`, '**/*.sql'] });
    const got = Object.keys(await describeTree(join(target, snapshotRoot(src)))).filter((k) => !k.endsWith('/') );
    expect(got.sort()).toEqual(['sub', 'sub/-leading-dash', 'text.sql']);
  });

  it('a file that fails to read is counted and skipped; the snapshot holds everything else', async () => {
    const { repo } = await newRepo();
    const meta = { mode: 0o644, uid: 0, gid: 0, mtime: '0', size: 5 };
    const source = {
      paths: ['/x'],
      kind: 'test',
      warnings: [],
      async *entries() {
        await Promise.resolve();
        yield { path: 'x', meta: { ...meta, type: 'dir' as const, size: 0 } };
        yield { path: 'x/bad', meta: { ...meta, type: 'file' as const }, open: async function* (): AsyncIterable<Buffer> { await Promise.resolve(); yield Buffer.from('par'); throw new Error('EIO: device vanished'); } };
        yield { path: 'x/good', meta: { ...meta, type: 'file' as const }, open: async function* (): AsyncIterable<Buffer> { await Promise.resolve(); yield Buffer.from('hello'); } };
      },
    };
    const result = await backup(repo, source);
    expect(result.snapshot.summary.errors).toBe(1);
    expect(result.warnings[0]).toMatchObject({ path: 'x/bad' });
    const paths: string[] = [];
    for await (const { path } of walkTree(repo, result.snapshot.tree)) paths.push(path);
    expect(paths).toEqual(['x', 'x/good']);
  });

  it('a source that skips ancestor folders still makes a well-formed tree, and its next run reuses the unchanged parts', async () => {
    const { repo } = await newRepo();
    const meta = { mode: 0o644, uid: 0, gid: 0, mtime: '1', size: 5 };
    const file = (path: string, inode: string) => ({ path, meta: { ...meta, type: 'file' as const, inode, ctime: '1' }, open: async function* (): AsyncIterable<Buffer> { await Promise.resolve(); yield Buffer.from(path.slice(-5).padStart(5, '-')); } });
    // As a device's listing of /etc/app and /opt/app/.env: neither /etc nor /opt is an entry.
    const source = (extra: ReturnType<typeof file>[] = []) => ({
      paths: ['/etc/app', '/opt/app/.env'],
      kind: 'test',
      warnings: [],
      async *entries() {
        await Promise.resolve();
        yield { path: 'etc/app', meta: { ...meta, type: 'dir' as const, size: 0 } };
        yield file('etc/app/a.conf', '1:1');
        yield* extra;
        yield file('opt/app/.env', '1:2');
        yield { path: 'opt/app/link', meta: { ...meta, type: 'symlink' as const, size: 0, target: '.env' } };
      },
    });
    const first = await backup(repo, source());
    const paths = async (tree: string) => {
      const all: string[] = [];
      for await (const { path } of walkTree(repo, tree)) all.push(path);
      return all;
    };
    expect(await paths(first.snapshot.tree)).toEqual(['etc', 'etc/app', 'etc/app/a.conf', 'opt', 'opt/app', 'opt/app/.env', 'opt/app/link']);
    expect(first.snapshot.summary).toMatchObject({ files: 2, filesRead: 2, dirs: 4 });
    // The next run finds the parent's nodes through the made-up folders: nothing is read again, and
    // the folders that did not change keep their trees.
    const second = await backup(repo, source([file('etc/app/b.conf', '1:3')]), { parent: await findSnapshot(repo, first.id) });
    expect(second.snapshot.summary).toMatchObject({ files: 3, filesRead: 1 });
    expect(await paths(second.snapshot.tree)).toEqual(['etc', 'etc/app', 'etc/app/a.conf', 'etc/app/b.conf', 'opt', 'opt/app', 'opt/app/.env', 'opt/app/link']);
    const subtree = async (tree: string, name: string) => (await loadTree(repo, tree)).nodes.find((n) => n.name === name)?.subtree;
    expect(await subtree(second.snapshot.tree, 'opt')).toBe(await subtree(first.snapshot.tree, 'opt'));
    expect(await subtree(second.snapshot.tree, 'etc')).not.toBe(await subtree(first.snapshot.tree, 'etc'));
  });
});
