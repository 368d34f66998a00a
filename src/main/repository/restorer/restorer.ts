/**
 * Restore a snapshot (whole, or the paths matching include patterns) into a local folder:
 * byte-exact content, modes, owners (when permitted), mtimes, symlinks, hard links, empty dirs.
 * Each file is written to a temp name and renamed into place when complete, so an interrupted
 * restore never leaves a partial file under its real name. Directory metadata is applied last.
 * Files are not fsynced one by one (that halves restore speed of small files): after a power
 * loss, run the restore again. Nothing is written outside the target: names that are not one path
 * component, a name given twice in a folder, and symbolic links where the snapshot has a folder are
 * never followed out of it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, open, rename, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { LocalBackend } from '../backend/local-backend';
import { ChunkPool } from '../pipeline/chunk-pool';
import type { RestoreFileJob } from '../pipeline/chunk-pool';
import { AbortFlag, asError, isDamage, RepositoryError } from '../errors';
import type { ProgressFn } from '../errors';
import type { Repository } from '../repo/repository';
import { loadTree } from '../snapshot/snapshot';
import type { SnapshotWithId } from '../snapshot/snapshot';
import { isPlainName } from '../snapshot/tree';
import type { TreeNode } from '../snapshot/tree';
import { encodeName, fsPath, PATH_MAX, pathTooLong } from '../snapshot/names';
import { compilePatterns } from './patterns';
import { counted } from '../../../shared/plural';

export interface RestoreOptions {
  include?: string[];
  signal?: AbortSignal;
  onProgress?: ProgressFn;
  /** Files (main-thread path) or batches (worker path) restored concurrently. */
  concurrency?: number;
  /** Worker threads for local repositories (0: restore on the main thread). */
  workers?: number;
}

export interface RestoreResult {
  files: number;
  dirs: number;
  bytes: number;
  warnings: string[];
}

const TEMP = '.jetvault-restore-';
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;

/**
 * A blob of 64 KiB or more holding only zeros is not written but left a hole, so a sparse file (a
 * preallocated image) comes back sparse instead of as gigabytes of zeros; long zero runs are cut into
 * maximum-size chunks. As the restore workers do (restore-worker-source.ts).
 */
const HOLE_MIN = 64 * 1024;
let zeros = Buffer.alloc(0);
function isHole(data: Buffer): boolean {
  if (data.length < HOLE_MIN) return false;
  if (zeros.length < data.length) zeros = Buffer.alloc(data.length);
  return data.equals(zeros.subarray(0, data.length));
}

/**
 * Times are set as float seconds (Node's utimes), which resolve ~0.24 µs at today's dates and are
 * truncated to ns by libuv. Aiming at the middle of the microsecond keeps the restored time within
 * half a microsecond of the stored one and never below its microsecond (or millisecond) boundary.
 */
function nsToSeconds(ns: string): number {
  return (Number(BigInt(ns) / 1000n) + 0.5) / 1e6;
}

/**
 * Whether a node's name can be written as one entry of a folder on this computer: one path component
 * (isPlainName) and, on Windows, without a backslash (a separator there: `..\\..\\x` from a Linux
 * device would leave the folder) or a colon (a drive, or an NTFS stream of another file).
 */
export function localName(name: string, platform: NodeJS.Platform = process.platform): boolean {
  return isPlainName(name) && (platform !== 'win32' || !/[\\:]/.test(name));
}


