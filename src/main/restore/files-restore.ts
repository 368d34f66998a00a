/**
 * Restoring a `files` snapshot onto a device without ever leaving it half-written.
 *
 * For each restored root T (a snapshot path, e.g. /opt/myrvm) a staging folder S sits beside it
 * (`.jetvault-restore-<id>-<name>`, same file system, so renames are atomic):
 *   stage   S/new is a hard-link copy of T (cheap), files that differ are unlinked (never written
 *           through a link into the live tree; a folder whose mode alone differs stays, with what it
 *           holds) and the snapshot's versions are extracted from a tar stream built from the repository;
 *   verify  sha256sum on the device against hashes computed while streaming;
 *   swap    one short script, immune to a dropped link (SIGHUP ignored), journals `swapping`, moves
 *           T to S/previous and S/new to T, journals `swapped`;
 *   confirm removes S (and the previous state); rollback moves it back.
 * A console that dies or a link that drops at any point leaves S with its journal; `recover` then
 * puts T back to its original state unless the swap had completed.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { throwIfAborted } from '../repository/errors';
import type { Repository } from '../repository/repo/repository';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { TreeNode } from '../repository/snapshot/tree';
import { AppError } from '../../shared/errors';
import { raw, sh } from '../devices/shell-quote';
import type { RawShell } from '../devices/shell-quote';
import type { CommandRunner } from '../devices/ssh-connection';
import { connectionLost, runToString } from '../devices/ssh-connection';
import { countedSink, wireSink } from '../devices/wire-compression';
import { decodeName, encodeName, pathTooLong } from '../repository/snapshot/names';
import { PathMatcher } from '../devices/sources/glob';
import { DEVICE_WORK_PREFIX, listingCommand, parseListing } from '../devices/sources/listing';
import type { ListedEntry } from '../devices/sources/listing';
import { DELTA_MIN_BYTES, DeltaUnavailable } from '../devices/sources/block-delta';
import { contentKey } from '../devices/sources/files-source';
import { patchable, stagePatched } from './block-patch';
import type { DeviceCopy } from './device-copies';
import { nodeAt, nodesBelow, sentSize, tarFromSnapshot } from './snapshot-files';
import type { SnapshotFile } from './snapshot-files';
import { counted, verb } from '../../shared/plural';

export const RESTORE_PREFIX = `${DEVICE_WORK_PREFIX}restore-`;

/**
 * A restore cut off by its link while it staged a folder leaves the large files it had staged (whole
 * or in part) in a resume folder beside the target (`.jetvault-resume-<name>`, same file system, 0700,
 * the login's own) when the next restore or recovery settles it; the next restore of that target
 * completes them where they lie and sends only what they lack (block-patch.ts). Files from 1 MiB up
 * are kept, and taken up from that size too (other patches start at DELTA_MIN_BYTES): below it the
 * next restore's tar stream is as cheap.
 */
export const RESUME_PREFIX = `${DEVICE_WORK_PREFIX}resume-`;
const RESUME_MIN_BYTES = 1024 * 1024;
/** A file the next restore completes from its resume folder's copy (smaller than other patches: that copy is the link's work). */
const worthResuming = (node: TreeNode) => patchable(node, RESUME_MIN_BYTES);
/** A resume folder no restore took up within this long is removed by the device's next recovery: its space is the device's. */
export const RESUME_HOURS = 24;
export const resumeFolder = (target: string) => path.posix.join(path.posix.dirname(target), `${RESUME_PREFIX}${path.posix.basename(target)}`);

export interface RestoreRoot {
  /** The path inside the snapshot (relative to the device's sysroot). */
  snapshotPath: string;
  /** Where it goes on the device (absolute). */
  target: string;
  /** The staging folder beside the target. */
  staging: string;
  targetExists: boolean;
  add: string[];
  replace: string[];
  remove: string[];
  unchanged: number;
  bytesToSend: number;
  /**
   * Of `bytesToSend`: large files the device has a copy of — the one it replaces, or one of the same
   * size at another path (device-copies.ts) — which may cross as the blocks that differ (block-patch.ts).
   */
  patchableBytes?: number;
  /**
   * Of `bytesToSend`: what large files already hold in the resume folder of a restore of this folder
   * that its link cut off (RESUME_PREFIX) — taken up, not sent again.
   */
  resumableBytes?: number;
  /**
   * Folders in `replace` that are folders on the device too, with another mode: they keep what they
   * hold and only get the snapshot's mode and times (tar sets them); never removed from the staging copy.
   */
  foldersInPlace?: string[];
  /** The snapshot path is a single file (not a folder). */
  file?: boolean;
  /**
   * The folder itself has another mode on the device than in the snapshot (`from` → `to`, permission
   * bits): the root is staged and swapped for that alone, and tar gives the staged copy the snapshot's mode.
   */
  rootMode?: { from: number; to: number };
  /**
   * The folder itself belongs to another owner on the device than in the snapshot (`from` → `to`,
   * "uid:gid"), and the login can give it back: the root is staged and swapped, and tar (as root)
   * gives the staged copy the snapshot's owner.
   */
  rootOwner?: { from: string; to: string };
  /**
   * The folder is a mount point (a file system of its own, or a bind mount): it cannot be renamed
   * aside for the swap (EBUSY), so a restore that would change it stops at preflight.
   */
  mountPoint?: boolean;
  /**
   * Of `replace`: entries whose owner (uid:gid) differs from the snapshot's and goes back — any
   * owner when the device's login is root, the login's own otherwise — including those where
   * nothing else differs (someone ran `chown -R` on the app folder).
   */
  owners?: number;
  /**
   * Entries that will not have their owner after this restore: it is another account's, the login
   * is not root, and the entry differs in owner now or is made anew by the restore (files sent,
   * every folder of a staged copy, and files the staging copy cannot hard-link belong to the login
   * that makes them) — entries of the snapshot, and those outside it that the restore leaves.
   */
  ownersKept?: number;
  /**
   * Entries of the device's folder its staging copy cannot reach (`unreachable`: the login cannot read
   * them): how many, and up to 5 of them (relative paths). The preflight refuses such a restore.
   */
  unreachable?: { count: number; samples: string[] };
  /**
   * Entries of the device's folder whose path in the staging copy would be 4,096 bytes or more
   * (folders nested past Linux's PATH_MAX; no backup holds them): how many, and up to 3 of them.
   * The staging copy cannot make them, and swapping without them would lose them: the preflight
   * refuses such a restore.
   */
  tooLong?: { count: number; samples: string[] };
  /**
   * Entries of the snapshot whose path in the staging copy would be 4,096 bytes or more (restored
   * below a longer path than the device's): the staging copy could be unpacked but not read back,
   * checked or cleaned up by path, so the preflight refuses such a restore before anything crosses.
   */
  tooDeepHere?: { count: number; samples: string[] };
  /**
   * Bytes the staging copy copies instead of hard-linking (the login is not root and the kernel's
   * protected_hardlinks refuses another account's files it cannot read and write): staging needs the space.
   */
  copiedBytes?: number;
  /**
   * With `checkContents`: files that looked unchanged (size, mtime, mode) and were read on both
   * sides — how many, how many differed in content (now in `replace`), and how many the device's
   * login could not read (left as they are).
   */
  contents?: { checked: number; differ: number; unreadable: number };
}

export interface FilesRestorePlan {
  restoreId: string;
  snapshotId: string;
  roots: RestoreRoot[];
  bytesToSend: number;
  /** Of `bytesToSend`: what may cross as block patches instead (RestoreRoot.patchableBytes). */
  patchableBytes: number;
  /** Of `bytesToSend`: what an earlier restore cut off by its link staged already (RestoreRoot.resumableBytes). */
  resumableBytes?: number;
  /** Free bytes on the file systems of the targets (smallest), and what staging needs there. */
  freeBytes: number;
  spaceNeeded: number;
  /** Who the device's login is (`id`), which decides what owners a restore can give back; null when `id` failed (owners not compared). Not kept with a waiting restore. */
  login?: DeviceLogin | null;
}

/** The account a restore writes as: root sets any owner (tar restores uid and gid); another account's files are its own. */
export interface DeviceLogin {
  uid: number;
  gid: number;
  name: string;
  /** Every group the login is in (`id -G`): with `protectedHardlinks`, which files it may hard-link. */
  groups: number[];
  /**
   * The device's `fs.protected_hardlinks` (on by default in Ubuntu and L4T): a login other than root
   * may then hard-link only files it owns or can read and write — the staging copy copies the others.
   */
  protectedHardlinks: boolean;
}

/** "uid:gid", as the plan shows an owner. */
const ownerText = (m: { uid: number; gid: number }): string => `${m.uid}:${m.gid}`;
const sameOwner = (a: { uid: number; gid: number }, b: { uid: number; gid: number }) => a.uid === b.uid && a.gid === b.gid;
/** Whether what `login` writes can have `node`'s owner. */
const canOwn = (login: DeviceLogin, node: { uid: number; gid: number }) => login.uid === 0 || sameOwner(login, node);

async function deviceLogin(runner: CommandRunner): Promise<DeviceLogin | null> {
  const [uid, gid, name, groups, protectedHardlinks] = (await runToString(runner, sh`id -u && id -g && id -un && id -G && { cat /proc/sys/fs/protected_hardlinks 2>/dev/null || echo 1; }`)).trim().split('\n');
  if (!/^\d+$/.test(uid ?? '') || !/^\d+$/.test(gid ?? '')) return null;
  return {
    uid: Number(uid),
    gid: Number(gid),
    name: name?.trim() || `uid ${uid}`,
    groups: (groups ?? '').trim().split(/\s+/).filter((g) => /^\d+$/.test(g)).map(Number),
    // Unknown counts as on: the plan then warns about owners it may keep after all.
    protectedHardlinks: protectedHardlinks?.trim() !== '0',
  };
}

