/**
 * A large file a restore sends crosses the link as the blocks that differ from a file the device
 * already holds, not whole (decision 025; the backup's side is decision 024): the file it replaces,
 * else a copy at another path (device-copies.ts: restored into another folder, moved by an update).
 *
 * 1. The device hashes that file in fixed blocks (block-delta.ts), while the console hashes the
 *    snapshot's version at the same boundaries (Repository.blockHashes, from the repository); the
 *    next base is hashed only while none is close enough.
 * 2. If few enough blocks differ, the device writes the staged copy (never the live file): the
 *    base's bytes, with the snapshot's bytes — sent now — in place of the blocks that differ,
 *    then the snapshot's mode, owner (as root) and times.
 * 3. The device reads the staged copy back from disk and compares one SHA-256 over its block hashes
 *    with the same over the snapshot's, sent by the console; if they differ the staged copy is
 *    removed and the file crosses whole in the restore's tar stream, as before.
 *
 * Anything else that does not fit (no python3, the base changed or is not a regular file, more than
 * half of the file differs) also sends the file whole. Names reach the device on stdin as bytes;
 * nothing from the snapshot reaches the shell. A base is only ever read — except what an earlier,
 * cut restore of the file staged (`PatchTarget.resumed`), which is the restore's own and is
 * completed where it lies.
 */
import { createHash } from 'node:crypto';
import type { Repository } from '../repository/repo/repository';
import type { TreeNode } from '../repository/snapshot/tree';
import { blobStream } from '../repository/pipeline/blob-stream';
import { encodeName } from '../repository/snapshot/names';
import { raw, sh } from '../devices/shell-quote';
import type { CommandRunner } from '../devices/ssh-connection';
import { wireSink, writeCounted } from '../devices/wire-compression';
import { blockSizeFor, changedRanges, DELTA_MIN_BYTES, deviceBlocks, DeltaUnavailable, NO_PYTHON, rangeBytes } from '../devices/sources/block-delta';

/**
 * On the device (Python 3.5+, standard library). argv: block size, size, mode, mtime (ns), uid, gid,
 * the SHA-256 over the snapshot's hex block hashes (one per line), and `1` to patch the base itself.
 * stdin: the base (the device's file to start from) NUL staged copy NUL `first count` lines NUL, then
 * the ranges' bytes. Creates the staged copy exclusively (never through a link; the folders above it
 * in the staging folder too, where a file the restore adds has none yet — tar gives them the
 * snapshot's mode), reads it back from disk and checks the same SHA-256 over its block hashes; on any
 * failure or a mismatch it removes the staged copy and exits non-zero.
 * Patching the base itself (a file an earlier, cut restore staged: it is the restore's own, in a
 * folder only the login can write): the ranges are written into it where they belong, it is cut to
 * the snapshot's size, checked the same way, and only then renamed to the staged copy's path (same
 * file system) — no second copy of the file, so no second helping of the device's space. On a failure
 * it stays where it is, as it is: the next try hashes it again and takes what still matches.
 */
const PATCH = `import hashlib,os,stat,sys
a=sys.argv;b=int(a[1]);z=int(a[2]);i=sys.stdin.buffer
def h():
 s=bytearray()
 while 1:
  c=i.read(1)
  if not c or c==b'\\0':return bytes(s)
  s+=c
src=h();dst=h();rs=[tuple(map(int,l.split())) for l in h().split(b'\\n') if l]
nf=getattr(os,'O_NOFOLLOW',0);ip=a[8]=='1'
f=os.open(src,(os.O_RDWR if ip else os.O_RDONLY)|nf|getattr(os,'O_NONBLOCK',0))
if not stat.S_ISREG(os.fstat(f).st_mode):sys.exit('the current copy is not a regular file')
os.makedirs(os.path.dirname(dst),0o700,True)
if ip and os.path.lexists(dst):sys.exit('the staged copy is there already')
g=f if ip else os.open(dst,os.O_RDWR|os.O_CREAT|os.O_EXCL|nf,0o600)
try:
 def put(d):
  m=memoryview(d)
  while m:m=m[os.write(g,m):]
 def cp(p,n):
  os.lseek(f,p,0)
  while n>0:
   d=os.read(f,min(n,1<<20))
   if not d:raise Exception('the current copy is shorter than when it was hashed')
   put(d);n-=len(d)
 def take(n):
  while n>0:
   d=i.read(min(n,1<<20))
   if not d:raise Exception('the changed blocks were cut short')
   put(d);n-=len(d)
 p=0
 for k,c in rs:
  s=k*b;e=min(z,(k+c)*b)
  if ip:os.lseek(g,s,0)
  else:cp(p,s-p)
  take(e-s);p=e
 if ip:os.ftruncate(g,z)
 else:cp(p,z-p)
 if os.geteuid()==0:os.fchown(g,int(a[5]),int(a[6]))
 os.fchmod(g,int(a[3]));os.fsync(g);os.lseek(g,0,0);y=hashlib.sha256()
 while 1:
  d=os.read(g,b)
  while 0<len(d)<b:
   e=os.read(g,b-len(d))
   if not e:break
   d+=e
  if not d:break
  y.update(hashlib.sha256(d).hexdigest().encode()+b'\\n')
 if y.hexdigest()!=a[7]:raise Exception('the patched copy does not match the snapshot (the current copy changed meanwhile?)')
 os.utime(g,ns=(int(a[4]),int(a[4])))
 if ip:os.rename(src,dst)
 os.close(g)
except BaseException:
 if not ip:os.unlink(dst)
 raise
`;

