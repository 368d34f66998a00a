/**
 * A Source over local paths. Each path is stored under its absolute path (like restic), with its
 * ancestors as directory entries, so several paths coexist in one snapshot tree.
 */
import { lstat, open, realpath } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { BigIntStats } from 'node:fs';
import { resolve, sep } from 'node:path';
import type { NodeMeta, NodeType } from '../snapshot/tree';
import type { Source, SourceEntry, SourceWarning } from '../archiver/source';
import { throwIfAborted } from '../errors';
import { decodeName } from '../snapshot/names';

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
const WALK_BATCH = 512;

/** Reads in pieces sized to what is left, so thousands of small files do not each allocate 1 MiB. */
async function* readFile(path: string | Buffer, expected: number): AsyncIterable<Buffer> {
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

/**
 * The walk itself runs in a worker thread with sync lstat/readdir: per-call latency through the
 * libuv pool, not the disk, bounds a walk of many small files, and a sync walk on its own thread is
 * several times faster. The main thread pulls batches of entries, so the walk never runs far ahead.
 * typeOf and metaFromStat are embedded from their own source: one implementation. typeOf goes in as
 * a declaration so metaFromStat's call to it resolves even after a bundler renamed both.
 */
const WALK_WORKER = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
${typeOf.toString()}
const metaFromStat = (${metaFromStat.toString()});
const decodeName = (${decodeName.toString()});
const RAW = /\\p{Cs}/u;
let stack = [];
// abs: the path as a string (non-UTF-8 bytes as lone surrogates, see snapshot/names.ts);
// fsAbs: the same path for fs calls (a Buffer once any component is not UTF-8).
function visit(abs, fsAbs, rel, out) {
  let st;
  try {
    st = fs.lstatSync(fsAbs, { bigint: true });
    if (st.isSymbolicLink()) out.push({ path: rel, meta: metaFromStat(st, decodeName(fs.readlinkSync(fsAbs, { encoding: 'buffer' }))) });
    else if (st.isFile()) out.push({ path: rel, meta: metaFromStat(st), localPath: fsAbs });
    else out.push({ path: rel, meta: metaFromStat(st) });
  } catch (error) {
    out.push({ warning: { path: abs, message: String(error && error.message || error) } });
    return;
  }
  if (!st.isDirectory()) return;
  try {
    // Names as strings (fast); a directory holding a name that is not UTF-8 (U+FFFD in its lossy
    // decoding) is listed again as bytes.
    let names = fs.readdirSync(fsAbs).map((name) => ({ name, bytes: null }));
    if (names.some((n) => n.name.includes('\\ufffd'))) {
      names = fs.readdirSync(fsAbs, { encoding: 'buffer' }).map((bytes) => ({ name: decodeName(bytes), bytes }));
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    stack.push({ abs, fsAbs, rel, names, i: 0 });
  } catch (error) {
    out.push({ warning: { path: abs, message: String(error && error.message || error) } });
  }
}
parentPort.on('message', (msg) => {
  const out = [];
  if (msg.type === 'walk') {
    stack = [];
    visit(msg.abs, msg.abs, msg.rel, out);
  }
  while (out.length < ${WALK_BATCH} && stack.length > 0) {
    const frame = stack[stack.length - 1];
    if (frame.i >= frame.names.length) {
      stack.pop();
      continue;
    }
    const { name, bytes } = frame.names[frame.i++];
    const fsAbs = typeof frame.fsAbs === 'string' && !RAW.test(name)
      ? frame.fsAbs + '/' + name
      : Buffer.concat([Buffer.from(frame.fsAbs), Buffer.from('/'), bytes || Buffer.from(name)]);
    visit(frame.abs + '/' + name, fsAbs, frame.rel + '/' + name, out);
  }
  parentPort.postMessage({ entries: out, done: stack.length === 0 });
});
`;

type WalkItem = { path: string; meta: NodeMeta; localPath?: string | Uint8Array } | { warning: SourceWarning };

/** What is said of a path given to back up that is a symbolic link (only the link is stored). */
async function linkWarning(abs: string, target: string): Promise<string> {
  const resolved = await realpath(abs).catch(() => null);
  return resolved
    ? `a symbolic link to ${target}: only the link was stored, nothing it points to was copied; give ${resolved} to back that up`
    : `a symbolic link to ${target}, which does not exist (a disk not mounted?): only the link was stored`;
}

export class LocalSource implements Source {
  readonly kind = 'local';
  readonly paths: string[];
  readonly warnings: SourceWarning[] = [];

  constructor(paths: string[]) {
    // Each path once (`/data` and `/data/` are one).
    this.paths = [...new Set(paths.map((p) => resolve(p)))];
  }

  async *entries(signal?: AbortSignal): AsyncIterable<SourceEntry> {
    const emitted = new Set<string>();
    const worker = new Worker(WALK_WORKER, { eval: true });
    const failed = new Promise<never>((_, reject) => worker.once('error', reject));
    failed.catch(() => undefined);
    const ask = (message: Record<string, unknown>): Promise<{ entries: WalkItem[]; done: boolean }> => {
      const reply = new Promise<{ entries: WalkItem[]; done: boolean }>((resolve) => worker.once('message', resolve));
      worker.postMessage(message);
      return Promise.race([reply, failed]);
    };
    try {
      // A path inside another one given (`/data /data/sub`) is walked with it: walked again, its
      // folder was a second entry of the same name in the tree, and its files counted twice.
      const inside = (p: string, q: string) => q === sep || p.startsWith(`${q}${sep}`);
      const walked = this.paths.filter((p) => !this.paths.some((q) => q !== p && inside(p, q)));
      for (const abs of walked.sort()) {
        const parts = abs.split(sep).filter((p) => p !== '');
        // Ancestors first, each once, with their real metadata.
        for (let i = 1; i < parts.length; i++) {
          const rel = parts.slice(0, i).join('/');
          if (emitted.has(rel)) continue;
          emitted.add(rel);
          yield { path: rel, meta: metaFromStat(await lstat(`/${rel}`, { bigint: true })) };
        }
        let batch = await ask({ type: 'walk', abs, rel: parts.join('/') });
        for (;;) {
          throwIfAborted(signal);
          // Ask for the next batch while this one is consumed.
          const next = batch.done ? null : ask({ type: 'next' });
          for (const item of batch.entries) {
            if ('warning' in item) this.warnings.push(item.warning);
            else if (item.meta.type === 'symlink' && item.path === parts.join('/')) {
              // A path given that is a symbolic link (a data folder moved to another disk and
              // linked back) is stored as the link alone: said, or the snapshot looks complete
              // with nothing of the data in it (as a device's files source says it).
              this.warnings.push({ path: abs, message: await linkWarning(abs, item.meta.target ?? '?') });
              yield { path: item.path, meta: item.meta };
            }
            else if (item.localPath !== undefined) {
              // A path with non-UTF-8 bytes arrives as a Uint8Array (structured clone of a Buffer).
              const raw = item.localPath;
              const path = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
              yield { path: item.path, meta: item.meta, localPath: path, open: () => readFile(path, item.meta.size) };
            } else yield { path: item.path, meta: item.meta };
          }
          if (!next) break;
          batch = await next;
        }
      }
    } finally {
      await worker.terminate();
    }
  }
}
