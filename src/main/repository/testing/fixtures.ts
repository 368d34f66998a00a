/** Test helpers: fresh repositories with fast parameters and trees with every awkward case. */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, mkdtemp, open, readdir, lstat, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalBackend } from '../backend/local-backend';
import { Repository } from '../repo/repository';
import type { TreeNode } from '../snapshot/tree';
import { nodeAt } from '../../restore/snapshot-files';
import type { InitOptions } from '../repo/repository';

export const FAST: InitOptions = { chunker: { min: 4096, avg: 16384, max: 65536 }, packSize: 256 * 1024, kdf: { N: 1024, r: 8, p: 1 } };
export const PASSWORD = 'correct horse battery staple';

/** A fresh temp folder; under a test run's own folder (removed after the run, test-tmp.ts) when there is one. */
export async function tempDir(prefix = 'jv-'): Promise<string> {
  return mkdtemp(join(process.env.JETVAULT_TEST_TMP ?? tmpdir(), prefix));
}

/**
 * The node a snapshot's tree holds for the folder at `abs`: its metadata and subtree, what a backup
 * stored of that folder itself. Tests that back up a temp folder twice compare this, not the whole
 * tree: the tree also holds the folders above it, and the run's shared temp folder changes whenever
 * a test file running beside this one makes a folder in it.
 */
export async function folderNode(repo: Repository, tree: string, abs: string): Promise<TreeNode> {
  const node = await nodeAt(repo, tree, abs);
  if (!node) throw new Error(`${abs} is not in tree ${tree}`);
  return node;
}

/** Flips the lowest bit of the byte at `offset` of `file` in place (damage a test expects to be caught). */
export async function flipByte(file: string, offset: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0x01;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}

export async function newRepo(options: InitOptions = FAST): Promise<{ dir: string; repo: Repository }> {
  const dir = join(await tempDir('jv-repo-'), 'repo');
  await mkdir(dir);
  return { dir, repo: await Repository.init(new LocalBackend(dir), PASSWORD, options) };
}

/** A tree with odd names, links, modes and times; returns the plaintext markers it contains. */
export async function makeAwkwardTree(root: string): Promise<string[]> {
  await mkdir(join(root, 'sub/deeper/empty'), { recursive: true });
  await mkdir(join(root, 'empty-dir'));
  const names = ['new\nline', '-leading-dash', 'ünïcødé-日本語', 'x'.repeat(200), ' space ', 'tab\tname', 'star*?[x]'];
  for (const [i, name] of names.entries()) await writeFile(join(root, 'sub', name), `file ${i} SECRET-NAME-CONTENT-${i}\n`);
  await writeFile(join(root, 'sub/deeper/big.bin'), randomBytes(300_000));
  await writeFile(join(root, 'text.sql'), Array.from({ length: 5000 }, (_, i) => `INSERT INTO t VALUES (${i}, 'PLAINTEXT-MARKER');`).join('\n'));
  await writeFile(join(root, 'zero-length'), '');
  await writeFile(join(root, 'exec.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(root, 'exec.sh'), 0o750);
  await writeFile(join(root, 'setgid-ro'), 'ro');
  await chmod(join(root, 'setgid-ro'), 0o2444);
  await link(join(root, 'sub/deeper/big.bin'), join(root, 'hardlink-to-big'));
  await symlink('sub/deeper/big.bin', join(root, 'link-rel'));
  await symlink('/nonexistent/dangling target', join(root, 'link-dangling'));
  await utimes(join(root, 'text.sql'), 1_600_000_000.123, 1_600_000_000.123);
  await utimes(join(root, 'empty-dir'), 1_500_000_000, 1_500_000_000);
  return ['SECRET-NAME-CONTENT', 'PLAINTEXT-MARKER', 'ünïcødé', 'new\nline', 'leading-dash'];
}

export interface Described {
  type: string;
  mode: number;
  size: number;
  mtimeMs: number;
  content?: string;
  target?: string;
  ino?: number;
}

/** Everything restore must reproduce, keyed by relative path (hard links as shared inode groups). */
export async function describeTree(root: string): Promise<Record<string, Described>> {
  const out: Record<string, Described> = {};
  const inodes = new Map<bigint, number>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      // Exact (bigint) stats: the millisecond from the nanoseconds, as `Math.floor(st.mtimeMs)` floored a
      // double that rounds …605.999999 ms up to 606, while the restored time, within half a microsecond, read 605.
      const st = await lstat(path, { bigint: true });
      const d: Described = { type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file', mode: Number(st.mode & 0o7777n), size: st.isFile() ? Number(st.size) : 0, mtimeMs: Number(st.mtimeNs / 1_000_000n) };
      if (st.isFile()) {
        d.content = (await readFile(path)).toString('base64');
        if (st.nlink > 1n) {
          if (!inodes.has(st.ino)) inodes.set(st.ino, inodes.size + 1);
          d.ino = inodes.get(st.ino)!;
        }
      }
      if (st.isSymbolicLink()) {
        d.target = await readlink(path);
        delete (d as Partial<Described>).mode;
      }
      out[key] = d;
      if (st.isDirectory()) await walk(path, key);
    }
  };
  await walk(root, '');
  return out;
}
