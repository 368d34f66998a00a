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

/** The parts of a run's result the table shows (the job keeps the whole BackupRunResult). */
interface RunFigures {
  bytesTransferred?: number;
  bytesAdded?: number;
  snapshots?: { warnings?: number }[];
  wireCompression?: boolean;
  retention?: { runsForgotten: number };
}

function figures(job: JobRecord): RunFigures {
  return job.result !== null && typeof job.result === 'object' ? job.result : {};
}

function notes(job: JobRecord): string {
  if (job.error) return job.error.message;
  const run = figures(job);
  const warnings = (run.snapshots ?? []).reduce((n, s) => n + (s.warnings ?? 0), 0);
  return [
    run.snapshots ? `${run.snapshots.length} snapshot${run.snapshots.length === 1 ? '' : 's'}` : '',
    warnings > 0 ? `${warnings} file${warnings === 1 ? '' : 's'} skipped (see the snapshot)` : '',
    run.wireCompression ? "sent gzip'ed (slow link)" : '',
    run.retention && run.retention.runsForgotten > 0 ? `retention forgot ${run.retention.runsForgotten} run(s)` : '',
  ]
    .filter(Boolean)
    .join(' · ');
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
                  <td>{new Date(job.startedAt).toLocaleString()}</td>
                  <td className={job.status === 'succeeded' ? 'status-ok' : job.status === 'failed' ? 'status-failed' : 'status-warn'}>{job.status}</td>
                  <td>{job.finishedAt ? formatDuration(Date.parse(job.finishedAt) - Date.parse(job.startedAt)) : '…'}</td>
                  <td>{formatBytes(run.bytesTransferred ?? job.bytesDone)}</td>
                  <td>{run.bytesAdded !== undefined ? formatBytes(run.bytesAdded) : '—'}</td>
                  <td className="muted">{notes(job)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
