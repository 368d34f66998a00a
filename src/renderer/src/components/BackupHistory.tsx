/**
 * The device's recent backup runs as the job history keeps them: when, how each ended, how long it
 * took, what crossed the link and what the repository gained, and why a run failed.
 */
import { useEffect, useState } from 'react';
import { toAppError } from '../../../shared/errors';
import { formatDuration } from '../../../shared/format-duration';
import type { JobRecord } from '../../../shared/schemas/jobs';
import { api } from '../api';
import { formatBytes } from '../format';
import { ErrorBanner } from './ErrorBanner';
import { counted } from '../../../shared/plural';

/** The parts of a run's result the table shows (the job keeps the whole BackupRunResult). */
interface RunFigures {
  bytesTransferred?: number;
  bytesAdded?: number;
  snapshots?: { source?: string; warnings?: number; changedWhileRead?: number; bytesResumed?: number; deltaFiles?: number; deltaBytes?: number; knownFiles?: number; sentWhole?: SentWhole; unchanged?: boolean; skipped?: { path: string; message: string }[]; rotationError?: string; integrityCheck?: string; inconsistentTables?: string }[];
  wireCompression?: boolean;
  retention?: { runsForgotten?: number; error?: string };
  leftoversStopped?: string[];
}

/** Large changed files that crossed whole instead of as their changed blocks (SourceResult.sentWhole). */
interface SentWhole {
  files: number;
  bytes: number;
  examples: { path: string; size: number; reason: string; problem: boolean }[];
}

function figures(job: JobRecord): RunFigures {
  return job.result !== null && typeof job.result === 'object' ? job.result : {};
}

