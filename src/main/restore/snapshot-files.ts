/**
 * Reading a snapshot for a restore: the nodes below one of its paths, and a tar stream of chosen
 * files built straight from repository blobs, with each file's SHA-256 computed on the way so the
 * device can prove what it received.
 */
import { createHash } from 'node:crypto';
import { pack } from 'tar-stream';
import type { Pack } from 'tar-stream';
import type { Writable } from 'node:stream';
import type { Repository } from '../repository/repo/repository';
import { loadTree } from '../repository/snapshot/snapshot';
import { isPlainName } from '../repository/snapshot/tree';
import type { TreeNode } from '../repository/snapshot/tree';
import { encodeName } from '../repository/snapshot/names';
import { blobStream } from '../repository/pipeline/blob-stream';
import { blobId } from '../repository/crypto/aead';
import { SPARSE_MIN_BYTES } from '../devices/sources/files-source';

export interface SnapshotFile {
  /** Path below the restored root, '/'-separated. */
  path: string;
  node: TreeNode;
}

/**
 * Every node below `root` (a snapshot path such as `opt/myrvm`), with paths relative to it. A node
 * whose name is not one path component (`..`: a snapshot from a compromised device) or repeats a
 * sibling's is left out with what is below it: the restore's staging, unlinking and swap would
 * otherwise reach outside the folder it restores.
 */
export async function nodesBelow(repo: Repository, tree: string, root: string): Promise<SnapshotFile[]> {
  const out: SnapshotFile[] = [];
  const prefix = `${root}/`;
  const visit = async (treeId: string, at: string): Promise<void> => {
    const names = new Set<string>();
    for (const node of (await loadTree(repo, treeId)).nodes) {
      if (!isPlainName(node.name) || names.has(node.name)) continue;
      names.add(node.name);
      const path = at === '' ? node.name : `${at}/${node.name}`;
      const below = path.startsWith(prefix);
      if (below) out.push({ path: path.slice(prefix.length), node });
      // Only the branch that leads to `root` and what is below it are read.
      if (node.type === 'dir' && node.subtree && (below || prefix.startsWith(`${path}/`))) await visit(node.subtree, path);
    }
  };
  await visit(tree, '');
  return out;
}

/** The node at `filePath` (a snapshot path such as `opt/myrvm/.env`), or null when it is not there. */
export async function nodeAt(repo: Repository, treeId: string, filePath: string): Promise<TreeNode | null> {
  const parts = filePath.split('/').filter(Boolean);
  let tree = await loadTree(repo, treeId);
  for (const [i, part] of parts.entries()) {
    const node = tree.nodes.find((n) => n.name === part);
    if (!node) return null;
    if (i === parts.length - 1) return node;
    if (node.type !== 'dir' || !node.subtree) return null;
    tree = await loadTree(repo, node.subtree);
  }
  return null;
}

/** Entry streams error when the destination dies; that failure reaches the caller through `hashes`. */
function quiet<T>(entry: T): T {
  (entry as unknown as Writable).on('error', () => undefined);
  return entry;
}

/** One pax record `"<len> key=value\n"`, the value as bytes (a name that is not UTF-8 stays its bytes). */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(buf: Buffer, value: number, offset: number, width: number): void {
  buf.write(`${value.toString(8).padStart(width - 1, '0')}\0`, offset, width, 'ascii');
}

function ustar(name: string, typeflag: string, fields: { mode: number; uid: number; gid: number; size: number; mtimeSec: number; linkname?: string }): Buffer {
  const buf = Buffer.alloc(512);
  buf.write(name, 0, 100, 'ascii');
  octal(buf, fields.mode & 0o7777, 100, 8);
  octal(buf, Math.min(fields.uid, 0o7777777), 108, 8);
  octal(buf, Math.min(fields.gid, 0o7777777), 116, 8);
  octal(buf, Math.min(fields.size, 0o77777777777), 124, 12);
  octal(buf, Math.max(0, Math.min(fields.mtimeSec, 0o77777777777)), 136, 12);
  buf.write(typeflag, 156, 1, 'ascii');
  if (fields.linkname) buf.write(fields.linkname, 157, 100, 'ascii');
  buf.write('ustar\u000000', 257, 8, 'ascii');
  buf.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return buf;
}

