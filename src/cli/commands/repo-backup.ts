import { lstatSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { AppError } from '../../shared/errors';
import { backup } from '../../main/repository/archiver/archiver';
import { groupKey } from '../../main/repository/prune/forget-policy';
import { findSnapshot, listSnapshots } from '../../main/repository/snapshot/snapshot';
import { LocalSource } from '../../main/repository/walker/local-walker';
import type { CliIo, Command } from '../command';
import { UsageError } from '../command';
import { withServices } from '../services';
import { EXIT, exitCodeOf, formatBytes, jobProgress, readPassword, REPO_OPTIONS, REPO_USAGE, reportFailures, shortId, ttyProgress, withRepository } from './repo-common';
import { counted } from '../../shared/plural';
import type { startDeviceBackup as startDeviceBackupType } from '../../main/devices/device-backup';

export const repoBackupCommand: Command = {
  name: 'backup',
  summary: 'back up local paths into a new snapshot',
  usage: [
    'Usage: jetvault backup PATH... [--tag TAG]... [--device NAME] [--parent SNAP | --force] [--allow-empty]',
    '       jetvault backup --device NAME [--device NAME]... [--source S]... [--json]',
    '',
    'With --device and no PATH, backs up an inventory device over SSH: one snapshot per source',
    '(or only the sources named), and prints the snapshot ids it made. With --json a run that failed, was',
    'cancelled or was refused (its device busy) prints {device, jobId, status, phase, error, bytesTransferred,',
    'files, durationMs}. Several --device: backed up side by side (as many at once as the maxParallelDevices',
    'setting allows), each reported as it ends; --json prints a list, one entry per device in the order named;',
    'the exit code is the first failed run\'s, else 3 when one run is partial.',
    'Files unchanged since the parent snapshot (the latest one of the same device and paths) are not read again.',
    'Exit code 1 and no snapshot when none of the PATHs exists, or each is an empty folder (a disk not mounted at it?) —',
    'unless --allow-empty: an empty snapshot would become the latest one and count towards --keep-last. Exit code 3: the snapshot (or run) was written but some files could not be read',
    '(or, on a device, changed while read: kept as read), or a PATH is a symbolic link (only the link is stored); they are listed on stderr.',
    'Exit codes 10, 11, 12: no repository, locked by a prune, wrong password (device backups too).',
    'Ctrl-C (or SIGTERM, SIGHUP) cancels a device backup (nothing of the run is kept).',
    REPO_USAGE,
  ].join('\n'),
  options: {
    ...REPO_OPTIONS,
    tag: { type: 'string', multiple: true },
    device: { type: 'string', multiple: true },
    source: { type: 'string', multiple: true },
    parent: { type: 'string' },
    force: { type: 'boolean' },
    'allow-empty': { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const devices = [...new Set((values.device as string[] | undefined) ?? [])];
    if (positionals.length === 0 && devices.length > 0) return backupDevices(devices, (values.source as string[] | undefined) ?? [], values, io);
    if (values.source) throw new UsageError('--source applies to device backups (--device NAME without PATH)');
    if (devices.length > 1) throw new UsageError('a backup of PATHs is of one device: give --device once');
    if (positionals.length === 0) throw new UsageError('give at least one PATH, or --device NAME');
    const source = new LocalSource(positionals);
    // Not one path there (a typo, an unmounted disk): no empty snapshot, which would become the
    // latest one and count towards --keep-last, so a few such runs pushed the real backups out.
    const absent = source.paths.filter((p) => {
      try {
        return !lstatSync(p, { throwIfNoEntry: false });
      } catch (error) {
        // Under a file (ENOTDIR) is not there either; what cannot be looked at (EACCES) the walk names.
        return (error as NodeJS.ErrnoException).code === 'ENOTDIR';
      }
    });
    if (absent.length === source.paths.length) {
      io.err(`jetvault: nothing to back up: ${absent.length === 1 ? `${absent[0]} does not exist` : `none of ${absent.join(', ')} exists`}; no snapshot was written`);
      return EXIT.failure;
    }
    // Every path there an empty folder: most often a mount point whose disk is not mounted (a USB
    // disk unplugged, an fstab entry that failed). Its empty snapshot would push real ones out the
    // same way, so it is written only when asked for.
    const empty = source.paths.filter((p) => !absent.includes(p) && isEmptyFolder(p));
    if (empty.length > 0 && absent.length + empty.length === source.paths.length && values['allow-empty'] !== true) {
      const what = empty.length === 1 ? `${empty[0]} is an empty folder` : `${empty.join(', ')} are empty folders`;
      io.err(`jetvault: nothing to back up: ${what}${absent.length > 0 ? ` and ${absent.join(', ')} ${absent.length === 1 ? 'does' : 'do'} not exist` : ''} (a disk not mounted there?); no snapshot was written. Mount it, or give --allow-empty to back up the empty folder all the same`);
      return EXIT.failure;
    }
    return withRepository(values, io, 'shared', async (repo, lease) => {
      const all = await listSnapshots(repo);
      let parent = null;
      if (typeof values.parent === 'string') parent = await findSnapshot(repo, values.parent, all);
      else if (!values.force && all.length > 0) {
        const device = devices[0] ?? hostname();
        const key = groupKey({ ...all[0]!, device, paths: source.paths });
        parent = all.filter((s) => groupKey(s) === key).at(-1) ?? null;
      }
      // Totals are not known before the walk; the parent snapshot's are a good estimate for the ETA.
      const progress = ttyProgress(parent ? { bytes: parent.summary.bytes, items: parent.summary.files, estimated: true } : {});
      const result = await backup(repo, source, {
        parent,
        tags: (values.tag as string[] | undefined) ?? [],
        ...(devices[0] !== undefined ? { device: devices[0] } : {}),
        onProgress: progress.onProgress,
        ...(lease ? { lease } : {}),
      });
      progress.done();
      const s = result.snapshot.summary;
      for (const w of result.warnings) io.err(`warning: ${w.path}: ${w.message}`);
      if (values.json) io.out(JSON.stringify({ id: result.id, parent: parent?.id ?? null, ...s, warnings: result.warnings }));
      else {
        io.out(`snapshot ${shortId(result.id)} saved${parent ? ` (parent ${shortId(parent.id)})` : ''}`);
        io.out(`${s.files} files, ${s.dirs} dirs, ${formatBytes(s.bytes)}; read ${s.filesRead} files; added ${s.blobsAdded} blobs, ${formatBytes(s.bytesAdded)} stored; ${(s.durationMs / 1000).toFixed(1)}s`);
        // A path that is a symbolic link was stored (as the link): said above, not a file that could not be read.
        const unread = s.errors - result.warnings.filter((w) => source.paths.includes(w.path) && w.message.startsWith('a symbolic link to ')).length;
        if (unread > 0) io.err(`${counted(unread, 'file')} could not be read; the snapshot holds everything else`);
      }
      return s.errors > 0 ? EXIT.partial : EXIT.ok;
    });
  },
};

/** A folder with nothing in it (one that cannot be listed is not: the walk names why). */
function isEmptyFolder(path: string): boolean {
  try {
    return lstatSync(path).isDirectory() && readdirSync(path).length === 0;
  } catch {
    return false;
  }
}

/** What a SQLite source whose copy failed PRAGMA integrity_check is warned with (the check's first lines follow). */
export function integrityWarning(check: string): string {
  return `the database on the device is damaged: its copy failed PRAGMA integrity_check. The snapshot keeps it as it is, but a restore or drill of it will be refused:\n${check}`;
}

/** Signals that cancel a device backup or restore as the console's Cancel does (for a backup, a second one ends the process at once). */
export const CANCEL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

type StartedBackup = ReturnType<typeof startDeviceBackupType>;

/**
 * `backup --device NAME...`: each device's sources over SSH, through the same services as the app.
 * Several devices run side by side, as many at once as Settings allow (the Fleet page's "Back up
 * these devices"); each is reported as it ends, and the exit code is the worst of them.
 */
async function backupDevices(devices: string[], sources: string[], values: Record<string, unknown>, io: CliIo): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...io.env, ...(typeof values.repo === 'string' ? { JETVAULT_REPOSITORY: values.repo } : {}) };
  const { startDeviceBackup } = await import('../../main/devices/device-backup');
  const one = devices.length === 1;
  return withServices({ ...io, env }, (services) => reportFailures(io, async () => {
    // A misspelt device is said before the password is asked for, not after it was typed. The
    // services read the password from this same env when they open the repository.
    for (const device of devices) services.devices.get(device);
    if (env.JETVAULT_PASSWORD === undefined) env.JETVAULT_PASSWORD = await readPassword(values, io);
    // Opened before the jobs, so a missing repository or a wrong password exits 10 or 12 as for
    // every repository command (the job's record keeps only a message); the jobs reuse it.
    await services.repository.open();
    const runs: { device: string; job: StartedBackup | null }[] = [];
    const documents: unknown[] = [];
    const codes: number[] = [];
    for (const device of devices) {
      try {
        runs.push({ device, job: startDeviceBackup(services, device, sources) });
      } catch (error) {
        // Refused before it started (the device busy in another process, no such source): said on
        // stderr as any failure, and with --json as a run that never started.
        const refused = error instanceof AppError ? { device, jobId: null, status: 'refused', phase: null, error: { code: error.code, message: error.message }, bytesTransferred: 0, files: 0, durationMs: null } : null;
        if (one) {
          if (values.json && refused) io.out(JSON.stringify(refused, null, 2));
          throw error;
        }
        io.err(`jetvault backup: ${(error as Error).message}`);
        if (refused) documents.push(refused);
        codes.push(exitCodeOf(error));
      }
    }
    // Ctrl-C cancels the runs as the console's Cancel does: nothing of them is kept. So do `kill`,
    // `timeout`, a systemd stop (SIGTERM) and a closed terminal (SIGHUP), whose default would end
    // the process between two snapshots of a run and leave the ones written so far behind.
    const cancel = (): void => {
      for (const { device, job } of runs) {
        if (!job) continue;
        // Once every snapshot is written the run is kept: a cancel then is refused (the logs being
        // rotated, the retention applied finish first), and saying "cancelling" would be untrue.
        if (services.jobs.cancel(job.id)) io.err(`jetvault backup: cancelling ${device}…`);
        else if (services.jobs.get(job.id)?.status === 'running') io.err(`jetvault backup: ${device}: the run is kept already (every snapshot written): it finishes first (a second Ctrl-C ends the process, the run stays kept)`);
      }
    };
    for (const signal of CANCEL_SIGNALS) process.once(signal, cancel);
    // One run draws its progress line; several report each as it ends (one line cannot hold them).
    let progress = one && runs[0]?.job ? jobProgress(runs[0].job.id, services.bus.subscribe.bind(services.bus)) : null;
    const clearProgress = () => {
      progress?.done();
      progress = null;
    };
    try {
      await Promise.all(
        runs.map(async ({ device, job }) => {
          if (!job) return;
          const ended = await job.done;
          clearProgress(); // before the report's first line, on the terminal line it held
          const { code, document } = reportRun(device, ended, values, io);
          codes.push(code);
          documents.push(document);
        }),
      );
    } finally {
      for (const signal of CANCEL_SIGNALS) process.removeListener(signal, cancel);
      clearProgress();
    }
    // --json: stdout is one document however the runs ended (a script reads it, not stderr): one
    // device's run as before, several as a list in the order they were named.
    if (values.json) {
      const order = (d: unknown) => devices.indexOf((d as { device: string }).device);
      io.out(JSON.stringify(one ? documents[0] : documents.sort((a, b) => order(a) - order(b)), null, 2));
    }
    return worstExit(codes);
  }));
}

