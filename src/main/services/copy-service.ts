/**
 * Copies of the console repository into others (an offsite disk, an S3 bucket, a backup server)
 * as jobs: progress by snapshot and bytes, cancellable, recorded in the history. The destination
 * is opened before the job starts, so a wrong password or a missing repository is an immediate,
 * clear answer; its password is used for this copy only and kept nowhere.
 */
import path from 'node:path';
import { AppError } from '../../shared/errors';
import type { CopyRequest } from '../../shared/schemas/copy';
import type { JobManager, StartedJob } from '../jobs/job-manager';
import { backendFor, isRemoteLocation } from '../repository/backend/open-backend';
import { copySnapshots, sharedLease } from '../repository/copy/copy';
import { releasing } from '../repository/lock/lock';
import type { CopyProgress, CopyResult } from '../repository/copy/copy';
import { RepositoryError } from '../repository/errors';
import { Repository } from '../repository/repo/repository';
import type { RepositoryService } from './repository-service';
import { counted } from '../../shared/plural';

export const COPY_PHASES = ['prepare', 'copy', 'verify'] as const;

export class CopyService {
  /** Remote destinations read index and snapshot objects through the encrypted cache in `<data dir>/cache`. */
  readonly #dataDir: string;
  readonly #repository: RepositoryService;
  readonly #jobs: JobManager;
  readonly #env: NodeJS.ProcessEnv;

  constructor(dataDir: string, repository: RepositoryService, jobs: JobManager, env: NodeJS.ProcessEnv = process.env) {
    this.#dataDir = dataDir;
    this.#repository = repository;
    this.#jobs = jobs;
    this.#env = env;
  }

  /** Opens the destination, then copies under shared leases on both repositories, as a `copy` job. */
  async copyToRepository(request: CopyRequest): Promise<StartedJob<CopyResult>> {
    const source = await this.#repository.open();
    const backend = backendFor(request.to, this.#env);
    let destination: Repository;
    try {
      if (!(await backend.exists())) throw new RepositoryError('missing', `There is no repository at ${request.to} (create it first)`);
      destination = await Repository.open(backend, request.password, isRemoteLocation(request.to) && this.#env.JETVAULT_NO_CACHE !== '1' ? { cacheDir: path.join(this.#dataDir, 'cache') } : {});
      if (destination.config.id === source.config.id) throw new AppError('VALIDATION', `${request.to} is the console repository itself`);
    } catch (error) {
      backend.close?.();
      throw error;
    }
    const { to, password: _password, ...filters } = request;
    return this.copyInto(destination, { ...filters, title: `Copy to ${to}`, label: `the destination ${to}` });
  }

  /**
   * Copies into an open destination as a `copy` job, under shared leases on both repositories, and
   * closes the destination's connection when the job ends.
   */
  copyInto(
    destination: Repository,
    options: Omit<CopyRequest, 'to' | 'password'> & { title: string; label?: string; actor?: string; afterwards?: (destination: Repository) => Promise<void> },
  ): StartedJob<CopyResult> {
    const since = options.since ? new Date(options.since) : undefined;
    const label = options.label ?? `the destination ${destination.backend.location}`;
    return this.#jobs.start({ kind: 'copy', title: options.title, phases: [...COPY_PHASES], ...(options.actor ? { actor: options.actor } : {}) }, (ctx) =>
      this.#repository.write(async (repo, sourceLease) => {
        const destinationLease = await sharedLease(destination, label);
        return releasing(destinationLease, async () => {
          let last = { bytes: 0, snapshots: 0, phase: 'prepare' as CopyProgress['phase'] };
          const result = await copySnapshots(repo, destination, {
            ...(options.device ? { device: options.device } : {}),
            ...(options.source ? { source: options.source } : {}),
            ...(since ? { since } : {}),
            verify: options.verify !== false,
            signal: ctx.signal,
            sourceLease,
            destinationLease,
            onProgress: (p) => {
              if (p.phase !== last.phase) ctx.phase(p.phase);
              if (p.phase === 'copy' && last.phase !== 'copy') ctx.setTotals({ bytes: p.bytesTotal, items: p.snapshotsTotal });
              ctx.advance({ bytes: p.bytesDone - last.bytes, items: p.snapshotsDone - last.snapshots });
              last = { bytes: p.bytesDone, snapshots: p.snapshotsDone, phase: p.phase };
            },
          });
          if (result.damaged.length > 0) {
            const named = result.damaged.slice(0, 3).map((d) => `${d.device} ${d.source} of ${d.time} (${d.why})`);
            throw new AppError('INTERNAL', `${counted(result.copied.length, 'snapshot')} copied; ${result.damaged.length} not copied because their data in this repository is damaged: ${named.join('; ')}${result.damaged.length > 3 ? '; …' : ''} — \`jetvault check --read-data\` names the files the damage affects`);
          }
          if (!result.ok) {
            const errors = result.verification?.errors ?? [];
            throw new AppError('INTERNAL', `${counted(result.copied.length, 'snapshot')} copied, but reading them back found ${counted(errors.length, 'error')}: ${errors.slice(0, 3).join('; ')}`);
          }
          return result;
        });
      }).finally(async () => {
        // E.g. recording what the destination holds now, while its connection is still open.
        await options.afterwards?.(destination).catch(() => undefined);
        await destination.closeIdleWorkers();
        destination.backend.close?.();
      }),
    );
  }
}
