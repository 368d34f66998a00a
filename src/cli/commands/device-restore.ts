/**
 * Restores onto a device from the command line — the same planner and job as the Restore page:
 * `restore SNAP --device NAME` plans (and with --yes runs) an on-device restore; the previous state
 * stays on the device until `keep --device NAME` or `rollback --device NAME`.
 */
import { AppError } from '../../shared/errors';
import { RestoreRequestSchema } from '../../shared/schemas/restore';
import type { RestorePlanSummary, RestoreRequest } from '../../shared/schemas/restore';
import { visibleName } from '../../shared/visible-name';
import type { CliIo, Command } from '../command';
import { parseTimeOption, UsageError } from '../command';
import { withServices } from '../services';
import { CANCEL_SIGNALS } from './repo-backup';
import { exitCodeOf } from './repo-common';
import { counted } from '../../shared/plural';

/** The exit status when a destructive restore was planned but not confirmed with --yes. */
export const EXIT_NOT_CONFIRMED = 3;

const octal = (mode: number): string => `0${mode.toString(8)}`;

function describePlan(plan: RestorePlanSummary, io: CliIo): void {
  io.out(`Restore plan for ${plan.device}${plan.at ? ` at ${plan.at}` : ''}:`);
  for (const s of plan.snapshots) io.out(`  ${s.source.padEnd(16)} ${s.kind.padEnd(9)} snapshot ${s.snapshotId.slice(0, 10)} of ${s.time}`);
  for (const r of plan.roots) {
    io.out(`  files  ${r.target}: ${r.add} to add, ${r.replace} to replace, ${r.remove} to remove, ${r.unchanged} unchanged`);
    if (r.mode) io.out(`         the folder's mode goes back from ${octal(r.mode.from)} to ${octal(r.mode.to)}`);
    if (r.owner) io.out(`         the folder's owner goes back from ${r.owner.from} to ${r.owner.to}`);
    if (r.owners > 0) io.out(`         ${r.owners} of them ${r.owners === 1 ? 'gets its' : 'get their'} owner (uid:gid) from the snapshot back`);
    // Which files, as the wizard lists them (up to 20 of each kind), names as the console shows them
    // (`visibleName`: a line break as \n; the "~ " / "+ " / "- " marks pass as they are), so each stays one line.
    for (const line of r.samples) io.out(`           ${visibleName(line)}`);
    const unlisted = r.add + r.replace + r.remove - r.samples.length;
    if (r.samples.length > 0 && unlisted > 0) io.out(`           … and ${unlisted} more`);
    if (r.contents) io.out(`         contents checked: ${r.contents.checked} files read, ${r.contents.differ} differ (to replace)${r.contents.unreadable > 0 ? `, ${r.contents.unreadable} unreadable by the device's login (left as they are)` : ''}`);
  }
  for (const d of plan.databases) {
    io.out(`  ${d.kind.padEnd(6)} ${d.target}: ${d.action}${d.rows !== null ? ` (${d.rows} rows in ${d.tables} tables)` : ''}`);
    if (d.space) io.out(`         written on its own disk (${d.space.location}): ${(d.space.needed / 2 ** 20).toFixed(1)} MiB needed there, ${(d.space.freeBytes / 2 ** 20).toFixed(1)} MiB free`);
  }
  if (plan.services.stop.length > 0) io.out(`  services stopped around the swap: ${plan.services.stop.join('; ')}`);
  io.out(`  ${(plan.spaceNeeded / 2 ** 20).toFixed(1)} MiB needed on the device, ${(plan.freeBytes / 2 ** 20).toFixed(1)} MiB free`);
  if (plan.patchableBytes > 0) io.out(`  of the ${(plan.bytesToSend / 2 ** 20).toFixed(1)} MiB to send, ${(plan.patchableBytes / 2 ** 20).toFixed(1)} MiB are large files the device has a copy of: only the blocks that differ cross`);
  if (plan.resumableBytes > 0) io.out(`  ${(plan.resumableBytes / 2 ** 20).toFixed(1)} MiB of it is on the device already, staged by an earlier restore its link cut off: taken up, not sent again`);
  for (const w of plan.warnings) io.out(`  warning: ${w}`);
}

/** Whether the plan changes anything in place (what --yes must confirm). */
function destructive(plan: RestorePlanSummary): boolean {
  return plan.roots.some((r) => r.replace + r.remove > 0 || r.mode !== null || r.owner !== null) || plan.databases.some((d) => d.action === 'replace');
}

export async function deviceRestore(values: Record<string, unknown>, ref: string, io: CliIo): Promise<number> {
  const device = values.device as string;
  const sources = (values.source as string[] | undefined) ?? [];
  const include = (values.include as string[] | undefined) ?? [];
  const at = typeof values.at === 'string' ? parseTimeOption('--at', values.at) : null;
  // A snapshot id names the snapshot (and its source) itself: --at or --source would be ignored.
  if (ref !== 'latest' && (typeof values.at === 'string' || sources.length > 0)) throw new UsageError(`--at and --source choose snapshots for SNAP "latest"; ${ref} names one snapshot already`);
  return withServices(io, async (services) => {
    const request: RestoreRequest = { device };
    if (ref !== 'latest') {
      // A snapshot id or a unique prefix of one of this device's snapshots.
      const matches = (await services.catalog.list(device)).filter((s) => s.id.startsWith(ref));
      if (matches.length !== 1) throw new AppError('NOT_FOUND', matches.length === 0 ? `No snapshot ${ref} of ${device}` : `${ref} is ambiguous: ${matches.length} snapshots start with it`);
      request.snapshotId = matches[0]!.id;
    } else {
      request.at = (at ?? new Date()).toISOString();
      request.scope = include.length > 0 ? 'files' : sources.length > 0 ? 'source' : 'device';
    }
    if (sources.length > 0) request.sources = sources;
    if (include.length > 0) request.include = include;
    if (typeof values['into-folder'] === 'string') request.targetRoot = values['into-folder'];
    if (typeof values['into-database'] === 'string') request.targetDatabase = values['into-database'];
    if (typeof values['into-file'] === 'string') request.targetPath = values['into-file'];
    if (values['check-contents'] === true) request.checkContents = true;
    // As the console's IPC checks it: a bad name or path is said before the device is asked anything.
    const checked = RestoreRequestSchema.safeParse(request);
    if (!checked.success) throw new UsageError(checked.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; '));
    const plan = await services.restores.plan(checked.data);
    // --json: stdout is one JSON document — the plan (dry run, or not confirmed), else the outcome.
    if (!values.json) describePlan(plan, io);
    else if (values['dry-run'] || !values.yes) io.out(JSON.stringify(plan, null, 2));
    if (values['dry-run']) return 0;
    if (!values.yes && destructive(plan)) {
      io.err(`This replaces data on ${device}. Repeat with --yes to restore (the previous state is kept until keep or rollback).`);
      return EXIT_NOT_CONFIRMED;
    }
    const { jobId, restoreId, done } = services.restores.start(checked.data);
    // Ctrl-C (or SIGTERM, SIGHUP) cancels as the console's Cancel does: before the swap the staged
    // data is removed and the device is as it was; from the swap on the restore is seen through (its
    // services started again, its previous state kept for keep or rollback). Ending the process
    // instead would leave the staging behind — or, during the swap, the services stopped.
    let cancelling = false;
    const cancel = (): void => {
      if (services.jobs.cancel(jobId)) {
        cancelling = true;
        io.err(`jetvault restore: cancelling the restore of ${device}…`);
      } else if (!cancelling) io.err(`jetvault restore: ${device} is being swapped: the restore finishes first`);
    };
    for (const signal of CANCEL_SIGNALS) process.on(signal, cancel);
    const { record: job, error } = await done.finally(() => {
      for (const signal of CANCEL_SIGNALS) process.removeListener(signal, cancel);
    });
    if (job.status !== 'succeeded') {
      io.err(`The restore ${job.status}: ${job.error?.message ?? ''}`);
      // The repository failed (another console's prune holds it): 11 as for every command.
      return exitCodeOf(error);
    }
    // Roles created for a database the device's server lacked: the operator has to act on them.
    const notes = (job.result as { notes?: string[] } | null)?.notes ?? [];
    for (const note of notes) io.err(`note: ${note}`);
    if (values.json) io.out(JSON.stringify({ restoreId, jobId, status: job.status, notes }));
    else io.out(`restored ${device} (${restoreId}); the previous state is kept on the device: jetvault keep --device ${device} or jetvault rollback --device ${device}`);
    return 0;
  });
}

function pendingCommand(name: 'keep' | 'rollback'): Command {
  const keep = name === 'keep';
  return {
    name,
    summary: keep ? 'keep a completed restore on a device (removes the previous state kept there)' : 'roll a device back to what it held before its last restore',
    usage: `Usage: jetvault ${name} --device NAME [--json]\n\nActs on every completed restore waiting on the device for a decision (found on the device itself, so it works from any console).`,
    options: { device: { type: 'string' }, json: { type: 'boolean' } },
    async run({ values, positionals }, io) {
      if (typeof values.device !== 'string' || positionals.length > 0) throw new UsageError(`${name} needs --device NAME`);
      const device = values.device;
      return withServices(io, async (services) => {
        const { pending, settled } = await services.restores.recoverReport(device);
        // What an interrupted restore had left half-done, settled first (whatever is asked: keep or roll back).
        for (const line of settled) io.err(`note: ${line}`);
        const leftovers: string[] = [];
        for (const p of pending) leftovers.push(...(await (keep ? services.restores.confirm(p.restoreId) : services.restores.rollback(p.restoreId))).leftovers);
        if (values.json) io.out(JSON.stringify({ device, [keep ? 'kept' : 'rolledBack']: pending.map((p) => p.restoreId), settled, leftovers }));
        else io.out(pending.length === 0 ? `No restore of ${device} is waiting for a decision.` : `${keep ? 'kept' : 'rolled back'} ${counted(pending.length, 'restore')} of ${device}`);
        // Done all the same: what stays is the previous state's files of another account, in hidden staging folders.
        for (const path of leftovers) io.err(`could not remove ${path} entirely (files of another account; the device's login is not root): remove it as root`);
        return 0;
      });
    },
  };
}

export const keepCommand = pendingCommand('keep');
export const rollbackCommand = pendingCommand('rollback');
