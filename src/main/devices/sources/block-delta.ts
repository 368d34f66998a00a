/**
 * A large file that changed crosses the link as the blocks that changed, not whole (decision 024).
 *
 * 1. The device hashes the file in fixed blocks (SHA-256 each, one `python3` process) and sends the
 *    hashes — ~65 bytes per block.
 * 2. The console hashes the parent snapshot's version of the file at the same block boundaries, read
 *    from the repository by a chunk worker (Repository.blockHashes).
 * 3. The device sends the blocks whose hashes differ; each is checked against the hash the device
 *    gave, so the file rebuilt here is exactly the file the device hashed.
 * 4. The file is stored as the parent's chunks, with only the parts around the changed blocks cut
 *    again (planParts): exactly the chunks cutting the whole file would give, the rest not read.
 *
 * Whatever does not fit — no python3 on the device, a file that changed between the hash and the
 * fetch, more changed than is worth holding in memory, a previous copy that cannot be read — is a
 * `DeltaUnavailable`: the caller then
 * copies the file whole, as it did before. Names go to the device on stdin as bytes (a name that is
 * not valid UTF-8 reaches the file it names); nothing from the user reaches the shell.
 */
import { createHash } from 'node:crypto';
import type { Chunker } from '../../repository/chunker/chunker';
import { sh } from '../shell-quote';
import type { RawShell } from '../shell-quote';
import type { RunningCommand } from '../ssh-connection';
import { chunksOf } from '../stream-chunks';

const MiB = 1024 * 1024;

/** Changed files at least this large are tried as block deltas; smaller ones cross whole. */
export const DELTA_MIN_BYTES = 4 * MiB;
/** Changed blocks held in memory (and checked) before a file is rebuilt; more and the file crosses whole. */
export const DELTA_MAX_FETCH = 64 * MiB;
const MIN_BLOCK = 64 * 1024;
const MAX_BLOCK = 8 * MiB;
/** The delta command's exit status when the device has no python3. */
export const NO_PYTHON = 69;

/**
 * The block size for a file of `size` bytes: what the hashes cost (65 bytes per block) balanced
 * against what one changed block costs, for a file with one change — sqrt(65 × size), to a power of
 * two: 128 KiB for 256 MiB, 512 KiB for 4 GiB.
 */
export function blockSizeFor(size: number): number {
  const ideal = 2 ** Math.round(Math.log2(Math.sqrt(65 * Math.max(size, 1))));
  return Math.min(MAX_BLOCK, Math.max(MIN_BLOCK, ideal));
}

/**
 * On the device (Python 3.5 and later, standard library only). argv: mode, block size; stdin: the
 * file's name (bytes), then for `fetch` a NUL and one `first count` line per range of blocks.
 * `hash` prints `size mtime_ns`, a hex SHA-256 per block, and `. total` once the file is read;
 * `fetch` writes the ranges' bytes one after the other. A final symlink is not followed: a file
 * swapped for a link since it was listed is not read through it; anything but a regular file (a
 * FIFO would block the open: O_NONBLOCK) is refused.
 */
const SCRIPT = `import hashlib,os,stat,sys
m=sys.argv[1];b=int(sys.argv[2]);n,_,r=sys.stdin.buffer.read().partition(b'\\0')
f=os.open(n,os.O_RDONLY|getattr(os,'O_NOFOLLOW',0)|getattr(os,'O_NONBLOCK',0));o=sys.stdout.buffer
if not stat.S_ISREG(os.fstat(f).st_mode):sys.exit('not a regular file')
def rd(k):
 p=os.read(f,k)
 while 0<len(p)<k:
  d=os.read(f,k-len(p))
  if not d:break
  p+=d
 return p
if m=='hash':
 s=os.fstat(f);t=0;o.write(b'%d %d\\n'%(s.st_size,s.st_mtime_ns))
 while 1:
  d=rd(b)
  if not d:break
  t+=len(d);o.write(hashlib.sha256(d).hexdigest().encode()+b'\\n')
 o.write(b'. %d\\n'%t)
else:
 for l in r.split(b'\\n'):
  if l:
   a,c=map(int,l.split());os.lseek(f,a*b,0)
   for _ in range(c):o.write(rd(b))
o.flush()
`;

function deltaCommand(mode: 'hash' | 'fetch', blockSize: number): RawShell {
  return sh`command -v python3 >/dev/null 2>&1 || exit ${NO_PYTHON}
exec python3 -c ${SCRIPT} ${mode} ${blockSize}`;
}

/**
 * Why a file is copied whole after all: `device` — the device cannot do deltas at all (no
 * python3), so the rest of the run does not ask again; `changed` — the file changed too much, or
 * while it was read (nothing to fix); `failed` — a command or the previous copy failed (worth a look).
 */
export type DeltaCause = 'device' | 'changed' | 'failed';

export class DeltaUnavailable extends Error {
  constructor(
    message: string,
    readonly why: DeltaCause = 'failed',
  ) {
    super(message);
  }