/**
 * Whether the staging copy (`cp -al`) can hard-link the device's entry `now` as `login`, which keeps
 * its owner: root always; others, as the kernel's `may_linkat` decides with protected_hardlinks on —
 * their own entries, and another account's regular file (not setuid, not setgid-executable) that the
 * login can read and write. Anything else is copied, and the copy is the login's.
 */
function linkable(login: DeviceLogin, now: ListedEntry['meta']): boolean {
  if (login.uid === 0 || !login.protectedHardlinks || now.uid === login.uid) return true;
  if (now.type !== 'file' || now.mode & 0o4000 || (now.mode & 0o2010) === 0o2010) return false;
  return (permissions(login, now) & 6) === 6;
}

/** The rwx bits that apply to `login` on an entry (owner, else group — primary or supplementary —, else others), as the kernel checks them. */
function permissions(login: DeviceLogin, now: ListedEntry['meta']): number {
  if (now.uid === login.uid) return (now.mode >> 6) & 7;
  return login.groups.includes(now.gid) || now.gid === login.gid ? (now.mode >> 3) & 7 : now.mode & 7;
}

/**
 * What a staging copy made by `login` cannot reach (the preflight refuses the restore then): a folder
 * it cannot read or enter, or — with protected_hardlinks — another account's file it cannot read.
 */
function unreachable(login: DeviceLogin, now: ListedEntry['meta']): boolean {
  if (login.uid === 0) return false;
  if (now.type === 'dir') return (permissions(login, now) & 5) !== 5;
  return now.type === 'file' && login.protectedHardlinks && now.uid !== login.uid && (permissions(login, now) & 4) === 0;
}

export interface FilesRestoreOptions {
  repo: Repository;
  runner: CommandRunner;
  snapshot: SnapshotWithId;
  restoreId: string;
  /** The device's filesystem root (`/` on a Jetson). */
  sysroot?: string;
  /** Restore below this folder on the device instead of in place (e.g. for inspection). */
  targetRoot?: string;
  /** Limit to these paths/patterns (relative to each snapshot path); everything else stays as it is. */
  include?: string[];
  /**
   * The source's exclude patterns: what the backup left out (a live database, caches) is not the
   * restore's to remove, and stays exactly as it is on the device.
   */
  exclude?: string[];
  signal?: AbortSignal;
  /** Send the files gzip'ed (`gzip -1` here, unpacked by the device's tar): a slow link, decision 019. */
  compress?: boolean;
  /**
   * Also compare the contents of files whose size, mtime and mode match the snapshot (a copy damaged
   * on the device with its metadata intact): SHA-256 on the device against the snapshot's bytes.
   */
  checkContents?: boolean;
  /**
   * The large files the device held at its last backups, by size (device-copies.ts; asked once, and
   * only when a large file has no copy at its own path): a file sent may be staged from one of them,
   * or from another copy on the device (copiesElsewhere). Without it, only the file a large file
   * replaces is a base — as for drills, which measure a restore from the repository: every byte crosses.
   */
  copiesOnDevice?: () => Promise<Map<number, DeviceCopy[]>>;
  /**
   * Take up what an earlier restore of the same folder staged before its link was cut (RESUME_PREFIX):
   * the restore service's restores. Drills never do: they measure a restore from the repository.
   */
  resume?: boolean;
}

const join = (...parts: string[]) => path.posix.join(...parts);

/** NUL-terminated paths for `xargs -0`, each as its exact bytes (names that are not UTF-8 included). */
const nulList = (paths: string[]) => Buffer.concat(paths.flatMap((p) => [encodeName(p), Buffer.from([0])]));

function sameFile(node: TreeNode, current: ListedEntry['meta'] | undefined): boolean {
  if (!current || current.type !== node.type) return false;
  if (node.type === 'symlink') return current.target === node.target;
  if (node.type !== 'file') return current.mode === node.mode;
  return current.size === node.size && current.mtime === node.mtime && current.mode === node.mode;
}

/**
 * What is at `target` on the device now, by path below it. Jetvault's own folders inside it (what a
 * restore of a folder inside it staged or kept — `skipOwn`) are left out: no snapshot holds them, so
 * the restore neither removes nor lists them; the staging's hard-link copy keeps them as they are.
 */
/** A listing command's entries (listing.ts) and its exit status. */
async function listed(runner: CommandRunner, command: RawShell): Promise<{ entries: ListedEntry[]; code: number | null }> {
  const running = await runner.exec(command);
  running.stdin.end();
  const chunks: Buffer[] = [];
  for await (const chunk of running.stdout) chunks.push(chunk as Buffer);
  const { code } = await running.done;
  return { entries: parseListing(Buffer.concat(chunks)).entries, code };
}

async function listCurrent(runner: CommandRunner, target: string, { skipOwn = true } = {}): Promise<Map<string, ListedEntry['meta']> | null> {
  const { entries, code } = await listed(runner, listingCommand([target], { skipOwn }));
  if (code !== 0 && entries.length === 0) return null; // the target does not exist (yet)
  return new Map(entries.map((e) => [e.absolute === target ? '' : e.absolute.slice(target.length + 1), e.meta]));
}

/**
 * What restores of `target` cut off before their swap staged beside it, for the next recovery to
 * settle (rollbackScript with `resume`; a restore settles them before it plans, so only a preview
 * meets them): the files it will keep for a rerun (KEEP_RESUME: one link, 1 MiB and more; by path
 * below the folder, the largest copy where two cut restores staged one) and the bytes it will free.
 */
async function cutStaged(runner: CommandRunner, target: string): Promise<{ files: Map<string, number>; bytes: number }> {
  const dir = path.posix.dirname(target);
  const name = path.posix.basename(target);
  const { entries } = await listed(runner, sh`t=${target}; set --
for s in ${dir}/${raw(RESTORE_PREFIX)}*-${name}; do
  [ -d "$s" ] && [ ! -L "$s" ] && [ -d "$s/new" ] && [ ! -L "$s/new" ] && [ "$(cat "$s/target" 2>/dev/null)" = "$t" ] || continue
  j=$(cat "$s/journal" 2>/dev/null) || j=staging
  case "$j" in staging|staged|verified) set -- "$@" "$s/new" ;; esac
done
[ $# -gt 0 ] || exit 0
${listingCommand('args')}`);
  const files = new Map<string, number>();
  let bytes = 0;
  const inside = `${dir === '/' ? '' : dir}/${RESTORE_PREFIX}`;
  for (const { absolute, meta } of entries) {
    if (meta.type !== 'file' || (meta.links ?? 1) > 1 || !absolute.startsWith(inside)) continue;
    bytes += meta.size;
    const rest = absolute.slice(absolute.indexOf('/', inside.length) + 1);
    if (!rest.startsWith('new/') || meta.size < RESUME_MIN_BYTES) continue;
    const rel = rest.slice('new/'.length);
    files.set(rel, Math.max(files.get(rel) ?? 0, meta.size));
  }
  return { files, bytes };
}

/** Bytes the next recovery frees beside a root (cutStaged), which a preview counts as free. */
const settlingFrees = new WeakMap<RestoreRoot, number>();

/** What the plan walked below each root, for the stage right after it (taken once; a kept plan holds nothing). */
const walked = new WeakMap<RestoreRoot, { tree: string; nodes: SnapshotFile[] }>();
/** The large files in each root's folder on the device when it was planned, by size (absolute paths): copies a file sent may be staged from. */
const largeNow = new WeakMap<RestoreRoot, Map<number, string[]>>();
/** What each root's resume folder held when it was planned: its files (relative path → size), all taken up or removed by the stage. */
const resumeNow = new WeakMap<RestoreRoot, Map<string, number>>();

/** Copies at other paths tried for one file: each costs a read of the file on the device. */
export const COPIES_TRIED = 3;

/**
 * Files on the device other than its own path that a large file sent to `rel` of `root` may be
 * staged from, best first: with `blind`, the file's own path when the restore goes into another
 * folder (the live original, not yet known to exist); a copy the last backup stored with the same
 * content; a file of the same size in the root's folder now; another of the same size the last
 * backup saw.
 */
async function copiesElsewhere(options: FilesRestoreOptions, root: RestoreRoot, rel: string, node: TreeNode, blind: boolean): Promise<string[]> {
  if (!options.copiesOnDevice) return [];
  const own = rel ? join(root.target, rel) : root.target;
  const copies = (await options.copiesOnDevice().catch(() => null))?.get(node.size) ?? [];
  const key = contentKey(node.content ?? []);
  const original = blind && options.targetRoot ? [join((options.sysroot ?? '/').replace(/\/+$/, '') || '/', root.snapshotPath, rel)] : [];
  const ranked = [...original, ...copies.filter((c) => c.content === key).map((c) => c.path), ...(largeNow.get(root)?.get(node.size) ?? []), ...copies.filter((c) => c.content !== key).map((c) => c.path)];
  return [...new Set(ranked)].filter((p) => p !== own).slice(0, COPIES_TRIED);
}

