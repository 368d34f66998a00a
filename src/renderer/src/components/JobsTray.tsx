import { useState } from 'react';
import { Button, ProgressBar } from 'react-aria-components';
import { useShallow } from 'zustand/react/shallow';
import type { JobKind, JobProgress } from '../../../shared/schemas/jobs';
import { formatBytes, formatDuration } from '../format';
import { counted } from '../../../shared/plural';
import { selectActiveJobs, useJobsStore } from '../stores/jobs-store';

/** What a job's items are: files for backups and restores, packs for a verify or prune, snapshots for a copy. */
const ITEMS: Record<JobKind, string> = { backup: 'files', restore: 'files', drill: 'files', download: 'files', verify: 'packs', prune: 'packs', copy: 'snapshots' };

function JobRow({ job }: { job: JobProgress }) {
  const cancel = useJobsStore((s) => s.cancel);
  // Pressed: the job stops at its next step and leaves the tray then; until that, say it is stopping.
  const [cancelling, setCancelling] = useState(false);
  const onCancel = () => {
    setCancelling(true);
    // Refused or already over: the button comes back (an ended job leaves the tray anyway).
    cancel(job.jobId).then(
      (cancelled) => setCancelling(cancelled),
      () => setCancelling(false),
    );
  };
  return (
    <li className="job" data-testid={`job-${job.jobId}`}>
      <div className="job-title">
        <strong>{job.title}</strong>
        <span className="job-phase">
          {job.phase} ({job.phaseIndex + 1}/{job.phaseCount})
        </span>
      </div>
      <ProgressBar
        aria-label={`${job.title} progress`}
        value={job.fraction === null ? undefined : job.fraction * 100}
        isIndeterminate={job.fraction === null}
        className="progress"
      >
        <div className="progress-track">
          <div className="progress-fill" style={{ width: `${(job.fraction ?? 0) * 100}%` }} />
        </div>
      </ProgressBar>
      <div className="job-meta">
        <span data-testid="job-bytes">
          {formatBytes(job.bytesDone)}
          {job.bytesTotal !== null ? ` of ${formatBytes(job.bytesTotal)}` : ''}
        </span>
        {job.itemsDone > 0 || job.itemsTotal ? (
          <span data-testid="job-items">
            {job.itemsDone.toLocaleString()}
            {job.itemsTotal ? ` of ${job.itemsTotal.toLocaleString()}` : ''} {ITEMS[job.kind]}
          </span>
        ) : null}
        <span>{formatBytes(job.rate)}/s</span>
        <span>{job.etaSeconds === null ? 'ETA unknown' : `${formatDuration(job.etaSeconds)} left`}</span>
        {/* Named after its job: a screen reader lists every tray's button, and "Cancel" alone says not which. */}
        <Button className="button button-quiet" onPress={onCancel} isDisabled={cancelling} aria-label={`${cancelling ? 'Cancelling' : 'Cancel'} ${job.title}`}>
          {cancelling ? 'Cancelling…' : 'Cancel'}
        </Button>
      </div>
      {/* A link gone quiet: how long it has been, so a technician can tell a pause from a dead link. */}
      {job.stalledSeconds !== null ? (
        <p className="job-stalled" data-testid="job-stalled">
          No progress for {formatDuration(job.stalledSeconds)}
        </p>
      ) : null}
    </li>
  );
}

/** Running jobs with phase, progress, rate, ETA and a cancel button; hidden when nothing runs. */
export function JobsTray() {
  const jobs = useJobsStore(useShallow(selectActiveJobs));
  if (jobs.length === 0) return null;
  return (
    <aside className="jobs-tray" aria-label="Running jobs" data-testid="jobs-tray">
      {jobs.length > 1 ? (
        <p className="jobs-tray-count" data-testid="jobs-tray-count">
          {counted(jobs.length, 'job')} running
        </p>
      ) : null}
      <ul>
        {jobs.map((job) => (
          <JobRow key={job.jobId} job={job} />
        ))}
      </ul>
    </aside>
  );
}