  get device(): boolean {
    return this.why === 'device';
  }
}

export interface DeviceBlocks {
  blockSize: number;
  /** Bytes the device read (the file's size as hashed). */
  size: number;
  hashes: string[];
  /** What the hashes took on the link (uncompressed). */
  bytes: number;
}

/** Parses the `hash` output; anything else than what the script prints is a DeltaUnavailable. */
export function parseBlockHashes(text: string, blockSize: number): DeviceBlocks {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const end = /^\. (\d+)$/.exec(lines.at(-1) ?? '');
  if (!/^\d+ \d+$/.test(lines[0] ?? '') || !end) throw new DeltaUnavailable('the block hashes were cut short');
  const size = Number(end[1]);
  const hashes = lines.slice(1, -1);
  if (hashes.length !== Math.ceil(size / blockSize) || hashes.some((h) => !/^[0-9a-f]{64}$/.test(h))) {
    throw new DeltaUnavailable('the block hashes do not match the file size');
  }
  return { blockSize, size, hashes, bytes: text.length };
}

/** Starts a command on the device, its stdout counted as it crosses (compressed or not). */
export type Exec = (command: RawShell, signal?: AbortSignal) => Promise<RunningCommand>;

async function collect(running: RunningCommand, input: Buffer, limit: number): Promise<{ out: Buffer; code: number | null; stderr: string }> {
  running.stdin.end(input);
  const parts: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of chunksOf(running.stdout)) {
    size += chunk.length;
    if (size > limit) over = true;
    else parts.push(chunk);
  }
  const result = await running.done;
  if (over) throw new DeltaUnavailable(`the device sent more than the ${limit} bytes expected`);
  return { out: Buffer.concat(parts, size), code: result.code, stderr: result.stderr };
}

export function failed(what: string, code: number | null, stderr: string): DeltaUnavailable {
  if (code === NO_PYTHON) return new DeltaUnavailable('the device has no python3 to hash blocks with', 'device');
  // Python's traceback ends with the exception: that line says it (the frames above it do not).
  const said = stderr.trim().split('\n').at(-1)?.trim() ?? '';
  if (/^(FileNotFoundError|NotADirectoryError)\b/.test(said)) return new DeltaUnavailable('the file was gone before its blocks were read', 'changed');
  return new DeltaUnavailable(`${what} failed (exit ${code}): ${said || 'no error output'}`);
}

/** The device's block hashes of the file named by `name` (its bytes). */
export async function deviceBlocks(exec: Exec, name: Buffer, blockSize: number, signal?: AbortSignal): Promise<DeviceBlocks> {
  const running = await exec(deltaCommand('hash', blockSize), signal);
  // A line per block, with room for a file that grew since it was listed.
  const { out, code, stderr } = await collect(running, name, 4 * MiB);
  if (code !== 0) throw failed('hashing the blocks', code, stderr);
  return parseBlockHashes(out.toString('latin1'), blockSize);
}