export async function planFilesRestore(options: FilesRestoreOptions): Promise<FilesRestorePlan> {
  const { repo, runner, snapshot, restoreId } = options;
  const sysroot = (options.sysroot ?? '/').replace(/\/+$/, '');
  // What each file takes on the link and in staging: a large file with holes, far less than its size.
  const sent = sentSize(repo);
  const include = new PathMatcher(options.include ?? []);
  const exclude = new PathMatcher(options.exclude ?? []);
  const excluded = (rel: string) => !exclude.empty && rel.split('/').some((_, i, parts) => exclude.matches(parts.slice(0, i + 1).join('/')));
  const selected = (rel: string) => include.empty || rel === '' || include.matches(rel) || [...rel.split('/').keys()].some((i) => include.matches(rel.split('/').slice(0, i + 1).join('/')));
  const roots: RestoreRoot[] = [];
  const targetOf = (snapshotPath: string) => (options.targetRoot ? join(options.targetRoot, snapshotPath) : join(sysroot || '/', snapshotPath));
  // The free space is asked for while the device is listed and the snapshot walked (reads only, side by side).
  // A target below folders that do not exist yet lives on the file system of its nearest existing ancestor.
  const loginOf = deviceLogin(runner).catch(() => null);
  // Mount points among the targets (asked alongside, like the free space).
  const mounts = runToString(runner, sh`for t in ${snapshot.paths.map((p) => targetOf(p))}; do ${IS_MOUNT_POINT} && printf '%s\\0' "$t"; done; true`).then(
    (out) => new Set(out.split('\0').filter(Boolean)),
    () => new Set<string>(),
  );
  const df = runToString(runner, sh`for p in ${snapshot.paths.map((p) => path.posix.dirname(targetOf(p)))}; do while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -P -k -- "$p" | tail -n +2; done`).catch(() => '');
  // Asked beside the first listing (a round trip on a field link), needed once that is in.
  let login: DeviceLogin | null = null;
  // An owner that differs and can go back makes an entry a change of its own (a file is sent again:
  // a hard link in the staging copy shares the live file's inode, so chowning it would change the live file).
  const ownerBack = (node: TreeNode, now: ListedEntry['meta'] | undefined) => login !== null && now !== undefined && !sameOwner(now, node) && canOwn(login, node);
  for (const snapshotPath of snapshot.paths) {
    const target = targetOf(snapshotPath);
    const staging = join(path.posix.dirname(target), `${RESTORE_PREFIX}${restoreId}-${path.posix.basename(target)}`);
    // The resume folder is listed beside the target, for a folder only (a single file keeps none).
    const walking = nodesBelow(repo, snapshot.tree, snapshotPath);
    const [below, current, resumable, cut] = await Promise.all([
      walking,
      listCurrent(runner, target),
      options.resume ? walking.then((nodes) => (nodes.length > 0 ? listCurrent(runner, resumeFolder(target), { skipOwn: false }) : null)) : null,
      options.resume ? walking.then((nodes) => (nodes.length > 0 ? cutStaged(runner, target) : null)) : null,
    ]);
    login = await loginOf;
    // Only a folder of the login's own (it made it 0700): anything else of that name is not taken up.
    const resumeRoot = resumable?.get('');
    const resume = resumeRoot?.type === 'dir' && login !== null && resumeRoot.uid === login.uid ? new Map([...resumable!].filter(([rel, m]) => rel !== '' && m.type === 'file').map(([rel, m]) => [rel, m.size])) : null;
    // What a cut restore staged goes into that folder when recovery settles it (not into another's).
    const settling = cut && (resumeRoot === undefined || resume !== null) ? cut.files : null;
    const stagedBefore = (rel: string) => Math.max(resume?.get(rel) ?? -1, settling?.get(rel) ?? -1);
    const wanted = below.filter((f) => selected(f.path));
    const root: RestoreRoot = { snapshotPath, target, staging, targetExists: current !== null, add: [], replace: [], remove: [], unchanged: 0, bytesToSend: 0 };
    walked.set(root, { tree: snapshot.tree, nodes: below });
    if (resume) resumeNow.set(root, resume);
    if (cut && cut.bytes > 0) settlingFrees.set(root, cut.bytes);
    if (options.copiesOnDevice) {
      const large = new Map<number, string[]>();
      for (const [rel, now] of current ?? []) if (now.type === 'file' && now.size >= DELTA_MIN_BYTES) large.set(now.size, [...(large.get(now.size) ?? []), rel ? join(target, rel) : target]);
      largeNow.set(root, large);
    }
    const inSnapshot = new Set(wanted.map((f) => f.path));
    /** Large files sent with no file at their path on the device: a copy elsewhere may do. */
    const homeless: SnapshotFile[] = [];
    for (const { path: rel, node } of wanted) {
      const now = current?.get(rel);
      const owner = ownerBack(node, now);
      if (sameFile(node, now) && !owner) root.unchanged++;
      else {
        if (owner) root.owners = (root.owners ?? 0) + 1;
        (now ? root.replace : root.add).push(rel);
        if (node.type === 'file') toSend(root, node, now?.type === 'file', sent);
        const staged = worthResuming(node) ? stagedBefore(rel) : -1;
        if (staged >= 0) {
          root.resumableBytes = (root.resumableBytes ?? 0) + Math.min(staged, node.size);
          if (now?.type !== 'file') root.patchableBytes = (root.patchableBytes ?? 0) + node.size;
        } else if (now?.type !== 'file' && patchable(node)) homeless.push({ path: rel, node });
        if (node.type === 'dir' && now?.type === 'dir') (root.foldersInPlace ??= []).push(rel);
      }
    }
    // What a backup could not hold is not the restore's to remove: excluded entries, and those nested
    // past PATH_MAX (left out of every snapshot with a warning; no call could remove them by path either).
    for (const rel of current?.keys() ?? []) if (rel !== '' && !inSnapshot.has(rel) && selected(rel) && !excluded(rel) && !pathTooLong(join(target, rel))) root.remove.push(rel);
    // The path's own node, read once: a folder's mode, or the path itself when it is a single file.
    const here = current?.get('');
    const own = wanted.length === 0 || (include.empty && here?.type === 'dir') ? await nodeAt(repo, snapshot.tree, snapshotPath) : null;
    // The folder's own mode (someone ran chmod on the app folder): its entries compare equal, so
    // nothing above would stage it. A restore of only some files (an include) leaves it as it is.
    // Its owner likewise, where the login can give it back.
    if (include.empty && here?.type === 'dir' && own?.type === 'dir') {
      if (own.mode !== here.mode) root.rootMode = { from: here.mode, to: own.mode };
      if (login && !sameOwner(here, own) && canOwn(login, own)) root.rootOwner = { from: ownerText(here), to: ownerText(own) };
    }
    if (options.checkContents) await recheckContents(options, root, wanted.filter((f) => f.node.type === 'file' && sameFile(f.node, current?.get(f.path)) && !ownerBack(f.node, current?.get(f.path))));
    // A path that is a single file (an .env, a unit file) is its own entry '': restored with its
    // whole source, or alone when an include names it (the one-file restore of the versions view).
    // Such a file often sits inside another restored folder (/opt/myrvm/.env in /opt/myrvm): the
    // restore service then stages it beside that folder instead (see `relocateFileRoots`).
    const self = wanted.length > 0 ? null : own;
    if (self && self.type !== 'dir' && (include.empty || include.matches(path.posix.basename(snapshotPath)))) {
      root.file = true;
      const owner = ownerBack(self, here);
      if (sameFile(self, here) && !owner) {
        root.unchanged++;
        if (options.checkContents && self.type === 'file') await recheckContents(options, root, [{ path: '', node: self }]);
      } else {
        if (owner) root.owners = 1;
        (here ? root.replace : root.add).push('');
        if (self.type === 'file') toSend(root, self, here?.type === 'file', sent);
        if (here?.type !== 'file' && patchable(self)) homeless.push({ path: '', node: self });
      }
    }
    // An existing folder that will be staged and swapped: what its staging copy cannot read, and
    // whether it can be moved aside at all (a mount point cannot).
    const swapsFolder = isActive(root) && root.targetExists && !root.file;
    if (login && login.uid !== 0) {
      const { kept, copiedBytes } = ownersKept(root, login, root.file ? [{ path: '', node: self! }] : self ? [] : [...(own && include.empty ? [{ path: '', node: own }] : []), ...wanted], current);
      root.ownersKept = kept;
      if (copiedBytes > 0) root.copiedBytes = copiedBytes;
      if (swapsFolder && current) {
        const blocked = [...current].filter(([rel, now]) => rel !== '' && unreachable(login!, now)).map(([rel]) => rel);
        if (blocked.length > 0) root.unreachable = { count: blocked.length, samples: blocked.slice(0, 5) };
      }
    }
    if (swapsFolder && (await mounts).has(target)) root.mountPoint = true;
    if (swapsFolder && current) {
      const deep = [...current.keys()].filter((rel) => pathTooLong(join(staging, 'new', rel)));
      if (deep.length > 0) root.tooLong = { count: deep.length, samples: deep.slice(0, 3) };
    }
    if (isActive(root)) {
      const deepHere = wanted.filter((f) => pathTooLong(join(staging, 'new', f.path))).map((f) => f.path);
      if (deepHere.length > 0) root.tooDeepHere = { count: deepHere.length, samples: deepHere.slice(0, 3) };
    }
    for (const { path: rel, node } of homeless) if ((await copiesElsewhere(options, root, rel, node, false)).length > 0) root.patchableBytes = (root.patchableBytes ?? 0) + node.size;
    roots.push(root);
  }
  const free = (await df).split('\n').filter(Boolean).map((line) => Number(line.trim().split(/\s+/)[3]) * 1024).filter((n) => Number.isFinite(n));
  // A resume folder's space is the restore's to use: the stage takes up its files in place or removes
  // them before anything else arrives (one df line per root, in order, when none failed); so is what a
  // cut restore staged, which the restore's recovery removes or moves into that folder first (a preview).
  const resumeBytes = roots.map((r) => [...(resumeNow.get(r)?.values() ?? [])].reduce((n, size) => n + size, settlingFrees.get(r) ?? 0));
  const freeHere = free.length === roots.length ? free.map((n, i) => n + resumeBytes[i]!) : free;
  const bytesToSend = roots.reduce((n, r) => n + r.bytesToSend, 0);
  const patchableBytes = roots.reduce((n, r) => n + (r.patchableBytes ?? 0), 0);
  const resumableBytes = roots.reduce((n, r) => n + (r.resumableBytes ?? 0), 0);
  return { restoreId, snapshotId: snapshot.id, roots, bytesToSend, patchableBytes, ...(resumableBytes > 0 ? { resumableBytes } : {}), freeBytes: freeHere.length > 0 ? Math.min(...freeHere) : 0, spaceNeeded: bytesToSend + roots.reduce((n, r) => n + (r.copiedBytes ?? 0), 0), login };
}