function notes(job: JobRecord): string {
  if (job.error) return job.error.message;
  const run = figures(job);
  // Files that changed while read were kept as read: counted apart from those that could not be read.
  const changed = (run.snapshots ?? []).reduce((n, s) => n + (s.changedWhileRead ?? 0), 0);
  const warnings = (run.snapshots ?? []).reduce((n, s) => n + (s.warnings ?? 0), 0) - changed;
  const resumed = (run.snapshots ?? []).reduce((n, s) => n + (s.bytesResumed ?? 0), 0);
  const unchanged = (run.snapshots ?? []).filter((s) => s.unchanged).map((s) => s.source ?? '');
  const damaged = (run.snapshots ?? []).filter((s) => s.integrityCheck).map((s) => s.source ?? '');
  const inconsistent = (run.snapshots ?? []).filter((s) => s.inconsistentTables).map((s) => s.source ?? '');
  const deltaFiles = (run.snapshots ?? []).reduce((n, s) => n + (s.deltaFiles ?? 0), 0);
  const deltaBytes = (run.snapshots ?? []).reduce((n, s) => n + (s.deltaBytes ?? 0), 0);
  const knownFiles = (run.snapshots ?? []).reduce((n, s) => n + (s.knownFiles ?? 0), 0);
  const whole = (run.snapshots ?? []).flatMap((s) => (s.sentWhole ? [s.sentWhole] : []));
  const wholeFiles = whole.reduce((n, w) => n + w.files, 0);
  const wholeBytes = whole.reduce((n, w) => n + w.bytes, 0);
  // One file: why it crossed whole; more: how many (those worth a look are listed under the problems).
  const onlyReason = wholeFiles === 1 ? whole[0]!.examples[0]?.reason : undefined;
  return [
    run.snapshots ? `${run.snapshots.length} snapshot${run.snapshots.length === 1 ? '' : 's'}` : '',
    run.leftoversStopped?.length ? `first stopped what an earlier run had left running on the device (${run.leftoversStopped.join(', ')})` : '',
    resumed > 0 ? `${formatBytes(resumed)} taken up from an interrupted run` : '',
    deltaFiles > 0 ? `${deltaFiles} large file${deltaFiles === 1 ? '' : 's'} (${formatBytes(deltaBytes)}) sent as the blocks that changed${knownFiles > 0 ? `, ${knownFiles === deltaFiles ? (deltaFiles === 1 ? 'its copy' : 'their copies') : `${knownFiles} of them`} found at another path or on another device` : ''}` : '',
    wholeFiles > 0 ? `${wholeFiles} large file${wholeFiles === 1 ? '' : 's'} (${formatBytes(wholeBytes)}) sent whole${onlyReason ? `: ${onlyReason}` : ''}` : '',
    unchanged.length > 0 ? `${unchanged.join(', ')}: database not written since the last run, its copy and check kept` : '',
    damaged.length > 0 ? `${damaged.join(', ')}: database damaged (integrity_check failed)` : '',
    inconsistent.length > 0 ? `${inconsistent.join(', ')}: tables dumped without a consistent view (MyISAM…)` : '',
    warnings > 0 ? `${warnings} file${warnings === 1 ? '' : 's'} or folder${warnings === 1 ? '' : 's'} could not be read` : '',
    changed > 0 ? `${changed} file${changed === 1 ? '' : 's'} changed while read (kept as read)` : '',
    run.wireCompression ? "sent gzip'ed (slow link)" : '',
    run.retention?.runsForgotten ? `retention forgot ${counted(run.retention.runsForgotten, 'run')}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
}

/** What a kept run could not do: files it could not read (the first ones, by source), logs not rotated, a damaged database, a MySQL dump with tables outside its consistent view, retention not applied. */
function problems(job: JobRecord): string[] {
  const run = figures(job);
  const out: string[] = [];
  for (const s of run.snapshots ?? []) {
    for (const w of s.skipped ?? []) out.push(`${s.source ?? ''}: ${w.path ? `${w.path} — ` : ''}${w.message}`);
    const more = (s.warnings ?? 0) - (s.skipped?.length ?? 0);
    if (more > 0) out.push(`${s.source ?? ''}: ${more} more`);
    for (const w of s.sentWhole?.examples ?? []) if (w.problem) out.push(`${s.source ?? ''}: ${w.path} (${formatBytes(w.size)}) sent whole, not as its changed blocks — ${w.reason}`);
    if (s.rotationError) out.push(`${s.source ?? ''}: ${s.rotationError}`);
    if (s.inconsistentTables) out.push(`${s.source ?? ''}: ${s.inconsistentTables}`);
    if (s.integrityCheck) out.push(`${s.source ?? ''}: the database on the device is damaged — its copy failed PRAGMA integrity_check (${s.integrityCheck.replace(/\n/g, '; ')}). The snapshot keeps it as it is, but a restore or drill of it will be refused.`);
  }
  if (run.retention?.error) out.push(run.retention.error);
  return out;
}

function Problems({ list }: { list: string[] }) {
  if (list.length === 0) return null;
  return (
    <details data-testid="backup-run-problems">
      <summary>{list.length === 1 ? '1 thing to look at' : `${list.length} things to look at`}</summary>
      <ul className="problems">
        {list.map((line, i) => (
          <li key={i}>{line}</li>
        ))}
      </ul>
    </details>
  );
}

/** `latest`: the device's newest backup job and its status as this window knows it; a change reloads the table. */
export function BackupHistory({ device, latest }: { device: string; latest: string }) {
  const [runs, setRuns] = useState<JobRecord[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api()
      .jobs.ofDevice({ device, kind: 'backup', limit: 20 })
      .then(setRuns)
      .catch((caught: unknown) => setError(toAppError(caught).message));
  }, [device, latest]);

  return (
    <section className="card" aria-label="Backup history" data-testid="backup-history">
      <h2>Recent backups</h2>
      <ErrorBanner message={error} />
      {runs === null ? null : runs.length === 0 ? (
        <p className="muted">No backup yet.</p>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Result</th>
              <th scope="col">Took</th>
              <th scope="col">Transferred</th>
              <th scope="col">Added</th>
              <th scope="col">Notes</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((job) => {
              const run = figures(job);
              return (
                <tr key={job.id} data-testid={`backup-run-${job.status}`}>
                  <td className="nowrap">{new Date(job.startedAt).toLocaleString()}</td>
                  <td className={job.status === 'succeeded' ? 'status-ok' : job.status === 'failed' ? 'status-failed' : 'status-warn'}>{job.status}</td>
                  <td className="nowrap" data-testid="backup-run-took">{job.finishedAt ? formatDuration(Date.parse(job.finishedAt) - Date.parse(job.startedAt)) : '…'}</td>
                  <td className="nowrap">{formatBytes(run.bytesTransferred ?? job.bytesDone)}</td>
                  <td className="nowrap" data-testid="backup-run-added">{run.bytesAdded !== undefined ? formatBytes(run.bytesAdded) : '—'}</td>
                  <td className="muted">
                    {notes(job)}
                    <Problems list={problems(job)} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
