/**
 * Downloads to the laptop: files, folders or a whole snapshot restored into a folder the user
 * chose, as a job with progress. Every download lands in a new sub-folder named after the snapshot
 * (`<device>-<source>-<time>`), so nothing already in the chosen folder is ever overwritten.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import type { DownloadRequest, DownloadResult } from '../../shared/schemas/files';
import type { JobManager } from '../jobs/job-manager';
import { restore } from '../repository/restorer/restorer';
import { compilePatterns } from '../repository/restorer/patterns';
import { findSnapshot, sourceOf, tagValue, walkTree } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import type { RepositoryService } from '../services/repository-service';

export const DOWNLOAD_PHASES = ['prepare', 'download'] as const;

/** `rvm-017-config-20261130-141502`: safe as a folder name on any laptop file system. */
export function downloadFolderName(snapshot: SnapshotWithId): string {
  const stamp = snapshot.time.replace(/\.\d+/, '').replace(/[-:]/g, '').replace('T', '-').replace(/Z$/, '');
  const label = `${snapshot.device}-${sourceOf(snapshot)}-${stamp}`;
  return label.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Creates `<folder>/<name>` (or `<name>-2`, `-3`, … when taken) and returns it. */
async function freshFolder(folder: string, name: string): Promise<string> {
  const info = await stat(folder).catch(() => null);
  if (!info) throw new AppError('NOT_FOUND', `The folder ${folder} does not exist`);
  if (!info.isDirectory()) throw new AppError('VALIDATION', `${folder} is not a folder`);
  for (let i = 1; i < 1000; i++) {
    const candidate = path.join(folder, i === 1 ? name : `${name}-${i}`);
    try {
      await mkdir(candidate, { mode: 0o700 });
      return candidate;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      throw new AppError(code === 'EACCES' || code === 'EPERM' ? 'VALIDATION' : 'INTERNAL', `Cannot create a folder in ${folder}: ${(error as Error).message}`);
    }
  }
  throw new AppError('CONFLICT', `${folder} already holds too many downloads named ${name}`);
}

export class DownloadService {
  readonly #repository: RepositoryService;
  readonly #jobs: JobManager;

  constructor(repository: RepositoryService, jobs: JobManager) {
    this.#repository = repository;
    this.#jobs = jobs;
  }

  /** Checks the request and creates the target folder, then runs the download as a job. */
  async start(request: DownloadRequest): Promise<{ jobId: string; target: string }> {
    const repo = await this.#repository.fresh();
    const snapshot = await findSnapshot(repo, request.snapshotId);
    const include = request.paths ?? [];
    const target = await freshFolder(request.folder, downloadFolderName(snapshot));
    const what = include.length === 1 ? path.posix.basename(include[0]!) : include.length > 1 ? `${include.length} paths` : (tagValue(snapshot.tags, 'source') ?? 'snapshot');
    const job = this.#jobs.start({ kind: 'download', title: `Download ${what} of ${snapshot.device}`, phases: [...DOWNLOAD_PHASES] }, async (ctx): Promise<DownloadResult> => {
      let bytes = snapshot.summary.bytes;
      if (include.length > 0) {
        const match = compilePatterns(include);
        bytes = 0;
        for await (const { path: p, node } of walkTree(repo, snapshot.tree)) if (node.type === 'file' && match(p) === 'yes') bytes += node.size;
      }
      ctx.setTotals({ bytes });
      ctx.phase('download');
      const result = await restore(repo, snapshot, target, { include, signal: ctx.signal, onProgress: (delta) => ctx.advance(delta) });
      if (include.length > 0 && result.files + result.dirs === 0) throw new AppError('NOT_FOUND', `Nothing in snapshot ${snapshot.id.slice(0, 12)} matches ${include.join(', ')}`);
      return { target, ...result };
    });
    return { jobId: job.id, target };
  }
}