/**
 * A login other than root: entries of another account that will not have their owner afterwards.
 * Of the snapshot: their owner differs now, or the restore writes them (files sent; every folder of
 * a staged copy is made by the login), or the staging copy cannot hard-link them (`linkable`) and
 * copies them. Of the device's entries the restore leaves as they are (outside the snapshot: an
 * exclude, an include that does not name them), those a staging copy makes anew: folders, and files
 * it cannot link. Also the bytes that staging copies rather than links (it needs that space).
 */
function ownersKept(root: RestoreRoot, login: DeviceLogin, entries: SnapshotFile[], current: Map<string, ListedEntry['meta']> | null): { kept: number; copiedBytes: number } {
  const staged = isActive(root);
  const written = new Set([...root.add, ...root.replace]);
  let kept = 0;
  let copiedBytes = 0;
  const copied = (rel: string, now: ListedEntry['meta'] | undefined): boolean => staged && now !== undefined && now.type !== 'dir' && !written.has(rel) && !linkable(login, now);
  const inSnapshot = new Set<string>();
  for (const { path: rel, node } of entries) {
    inSnapshot.add(rel);
    const now = current?.get(rel);
    const copy = copied(rel, now);
    if (copy) copiedBytes += now!.size;
    if (canOwn(login, node)) continue;
    if ((now && !sameOwner(now, node)) || (staged && (written.has(rel) || node.type === 'dir' || copy))) kept++;
  }
  if (staged && current && !root.file) {
    const removed = new Set(root.remove);
    for (const [rel, now] of current) {
      if (rel === '' || inSnapshot.has(rel) || removed.has(rel)) continue;
      const copy = copied(rel, now);
      if (copy) copiedBytes += now.size;
      if ((copy || now.type === 'dir') && !sameOwner(now, login)) kept++;
    }
  }
  return { kept, copiedBytes };
}

/**
 * A file the restore sends: counted in the root's bytes, and in `patchableBytes` when the device
 * holds a file there that a block patch may start from (`onDevice`).
 */
function toSend(root: RestoreRoot, node: TreeNode, onDevice: boolean, size: (node: TreeNode) => number): void {
  root.bytesToSend += size(node);
  if (onDevice && patchable(node)) root.patchableBytes = (root.patchableBytes ?? 0) + node.size;
}

/** What the plan and the refusal say of a root with entries nested past PATH_MAX. */
export function tooLongText(root: RestoreRoot): string {
  const { count, samples } = root.tooLong!;
  return `${count} ${count === 1 ? 'entry' : 'entries'} in ${root.target} ${count === 1 ? 'is' : 'are'} nested too deep for Linux (a path of 4096 bytes or more in the restore's staging copy, e.g. ${samples[0]!.slice(0, 80)}…): the staging copy cannot hold ${count === 1 ? 'it' : 'them'} and no backup does; move ${count === 1 ? 'it' : 'them'} aside or shorten the folder names, or restore into another folder on the device`;
}

/** What the plan and the refusal say of a root the snapshot's entries would be nested too deep in. */
export function tooDeepHereText(root: RestoreRoot): string {
  const { count, samples } = root.tooDeepHere!;
  const one = count === 1;
  return `${count} ${one ? 'entry' : 'entries'} of the snapshot would be nested too deep for Linux in ${root.target} (a path of 4096 bytes or more in the restore's staging copy, e.g. ${samples[0]!.slice(0, 80)}…): restore into a folder with a shorter path`;
}

/** SHA-256 of no bytes: a file without chunks. */
const EMPTY_SHA256 = createHash('sha256').digest('hex');
/** Snapshot files hashed at once from the repository while the device hashes its copies. */
const CONTENT_CHECKS_AT_ONCE = 4;

/**
 * `checkContents`: the files that look unchanged are read on the device (`sha256sum`, names as
 * bytes on stdin) and from the repository (SHA-256 of the snapshot's bytes, by a chunk worker from
 * a local repository); those that differ move to `replace` — a large one is then sent as the blocks
 * that differ (block-patch.ts). A file the device's login cannot read is left as it is and counted.
 */
async function recheckContents(options: FilesRestoreOptions, root: RestoreRoot, files: SnapshotFile[]): Promise<void> {
  const { repo, runner, signal } = options;
  const contents = (root.contents ??= { checked: 0, differ: 0, unreadable: 0 });
  if (files.length === 0) return;
  const absolute = (rel: string) => (rel ? join(root.target, rel) : root.target);
  // Exit 123: some file could not be read (its line is missing); anything else is a failure — as is
  // a sha256sum without -z (BusyBox), which would otherwise make every file look unreadable.
  const running = await runner.exec(
    sh`sha256sum -z </dev/null >/dev/null 2>&1 || { echo 'this device has no sha256sum -z (GNU coreutils) to check contents with' >&2; exit 3; }
xargs -0 -r sha256sum -z -- 2>/dev/null; s=$?; [ $s -eq 0 ] || [ $s -eq 123 ] || exit $s`,
    signal,
  );
  const out: Buffer[] = [];
  running.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  running.stdin.on('error', () => undefined);
  running.stdin.end(nulList(files.map((f) => absolute(f.path))));
  const done = running.done;
  done.catch(() => undefined); // awaited below; the repository's side may fail first
  const mine = new Map<string, string>();
  const queue = [...files];
  const hashOne = async (): Promise<void> => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      throwIfAborted(signal);
      const content = f.node.content ?? [];
      mine.set(f.path, content.length === 0 ? EMPTY_SHA256 : (await repo.blockHashes(content, Number.MAX_SAFE_INTEGER))[0]!);
    }
  };
  await Promise.all(Array.from({ length: CONTENT_CHECKS_AT_ONCE }, hashOne));
  const result = await done;
  if (result.code !== 0) throw new AppError('REMOTE_COMMAND_FAILED', `Checking file contents on ${runner.target} failed: ${result.stderr.trim() || `exit ${result.code ?? result.signal}`}`);
  const theirs = parseSums(Buffer.concat(out), 0);
  for (const f of files) {
    const sum = theirs.get(absolute(f.path));
    if (sum === undefined) {
      contents.unreadable++;
      continue;
    }
    contents.checked++;
    if (sum === mine.get(f.path)) continue;
    contents.differ++;
    root.unchanged--;
    root.replace.push(f.path);
    toSend(root, f.node, true, sentSize(options.repo));
  }
}

/**
 * Removes its arguments (paths in the staging copy) after making writable the folders that hold
 * them and the folders inside them: `rm` and tar need to write there, and the device's account may
 * have made a folder read-only. Only folders of the staging copy are changed, never files (those
 * are hard links to the live ones).
 */
const UNLINK_SCRIPT = `for f do d=\${f%/*}; [ ! -d "$d" ] || [ -w "$d" ] || chmod u+w -- "$d" || exit 1; done
find "$@" -type d ! -perm -u+w -exec chmod u+w {} + 2>/dev/null
rm -rf -- "$@"`;

/**
 * Whether the folder `$t` is a mount point: `mountpoint` (util-linux; bind mounts too), else its
 * file system differs from its parent's. A mount point cannot be renamed (EBUSY), so never swapped.
 */
const IS_MOUNT_POINT = raw(`{ [ -d "$t" ] && [ ! -L "$t" ] && if command -v mountpoint >/dev/null 2>&1; then mountpoint -q -- "$t"; else [ "$(stat -c %d -- "$t")" != "$(stat -c %d -- "$t/..")" ]; fi; }`);

/**
 * Preflight, for each existing folder `$t` to be staged: its staging copy must reach all of it. A
 * folder the login cannot read or enter, or (with protected_hardlinks) another account's file it
 * cannot read, can be neither linked nor copied (FILL_IN): the first one found stops the restore
 * before anything is staged, named with its owner. Root reads everything: not looked for.
 */
const UNREADABLE = raw(`if [ "$(cat /proc/sys/fs/protected_hardlinks 2>/dev/null)" = 0 ]; then bad=$(find "$t" -type d \\( ! -readable -o ! -executable \\) -print -quit 2>/dev/null)
else bad=$(find "$t" \\( -type d \\( ! -readable -o ! -executable \\) -o -type f ! -user "$(id -u)" ! -readable \\) -print -quit 2>/dev/null); fi
[ -z "$bad" ] || { echo "$bad cannot be read by $(id -un) (it belongs to $(stat -c %u:%g -- "$bad")): the restore's staging copy of $t must read all of it. Connect as root, or make it readable for $(id -un)." >&2; exit 13; }`);