interface RawHeader {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Nanoseconds since the epoch, decimal. */
  mtimeNs: string;
  linkname?: string;
  /** A sparse file (PAX sparse 1.0): its data is the map, then the regions; this is its real size. */
  sparseSize?: number;
}

const TYPEFLAG: Record<RawHeader['type'], string> = { file: '0', directory: '5', symlink: '2', link: '1' };

/**
 * The header blocks of one entry: a pax header carrying the path and link target as their exact
 * bytes (names that are not UTF-8 — a Latin-1 file name — reach the device byte for byte; GNU tar
 * takes pax paths as bytes), the mtime in nanoseconds, and numbers too large for ustar; then the
 * ustar header. tar-stream encodes names as UTF-8 text, so its header encoding is replaced.
 */
export function encodeHeaders(header: RawHeader): Buffer {
  const ns = BigInt(header.mtimeNs);
  const sec = ns / 1_000_000_000n;
  const records = [
    paxRecord('path', encodeName(header.type === 'directory' && !header.name.endsWith('/') ? `${header.name}/` : header.name)),
    ...(header.linkname !== undefined ? [paxRecord('linkpath', encodeName(header.linkname))] : []),
    paxRecord('mtime', Buffer.from(`${sec}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}`)),
    ...(header.size > 0o77777777777 ? [paxRecord('size', Buffer.from(String(header.size)))] : []),
    ...(header.uid > 0o7777777 ? [paxRecord('uid', Buffer.from(String(header.uid)))] : []),
    ...(header.gid > 0o7777777 ? [paxRecord('gid', Buffer.from(String(header.gid)))] : []),
    ...(header.sparseSize !== undefined
      ? [
          paxRecord('GNU.sparse.major', Buffer.from('1')),
          paxRecord('GNU.sparse.minor', Buffer.from('0')),
          paxRecord('GNU.sparse.name', encodeName(header.name)),
          paxRecord('GNU.sparse.realsize', Buffer.from(String(header.sparseSize))),
        ]
      : []),
  ];
  const pax = Buffer.concat(records);
  const fields = { mode: header.mode, uid: header.uid, gid: header.gid, mtimeSec: Number(sec) };
  return Buffer.concat([
    ustar('PaxHeader', 'x', { ...fields, size: pax.length }),
    pax,
    Buffer.alloc((512 - (pax.length % 512)) % 512),
    ustar('PaxHeader', TYPEFLAG[header.type], { ...fields, size: header.size, ...(header.linkname !== undefined ? { linkname: 'PaxHeader' } : {}) }),
  ]);
}

const TYPE: Partial<Record<TreeNode['type'], 'file' | 'directory' | 'symlink'>> = { file: 'file', dir: 'directory', symlink: 'symlink' };

/** Blobs this large that are all zeros are a file's holes (long zero runs are cut into maximum-size chunks). */
const HOLE_MIN = 64 * 1024;

/**
 * How a large file with holes crosses: which of its blobs are zeros (known by id: the id of a run of
 * zeros of that length, computed once per length), each blob's length, and the tar data's sparse map
 * (PAX sparse 1.0: the number of regions, then each region's offset and length, in decimal lines,
 * padded to 512 bytes). Null for a file that crosses whole.
 */
interface SparseLayout {
  zero: boolean[];
  lengths: number[];
  map: Buffer;
  /** The map plus the regions' bytes: what the entry carries. */
  stored: number;
}

/** The id of a blob of `length` zeros in `repo`, computed once per length. */
function zeroIds(repo: Repository): (length: number) => string {
  const ids = new Map<number, string>();
  return (length) => {
    let id = ids.get(length);
    if (id === undefined) ids.set(length, (id = blobId(repo.keys.mac, Buffer.alloc(length)).toString('hex')));
    return id;
  };
}

/** What a file takes in a restore's tar stream: its size, or less for a large file with holes. */
export function sentSize(repo: Repository): (node: TreeNode) => number {
  const zeroIdOf = zeroIds(repo);
  return (node) => sparseLayout(repo, node, zeroIdOf)?.stored ?? node.size;
}