/** SHA-256 over hex block hashes, one per line: what PATCH checks the staged copy against. */
const hashOfHashes = (hashes: readonly string[]) => createHash('sha256').update(hashes.map((h) => `${h}\n`).join('')).digest('hex');

export interface PatchTarget {
  node: TreeNode;
  /**
   * Files on the device to stage from, in the order tried: the live file at the target's path, then
   * copies at other paths (device-copies.ts). Each is only read.
   */
  bases: string[];
  /** More bases, asked once the first ones are hashed and none was close enough. */
  more?: () => Promise<string[]>;
  /**
   * What an earlier restore of the same file staged before its link was cut (files-restore.ts's
   * resume folder), whole or in part: tried first, taken if it saves any bytes at all (the link is
   * the reason it exists), and patched where it lies then moved into place — never copied.
   */
  resumed?: string;
  /** Where the snapshot's version is staged. */
  staged: string;
}

/** A staged patch: the bytes of blocks sent, and the device's file it was staged from. */
export interface Patched {
  sent: number;
  base: string;
}

/** A base this close to the snapshot's version is taken without hashing the next one (as a backup's copies elsewhere). */
const GOOD_ENOUGH = 1 / 8;

/** The bases in the order tried: the first ones, then — only if asked for — the rest, each once. */
async function* basesOf(target: PatchTarget): AsyncGenerator<string> {
  if (target.resumed) yield target.resumed;
  yield* target.bases;
  if (!target.more) return;
  for (const base of await target.more()) if (!target.bases.includes(base)) yield base;
}

/**
 * Whether a file a restore sends is worth trying as a patch: from DELTA_MIN_BYTES, or from `min` (a
 * smaller file whose first part an earlier, cut restore staged: files-restore.ts's RESUME_MIN_BYTES).
 */
export function patchable(node: TreeNode, min = DELTA_MIN_BYTES): boolean {
  return node.type === 'file' && node.size >= min && (node.links ?? 1) <= 1 && (node.content?.length ?? 0) > 0;
}

/**
 * Stages `target.staged` from one of the device's files and the blocks of the snapshot's version
 * that differ from it: the bases are hashed in turn (the snapshot's version once, meanwhile) until
 * one differs in at most an eighth, else the closest is used — if at most half of it differs, or,
 * for `target.resumed`, if anything of it matches. Returns the bytes sent and the base,
 * or throws DeltaUnavailable (nothing staged) when the file should cross whole instead.
 */