/**
 * `sh -c FILL_IN sh LIVE COPY`, after a `cp -al LIVE COPY` that failed for some entries: copies (`cp -a`,
 * in batches) every entry of LIVE that is not in COPY — or LIVE itself when it is not a folder (a
 * single-file root). A folder of the copy without write permission (the device's account made it
 * read-only: cp gave the copy its mode) is made writable for the copy and given its mode back from
 * the live one. Fails when anything cannot be read or copied — find's status carries each batch's —
 * so a staging copy is never short of an entry.
 */
const FILL_IN = `if [ -h "$1" ] || [ ! -d "$1" ]; then cp -a -- "$1" "$2"; exit; fi
cd -- "$1" && find . ! -type d -exec sh -c 'to=$0; for p do shift; [ -e "$to/$p" ] || [ -h "$to/$p" ] || set -- "$@" "$p"; done; [ $# -gt 0 ] || exit 0
for p do [ -w "$to/\${p%/*}" ] || chmod u+w -- "$to/\${p%/*}" || exit 1; done
cp -a --parents -- "$@" "$to" || exit 1
for p do chmod --reference="\${p%/*}" -- "$to/\${p%/*}" || exit 1; done' "$2" {} +`;

/**
 * `rmtree PATH…`: `rm -rf` that also removes folders the device's account made read-only — their
 * folders are made writable first (folders only: files may be hard links shared with the live tree).
 */
const RMTREE = raw(`rmtree() { find "$@" -type d ! -perm -u+w -exec chmod u+w {} + 2>/dev/null || :; rm -rf -- "$@"; }`);

/**
 * `mvdir FROM TO`: `mv` of a folder to another parent, which needs write permission on the folder
 * itself (its `..` changes): one the device's account made read-only (an app folder at 0555) is made
 * writable for the rename and gets its mode back after it, moved or not. Anything else: plain `mv`.
 */
const MVDIR = raw(`mvdir() {
  if [ -d "$1" ] && [ ! -L "$1" ] && [ ! -w "$1" ]; then
    m=$(stat -c %a -- "$1") && chmod u+w -- "$1" || return 1
    if mv -- "$1" "$2"; then chmod "$m" -- "$2"; else chmod "$m" -- "$1"; return 1; fi
  else mv -- "$1" "$2"; fi
}`);

/** ENOSPC as GNU tools say it (C locale: commands run in the device's default environment). */
const NO_SPACE = 'No space left on device';

/**
 * Whether a staging command failed on a full file system without saying so (dash's printf reports
 * ENOSPC as "I/O error"): the free space of the target's parent then, as the message's detail.
 */
async function fullDisk(runner: CommandRunner, target: string, stderr: string): Promise<string | null> {
  if (!/I\/O error|Input\/output error/.test(stderr)) return null;
  const out = await runToString(runner, sh`df -P -k -- ${path.posix.dirname(target)} | tail -n 1`).catch(() => '');
  const avail = Number(out.trim().split(/\s+/)[3]);
  return Number.isFinite(avail) && avail < 64 ? `${stderr.trim()}; ${avail} KiB free` : null;
}

const journal = (root: RestoreRoot, state: string) => sh`printf '%s\\n' ${state} > ${join(root.staging, 'journal')} && printf '%s' ${root.target} > ${join(root.staging, 'target')}`;

export interface RestorePhases {
  phase(name: 'preflight' | 'stage' | 'verify' | 'swap' | 'validate'): void;
  advance(delta: { bytes?: number; items?: number }): void;
  /**
   * A large file was staged from a file on the device and the `sent` bytes of blocks that differed
   * (block-patch.ts): the one it replaces (`own`), a copy at another path (`elsewhere`), or what an
   * earlier restore cut off by its link had staged of it (`resumed`).
   */
  patched?(size: number, sent: number, from: 'own' | 'elsewhere' | 'resumed'): void;
  /** A large replaced file could not be patched (block-patch.ts) and crosses whole in the tar stream: why. */
  unpatched?(size: number, reason: string): void;
  /** Runs right before the swap (stop the device's services) and right after it (start them). */
  beforeSwap?(): Promise<void>;
  afterSwap?(): Promise<void>;
}

/**
 * The roots a restore stages and swaps: one that already equals the snapshot (e.g. the other paths
 * of a source when one file is restored) is left alone — no staging copy, no swap.
 */
export function activeRoots(plan: FilesRestorePlan): RestoreRoot[] {
  return plan.roots.filter(isActive);
}

const isActive = (r: RestoreRoot): boolean => !r.targetExists || r.add.length + r.replace.length + r.remove.length > 0 || r.rootMode !== undefined || r.rootOwner !== undefined;

/** Stages, verifies and swaps every root; leaves the previous state beside it until confirm/rollback. */
export async function executeFilesRestore(options: FilesRestoreOptions, plan: FilesRestorePlan, phases: RestorePhases): Promise<void> {
  await stageFilesRestore(options, plan, phases);
  phases.phase('swap');
  await phases.beforeSwap?.();
  try {
    await swapFilesRestore(options.runner, plan);
  } finally {
    await phases.afterSwap?.();
  }
  phases.phase('validate');
  await validateFilesRestore(options.runner, plan);
}

/**
 * Removes these files (relative paths) from a root's resume folder, or — `files` null — the whole
 * folder. The folder is the login's own: nothing in it is another's to lose.
 */
async function dropResume(runner: CommandRunner, root: RestoreRoot, files: string[] | null): Promise<void> {
  const folder = resumeFolder(root.target);
  if (files === null) {
    await runToString(runner, sh`${RMTREE}
rmtree ${folder}`);
    return;
  }
  const running = await runner.exec(sh`xargs -0 -r rm -f --`);
  running.stdout.resume();
  running.stdin.end(nulList(files.map((rel) => join(folder, rel))));
  const result = await running.done;
  const lost = connectionLost(result, `A command on ${runner.target}`);
  if (lost) throw lost;
}

