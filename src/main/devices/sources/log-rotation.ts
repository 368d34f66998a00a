/**
 * Optional log rotation for `files` sources with `rotateAfterBackup`: once the run's snapshots are
 * committed, live `*.log` files that are still exactly what the snapshot holds (same size and
 * mtime) are truncated in place on the device. A log written to since the listing is left alone,
 * so no line is ever lost: it is simply rotated by the next run.
 */
import { walkTree } from '../../repository/snapshot/snapshot';
import type { Repository } from '../../repository/repo/repository';
import { raw, sh } from '../shell-quote';
import type { CommandRunner } from '../ssh-connection';

/**
 * Each log is opened first (read-write: a FIFO put in its place does not block) and truncated
 * through that descriptor, and only when what was opened is the path itself — not a file a
 * symbolic link put there since points to — with the size and mtime the snapshot holds. Truncated
 * by its path, a log swapped for a link to another file the login may write (its writer can make
 * the link's size and mtime those of the log) would have emptied that file instead. One `stat` per
 * log and the rest shell builtins (`: >` reopens the descriptor's own file through /proc), so a
 * line written between the check and the truncation is as unlikely as before.
 */
const TRUNCATE_IF_UNCHANGED = raw(
  `bash -c 'while IFS= read -r -d "" p && IFS= read -r -d "" want; do
    [ -f "$p" ] && [ ! -L "$p" ] || continue
    { exec 3<>"$p"; } 2>/dev/null || continue
    if [ ! -L "$p" ] && [ "$p" -ef /proc/self/fd/3 ] && [ "$(stat -c %s:%Y -L /proc/self/fd/3 2>/dev/null)" = "$want" ]; then
      : > /proc/self/fd/3 && printf "%s\\0" "$p"
    fi
    exec 3<&-
  done'`,
);

/** Truncates the snapshot's live logs that did not change since; returns the paths truncated. */
export async function rotateLogs(repo: Repository, snapshotTree: string, runner: CommandRunner, sysroot = '/'): Promise<string[]> {
  const root = sysroot === '/' ? '' : sysroot.replace(/\/+$/, '');
  const pairs: string[] = [];
  for await (const { path, node } of walkTree(repo, snapshotTree)) {
    if (node.type !== 'file' || !/\.log$/.test(path) || node.size === 0) continue;
    pairs.push(`${root}/${path}`, `${node.size}:${BigInt(node.mtime) / 1_000_000_000n}`);
  }
  if (pairs.length === 0) return [];
  const running = await runner.exec(sh`${TRUNCATE_IF_UNCHANGED}`);
  const out: Buffer[] = [];
  running.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  running.stdin.end(Buffer.from(pairs.map((p) => `${p}\0`).join('')));
  await running.done;
  return Buffer.concat(out).toString('utf8').split('\0').filter(Boolean);
}