export async function restore(repo: Repository, snapshot: SnapshotWithId, target: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const { onProgress } = options;
  const aborted = new AbortFlag(options.signal);
  const match = compilePatterns(options.include ?? []);
  const result: RestoreResult = { files: 0, dirs: 0, bytes: 0, warnings: [] };
  const canChown = process.getuid?.() === 0;
  const me = { uid: process.getuid?.() ?? -1, gid: process.getgid?.() ?? -1 };
  // Directories known to exist: saves a mkdir per file (restores are syscall-bound on small files).
  const made = new Set<string>();
  const root = resolve(target);
  const inside = root.endsWith(sep) ? root : `${root}${sep}`;
  // Below the target each folder is made (or found) one level at a time, and a symbolic link where
  // the snapshot has a folder (left by an earlier restore into the same target) is replaced by the
  // folder, as tar does: what is restored into it never follows a link out of the target.
  const ensureDir = async (dir: string): Promise<void> => {
    if (made.has(dir)) return;
    const parent = dirname(dir);
    if (dir === root || parent === dir || !dir.startsWith(inside)) {
      await mkdir(fsPath(dir), { recursive: true });
      made.add(dir);
      return;
    }
    await ensureDir(parent);
    const found = await lstat(fsPath(dir)).catch(() => null);
    if (found?.isSymbolicLink()) await rm(fsPath(dir));
    if (!found?.isDirectory()) await mkdir(fsPath(dir));
    made.add(dir);
  };
  const hardLinks = new Map<string, string>();
  const dirMeta: { path: string; node: TreeNode }[] = [];
  const running = new Set<Promise<void>>();
  const limit = options.concurrency ?? 4;
  const state: { failure: Error | null } = { failure: null };
  // Files whose data the repository lost, and folders whose listing it lost: the others are still
  // restored, and these are named at the end.
  const damaged: string[] = [];
  let damagedFolders = 0;

  // Paths are strings here (non-UTF-8 bytes as lone surrogates, see snapshot/names.ts); every
  // file system call gets them through fsPath, so such names are restored byte-exact.
  const ownAndTime = async (name: string, node: TreeNode): Promise<void> => {
    const path = fsPath(name);
    const owned = node.uid === me.uid && node.gid === me.gid;
    if (canChown && !owned) await (node.type === 'symlink' ? lchown(path, node.uid, node.gid) : chown(path, node.uid, node.gid)).catch(() => undefined);
    if (node.type !== 'symlink') await chmod(path, node.mode);
    const t = nsToSeconds(node.mtime);
    await (node.type === 'symlink' ? lutimes(path, t, t) : utimes(path, t, t));
  };

  const writeFile = async (path: string, node: TreeNode): Promise<void> => {
    const temp = join(dirname(path), `${TEMP}${randomBytes(6).toString('hex')}`);
    const handle = await open(fsPath(temp), 'wx', 0o600);
    try {
      let position = 0;
      // Read ahead one blob so fetching and decrypting overlap with writing.
      const ids = node.content ?? [];
      let next = ids.length > 0 ? repo.loadBlob(ids[0]!) : null;
      for (let i = 0; i < ids.length; i++) {
        aborted.throwIfAborted();
        const data = await next!;
        next = i + 1 < ids.length ? repo.loadBlob(ids[i + 1]!) : null;
        next?.catch(() => undefined);
        if (!isHole(data)) await handle.write(data, 0, data.length, position);
        position += data.length;
        onProgress?.({ bytes: data.length });
      }
      await handle.truncate(position); // a hole at the end has no write to set the size
    } catch (error) {
      await handle.close();
      await rm(fsPath(temp), { force: true });
      throw error;
    }
    await handle.close();
    await ownAndTime(temp, node);
    await rename(fsPath(temp), fsPath(path));
    result.bytes += node.size;
  };

  // Local repositories restore files in worker threads (reads, decryption and file syscalls off the
  // main thread); other backends fetch through the repository on the main thread.
  const local = repo.backend instanceof LocalBackend && options.workers !== 0 ? resolve(repo.backend.root) : null;
  const pool = local ? new ChunkPool({ mac: repo.keys.mac, enc: repo.keys.enc, gear: new Int32Array(256), chunker: repo.config.chunker }, options.workers) : null;
  let batch: RestoreFileJob[] = [];
  let batchBytes = 0;

  const flushBatch = async (): Promise<void> => {
    if (batch.length === 0) return;
    const files = batch;
    batch = [];
    batchBytes = 0;
    await schedule(async () => {
      const outcomes = await (await pool!.restoreFiles(local!, files)).result;
      for (const [i, outcome] of outcomes.entries()) {
        if ('error' in outcome) {
          const path = files[i]!.path;
          const text = `${typeof path === 'string' ? path : Buffer.from(path).toString('utf8')}: ${outcome.error}`;
          if (outcome.damaged) {
            damaged.push(text);
            continue;
          }
          throw new RepositoryError('corrupt', `restoring ${text}`);
        }
        result.bytes += outcome.bytes;
        onProgress?.({ bytes: outcome.bytes });
      }
    });
  };

  const queueFile = async (path: string, node: TreeNode): Promise<void> => {
    let blobs;
    try {
      blobs = (node.content ?? []).map((id) => repo.locateBlob(id, path));
    } catch (error) {
      if (!isDamage(error)) throw error;
      damaged.push(`${path}: ${(error as Error).message}`);
      return;
    }
    const owned = node.uid === me.uid && node.gid === me.gid;
    const temp = join(dirname(path), `${TEMP}${randomBytes(6).toString('hex')}`);
    batch.push({ path: fsPath(path), temp: fsPath(temp), blobs, size: node.size, mode: node.mode, uid: node.uid, gid: node.gid, chown: canChown && !owned, mtime: nsToSeconds(node.mtime) });
    batchBytes += node.size;
    if (batch.length >= BATCH_FILES || batchBytes >= BATCH_BYTES) await flushBatch();
  };

  const schedule = async (work: () => Promise<void>): Promise<void> => {
    while (running.size >= limit) await Promise.race(running);
    if (state.failure) throw state.failure;
    const task: Promise<void> = work()
      .catch((error: unknown) => {
        state.failure ??= asError(error);
      })
      .finally(() => running.delete(task));
    running.add(task);
  };

  const visit = async (treeId: string, rel: string, dir: string): Promise<void> => {
    let tree;
    try {
      tree = await loadTree(repo, treeId);
    } catch (error) {
      // A subfolder's listing lost to damage costs that folder's contents, not the whole restore.
      if (!isDamage(error) || rel === '') throw error;
      damaged.push(`${dir}/ (the folder's contents): ${(error as Error).message}`);
      damagedFolders++;
      return;
    }
    const names = new Set<string>();
    for (const node of tree.nodes) {
      aborted.throwIfAborted();
      const path = rel === '' ? node.name : `${rel}/${node.name}`;
      // A name that would leave this folder, or one given twice (a symlink and then a folder of the
      // same name: a path through the link), is never restored.
      if (!localName(node.name)) {
        result.warnings.push(`${rel === '' ? '' : `${rel}/`}${JSON.stringify(node.name)}: not restored, not a file name (it would be outside the target folder)`);
        continue;
      }
      if (names.has(node.name)) {
        result.warnings.push(`${path}: not restored, the snapshot holds this name twice in its folder`);
        continue;
      }
      names.add(node.name);
      const out = join(dir, node.name);
      const wanted = match(path);
      // Past Linux's PATH_MAX here (a deep folder restored below a long target path): this entry and
      // what it holds cannot be made by any call — said once, and the rest of the snapshot restored.
      if (wanted !== 'no' && pathTooLong(out)) {
        result.warnings.push(`${path}: not restored${node.type === 'dir' ? ', nor anything in it' : ''}: its path here would be ${encodeName(out).length} bytes long, and Linux opens no path of ${PATH_MAX} bytes or more. Restore into a folder with a shorter path`);
        continue;
      }
      if (node.type === 'dir') {
        if (wanted === 'no') continue;
        // A directory that only may hold matches is created when something inside is restored.
        if (wanted === 'yes') await ensureDir(out);
        if (node.subtree) await visit(node.subtree, path, out);
        // Only a folder this restore made or entered gets its metadata (never one it did not touch).
        if (made.has(out)) {
          dirMeta.push({ path: out, node });
          result.dirs++;
        }
        continue;
      }
      if (wanted !== 'yes') continue;
      await ensureDir(dir);
      // Regular files replace an existing one by rename; links and symlinks need the name free.
      if (node.type !== 'file' || (node.links ?? 1) > 1) await rm(fsPath(out), { force: true, recursive: false }).catch(() => undefined);
      if (node.type === 'file') onProgress?.({ items: 1 });
      result.files++;
      // Only regular files are linked to each other: a file said to share the inode of a symbolic
      // link (a hostile listing) would otherwise become a second name of a link out of the target.
      const linkKey = node.type === 'file' && node.links && node.links > 1 && node.inode ? node.inode : null;
      const first = linkKey ? hardLinks.get(linkKey) : undefined;
      if (first !== undefined) {
        // Wait for the first name to be complete before linking to it.
        if (pool) await flushBatch();
        await Promise.all(running);
        await link(fsPath(first), fsPath(out));
        continue;
      }
      if (linkKey) hardLinks.set(linkKey, out);
      if (node.type === 'symlink') {
        await symlink(fsPath(node.target ?? ''), fsPath(out));
        await ownAndTime(out, node);
      } else if (node.type === 'file') {
        if (pool) await queueFile(out, node);
        else
          await schedule(() =>
            writeFile(out, node).catch((error: unknown) => {
              if (!isDamage(error)) throw error;
              damaged.push(`${out}: ${(error as Error).message}`);
            }),
          );
      } else {
        result.warnings.push(`${path}: ${node.type} not restored`);
      }
    }
  };

  try {
    await repo.refreshIndex();
    await ensureDir(root);
    await visit(snapshot.tree, '', root);
    if (pool) await flushBatch();
    await Promise.all(running);
  } finally {
    await Promise.all(running);
    await pool?.close();
    aborted.dispose();
  }
  if (state.failure) throw state.failure;
  // Children first (dirMeta is in post-order), so restoring a child does not bump a parent's mtime.
  for (const { path, node } of dirMeta) await ownAndTime(path, node);
  if (damaged.length > 0) {
    const some = damaged.slice(0, 5).join('; ');
    const files = damaged.length - damagedFolders;
    const what = [files > 0 || damagedFolders === 0 ? counted(files, 'file') : '', damagedFolders > 0 ? `the contents of ${counted(damagedFolders, 'folder')}` : ''].filter(Boolean).join(' and ');
    throw new RepositoryError('corrupt', `${what} could not be restored, their data is damaged or missing in the repository (every other file was restored; run \`jetvault check\`): ${some}${damaged.length > 5 ? '; …' : ''}`);
  }
  return result;
}