/** Preflight, stage and verify: the snapshot's files sit verified beside every target; nothing live changed. */
export async function stageFilesRestore(options: FilesRestoreOptions, plan: FilesRestorePlan, phases: Pick<RestorePhases, 'phase' | 'advance' | 'patched' | 'unpatched'>): Promise<void> {
  const { repo, runner, snapshot, signal } = options;
  const roots = activeRoots(plan);
  phases.phase('preflight');
  if (plan.spaceNeeded > plan.freeBytes) {
    throw new AppError('UNAVAILABLE', `Not enough space on the device: the restore needs ${plan.spaceNeeded} bytes of staging, ${plan.freeBytes} are free. Nothing was changed.`);
  }
  const deep = roots.find((r) => r.tooLong);
  if (deep) throw new AppError('UNAVAILABLE', `${tooLongText(deep)}, so nothing was changed.`);
  const deepHere = roots.find((r) => r.tooDeepHere);
  if (deepHere) throw new AppError('UNAVAILABLE', `${tooDeepHereText(deepHere)}. Nothing was changed.`);
  // Every target's folder is writable, and every existing target folder can be moved aside — renaming
  // a folder rewrites its `..`, which needs write permission on it; mvdir grants that to the folder's
  // owner, so a read-only folder of another account stops the restore here, before anything is staged
  // (one command), while the hashing commands start (they change nothing).
  const folders = roots.filter((r) => r.targetExists && !r.file).map((r) => r.target);
  const writable = (roots.length > 0 ? runToString(runner, sh`for p in ${roots.map((r) => path.posix.dirname(r.target))}; do while [ ! -e "$p" ]; do p=$(dirname "$p"); done; test -w "$p" || { echo "cannot write to $p" >&2; exit 13; }; done${folders.length > 0 ? sh`
for t in ${folders}; do
  [ -d "$t" ] && [ ! -L "$t" ] || continue
  if [ ! -w "$t" ] && [ ! -O "$t" ]; then echo "$t belongs to another account ($(stat -c %u:%g -- "$t")) and is read-only for $(id -un): it cannot be moved aside for the swap. Connect as root, or make $(id -un) its owner." >&2; exit 13; fi
  ! ${IS_MOUNT_POINT} || { echo "$t is a mount point (a file system of its own): the restore cannot move it aside for its swap. Restore it into another folder on the device, or download it to this laptop." >&2; exit 13; }
  [ "$(id -u)" = 0 ] || { ${UNREADABLE}; }
done` : raw('')}`) : Promise.resolve('')).then(
    () => null,
    (error: unknown) => error as Error,
  );

  // Staged files are hashed on the device while the rest still arrives: GNU tar names each member
  // (-v) as it starts it, so once member i+1 is named member i is written and closed, and goes to a
  // hashing command; the last ones when tar has exited. Only what was sent is hashed (files kept
  // from the live tree are its own hard links, unchanged by definition).
  const bytes = roots.reduce((n, r) => n + r.bytesToSend, 0);
  const hashing = roots.some((r) => r.add.length + r.replace.length > 0 || !r.targetExists);
  // Small files in batches (few processes); large files each on their own, in a second command (a
  // second core on the device, and no large file waits for a batch to fill).
  const [smallStarted, largeStarted] = await Promise.allSettled([hashing ? startHasher(runner, 'small', signal) : null, hashing && bytes >= LARGE_FILE ? startHasher(runner, 'large', signal) : null]);
  const small = smallStarted.status === 'fulfilled' ? smallStarted.value : null;
  const large = largeStarted.status === 'fulfilled' ? largeStarted.value : null;
  const hashers = [small, large].filter((h): h is DeviceHasher => h !== null);
  const failure = (await writable) ?? ([smallStarted, largeStarted].find((h): h is PromiseRejectedResult => h.status === 'rejected')?.reason as Error | undefined);
  if (failure) {
    for (const hasher of hashers) hasher.abandon();
    throw failure;
  }
  phases.phase('stage');
  // A resume folder beside a root that changes nothing now holds nothing this restore takes up.
  for (const root of plan.roots) if (!roots.includes(root) && resumeNow.delete(root)) await dropResume(runner, root, null);
  const expected: { root: RestoreRoot; sums: Map<string, string> }[] = [];
  /** The device has no python3: no file is tried as a patch again in this restore (why, once known). */
  let noPatching: string | null = null;
  try {
    for (const root of roots) {
      const fresh = join(root.staging, 'new');
      const known = walked.get(root);
      walked.delete(root);
      const nodes = known?.tree === snapshot.tree ? known.nodes : await nodesBelow(repo, snapshot.tree, root.snapshotPath);
      const changed = new Set([...root.add, ...root.replace]);
      // The root's own node (one tree load per level; walking its parent folder would read every sibling).
      const rootNode = await nodeAt(repo, snapshot.tree, root.snapshotPath);
      // Every folder above a path that changes or goes away is in the stream too: tar gives it back
      // the snapshot's mode and times after the staging made it writable and its entries changed.
      const above = new Set<string>();
      for (const rel of [...changed, ...root.remove]) for (let at = rel.lastIndexOf('/'); at > 0 && !above.has(rel.slice(0, at)); at = rel.lastIndexOf('/', at - 1)) above.add(rel.slice(0, at));
      // Every staged root is active (isActive): its own node is in the stream too (mode, owner, times).
      const entries: SnapshotFile[] = [
        ...(rootNode ? [{ path: 'new', node: rootNode }] : []),
        ...nodes.filter((f) => changed.has(f.path) || (f.node.type === 'dir' && above.has(f.path))).map((f) => ({ path: `new/${f.path}`, node: f.node })),
      ];
      const sizes = new Map(entries.map((e) => [e.path, e.node.size]));
      entries.splice(0, entries.length, ...biggestFirst(entries));
      // What an earlier restore of this folder staged before its link was cut: the large files sent
      // now are completed from it; the rest of it goes first (its space was counted as free).
      const resume = resumeNow.get(root);
      resumeNow.delete(root);
      if (resume) {
        const wanted = new Set(nodes.filter((f) => changed.has(f.path) && worthResuming(f.node)).map((f) => f.path));
        const unwanted = [...resume.keys()].filter((rel) => !wanted.has(rel));
        for (const rel of unwanted) resume.delete(rel);
        if (unwanted.length > 0) await dropResume(runner, root, unwanted);
      }
      // One command: the staging folder and its journal, the hard-link copy, and the unlinking of
      // what will be replaced or removed (stdin): extraction must never write through a hard link
      // into the live tree. Where the kernel refuses a link (protected_hardlinks: another account's
      // file a login other than root cannot read and write; every file across a mount) `cp -al` goes
      // on with the rest, and FILL_IN copies just the entries it left out: a copy is the login's, so
      // copying everything would hand every other account's file to the login (and take the space).
      // A folder the device's account made read-only (0555) is made writable in
      // the staging copy where something in it changes — the copy's folders are its own, never links
      // into the live tree — and gets its snapshot mode back from tar (every such folder is in the stream).
      // cp's own errors are kept aside (refused links are expected) and said only when the fill-in
      // fails after them too: a full file system (no room or no inodes for the copy's folders)
      // otherwise shows as the fill-in's "cannot access" of a folder cp could not make.
      const copy = root.targetExists ? sh` && { e=$(cp -al -- ${root.target} ${fresh} 2>&1 >/dev/null) || sh -c ${FILL_IN} sh ${root.target} ${fresh} || { printf '%s\n' "$e" | grep -m 1 ${NO_SPACE} >&2; exit 1; }; } && xargs -0 -r sh -c ${UNLINK_SCRIPT} sh` : raw('');
      const done = entries.length === 0 ? sh` && ${journal(root, 'staged')}` : raw('');
      const prepare = await runner.exec(sh`${RMTREE}
mkdir -p -- ${path.posix.dirname(root.target)} && rmtree ${root.staging} && mkdir -m 700 -- ${root.staging} && ${journal(root, 'staging')}${copy}${done}`);
      prepare.stdout.resume(); // an SSH channel only closes once its output has been read
      // A folder that only changed its mode is not removed: what it holds stays (tar resets its mode).
      const inPlace = new Set(root.foldersInPlace);
      // Added paths are not in the copy (removing them does nothing); their folders must be writable.
      const unlink = [...root.replace.filter((rel) => !inPlace.has(rel)), ...root.remove, ...root.add];
      prepare.stdin.end(root.targetExists ? nulList(unlink.map((rel) => join(fresh, rel))) : Buffer.alloc(0));
      const prepared = await prepare.done;
      if (prepared.code !== 0) {
        const full = prepared.stderr.split('\n').find((line) => line.includes(NO_SPACE)) ?? (await fullDisk(runner, root.target, prepared.stderr));
        if (full) throw new AppError('UNAVAILABLE', `Not enough space on the device for the staging copy of ${root.target}: its file system is full (no room or no inodes left; ${full.trim()}). Free some space there and restore again. Nothing was changed.`);
        throw new AppError('REMOTE_COMMAND_FAILED', `Staging on ${runner.target} failed: ${prepared.stderr.trim()}`);
      }
      if (entries.length === 0) continue;
      // Large files first, from a copy on the device and the blocks that differ: the one they
      // replace, else one at another path (copiesElsewhere); the tar stream then carries everything
      // else (and any file a patch did not fit).
      const replaced = new Set(root.replace);
      const candidates = [...(rootNode && root.file ? [{ path: '', node: rootNode }] : []), ...nodes].filter((f) => changed.has(f.path) && (patchable(f.node) || (resume?.has(f.path) === true && worthResuming(f.node))));
      for (const { path: rel, node } of candidates) {
        const live = replaced.has(rel) ? [join(root.target, rel)] : [];
        if (noPatching) {
          if (live.length > 0) phases.unpatched?.(node.size, noPatching);
          continue;
        }
        const resumed = resume?.has(rel) ? join(resumeFolder(root.target), rel) : undefined;
        // The blocks sent move the progress as the link carries them; the rest of the file once it is staged.
        let counted = 0;
        const onSent = (bytes: number) => {
          counted += bytes;
          phases.advance({ bytes });
        };
        try {
          const { sent, base } = await stagePatched(repo, runner, { node, bases: live, more: () => copiesElsewhere(options, root, rel, node, true), staged: join(fresh, rel), resumed }, { compress: options.compress, signal, onSent });
          const member = rel ? `new/${rel}` : 'new';
          const at = entries.findIndex((e) => e.path === member);
          if (at >= 0) entries.splice(at, 1);
          phases.advance({ bytes: node.size - counted });
          phases.patched?.(node.size, sent, base === resumed ? 'resumed' : live.includes(base) ? 'own' : 'elsewhere');
        } catch (error) {
          // What the failed patch had counted goes back: the file crosses whole in the tar stream.
          if (counted > 0) phases.advance({ bytes: -counted });
          if (!(error instanceof DeltaUnavailable)) throw error;
          if (error.device) noPatching = error.message;
          // A file with nothing at its path would have crossed whole anyway: no news.
          if (live.length > 0) phases.unpatched?.(node.size, error.message);
        }
      }
      // Whatever of the resume folder was not taken up goes before the tar stream needs its space.
      if (resume) await dropResume(runner, root, null);
      if (entries.length === 0) {
        await runToString(runner, journal(root, 'staged'));
        continue;
      }
      const running = await runner.exec(sh`tar -x ${raw(options.compress ? '-z ' : '')}-v --quoting-style=escape -p -f - -C ${root.staging} && ${journal(root, 'staged')}`, signal);
      const { stream, members, hashes, contentOf } = tarFromSnapshot(repo, entries, signal);
      // Member i is complete once member i+1 is named: then a file with content goes to a hasher.
      let named = 0;
      let queued = 0;
      const queueUpTo = (complete: number) => {
        for (; queued < complete; queued++) {
          const member = members[queued]!;
          if (!member.content) continue;
          const size = sizes.get(member.path) ?? 0;
          const absolute = join(root.staging, member.path);
          (large && size >= LARGE_FILE && !/[\n\\]/.test(absolute) ? large : small!).add(absolute);
        }
      };
      running.stdout.on('data', (chunk: Buffer) => {
        for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) named++;
        queueUpTo(Math.min(named - 1, members.length));
      });
      stream.on('error', () => undefined); // reported through `hashes`
      running.stdin.on('error', () => undefined); // a dead link closes the channel under the pipe
      // streamx reports a destination that closes early through this callback; the failure itself
      // is handled below (the transfer was cut), so the callback only keeps it from being thrown.
      // Progress counts what the pipe has taken (under a bandwidth limit, not whole blobs as they are
      // read), of the files' content: the plan's total counts their sizes, not tar's headers.
      (stream as unknown as { pipe(dest: NodeJS.WritableStream, cb: (error?: Error) => void): void }).pipe(
        countedSink(wireSink(running.stdin, options.compress), (bytes) => {
          const content = contentOf(bytes);
          if (content > 0) phases.advance({ bytes: content });
        }),
        () => undefined,
      );
      let produced = false;
      // If the device side ends first (link cut, tar died), stop producing: nothing would drain it.
      const ended = running.done.then((result) => {
        if (produced) return result;
        const why = new Error(`the transfer was cut (${result.stderr.trim() || `exit ${result.code ?? result.signal}`})`);
        stream.destroy(why);
        throw why; // the producer may be parked on backpressure forever: do not wait for it
      });
      const [result, sums] = await Promise.all([
        ended,
        hashes.then((h) => {
          produced = true;
          return h;
        }),
      ]).catch((error: unknown) => {
        throw new AppError('UNAVAILABLE', `Sending files to ${runner.target} failed: ${(error as Error).message}. The device was not changed.`);
      });
      const lost = connectionLost(result, `Unpacking on ${runner.target}`);
      if (lost) throw lost;
      if (result.code !== 0) {
        // The disk filled after the plan (an app's logs, another copy): said as full, as for the staging copy.
        const full = result.stderr.split('\n').find((line) => line.includes(NO_SPACE));
        if (full) throw new AppError('UNAVAILABLE', `Not enough space on the device to stage the restored files of ${root.target}: its file system filled up while they arrived (${full.trim()}). Free some space there and restore again. Nothing was changed.`);
        throw new AppError('REMOTE_COMMAND_FAILED', `Unpacking on ${runner.target} failed (exit ${result.code}): ${result.stderr.trim()}`);
      }
      queueUpTo(members.length); // tar has exited: every member is on disk
      expected.push({ root, sums });
    }
  } catch (error) {
    for (const hasher of hashers) hasher.abandon();
    throw error;
  }

  phases.phase('verify');
  const got = new Map<string, string>();
  const results = await Promise.allSettled(hashers.map((h) => h.finish()));
  for (const r of results) {
    if (r.status === 'rejected') throw r.reason;
    for (const [file, sum] of r.value) got.set(file, sum);
  }
  for (const { root, sums } of expected) {
    for (const [file, sum] of sums) {
      if (got.get(join(root.staging, file)) !== sum) throw new AppError('INTERNAL', `The staged copy of ${file} on ${runner.target} does not match the snapshot; nothing was changed`);
    }
  }
  // The swap syncs the file system once it has renamed: the staged data starts going to disk now, in
  // the background, so that sync finds little left to write (a hint only; nothing waits for it).
  if (roots.length > 0) await runToString(runner, sh`${roots.map((root) => journal(root, 'verified')).reduce((a, b) => sh`${a} && ${b}`)} && { sync </dev/null >/dev/null 2>&1 & }`);
}