export async function stagePatched(repo: Repository, runner: CommandRunner, target: PatchTarget, options: { compress?: boolean; signal?: AbortSignal; onSent?: (bytes: number) => void } = {}): Promise<Patched> {
  const { node } = target;
  const ids = node.content ?? [];
  const blockSize = blockSizeFor(node.size);
  // The snapshot's version is hashed from the repository while the device hashes its first base.
  let hashing: Promise<string[]> | null = null;
  const snapshotHashes = () => {
    if (!hashing) {
      hashing = repo.blockHashes(ids, blockSize);
      hashing.catch(() => undefined); // awaited below, unless the base already failed
    }
    return hashing;
  };
  let best: { base: string; ranges: [number, number][]; sending: number } | null = null;
  let why: DeltaUnavailable | null = null;
  for await (const base of basesOf(target)) {
    let device;
    void snapshotHashes();
    try {
      device = await deviceBlocks((command, signal) => runner.exec(command, signal), encodeName(base), blockSize, options.signal);
    } catch (error) {
      // Gone, not a regular file, unreadable: the next base. No python3: none will do.
      if (!(error instanceof DeltaUnavailable) || error.device) throw error;
      why ??= error;
      continue;
    }
    // Every block of the snapshot's version that the base does not hold as it is (one shorter than
    // the snapshot lacks its last blocks; one longer has more than the staged copy takes).
    const ranges = changedRanges(await snapshotHashes(), device.hashes);
    const sending = rangeBytes({ ...device, size: node.size }, ranges);
    if (!best || sending < best.sending) best = { base, ranges, sending };
    if (sending <= node.size * GOOD_ENOUGH) break;
  }
  if (!best) throw why ?? new DeltaUnavailable('the device holds no copy of it', 'changed');
  const { base, ranges, sending } = best;
  const inPlace = base === target.resumed;
  if (inPlace ? sending >= node.size : sending > node.size / 2) throw new DeltaUnavailable(inPlace ? 'nothing of it was staged before' : 'more than half of the file differs', 'changed');
  const ours = await snapshotHashes();

  // Only the snapshot's chunks that hold changed bytes are read.
  const sizes = ids.map((id) => repo.locateBlob(id).rawLength);
  const starts: number[] = [];
  let end = 0;
  for (const size of sizes) {
    starts.push(end);
    end += size;
  }
  const needed = sizes.flatMap((size, j) => {
    const from = starts[j]!;
    const to = from + size;
    return ranges.some(([first, count]) => first * blockSize < to && Math.min(node.size, (first + count) * blockSize) > from) ? [j] : [];
  });

  const unzip = options.compress ? 'gzip -dc | ' : '';
  const running = await runner.exec(
    sh`command -v python3 >/dev/null 2>&1 || exit ${NO_PYTHON}
${raw(unzip)}python3 -c ${PATCH} ${blockSize} ${node.size} ${node.mode & 0o7777} ${node.mtime} ${node.uid} ${node.gid} ${hashOfHashes(ours)} ${inPlace ? '1' : '0'}`,
    options.signal,
  );
  const sink = wireSink(running.stdin, options.compress);
  running.stdin.on('error', () => undefined); // a command that ended early is reported by its exit status
  running.stdout.resume(); // it prints nothing; an SSH channel only closes once its output has been read
  const ended = running.done.then(
    () => true,
    () => true,
  );
  /**
   * Writes `data` (64 KiB at a time, each counted by `onSent` once the pipe has taken it: a long patch —
   * the half of a model a cut restore lacked — moves the progress as the link carries it); false once
   * the command has ended (it failed early: its status says why).
   */
  const write = (data: Buffer, onSent = options.onSent ?? (() => undefined)): Promise<boolean> => writeCounted(sink, data, onSent, ended);
  const stream = blobStream(repo, needed.map((j) => ids[j]!), { workers: 0 });
  try {
    let open = await write(Buffer.concat([encodeName(base), Buffer.from([0]), encodeName(target.staged), Buffer.from([0]), Buffer.from(ranges.map(([first, count]) => `${first} ${count}\n`).join('')), Buffer.from([0])]), () => undefined);
    // The ranges' bytes in order, cut out of the chunks that hold them.
    let r = 0;
    for (const j of needed) {
      if (!open) break;
      const data = await stream.next();
      const from = starts[j]!;
      for (; r < ranges.length && open; r++) {
        const [first, count] = ranges[r]!;
        const a = Math.max(from, first * blockSize);
        const b = Math.min(from + data.length, node.size, (first + count) * blockSize);
        if (a < b) open = await write(data.subarray(a - from, b - from));
        if (Math.min(node.size, (first + count) * blockSize) > from + data.length) break; // continues in the next chunk
      }
    }
  } finally {
    sink.end();
    await stream.close();
  }
  const result = await running.done;
  if (result.code === NO_PYTHON) throw new DeltaUnavailable('the device has no python3', 'device');
  // A mismatch is a failure too: the device removed its staged copy and said why on stderr.
  if (result.code !== 0) throw new DeltaUnavailable(`patching failed (exit ${result.code}): ${result.stderr.trim() || 'no error output'}`);
  return { sent: sending, base };
}