/** The exit code of several runs: a failure's own code (the first, as named), else 3 when one was partial, else 0. */
function worstExit(codes: readonly number[]): number {
  return codes.find((c) => c !== EXIT.ok && c !== EXIT.partial) ?? (codes.includes(EXIT.partial) ? EXIT.partial : EXIT.ok);
}

/** One device's ended run on stderr and stdout: its warnings, snapshots and totals, or why it failed. */
function reportRun(device: string, ended: Awaited<StartedBackup['done']>, values: Record<string, unknown>, io: CliIo): { code: number; document: unknown } {
  const { record, value, error } = ended;
  if (record.status !== 'succeeded' || !value) {
    const message = record.error?.message ?? record.status;
    io.err(`jetvault backup: ${message.startsWith(`${device}: `) ? message : `${device}: ${message}`}`);
    const durationMs = record.finishedAt ? Date.parse(record.finishedAt) - Date.parse(record.startedAt) : null;
    // The repository failed inside the run (another console's prune holds it): 11 as for every command.
    return { code: exitCodeOf(error), document: { device, jobId: record.id, status: record.status, phase: record.phase, error: record.error, bytesTransferred: record.bytesDone, files: record.itemsDone, durationMs } };
  }
  for (const s of value.snapshots) {
    for (const w of s.skipped ?? []) io.err(`warning: ${s.source}: ${w.path ? `${w.path}: ` : ''}${w.message}`);
    if (s.warnings > (s.skipped?.length ?? 0)) io.err(`warning: ${s.source}: ${s.warnings - s.skipped!.length} more (see the job history)`);
    for (const w of s.sentWhole?.examples ?? []) if (w.problem) io.err(`warning: ${s.source}: ${w.path} sent whole, not as its changed blocks: ${w.reason}`);
    if (s.rotationError) io.err(`warning: ${s.source}: ${s.rotationError}`);
    if (s.integrityCheck) io.err(`warning: ${s.source}: ${integrityWarning(s.integrityCheck)}`);
    if (s.inconsistentTables) io.err(`warning: ${s.source}: ${s.inconsistentTables}`);
  }
  if (value.retention && 'error' in value.retention) io.err(`warning: ${value.retention.error}`);
  if (value.leftoversStopped) io.err(`note: ${device}: first stopped what an earlier run had left running on the device (${value.leftoversStopped.join(', ')})`);
  const warned = value.snapshots.reduce((n, s) => n + s.warnings, 0);
  // Files that changed while read were kept (as read): not among those that could not be read.
  const changed = value.snapshots.reduce((n, s) => n + (s.changedWhileRead ?? 0), 0);
  const skipped = warned - changed;
  const damaged = value.snapshots.filter((s) => s.integrityCheck).length;
  if (!values.json) {
    for (const s of value.snapshots) io.out(`snapshot ${shortId(s.snapshotId)} ${s.source} (${s.kind}): ${s.files} files, ${formatBytes(s.bytes)}; sent ${formatBytes(s.bytesTransferred)}${s.bytesOnWire < s.bytesTransferred ? ` (${formatBytes(s.bytesOnWire)} on the wire)` : ''}${s.bytesResumed ? ` (${formatBytes(s.bytesResumed)} taken up from an interrupted run)` : ''}${s.deltaFiles ? ` (${s.deltaFiles} large file${s.deltaFiles === 1 ? '' : 's'} of ${formatBytes(s.deltaBytes ?? 0)} sent as the blocks that changed${s.knownFiles ? `, ${s.knownFiles} against a copy from another path or device` : ''})` : ''}${s.sentWhole ? ` (${s.sentWhole.files} large file${s.sentWhole.files === 1 ? '' : 's'} of ${formatBytes(s.sentWhole.bytes)} sent whole: ${[...new Set(s.sentWhole.examples.map((w) => w.reason))].slice(0, 3).join('; ')})` : ''}, stored ${formatBytes(s.bytesAdded)}${s.unchanged ? ' (not written since the last run: its copy and check kept)' : ''}`);
    io.out(`${device}: run ${value.runId} done in ${(value.durationMs / 1000).toFixed(1)}s${value.wireCompression ? ' (compressed on the wire)' : ''}`);
    if (skipped > 0) io.err(`${counted(skipped, 'file or folder', 'files or folders')} could not be read; the run holds everything else`);
    if (changed > 0) io.err(`${counted(changed, 'file')} changed while read, kept as read`);
  }
  return { code: warned > 0 || damaged > 0 ? EXIT.partial : EXIT.ok, document: value };
}