/**
 * The entries in an order GNU tar extracts exactly like tree order — every folder right before
 * what it holds, each subtree in one run, so a folder's times are set once its contents are in —
 * but with the biggest subtrees and files of each folder first: the large files are staged (and
 * hashed) early, while the many small ones still arrive.
 */
export function biggestFirst(entries: SnapshotFile[]): SnapshotFile[] {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const children = new Map<string, SnapshotFile[]>();
  const tops: SnapshotFile[] = [];
  for (const e of entries) {
    const parent = path.posix.dirname(e.path);
    if (parent === e.path || !byPath.has(parent)) tops.push(e);
    else if (children.has(parent)) children.get(parent)!.push(e);
    else children.set(parent, [e]);
  }
  const bytes = new Map<string, number>();
  const total = (e: SnapshotFile): number => {
    let n = bytes.get(e.path);
    if (n === undefined) {
      n = e.node.type === 'file' ? e.node.size : (children.get(e.path) ?? []).reduce((sum, c) => sum + total(c), 0);
      bytes.set(e.path, n);
    }
    return n;
  };
  const out: SnapshotFile[] = [];
  const visit = (list: SnapshotFile[]) => {
    for (const e of [...list].sort((a, b) => total(b) - total(a))) {
      out.push(e);
      const inside = children.get(e.path);
      if (inside) visit(inside);
    }
  };
  visit(tops);
  return out;
}

/** A file this large is hashed alone, by a command of large files. */
const LARGE_FILE = 1024 * 1024;
/** Small files per sha256sum: few processes, and a file waits for at most this many others. */
const SMALL_BATCH = 64;

interface DeviceHasher {
  add(absolute: string): void;
  /** No more files: the sha256 of every file given, by absolute path. */
  finish(): Promise<Map<string, string>>;
  /** Stops after a failed staging (no result wanted). */
  abandon(): void;
}

/** A hashing command on the device, fed with names (NUL-separated bytes) as files are staged; `batch` files per sha256sum. */
async function startHasher(runner: CommandRunner, kind: 'small' | 'large', signal?: AbortSignal): Promise<DeviceHasher> {
  // Large files: OpenSSL where the device has it (it uses the CPU's SHA-256 instructions; about 3.5×
  // less CPU than sha256sum here), one line per file. Names holding a newline or a backslash (which
  // either tool would escape) never go to this command. Each hashed file is then flushed to disk in
  // the background (`sync FILE`, coreutils 8.24+; skipped where missing) while the rest still
  // arrives: the swap's final `sync` would otherwise write all of it at once, on the critical path.
  const command =
    kind === 'small'
      ? sh`xargs -0 -r -n ${String(SMALL_BATCH)} sha256sum -z --`
      : sh`if command -v openssl >/dev/null 2>&1; then h='openssl dgst -sha256 -r'; else h='sha256sum --'; fi
export h
exec xargs -0 -r -n 1 sh -c ${`$h "$1" && { (sync -- "$1" </dev/null >/dev/null 2>&1 &) ; }`} sh`;
  const separator = kind === 'small' ? 0 : 10;
  const running = await runner.exec(command, signal);
  const out: Buffer[] = [];
  running.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  running.stdin.on('error', () => undefined); // a dead link closes the channel under the pipe
  return {
    add(absolute) {
      running.stdin.write(nulList([absolute]));
    },
    async finish() {
      running.stdin.end();
      const result = await running.done;
      if (result.code !== 0) throw new AppError('REMOTE_COMMAND_FAILED', `Verifying the staged files on ${runner.target} failed: ${result.stderr.trim() || `exit ${result.code ?? result.signal}`}`);
      return parseSums(Buffer.concat(out), separator);
    },
    abandon() {
      running.stdin.end();
      void running.done.catch(() => undefined);
    },
  };
}

/**
 * `<sha256>  <name>\0` lines (sha256sum -z, no escaping) or `<sha256> *<name>\n` (openssl -r, names
 * without newlines or backslashes) by name; names are bytes, decoded as the tree decodes them.
 */
function parseSums(all: Buffer, separator: number): Map<string, string> {
  const got = new Map<string, string>();
  for (let at = 0; at < all.length; ) {
    const end = all.indexOf(separator, at);
    const line = all.subarray(at, end < 0 ? all.length : end);
    at = end < 0 ? all.length : end + 1;
    if (line.length > 66) got.set(decodeName(line.subarray(66)), line.toString('ascii', 0, 64));
  }
  return got;
}

/** The journaled renames of every root (services stopped around it by the caller). */
export async function swapFilesRestore(runner: CommandRunner, plan: FilesRestorePlan): Promise<void> {
  await swapRoots(runner, activeRoots(plan));
}

const depth = (root: RestoreRoot) => root.target.split('/').length;

/**
 * Swaps roots outer first: a single file inside a restored folder (an .env in the app folder) is
 * swapped after the folder, so the restore ends with the file's own snapshot version.
 */
export async function swapRoots(runner: CommandRunner, roots: RestoreRoot[]): Promise<void> {
  const ordered = [...roots].sort((a, b) => depth(a) - depth(b));
  if (ordered.length === 0) return;
  // One command for all of them (a round trip each adds up): each root's script in its own
  // subshell, in order, stopping at the first failure; the caller rolls back whatever was swapped.
  await runToString(runner, sh`trap '' HUP INT TERM PIPE
${ordered.map((root) => sh`(${swapScript(root)})`).reduce((a, b) => sh`${a} && ${b}`)}`);
}

/**
 * Rolls roots back inner first — the exact reverse of `swapRoots` — so every previous state lands
 * where it was. Refused for a restore being kept (`confirmRoots` marks all its roots before removing
 * anything, so the first root tells). Returns the staging folders that could not be removed entirely.
 */
export async function rollbackRoots(runner: CommandRunner, roots: RestoreRoot[]): Promise<string[]> {
  const left: string[] = [];
  for (const root of [...roots].sort((a, b) => depth(b) - depth(a))) {
    const printed = (await runToString(runner, rollbackScript(root.staging))).split('\n').filter(Boolean);
    if (printed.includes('kept')) throw keptError(root.target);
    left.push(...printed);
  }
  return left;
}

/**
 * A single-file root inside another restored root (of any source of the same restore) is staged
 * beside the outermost such folder instead of inside it: the folder's staging copy must not carry
 * it, and the folder's swap must not move it away. Same file system as the file (it lies inside
 * that folder). Changes the roots in place.
 */
export function relocateFileRoots(roots: { root: RestoreRoot; source: string }[], restoreId: string): void {
  for (const { root, source } of roots) {
    if (!root.file) continue;
    const outer = roots
      .map((r) => r.root)
      .filter((r) => r !== root && !r.file && root.target.startsWith(`${r.target}/`))
      .sort((a, b) => a.target.length - b.target.length)[0];
    if (outer) root.staging = join(path.posix.dirname(outer.target), `${RESTORE_PREFIX}${restoreId}-${source}-${path.posix.basename(root.target)}`);
  }
}

