/**
 * The remote listing that decides what crosses the link: GNU find prints type, mode, owner, times
 * (ns), size, device:inode, link count, link target and path for every entry, NUL-separated so any
 * file name (newlines included) survives.
 */
import { decodeName } from '../../repository/snapshot/names';
import type { NodeMeta, NodeType } from '../../repository/snapshot/tree';
import { C_MESSAGES, raw, sh, STDBUF_PROBE } from '../shell-quote';
import type { RawShell } from '../shell-quote';

export interface ListedEntry {
  /** Absolute path on the device. */
  absolute: string;
  meta: NodeMeta;
  /** Bytes the file has on disk (find's %b blocks of 512): far below its size for a sparse file. */
  allocated?: number;
}

const FIELDS = 12;
const TYPES: Record<string, NodeType> = { f: 'file', d: 'dir', l: 'symlink', p: 'fifo', s: 'socket', c: 'chardev', b: 'blockdev' };

/**
 * File systems the kernel makes up as they are read (processes, devices, kernel state): a folder
 * mounted with one is listed, as the mount point a restore needs, but not entered. A source of `/`
 * would otherwise walk /proc and /sys — /proc/kcore alone claims 128 TiB, and /sys files change size
 * as tar reads them. (tmpfs is not among them: a folder there can hold what an app keeps.)
 */
export const PSEUDO_FILESYSTEMS = ['proc', 'sysfs', 'devtmpfs', 'devpts', 'cgroup', 'cgroup2', 'debugfs', 'tracefs', 'securityfs', 'pstore', 'bpf', 'configfs', 'fusectl', 'mqueue', 'hugetlbfs', 'binfmt_misc', 'autofs', 'efivarfs', 'rpc_pipefs', 'nsfs'] as const;

/**
 * What Jetvault itself leaves on a device starts with this: restore stagings and the folders a cut
 * restore keeps (`.jetvault-restore-…`, `.jetvault-resume-…`), database restores' work folders
 * (`~/.jetvault-restore`, `.jetvault-dbrestore-…`), drills' scratch (`.jetvault-drill-…`), the run
 * marks and the dumps' private temp folders. A backup's listing neither enters nor lists them: a files
 * source of /opt/myrvm stored the resume folder of a cut restore of /opt/myrvm/models (gigabytes, for
 * 24 hours), and a restore of that snapshot would have put it back.
 */
export const DEVICE_WORK_PREFIX = '.jetvault-';

/** Paths of files sources inside Jetvault's own working folders: no backup lists them (DEVICE_WORK_PREFIX). */
export function workFolderIssues(sources: readonly { kind: string; paths?: readonly string[] }[]): { path: string; message: string }[] {
  return sources.flatMap((source, i) =>
    source.kind !== 'files'
      ? []
      : (source.paths ?? []).flatMap((p, j) =>
          p.split('/').some((part) => part.startsWith(DEVICE_WORK_PREFIX))
            ? [{ path: `sources.${i}.paths.${j}`, message: `${p} is inside one of Jetvault's own working folders on the device (${DEVICE_WORK_PREFIX}…), which backups leave out` }]
            : [],
        ),
  );
}

const PRINTF = "-printf '%y\\0%m\\0%U\\0%G\\0%T@\\0%C@\\0%s\\0%D:%i\\0%n\\0%b\\0%l\\0%p\\0'";
const PRUNE_OWN = `\\( -name '${DEVICE_WORK_PREFIX}*' -prune \\) -o`;
const PRUNE_PSEUDO = `\\( ${PSEUDO_FILESYSTEMS.map((type) => `-fstype ${type}`).join(' -o ')} \\) -prune ${PRINTF} -o ${PRINTF}`;

/**
 * find with 64 KiB writes (largeWrites), its messages (unreadable or vanished folders) in English, as
 * they are read: C_MESSAGES. `paths` may be 'args': the shell's positional parameters, set by the
 * command before it. `skipOwn` leaves out Jetvault's own working folders (DEVICE_WORK_PREFIX),
 * the starting points' names too: backups, and restores listing their target.
 */
export function listingCommand(paths: readonly string[] | 'args', { skipOwn = false } = {}): RawShell {
  return sh`${STDBUF_PROBE}; ${C_MESSAGES} $JV_W find ${paths === 'args' ? raw('"$@"') : paths} ${raw(skipOwn ? `${PRUNE_OWN} ${PRUNE_PSEUDO}` : PRUNE_PSEUDO)}`;
}

