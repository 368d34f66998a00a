/**
 * "Copy to offsite when reachable": for every offsite repository with the policy on, new runs of
 * the primary are copied there as a `copy` job — after each backup, and whenever a probe finds the
 * repository reachable again (the laptop back on a network, the disk plugged in). An unreachable
 * repository is skipped quietly (no failing job, no alert noise: the offsite rule watches the age of
 * the newest offsite copy); a copy that fails is a failed job like any other.
 */
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { StartedJob } from '../jobs/job-manager';
import type { Logger } from '../log';
import type { CopyResult } from '../repository/copy/copy';
import type { Repository } from '../repository/repo/repository';
import type { CopyService } from './copy-service';
import type { RepositoriesService } from './repositories-service';

/** How often offsite repositories are probed while the console runs. */
export const COPY_PROBE_INTERVAL_MS = 5 * 60_000;
const PROBE_TIMEOUT_MS = 10_000;

export interface CopyPolicyDeps {
  store: HistoryStore;
  repositories: RepositoriesService;
  copies: CopyService;
  bus: EventBus;
  log: Logger;
}

export class CopyPolicy {
  readonly #deps: CopyPolicyDeps;
  readonly #running = new Map<string, Promise<StartedJob<CopyResult>>>();
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #pass: Promise<string[]> | null = null;

  constructor(deps: CopyPolicyDeps) {
    this.#deps = deps;
  }

  start(intervalMs = COPY_PROBE_INTERVAL_MS): void {
    if (this.#timer) return;
    const run = () => void this.run().catch((error: unknown) => this.#deps.log.warn(`copy policy: ${(error as Error).message}`));
    this.#unsubscribe = this.#deps.bus.subscribe((event, payload) => {
      if (event !== 'jobs:finished') return;
      const { job } = payload as { job: { kind: string; status: string } };
      if (job.kind === 'backup' && job.status === 'succeeded') setImmediate(run);
    });
    this.#timer = setInterval(run, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** The copy jobs started and not finished, by repository id. */
  running(): Map<string, Promise<StartedJob<CopyResult>>> {
    return new Map(this.#running);
  }

  /**
   * One pass: probes each offsite repository with the policy on (not one being copied to already)
   * and starts a copy job where it is reachable and lacks the primary's newest run of a device.
   * Returns the ids of the repositories a copy started for. Passes never overlap.
   */
  run(): Promise<string[]> {
    this.#pass ??= this.#runPass().finally(() => {
      this.#pass = null;
    });
    return this.#pass;
  }

  async #runPass(): Promise<string[]> {
    const { repositories, log } = this.#deps;
    const started: string[] = [];
    for (const entry of repositories.list()) {
      if (entry.primary || !entry.copyWhenReachable || !entry.offsite || this.#running.has(entry.id)) continue;
      if (!repositories.lacksLatestRuns(entry.id)) continue;
      const reachable = await this.#probe(entry.id);
      if (!reachable) {
        log.debug(`copy policy: ${entry.name} is not reachable; trying again later`);
        continue;
      }
      const job = this.#startCopy(entry.id, entry.name);
      this.#running.set(entry.id, job);
      job.catch((error: unknown) => {
        // Could not even start (wrong stored password, the destination changed): a failed job says so.
        this.#running.delete(entry.id);
        log.warn(`copy policy: ${entry.name}: ${(error as Error).message}`);
      });
      started.push(entry.id);
    }
    return started;
  }

  async #probe(id: string): Promise<boolean> {
    const { repositories } = this.#deps;
    let timer: NodeJS.Timeout | undefined;
    const backend = repositories.backendOf(repositories.row(id));
    try {
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
      });
      return await Promise.race([backend.exists().catch(() => false), timeout]);
    } finally {
      clearTimeout(timer);
      // The copy opens its own; an SFTP probe must not leave its connection behind every 5 minutes.
      backend.close?.();
    }
  }


  #startCopy(id: string, name: string): Promise<StartedJob<CopyResult>> {
    const { copies, repositories } = this.#deps;
    return (async () => {
      const destination = await repositories.open(id);
      // What the destination holds now (also after a failed copy: some snapshots may have gone).
      const afterwards = (repo: Repository) => repositories.refreshHoldings(id, repo).catch((error: unknown) => this.#deps.log.warn(`copy policy: ${name}: ${(error as Error).message}`));
      const job = copies.copyInto(destination, { title: `Copy to ${name}`, label: `the offsite repository ${name}`, actor: 'copy-policy', afterwards });
      void job.done.finally(() => this.#running.delete(id));
      return job;
    })();
  }
}