function sparseLayout(repo: Repository, node: TreeNode, zeroIdOf: (length: number) => string): SparseLayout | null {
  const ids = node.content ?? [];
  if (node.size < SPARSE_MIN_BYTES || ids.length === 0) return null;
  const lengths: number[] = [];
  const zero: boolean[] = [];
  for (const id of ids) {
    const length = repo.index.get(id)?.rawLength;
    if (length === undefined) return null; // the stream reports a missing blob
    lengths.push(length);
    zero.push(length >= HOLE_MIN && id === zeroIdOf(length));
  }
  if (!zero.includes(true)) return null;
  const regions: [number, number][] = [];
  let offset = 0;
  for (const [i, length] of lengths.entries()) {
    const last = regions.at(-1);
    if (!zero[i]) {
      if (last && last[0] + last[1] === offset) last[1] += length;
      else regions.push([offset, length]);
    }
    offset += length;
  }
  // A file ending in a hole: an empty region at its end, as GNU tar writes one.
  const last = regions.at(-1);
  if (!last || last[0] + last[1] < offset) regions.push([offset, 0]);
  const text = Buffer.from(`${regions.length}\n${regions.map(([at, length]) => `${at}\n${length}\n`).join('')}`);
  const map = Buffer.concat([text, Buffer.alloc((512 - (text.length % 512)) % 512)]);
  return { zero, lengths, map, stored: map.length + regions.reduce((n, [, length]) => n + length, 0) };
}

/** One member of the tar stream, in order: `content` when it carries a file's bytes (hashed). */
export interface TarMember {
  path: string;
  content: boolean;
}

/**
 * A tar stream (GNU tar reads it with -x -p) of `entries`, in order; `members` lists what it holds
 * (one tar member each, in the same order); resolves `hashes` (path → sha256 hex of regular files
 * with content) once the stream has been fully produced. `contentOf(n)`, called with the stream's
 * bytes in order as they are taken (n at a time), says how many of them were the members' content —
 * not headers, padding or the end of the archive — what a restore's progress counts against the
 * files' sizes (a few hundred bytes of headers per file had run it past its total).
 */