/** Runs of changed blocks as [first, count]. */
export function changedRanges(device: readonly string[], parent: readonly string[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (let k = 0; k < device.length; k++) {
    if (device[k] === parent[k]) continue;
    const last = ranges.at(-1);
    if (last && last[0] + last[1] === k) last[1]++;
    else ranges.push([k, 1]);
  }
  return ranges;
}

/** Bytes the ranges of blocks hold in the device's file (its last block may be short). */
export function rangeBytes(device: DeviceBlocks, ranges: readonly [number, number][]): number {
  let bytes = 0;
  for (const [first, count] of ranges) bytes += Math.min(device.size, (first + count) * device.blockSize) - first * device.blockSize;
  return bytes;
}

/** The changed blocks' bytes by block number, each checked against the device's hash. */
export async function fetchBlocks(exec: Exec, name: Buffer, device: DeviceBlocks, ranges: readonly [number, number][], signal?: AbortSignal): Promise<Map<number, Buffer>> {
  const { blockSize, size } = device;
  const length = (k: number) => Math.min(blockSize, size - k * blockSize);
  const expected = rangeBytes(device, ranges);
  const running = await exec(deltaCommand('fetch', blockSize), signal);
  const input = Buffer.concat([name, Buffer.from([0]), Buffer.from(ranges.map(([first, count]) => `${first} ${count}\n`).join(''))]);
  const { out, code, stderr } = await collect(running, input, expected);
  if (code !== 0) throw failed('fetching the changed blocks', code, stderr);
  if (out.length !== expected) throw new DeltaUnavailable('the file changed while its blocks were read', 'changed');
  const blocks = new Map<number, Buffer>();
  let at = 0;
  for (const [first, count] of ranges) {
    for (let k = first; k < first + count; k++) {
      const block = out.subarray(at, at + length(k));
      at += block.length;
      if (createHash('sha256').update(block).digest('hex') !== device.hashes[k]) throw new DeltaUnavailable('the file changed while its blocks were read', 'changed');
      blocks.set(k, block);
    }
  }
  return blocks;
}

/**
 * Bytes [from, to) of the device's file: the parent's bytes, with the fetched blocks in place of the
 * changed ones. `parent` yields the parent's bytes from `parentAt` on (`parentAt` <= `from`).
 */
export async function* rebuilt(parent: AsyncIterable<Buffer>, parentAt: number, device: DeviceBlocks, fetched: ReadonlyMap<number, Buffer>, from = 0, to = device.size): AsyncGenerator<Buffer> {
  const { blockSize } = device;
  const iterator = parent[Symbol.asyncIterator]();
  /** The parent's buffer being read, and where in the file it starts. */
  let current: Buffer = Buffer.alloc(0);
  let currentAt = parentAt;
  try {
    for (let position = from; position < to; ) {
      const k = Math.floor(position / blockSize);
      const blockEnd = Math.min(to, (k + 1) * blockSize);
      const block = fetched.get(k);
      if (block) {
        const piece = block.subarray(position - k * blockSize, blockEnd - k * blockSize);
        yield piece;
        position += piece.length;
        continue;
      }
      // Unchanged: the parent's bytes up to the next fetched block or the end.
      let until = blockEnd;
      while (until < to && !fetched.has(until / blockSize)) until = Math.min(to, until + blockSize);
      while (position < until) {
        if (position >= currentAt + current.length) {
          const step = await iterator.next();
          if (step.done) throw new Error('the parent snapshot ended before the file did');
          currentAt += current.length;
          current = step.value;
          continue;
        }
        const piece = current.subarray(position - currentAt, Math.min(current.length, until - currentAt));
        yield piece;
        position += piece.length;
      }
    }
  } finally {
    await iterator.return?.();
  }
}

/** A run of the parent's chunks [first, end) kept as they are, or bytes [from, to) of the new file cut again, read from parent chunks [first, end). */
export type PlannedPart = { keep: [number, number]; size: number } | { from: number; to: number; chunks: [number, number]; parentAt: number };

/**
 * What of the parent's chunk list stays and what is cut again, so that the file is stored exactly as
 * cutting it whole would store it. A chunk's cut depends only on the bytes from its start, so up to
 * the parent chunk holding the first changed byte the cuts are the parent's. From that chunk's start
 * the new bytes (`from(chunk, offset)`, read to the end of the file if need be) are cut with the
 * repository's chunker until a cut past every change met so far is also one of the parent's: from
 * there the two cut alike again. The parent's last cut is where its file ended, not one the chunker
 * chose, so it does not count; a file that never falls back in step is cut again to its end.
 */
export async function planParts(
  device: DeviceBlocks,
  changed: Iterable<number>,
  chunkSizes: readonly number[],
  from: (chunk: number, at: number) => AsyncIterable<Buffer>,
  chunker: Chunker,
): Promise<PlannedPart[]> {
  const { blockSize, size } = device;
  const starts = [0];
  for (const length of chunkSizes) starts.push(starts.at(-1)! + length);
  const n = chunkSizes.length;
  /** The parent's own cuts (not its end), by offset: the index of the chunk starting there. */
  const cuts = new Map<number, number>();
  for (let j = 1; j < n; j++) cuts.set(starts[j]!, j);
  /** The parent chunk holding byte `at` (the last one for bytes past its end). */
  const chunkAt = (at: number): number => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const blocks = [...changed].sort((a, b) => a - b);
  const parts: PlannedPart[] = [];
  let kept = 0;
  let next = 0;
  while (next < blocks.length) {
    const first = chunkAt(blocks[next]! * blockSize);
    if (first > kept) parts.push({ keep: [kept, first], size: starts[first]! - starts[kept]! });
    let lastChanged = -1;
    let at = starts[first]!;
    let synced = -1;
    for await (const data of from(first, at)) {
      for (const chunk of chunker.push(data)) {
        at += chunk.length;
        while (next < blocks.length && blocks[next]! * blockSize < at) lastChanged = Math.min(size, (blocks[next++]! + 1) * blockSize) - 1;
        if (at > lastChanged && cuts.has(at)) {
          synced = at;
          break;
        }
      }
      if (synced >= 0) break;
    }
    chunker.finish(); // starts afresh for the next part
    if (synced < 0) {
      parts.push({ from: starts[first]!, to: size, chunks: [first, n], parentAt: starts[first]! });
      return parts;
    }
    const end = cuts.get(synced)!;
    parts.push({ from: starts[first]!, to: synced, chunks: [first, end], parentAt: starts[first]! });
    kept = end;
  }
  if (kept < n) {
    // The rest is unchanged only if the file ends where the parent did (else its last block changed).
    if (starts[n] !== size) throw new DeltaUnavailable('the unchanged rest of the file does not end with its previous copy');
    parts.push({ keep: [kept, n], size: size - starts[kept]! });
  }
  return parts;
}
