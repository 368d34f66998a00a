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

/** The notification for a finished job: what it was, how it ended, and why when it failed. */
export function jobNotice(job: JobRecord): { title: string; body: string } {
  const took = job.finishedAt ? Date.parse(job.finishedAt) - Date.parse(job.startedAt) : null;
  const after = took !== null ? ` after ${formatDuration(took)}` : '';
  const body =
    job.status === 'failed' ? (job.error?.message ?? 'It failed.').slice(0, 300) : job.status === 'cancelled' ? `Stopped${after}.` : `Finished${after}.`;
  return { title: `Jetvault: ${job.title} — ${ENDED[job.status] ?? job.status}`, body };
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