export function tarFromSnapshot(repo: Repository, entries: SnapshotFile[], signal?: AbortSignal): { stream: Pack; members: TarMember[]; hashes: Promise<Map<string, string>>; contentOf: (bytes: number) => number } {
  const stream = pack();
  // Where the members' content lies in the stream: [start, end) pairs, in order. Every byte tar-stream
  // produces goes through push (headers, content, padding, the end).
  const content: number[] = [];
  let produced = 0;
  const push = stream.push.bind(stream);
  (stream as unknown as { push(chunk: Buffer | null): boolean }).push = (chunk) => {
    if (chunk) produced += chunk.length;
    return push(chunk);
  };
  // Every header is written by encodeHeaders (exact name bytes, nanosecond mtimes): tar-stream calls
  // `_encode(header)` once per entry with the header object it was given; its content follows.
  (stream as unknown as { _encode(header: RawHeader): void })._encode = function (this: { push(b: Buffer): boolean }, header: RawHeader) {
    this.push(encodeHeaders(header));
    if (header.size > 0) content.push(produced, produced + header.size);
  };
  let taken = 0;
  let range = 0;
  const contentOf = (bytes: number): number => {
    const from = taken;
    taken += bytes;
    let inside = 0;
    for (; range < content.length; range += 2) {
      const start = content[range]!;
      const end = content[range + 1]!;
      if (start >= taken) break;
      inside += Math.max(0, Math.min(end, taken) - Math.max(start, from));
      if (end > taken) break; // this member goes on in the next bytes
    }
    return inside;
  };
  // Blobs are read ahead of the one being written (in the repository's workers when it is local):
  // the repository's reads and decryption overlap the stream's writes (same order, bounded memory).
  const order: string[] = [];
  const members: TarMember[] = [];
  const seen = new Set<string>();
  // Large files with holes (a preallocated image) cross without them: GNU tar on the device writes
  // the holes back. A 10 GiB image holding a few KiB sent 10 GiB of zeros over the field link.
  const zeroIdOf = zeroIds(repo);
  const sparse = new Map<TreeNode, SparseLayout>();
  for (const { path, node } of entries) {
    if (!TYPE[node.type]) continue;
    if (node.type === 'file' && node.inode && (node.links ?? 1) > 1) {
      if (seen.has(node.inode)) {
        members.push({ path, content: false }); // written as a hard link, no content
        continue;
      }
      seen.add(node.inode);
    }
    members.push({ path, content: node.type === 'file' });
    if (node.type !== 'file') continue;
    const layout = sparseLayout(repo, node, zeroIdOf);
    if (layout) sparse.set(node, layout);
    order.push(...(layout ? (node.content ?? []).filter((_, i) => !layout.zero[i]) : (node.content ?? [])));
  }
  let zeros = Buffer.alloc(0);
  const blobs = blobStream(repo, order);
  const hashes = (async () => {
    const out = new Map<string, string>();
    // Hard links come back as links: the second path of an inode points to the first one written.
    const firstOfInode = new Map<string, string>();
    for (const { path, node } of entries) {
      if (signal?.aborted) throw new Error('cancelled');
      const type = TYPE[node.type];
      if (!type) continue; // fifos, sockets and devices are not restored onto a device
      const header = {
        name: path,
        type,
        mode: node.mode,
        uid: node.uid,
        gid: node.gid,
        mtime: new Date(Number(BigInt(node.mtime) / 1_000_000n)),
        mtimeNs: node.mtime,
        size: type === 'file' ? node.size : 0,
        ...(type === 'symlink' ? { linkname: node.target ?? '' } : {}),
      };
      const linkTo = type === 'file' && node.inode && (node.links ?? 1) > 1 ? firstOfInode.get(node.inode) : undefined;
      if (linkTo !== undefined) {
        const link = { ...header, type: 'link' as const, size: 0, linkname: linkTo };
        await new Promise<void>((resolve, reject) => quiet(stream.entry(link, (error) => (error ? reject(error) : resolve()))));
        continue;
      }
      if (type === 'file' && node.inode && (node.links ?? 1) > 1) firstOfInode.set(node.inode, path);
      if (type !== 'file') {
        await new Promise<void>((resolve, reject) => quiet(stream.entry(header, (error) => (error ? reject(error) : resolve()))));
        continue;
      }
      const hash = createHash('sha256');
      const layout = sparse.get(node);
      // tar-stream's entry is a streamx Writable; used here through Node's Writable surface.
      // (tar-stream passes the header object to encodeHeaders above as it is.)
      const entry = quiet(stream.entry(layout ? ({ ...header, size: layout.stored, sparseSize: node.size } as typeof header) : header)) as unknown as Writable;
      const done = new Promise<void>((resolve, reject) => {
        entry.once('finish', resolve);
        entry.once('error', reject);
      });
      done.catch(() => undefined); // awaited below; may fail while the producer waits for 'drain'
      if (layout) entry.write(layout.map);
      for (let i = 0; i < (node.content ?? []).length; i++) {
        if (layout?.zero[i]) {
          // A hole: hashed as the zeros it stands for, not sent.
          const length = layout.lengths[i]!;
          if (zeros.length < length) zeros = Buffer.alloc(length);
          hash.update(zeros.subarray(0, length));
          continue;
        }
        const data = await blobs.next();
        hash.update(data);
        if (!entry.write(data)) await new Promise<void>((resolve) => entry.once('drain', () => resolve()));
      }
      entry.end();
      await done;
      out.set(path, hash.digest('hex'));
    }
    stream.finalize();
    return out;
  })();
  // Released in the background: the device may finish reading before the workers are let go. Also
  // when the stream is destroyed (the device's tar failed, the link was cut): the producer may then
  // wait for a 'drain' that never comes, and workers never let go keep a CLI process from exiting.
  stream.once('close', () => void blobs.close().catch(() => undefined));
  void hashes
    .then(
      () => blobs.close(),
      () => blobs.close(),
    )
    .catch(() => undefined);
  hashes.catch((error: unknown) => stream.destroy(error as Error));
  return { stream, members, hashes, contentOf };
}