/** The restored files are in place under every target. */
export async function validateFilesRestore(runner: CommandRunner, plan: FilesRestorePlan): Promise<void> {
  await validateRoots(runner, activeRoots(plan));
}

/** The restored files are in place under every root: listed four at a time (reads only, a round trip each). */
export async function validateRoots(runner: CommandRunner, roots: RestoreRoot[]): Promise<void> {
  const queue = [...roots];
  const stale: string[] = [];
  const worker = async () => {
    for (let root = queue.shift(); root; root = queue.shift()) {
      const now = await listCurrent(runner, root.target);
      const missing = [...root.add, ...root.replace].filter((rel) => !now?.has(rel));
      if (missing.length > 0) stale.push(`After the swap ${counted(missing.length, 'restored file')} ${verb(missing.length, 'is', 'are')} missing under ${root.target}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  if (stale.length > 0) throw new AppError('INTERNAL', stale.join('; '));
}

/** Two renames, journaled, that finish even if the SSH link drops meanwhile. */
function swapScript(root: RestoreRoot) {
  const j = join(root.staging, 'journal');
  return sh`trap '' HUP INT TERM PIPE
set -e
${MVDIR}
printf 'swapping\\n' > ${j}
if [ -e ${root.target} ] || [ -L ${root.target} ]; then mvdir ${root.target} ${join(root.staging, 'previous')}; fi
mvdir ${join(root.staging, 'new')} ${root.target}
printf 'swapped\\n' > ${j}
${raw('sync')}`;
}

/**
 * `leave S`: removes the staging folder S. What cannot be removed — files of another account in a
 * folder of that account, when the device's login is not root — stays, and its path is printed for
 * the operator to remove as root. Its markers (`target`, `journal`: the login's files in the login's
 * folder) are gone with the rest, so recovery leaves it alone.
 */
const LEAVE = raw(`leave() { rmtree "$1" 2>/dev/null || :; if [ -e "$1" ] || [ -L "$1" ]; then printf '%s\\n' "$1"; fi; }`);

/**
 * Keeps the restored state of these roots (every source of a restore at once): first each one is
 * marked kept — from then on nothing rolls back to its previous state, which is about to be partly
 * gone — then its staging folder and the previous state in it are removed. Returns the staging
 * folders that could not be removed entirely (see LEAVE).
 */
export async function confirmRoots(runner: CommandRunner, roots: RestoreRoot[]): Promise<string[]> {
  if (roots.length === 0) return [];
  const stagings = roots.map((root) => root.staging);
  const left = await runToString(runner, sh`trap '' HUP INT TERM PIPE
${RMTREE}
${LEAVE}
for s in ${stagings}; do [ ! -d "$s" ] || printf 'kept\\n' > "$s/journal"; done
for s in ${stagings}; do [ ! -d "$s" ] || leave "$s"; done`);
  return left.split('\n').filter(Boolean);
}

/**
 * Puts the previous state back (after a failed validation, or on demand before confirming).
 * Returns the staging folders that could not be removed entirely afterwards (see LEAVE).
 */
export async function rollbackRestore(runner: CommandRunner, plan: FilesRestorePlan): Promise<string[]> {
  return rollbackRoots(runner, plan.roots);
}

/**
 * `keep_resume N R`: moves the files of 1 MiB and more that a restore staged in N (one link: not the
 * hard-link copy of the live tree) into the resume folder R beside the target, where the next restore
 * of that target takes them up (RESUME_PREFIX). R is made 0700 and used only when it is the login's
 * own folder (not a link) on N's file system (moves are renames); a file R holds already stays when
 * it is at least as long (a second cut restore that had not reached it yet). Changes nothing live.
 */
const KEEP_RESUME = raw(`keep_resume() {
  [ -d "$1" ] && [ ! -L "$1" ] || return 0
  mkdir -m 700 -- "$2" 2>/dev/null || :
  [ -d "$2" ] && [ ! -L "$2" ] && [ -O "$2" ] || return 0
  [ "$(stat -c %d -- "$1")" = "$(stat -c %d -- "$2")" ] || return 0
  find "$1" -type f -links 1 -size +${RESUME_MIN_BYTES - 1}c -exec sh -c 'n=$1 r=$2; shift 2; for f do o="$r/\${f#"$n"/}"; if [ -d "$o" ] && [ ! -L "$o" ]; then continue; fi; if [ -f "$o" ] && [ ! -L "$o" ] && [ "$(stat -c %s -- "$o")" -ge "$(stat -c %s -- "$f")" ]; then continue; fi; mkdir -p -- "\${o%/*}" && mv -f -- "$f" "$o" || :; done' sh "$1" "$2" {} + 2>/dev/null || :
  touch -- "$2" 2>/dev/null || :
  rmdir -- "$2" 2>/dev/null || :
}`);

/**
 * Prints `kept` and changes nothing when the root was being kept (its previous state may be partly
 * removed already); otherwise puts the previous state back, marks it rolled back, and removes the
 * staging folder (printing it when something in it stays). With `resume` (a restore its link cut off,
 * settled by the next one or by recovery), the large files a never-swapped folder had staged are
 * kept for the next restore first (KEEP_RESUME).
 */
function rollbackScript(staging: string, resume = false) {
  return sh`trap '' HUP INT TERM PIPE
set -e
${RMTREE}
${MVDIR}
${LEAVE}
${resume ? KEEP_RESUME : raw('')}
s=${staging}
[ -d "$s" ] || exit 0
# No target written (the device's disk was full as the staging began): nothing live was touched.
if [ ! -f "$s/target" ]; then leave "$s"; exit 0; fi
t=$(cat "$s/target")
state=$(cat "$s/journal" 2>/dev/null || echo staging)
case "$state" in
  kept) echo kept; exit 0 ;;
  swapped|swapping)
    if [ -e "$s/previous" ] || [ -L "$s/previous" ]; then
      if [ -e "$t" ] || [ -L "$t" ]; then rmtree "$s/rejected"; mvdir "$t" "$s/rejected"; fi
      mvdir "$s/previous" "$t"
    elif [ ! -e "$s/new" ] && [ "$state" = swapped ]; then
      rmtree "$t"   # the target did not exist before the restore
    fi
    printf 'rolledback\\n' > "$s/journal" ;;
  ${resume ? raw(`staging|staged|verified) keep_resume "$s/new" "$(dirname -- "$t")/${RESUME_PREFIX}$(basename -- "$t")" ;;`) : raw('')}
esac
leave "$s"`;
}

/**
 * Refuses, before anything is rolled back (databases included), a restore whose keep has begun:
 * its previous state may be partly removed already. Keeping it again finishes it. Otherwise says
 * whether any of the roots' staging folders (their previous states) is still on the device.
 */
export async function refuseIfKept(runner: CommandRunner, roots: RestoreRoot[]): Promise<boolean> {
  if (roots.length === 0) return false;
  const out = await runToString(runner, sh`for s in ${roots.map((root) => root.staging)}; do [ ! -d "$s" ] || echo left; [ "$(cat -- "$s/journal" 2>/dev/null)" != kept ] || { printf 'kept:'; cat -- "$s/target"; echo; }; done; true`);
  const lines = out.split('\n');
  const kept = lines.find((line) => line.startsWith('kept:'));
  if (kept !== undefined) throw keptError(kept.slice('kept:'.length));
  return lines.includes('left');
}

export const keptError = (target: string) =>
  new AppError('CONFLICT', `The restore of ${target} is being kept (its previous state is partly removed already), so it cannot be rolled back: keep it to finish.`);

/** Finishes a keep that was cut off: the previous state goes, whatever is left of it. */
function keepScript(staging: string) {
  return sh`trap '' HUP INT TERM PIPE
${RMTREE}
${LEAVE}
leave ${staging}`;
}

/**
 * Cleans up after a restore that was interrupted (console killed, link cut, disk full): every
 * staging folder under `dirs` is rolled back to the original state unless its swap completed, in
 * which case the restored state is kept awaiting confirmation. Returns what it found.
 */
export async function recoverRestores(runner: CommandRunner, dirs: string[], options: { resume?: boolean } = {}): Promise<{ staging: string; state: string }[]> {
  // A staging folder without its target file is one whose journal could not be written (a full
  // disk): it is still staging, and rolled back (removed) like any. Resume folders no restore took
  // up within RESUME_HOURS go first (before this recovery keeps new ones).
  const list = await runToString(runner, sh`${RMTREE}
for d in ${dirs}; do for r in "$d"/${raw(`${RESUME_PREFIX}*`)}; do [ -d "$r" ] && [ ! -L "$r" ] && [ -O "$r" ] && [ -n "$(find "$r" -maxdepth 0 -mmin +${RESUME_HOURS * 60} 2>/dev/null)" ] && rmtree "$r"; done; done
for d in ${dirs}; do for s in "$d"/${raw(`${RESTORE_PREFIX}*`)}; do [ -d "$s" ] && [ ! -L "$s" ] && { j=$(cat "$s/journal" 2>/dev/null) || j=; printf '%s\\t%s\\n' "$s" "\${j:-staging}"; }; done; done; true`);
  const found = list
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ staging: line.slice(0, line.lastIndexOf('\t')), state: line.slice(line.lastIndexOf('\t') + 1) }));
  for (const { staging, state } of found) {
    if (state === 'swapped') continue; // fully restored: waits for confirm or rollback
    // A keep cut off part-way is finished; anything else (staging, swapping, rolled back) rolls back.
    await runToString(runner, state === 'kept' ? keepScript(staging) : rollbackScript(staging, options.resume));
  }
  return found;
}
