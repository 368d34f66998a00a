/**
 * A Source over local paths. Each path is stored under its absolute path (like restic), with its
 * ancestors as directory entries, so several paths coexist in one snapshot tree.
 */
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { resolve, sep } from 'node:path';
import type { NodeMeta, NodeType } from '../snapshot/tree';
import type { Source, SourceEntry, SourceWarning } from '../archiver/source';
import { asError, throwIfAborted } from '../errors';

function typeOf(st: BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'chardev';
  return 'blockdev';
}

export function metaFromStat(st: BigIntStats, target?: string): NodeMeta {
  const type = typeOf(st);
  const meta: NodeMeta = {
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    mtime: st.mtimeNs.toString(),
    ctime: st.ctimeNs.toString(),
    size: type === 'file' ? Number(st.size) : 0,
    inode: `${st.dev}:${st.ino}`,
  };
  if (type !== 'dir' && st.nlink > 1n) meta.links = Number(st.nlink);
  if (target !== undefined) meta.target = target;
  return meta;
}

const READ_SIZE = 1 << 20;
const STAT_BATCH = 64;

/** Reads in pieces sized to what is left, so thousands of small files do not each allocate 1 MiB. */
async function* readFile(path: string, expected: number): AsyncIterable<Buffer> {
  const handle = await open(path, 'r');
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(READ_SIZE, expected + 1)));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      expected = Math.max(0, expected - bytesRead);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

export class LocalSource implements Source {
  readonly kind = 'local';
  readonly paths: string[];
  readonly warnings: SourceWarning[] = [];

  constructor(paths: string[]) {
    this.paths = paths.map((p) => resolve(p));
  }

  async *entries(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    const emitted = new Set<string>();
    for (const abs of [...this.paths].sort()) {
      const parts = abs.split(sep).filter((p) => p !== '');
      // Ancestors first, each once, with their real metadata.
      for (let i = 1; i < parts.length; i++) {
        const rel = parts.slice(0, i).join('/');
        if (emitted.has(rel)) continue;
        emitted.add(rel);
        yield { path: rel, meta: metaFromStat(await lstat(`/${rel}`, { bigint: true })) };
      }
      yield* this.walk(abs, parts.join('/'), signal);
    }
  }

  private async *walk(abs: string, rel: string, signal?: AbortSignal, known?: BigIntStats | Error): AsyncIterable<SourceEntry> {
    throwIfAborted(signal);
    let st: BigIntStats;
    try {
      if (known instanceof Error) throw known;
      st = known ?? (await lstat(abs, { bigint: true }));
    } catch (error) {
      this.warnings.push({ path: abs, message: (error as Error).message });
      return;
    }
    if (st.isSymbolicLink()) {
      yield { path: rel, meta: metaFromStat(st, await readlink(abs)) };
      return;
    }
    if (st.isFile()) {
      yield { path: rel, meta: metaFromStat(st), open: () => readFile(abs, Number(st.size)), localPath: abs };
      return;
    }
    yield { path: rel, meta: metaFromStat(st) };
    if (!st.isDirectory()) return;
    let names: string[];
    try {
      names = await readdir(abs);
    } catch (error) {
      this.warnings.push({ path: abs, message: (error as Error).message });
      return;
    }
    names.sort();
    // Stat a directory's entries concurrently: per-call latency, not the disk, bounds a tree of small files.
    for (let i = 0; i < names.length; i += STAT_BATCH) {
      const batch = names.slice(i, i + STAT_BATCH);
      const stats = await Promise.all(batch.map((name) => lstat(`${abs}/${name}`, { bigint: true }).catch((error: unknown) => asError(error))));
      for (const [k, name] of batch.entries()) yield* this.walk(`${abs}/${name}`, `${rel}/${name}`, signal, stats[k]);
    }
  }
}
