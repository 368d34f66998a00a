/**
 * Repository upkeep on a schedule, as jobs: verification of the structure every day and of a 10%
 * sample of the data every week (`check`, `check --read-data-subset 10%`), and a prune every week
 * that frees what forgotten runs no longer reference (exclusive lease: this console's backups wait
 * for it; it fails harmlessly, to be retried, if another console holds the repository).
 */
import { AppError } from '../../shared/errors';
import type { HistoryStore } from '../history/history-store';
import { STOPPED_WITH_PROCESS } from '../jobs/job-manager';
import type { JobManager, StartedJob } from '../jobs/job-manager';
import type { Logger } from '../log';
import { check } from '../repository/checker/checker';
import { withLock } from '../repository/lock/lock';
import { prune } from '../repository/prune/prune';
import type { RepositoryService } from '../services/repository-service';
import { counted, verb } from '../../shared/plural';

const DAY = 86_400_000;
export const VERIFY_EVERY_MS = DAY;
export const VERIFY_DATA_EVERY_MS = 7 * DAY;
export const PRUNE_EVERY_MS = 7 * DAY;
export const DATA_SUBSET = 0.1;
/**
 * A verification or prune that failed is tried again after this long, not on the next tick: it
 * was due by its last *success*, so a damaged pack had the 10% data check read the repository again
 * every 30 s (the scheduler's tick), and a repository held by another console a failed prune twice a
 * minute in the history.
 */
export const RETRY_FAILED_MS = 6 * 3_600_000;

export type MaintenanceTask = 'verify' | 'verify-data' | 'prune';

export interface MaintenanceDeps {
  store: HistoryStore;
  jobs: JobManager;
  repository: RepositoryService;
  log: Logger;
  clock?: () => number;
}

export class Maintenance {
  readonly #deps: MaintenanceDeps;
  readonly #clock: () => number;

  constructor(deps: MaintenanceDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? Date.now;
  }

  /** When a task last succeeded (from the jobs history); for `withData`, only a verification that read data. */
  #lastSuccess(kind: 'verify' | 'prune', withData = false): number | null {
    const job = this.#deps.store.sql.lastSucceededOfKind.get(kind, withData ? 1 : 0);
    return job ? Date.parse(job.finished_at ?? job.started_at) : null;
  }

  /** Whether the newest attempt of a task failed (or was cancelled) less than RETRY_FAILED_MS ago. */
  #failedLately(kind: 'verify' | 'prune', now: number): boolean {
    const job = this.#deps.store.sql.lastJobOfKind.get(kind);
    // Cancelled with the process that ran it (the app quit): tried again as soon as it is due.
    if (!job || job.status === 'succeeded' || (job.status === 'cancelled' && job.error?.includes(STOPPED_WITH_PROCESS))) return false;
    return now - Date.parse(job.finished_at ?? job.started_at) < RETRY_FAILED_MS;
  }

  /** What is due now, most important first. */
  due(): MaintenanceTask[] {
    const now = this.#clock();
    const older = (at: number | null, every: number) => at === null || now - at >= every;
    const out: MaintenanceTask[] = [];
    if (!this.#failedLately('verify', now)) {
      if (older(this.#lastSuccess('verify', true), VERIFY_DATA_EVERY_MS)) out.push('verify-data');
      else if (older(this.#lastSuccess('verify'), VERIFY_EVERY_MS)) out.push('verify');
    }
    if (older(this.#lastSuccess('prune'), PRUNE_EVERY_MS) && !this.#failedLately('prune', now)) out.push('prune');
    return out;
  }

  start(task: MaintenanceTask): StartedJob<unknown> {
    const { jobs, repository } = this.#deps;
    if (task === 'prune') {
      return jobs.start({ kind: 'prune', title: 'Prune the repository', phases: ['prune'] }, async (ctx) => {
        // Waits for this console's running backups and holds new ones back while it runs.
        const report = await repository.exclusive(async (repo, lease) => {
          await repo.refreshIndex();
          return prune(repo, { signal: ctx.signal, lease });
        });
        // The rest is pruned; a pack kept for its damaged data is the operator's to look at.
        if (report.damagedPacks.length > 0) {
          const packs = report.damagedPacks.map((id) => id.slice(0, 12)).join(', ');
          throw new AppError(
            'INTERNAL',
            `Prune freed ${report.bytesFreed} bytes but kept ${counted(report.damagedPacks.length, 'pack')} as ${verb(report.damagedPacks.length, 'it is', 'they are')} (${packs}): data snapshots need in them is damaged and cannot be repacked. Verify the repository with all its data (\`jetvault check --read-data\`) to see the snapshots and files affected`,
          );
        }
        if (report.packsNotRepacked > 0) {
          throw new AppError(
            'UNAVAILABLE',
            `Prune freed ${report.bytesFreed} bytes, but the repository's disk had no room for the packs it rewrites: ${counted(report.packsNotRepacked, 'pack')} to repack ${verb(report.packsNotRepacked, 'was kept as it is', 'were kept as they are')}. Run the prune again (the room freed may be enough now), or free some space there first`,
          );
        }
        return { bytesFreed: report.bytesFreed };
      });
    }
    const readData = task === 'verify-data';
    return jobs.start({ kind: 'verify', title: readData ? 'Verify the repository (10% of the data)' : 'Verify the repository structure', phases: ['check'] }, async (ctx) => {
      const repo = await repository.fresh();
      const report = await withLock(repo, false, () => check(repo, { readData, subset: DATA_SUBSET, signal: ctx.signal }));
      if (!report.ok) {
        const affected = report.affected.slice(0, 5).map((a) => `${a.path}`).join(', ');
        // While a damaged pack stays indexed, every backup reuses its damaged data: say what stores it again.
        const repair = report.damagedPacks.length > 0 ? `. To store the damaged data again: \`jetvault repair-packs ${report.damagedPacks.map((id) => id.slice(0, 12)).join(' ')}\`, then back up the affected devices again` : '';
        throw new AppError('INTERNAL', `Verification found ${counted(report.errors.length, 'problem')}: ${report.errors.slice(0, 3).join('; ')}${affected ? `; affected files include ${affected}` : ''}${repair}`);
      }
      return { readData, snapshots: report.snapshots, packs: report.packs, packsRead: report.packsRead };
    });
  }

  /** Starts what is due when nothing else runs and the repository is unlocked; returns what it started. */
  async tick(): Promise<MaintenanceTask[]> {
    if (this.#deps.jobs.active().length > 0) return [];
    try {
      await this.#deps.repository.open();
    } catch {
      return []; // locked (no password here yet) or missing: nothing to maintain
    }
    const task = this.due()[0];
    if (!task) return [];
    this.#deps.log.info(`maintenance: starting ${task}`);
    this.start(task).done.catch(() => undefined);
    return [task];
  }
}