/** `1700000000.1234567890` (find's %T@) → exact nanoseconds as a decimal string. */
export function secondsToNs(text: string): string {
  const dot = text.indexOf('.');
  const next = dot < 0 ? -1 : text.indexOf('.', dot + 1);
  const sec = dot < 0 ? text : text.slice(0, dot);
  const frac = dot < 0 ? '' : text.slice(dot + 1, next < 0 ? text.length : next);
  const nine = frac.length >= 9 ? frac.slice(0, 9) : frac + '000000000'.slice(frac.length);
  // The common case (two per listed entry) without BigInt or regular expressions: digits before and
  // after the point, joined, leading zeros dropped.
  if (sec.length > 0 && digitsOnly(sec) && digitsOnly(frac)) {
    const joined = sec + nine;
    let zeros = 0;
    while (zeros < joined.length - 1 && joined.charCodeAt(zeros) === 48) zeros++;
    return zeros === 0 ? joined : joined.slice(zeros);
  }
  return (BigInt(sec) * 1_000_000_000n + BigInt(nine)).toString();
}

function digitsOnly(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Parses complete records from `buffer`; returns them and the unparsed remainder. */
export function parseListing(buffer: Buffer): { entries: ListedEntry[]; rest: Buffer } {
  const entries: ListedEntry[] = [];
  let start = 0;
  for (;;) {
    const fields: string[] = [];
    let at = start;
    while (fields.length < FIELDS) {
      const end = buffer.indexOf(0, at);
      if (end < 0) break;
      // Target and path are bytes: decoded losslessly (non-UTF-8 bytes as lone surrogates).
      fields.push(fields.length >= 10 ? decodeName(buffer.subarray(at, end)) : buffer.toString('utf8', at, end));
      at = end + 1;
    }
    if (fields.length < FIELDS) break;
    start = at;
    const [y, m, uid, gid, mtime, ctime, size, inode, links, blocks, target, path] = fields as [string, string, string, string, string, string, string, string, string, string, string, string];
    const type = TYPES[y];
    if (!type) continue; // door / unknown: nothing we can restore
    const meta: NodeMeta = {
      type,
      mode: parseInt(m, 8),
      uid: Number(uid),
      gid: Number(gid),
      mtime: secondsToNs(mtime),
      ctime: secondsToNs(ctime),
      size: type === 'file' ? Number(size) : 0,
      inode,
      links: Number(links),
      ...(type === 'symlink' ? { target } : {}),
    };
    entries.push({ absolute: path, meta, allocated: Number(blocks) * 512 });
  }
  return { entries, rest: buffer.subarray(start) };
}

/**
 * Depth-first order with every directory before its contents (what the archiver requires): paths
 * compared component by component, which is plain string order with '/' below every other
 * character. Compared in place: a listing of 5,000 entries sorted by splitting both paths on every
 * comparison cost ~80 ms.
 */
export function compareTreeOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

const SLASH = 47;

/**
 * A listing in tree order (compareTreeOrder), sorting only siblings: find already lists every
 * directory before its contents, so each directory's entries are sorted by name (native string
 * order, which is tree order for names without '/') and the result is emitted depth first. One
 * comparison sort over full paths cost 42–53 ms for 20,000 entries (most comparisons walking a long
 * shared prefix); this takes 29–40 ms. Anything unusual — the same path twice (overlapping source paths)
 * or an order the check does not confirm — falls back to that sort.
 */
export function sortTreeOrder(entries: ListedEntry[]): ListedEntry[] {
  const fallback = () => [...entries].sort((a, b) => compareTreeOrder(a.absolute, b.absolute));
  const dirs = new Set<string>();
  for (const e of entries) if (e.meta.type === 'dir') dirs.add(e.absolute);
  const top: ListedEntry[] = [];
  const children = new Map<string, Map<string, ListedEntry>>();
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.absolute)) return fallback();
    seen.add(entry.absolute);
    const slash = entry.absolute.lastIndexOf('/');
    const parent = entry.absolute.slice(0, slash);
    if (slash <= 0 || !dirs.has(parent)) {
      top.push(entry);
      continue;
    }
    let group = children.get(parent);
    if (!group) children.set(parent, (group = new Map<string, ListedEntry>()));
    group.set(entry.absolute.slice(slash + 1), entry);
  }
  const out: ListedEntry[] = [];
  const emit = (entry: ListedEntry): void => {
    out.push(entry);
    const group = entry.meta.type === 'dir' ? children.get(entry.absolute) : undefined;
    if (!group) return;
    // Array.prototype.sort without a comparator orders strings by UTF-16 code units, natively.
    for (const name of [...group.keys()].sort()) emit(group.get(name)!);
  };
  for (const entry of top.sort((a, b) => compareTreeOrder(a.absolute, b.absolute))) emit(entry);
  if (out.length !== entries.length) return fallback();
  for (let i = 1; i < out.length; i++) if (compareTreeOrder(out[i - 1]!.absolute, out[i]!.absolute) > 0) return fallback();
  return out;
}
