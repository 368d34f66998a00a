/**
 * A desktop notification when a job a person started from the console ends: a technician starts a
 * twenty-minute backup or restore and turns to something else. Jobs the scheduler or maintenance
 * start are not announced (a failed scheduled backup raises an alert, and alerts notify). Follows
 * Settings' "desktop notifications"; the platform shows it only while no console window is in front.
 */
import { formatDuration } from '../../shared/format-duration';
import type { JobRecord } from '../../shared/schemas/jobs';
import type { EventBus } from '../event-bus';
import type { SettingsService } from '../services/settings-service';
import type { JobManager } from './job-manager';

export type Notify = (title: string, body: string, options?: { onlyInBackground?: boolean }) => void;

const ENDED: Record<string, string> = { succeeded: 'done', failed: 'FAILED', cancelled: 'cancelled' };

/** What a backup's result (BackupRunResult, as the history keeps it) says of its sources, as far as a notice needs it. */
interface BackupFigures {
  snapshots?: { source?: string; warnings?: number; integrityCheck?: string; rotationError?: string }[];
  retention?: { error?: string };
}

/**
 * What a kept backup could not do, worst first: a damaged database (its snapshot is kept, but a
 * restore or drill of it will be refused), files it could not read, logs not rotated, retention not
 * applied. Empty for anything but a backup that succeeded.
 */
function backupProblems(job: JobRecord): { damaged: string[]; lines: string[] } {
  if (job.kind !== 'backup' || job.status !== 'succeeded' || job.result === null || typeof job.result !== 'object') return { damaged: [], lines: [] };
  const run = job.result as BackupFigures;
  const snapshots = Array.isArray(run.snapshots) ? run.snapshots : [];
  const damaged = snapshots.filter((s) => s.integrityCheck).map((s) => s.source ?? '?');
  const unread = snapshots.filter((s) => (s.warnings ?? 0) > 0);
  const count = unread.reduce((n, s) => n + (s.warnings ?? 0), 0);
  const notRotated = snapshots.filter((s) => s.rotationError).map((s) => s.source ?? '?');
  const lines = [
    damaged.length > 0 ? `Database damaged on the device (${damaged.join(', ')}): its copy failed the integrity check; a restore or drill of it will be refused.` : '',
    count > 0 ? `${count} file${count === 1 ? '' : 's'} or folder${count === 1 ? '' : 's'} could not be read (${unread.map((s) => s.source ?? '?').join(', ')}).` : '',
    notRotated.length > 0 ? `Logs not rotated (${notRotated.join(', ')}).` : '',
    run.retention?.error ? 'Retention was not applied.' : '',
  ].filter(Boolean);
  return { damaged, lines };
}

/** The notification for a finished job: what it was, how it ended, and why when it failed or what a kept backup could not do. */
export function jobNotice(job: JobRecord): { title: string; body: string } {
  const took = job.finishedAt ? Date.parse(job.finishedAt) - Date.parse(job.startedAt) : null;
  const after = took !== null ? ` after ${formatDuration(took)}` : '';
  const problems = backupProblems(job);
  const body =
    job.status === 'failed'
      ? (job.error?.message ?? 'It failed.')
      : job.status === 'cancelled'
        ? `Stopped${after}.`
        : [`Finished${after}.`, ...problems.lines].join(' ');
  // "done" alone read as all is well while the device's database was found damaged.
  const ended = problems.damaged.length > 0 ? 'done, database damaged' : problems.lines.length > 0 ? 'done with warnings' : (ENDED[job.status] ?? job.status);
  return { title: `Jetvault: ${job.title} — ${ended}`, body: body.slice(0, 300) };
}

export class JobNotices {
  readonly #watched = new Set<string>();
  readonly #unsubscribe: () => void;

  constructor(
    private readonly jobs: JobManager,
    bus: EventBus,
    private readonly settings: SettingsService,
    private readonly notify: Notify | undefined,
  ) {
    this.#unsubscribe = bus.subscribe((event, payload) => {
      if (event !== 'jobs:finished') return;
      const { job } = payload as { job: JobRecord };
      if (this.#watched.delete(job.id)) this.#show(job);
    });
  }

  /** Announces this job when it ends (at once if it already has). */
  watch(jobId: string): void {
    if (!this.notify) return;
    const job = this.jobs.get(jobId);
    if (job && job.status !== 'running') this.#show(job);
    else this.#watched.add(jobId);
  }

  stop(): void {
    this.#unsubscribe();
  }

  #show(job: JobRecord): void {
    if (!this.notify || !this.settings.get().desktopNotifications) return;
    const { title, body } = jobNotice(job);
    this.notify(title, body, { onlyInBackground: true });
  }
}
