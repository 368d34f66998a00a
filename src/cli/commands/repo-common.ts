/**
 * Shared plumbing of the repository commands (restic conventions): where the repository is, the
 * password, the lock, exit codes and TTY progress. Exit codes: 0 ok, 1 failure, 2 usage (also a location
 * that cannot name a repository), 3 backup finished
 * with unreadable files, 10 repository missing, 11 locked, 12 wrong password.
 */
import { readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { join, resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { resolveDataDir } from '../../main/data-dir';
import { backendFor, isRemoteLocation } from '../../main/repository/backend/open-backend';
import { RepositoryError } from '../../main/repository/errors';
import type { ProgressFn } from '../../main/repository/errors';
import { readLease, releasing, withLock } from '../../main/repository/lock/lock';
import type { Lease } from '../../main/repository/lock/lock';
import { Repository } from '../../main/repository/repo/repository';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { counted, verb } from '../../shared/plural';

export const EXIT = { ok: 0, failure: 1, usage: 2, partial: 3, missing: 10, locked: 11, wrongPassword: 12 } as const;

export const REPO_OPTIONS: NonNullable<ParseArgsConfig['options']> = {
  repo: { type: 'string', short: 'r' },
  'password-file': { type: 'string', short: 'p' },
  json: { type: 'boolean' },
};

export const REPO_USAGE = [
  '',
  'Repository options:',
  '  -r, --repo DIR            repository (default: $JETVAULT_REPOSITORY, else $JETVAULT_HOME/repository);',
  '                            s3:https://HOST[:PORT]/BUCKET[/PREFIX] for S3-compatible storage (AWS_ACCESS_KEY_ID,',
  '                            AWS_SECRET_ACCESS_KEY, AWS_REGION from the environment as the AWS tools read them);',
  '                            sftp:USER@HOST[:PORT]:/PATH on an SSH server (its host key from JETVAULT_SFTP_HOST_KEY=SHA256:…',
  '                            or known_hosts; JETVAULT_SFTP_IDENTITY=KEYFILE, JETVAULT_SFTP_PASSWORD or the ssh-agent log in)',
  '  -p, --password-file FILE  read the password from FILE (default: $JETVAULT_PASSWORD, else prompt)',
  '      --json                print machine-readable JSON',
].join('\n');

export function repoPath(values: Record<string, unknown>, env: NodeJS.ProcessEnv): string {
  if (typeof values.repo === 'string') return values.repo;
  if (env.JETVAULT_REPOSITORY) return env.JETVAULT_REPOSITORY;
  return join(resolveDataDir(env), 'repository');
}

async function promptHidden(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) throw new UsageError('no password given: use --password-file or JETVAULT_PASSWORD (no terminal to prompt on)');
  const muted = new Writable({ write: (_c, _e, done) => done() });
  process.stderr.write(prompt);
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve) => rl.question('', resolve));
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

export async function readPassword(values: Record<string, unknown>, io: CliIo, prompt = 'enter repository password: '): Promise<string> {
  if (typeof values['password-file'] === 'string') return (await readFile(values['password-file'], 'utf8')).replace(/\r?\n$/, '');
  if (io.env.JETVAULT_PASSWORD !== undefined) return io.env.JETVAULT_PASSWORD;
  return io.readSecret ? io.readSecret(prompt) : promptHidden(prompt);
}

/**
 * The password of a second repository (`copy --to`, `init --copy-chunker-params-from`): from its own
 * file option, else its own environment variable, else a prompt naming it.
 */
export async function readOtherPassword(file: unknown, envName: string, io: CliIo, prompt: string): Promise<string> {
  if (typeof file === 'string') return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  if (io.env[envName] !== undefined) return io.env[envName];
  return io.readSecret ? io.readSecret(prompt) : promptHidden(prompt);
}

/**
 * Why there is no repository at `location`. A folder that is not there at all (other than the data
 * folder's own `repository`, made by the first init) is most likely a disk not mounted or a
 * repository moved: said so first, since `jetvault init` there would make a new, empty one on this
 * machine's disk at the mount point.
 */
async function noRepository(location: string, env: NodeJS.ProcessEnv): Promise<RepositoryError> {
  const own = resolve(location) === resolve(join(resolveDataDir(env), 'repository'));
  const code = isRemoteLocation(location) || own ? null : await stat(location).then(() => null, (error: unknown) => (error as NodeJS.ErrnoException).code);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new RepositoryError(
      'missing',
      `no repository at ${location}: that folder is not there. If the repository is on a disk, mount it there (or give its new path with -r or JETVAULT_REPOSITORY); \`jetvault init\` would create a new, empty one`,
    );
  }
  return new RepositoryError('missing', `no repository at ${location} (create one with \`jetvault init\`)`);
}

/** Opens a second repository; its failures say which repository they are about. */
export async function openOtherRepository(location: string, password: () => Promise<string>, io: CliIo, role: string): Promise<Repository> {
  const backend = backendFor(location, io.env);
  try {
    if (!(await backend.exists())) throw await noRepository(location, io.env);
    return await Repository.open(backend, await password(), cacheDirFor(location, io.env));
  } catch (error) {
    backend.close?.();
    if (error instanceof RepositoryError) throw new RepositoryError(error.failure, `${role}: ${error.message}`);
    throw error;
  }
}

/** Asks for a new password twice when prompting; from a file/env it is taken as is. */
export async function readNewPassword(io: CliIo, file: unknown): Promise<string> {
  if (typeof file === 'string') return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  const first = io.readSecret ? await io.readSecret('new password: ') : await promptHidden('new password: ');
  const again = io.readSecret ? await io.readSecret('repeat new password: ') : await promptHidden('repeat new password: ');
  if (first !== again) throw new UsageError('the passwords do not match');
  return first;
}

/** Where remote repositories keep their metadata cache (none for local folders, or with JETVAULT_NO_CACHE=1). */
export function cacheDirFor(location: string, env: NodeJS.ProcessEnv): { cacheDir?: string } {
  return isRemoteLocation(location) && env.JETVAULT_NO_CACHE !== '1' ? { cacheDir: join(resolveDataDir(env), 'cache') } : {};
}

export async function openRepository(values: Record<string, unknown>, io: CliIo): Promise<Repository> {
  const location = repoPath(values, io.env);
  const backend = backendFor(location, io.env);
  try {
    if (!(await backend.exists())) throw await noRepository(location, io.env);
    return await Repository.open(backend, await readPassword(values, io), cacheDirFor(location, io.env));
  } catch (error) {
    backend.close?.();
    throw error;
  }
}

/** Opens the repository, takes a lock, runs `work`, maps failures to documented exit codes. */
export async function withRepository(
  values: Record<string, unknown>,
  io: CliIo,
  lock: 'shared' | 'exclusive' | 'none' | 'read',
  work: (repo: Repository, lease: Lease | undefined) => Promise<number>,
): Promise<number> {
  return reportFailures(io, async () => {
    const repo = await openRepository(values, io);
    try {
      return await locked(repo);
    } finally {
      for (const [id, why] of repo.damagedSnapshots) io.err(`warning: snapshot ${shortId(id)} is damaged and was left out (${why}); run \`jetvault check\``);
      repo.backend.close?.(); // an SFTP connection would keep the process alive
    }
  });
  async function locked(repo: Repository): Promise<number> {
    if (lock === 'none') return work(repo, undefined);
    if (lock === 'read') {
      const lease = await readLease(repo);
      if (lease) return releasing(lease, () => work(repo, lease));
      io.err('warning: the repository is read-only here, so no lease was taken: a prune started elsewhere meanwhile could remove data this command reads');
      return work(repo, undefined);
    }
    return withLock(repo, lock === 'exclusive', (lease) => work(repo, lease));
  }
}

export async function reportFailures(io: CliIo, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof RepositoryError)) throw error;
    io.err(`jetvault: ${error.message}`);
    return exitCodeOf(error);
  }
}

/** The documented exit code of a repository failure: 2 a location that names none, 10 missing, 11 locked, 12 wrong password, else 1. */
export function exitCodeOf(error: unknown): number {
  if (!(error instanceof RepositoryError)) return EXIT.failure;
  if (error.failure === 'invalid') return EXIT.usage;
  if (error.failure === 'missing') return EXIT.missing;
  if (error.failure === 'locked') return EXIT.locked;
  if (error.failure === 'wrong-password') return EXIT.wrongPassword;
  return EXIT.failure;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  // Up a unit also when one decimal would show 1024.0 (1,048,570 B is "1.0 MiB").
  while ((v >= 1024 || (i > 0 && v >= 1023.95)) && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export interface ProgressState {
  items: number;
  bytes: number;
  elapsedMs: number;
  /** Expected totals when known (a restore), or estimated (a backup: its parent snapshot's). */
  totalItems?: number;
  totalBytes?: number;
  estimated?: boolean;
  /**
   * A job's own rate (bytes/s over its last seconds) and ETA (null: unknown), when it measures them:
   * a stall then reads 0 B/s with no ETA, where the average since the start still counted down.
   */
  rate?: number;
  etaSeconds?: number | null;
  /** Seconds the job has not moved, once that is long enough to say (null: it moves). */
  stalledSeconds?: number | null;
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line: files, bytes (of the total, with a percentage), rate, ETA. */
export function formatProgress(p: ProgressState): string {
  const secs = p.elapsedMs / 1000;
  const rate = p.rate ?? (secs > 0 ? p.bytes / secs : 0);
  const files = p.totalItems ? `${p.items}/${p.totalItems} files` : `${p.items} files`;
  const total = p.totalBytes ? ` / ${formatBytes(p.totalBytes)} (${Math.min(100, Math.floor((p.bytes / p.totalBytes) * 100))}%)` : '';
  let eta = '';
  if (p.etaSeconds !== undefined) {
    if (p.etaSeconds !== null && p.totalBytes) eta = `, ETA ${p.estimated ? '~' : ''}${formatDuration(p.etaSeconds)}`;
  } else if (p.totalBytes && rate > 0 && secs >= 1) eta = `, ETA ${p.estimated ? '~' : ''}${formatDuration(Math.max(0, p.totalBytes - p.bytes) / rate)}`;
  const still = p.stalledSeconds ? `, no progress for ${formatDuration(p.stalledSeconds)}` : '';
  return `${files}, ${formatBytes(p.bytes)}${total}, ${formatBytes(rate)}/s${eta}${still}`;
}

/**
 * A progress line on stderr, redrawn at most every 200 ms, only when stderr is a terminal (so
 * pipes, logs and `--json` on stdout never see it); cleared when the operation ends.
 */
export function ttyProgress(
  total: { bytes?: number; items?: number; estimated?: boolean } = {},
  stream: { isTTY?: boolean; write(text: string): unknown } = process.stderr,
): { onProgress: ProgressFn; done(): void } {
  const tty = stream.isTTY === true;
  const started = Date.now();
  let bytes = 0;
  let items = 0;
  let last = 0;
  const draw = (): void => {
    const state: ProgressState = { items, bytes, elapsedMs: Date.now() - started, ...(total.estimated ? { estimated: true } : {}) };
    if (total.items) state.totalItems = total.items;
    if (total.bytes) state.totalBytes = total.bytes;
    stream.write(`\r\x1b[K${formatProgress(state)}`);
  };
  return {
    onProgress: (delta) => {
      bytes += delta.bytes ?? 0;
      items += delta.items ?? 0;
      if (tty && Date.now() - last > 200) {
        last = Date.now();
        draw();
      }
    },
    done: () => {
      if (tty) stream.write('\r\x1b[K');
    },
  };
}

/**
 * A running job's progress on stderr (phase, files, bytes of the total, rate, ETA), redrawn as the
 * job reports it, at most every 200 ms and only on a terminal; cleared when it ends.
 */
export function jobProgress(
  jobId: string,
  subscribe: (listener: (event: string, payload: unknown) => void) => () => void,
  stream: { isTTY?: boolean; write(text: string): unknown } = process.stderr,
): { done(): void } {
  if (stream.isTTY !== true) return { done: () => undefined };
  const started = Date.now();
  let last = 0;
  const stop = subscribe((event, payload) => {
    const p = payload as { jobId?: string; phase: string; bytesDone: number; bytesTotal: number | null; itemsDone: number; itemsTotal: number | null; rate: number; etaSeconds: number | null; stalledSeconds?: number | null };
    if (event !== 'jobs:progress' || p.jobId !== jobId || Date.now() - last < 200) return;
    last = Date.now();
    const state: ProgressState = { items: p.itemsDone, bytes: p.bytesDone, elapsedMs: Date.now() - started, rate: p.rate, etaSeconds: p.etaSeconds, stalledSeconds: p.stalledSeconds ?? null };
    if (p.itemsTotal) state.totalItems = p.itemsTotal;
    if (p.bytesTotal) state.totalBytes = p.bytesTotal;
    stream.write(`\r\x1b[K${p.phase}: ${formatProgress(state)}`);
  });
  return {
    done: () => {
      stop();
      stream.write('\r\x1b[K');
    },
  };
}

/**
 * What prune kept because data in it is damaged, and what to run next (printed on stderr): the
 * packs stay as they are, so nothing still readable in them is lost.
 */
export function pruneWarnings(report: { damagedPacks: readonly string[]; packsNotRepacked: number }): string[] {
  const out = report.damagedPacks.map(
    (id) => `warning: pack ${id.slice(0, 12)} was kept as it is: data snapshots need in it is damaged and cannot be repacked; the rest was pruned. Run \`jetvault check --read-data\` to see the snapshots and files it affects`,
  );
  if (report.packsNotRepacked > 0) {
    out.push(
      `warning: the repository's disk had no room for the packs prune rewrites: ${counted(report.packsNotRepacked, 'pack')} to repack ${verb(report.packsNotRepacked, 'was kept as it is', 'were kept as they are')}, and the packs no snapshot needs were deleted. Run prune again: the room freed may be enough now; if not, free some space there first`,
    );
  }
  return out;
}

/** Whether prune left work undone that a re-run or the operator must finish (exit code 1). */
export function pruneIncomplete(report: { damagedPacks: readonly string[]; packsNotRepacked: number }): boolean {
  return report.damagedPacks.length > 0 || report.packsNotRepacked > 0;
}

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function positiveInt(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  // Digits only: Number() reads "0x10" as 16, "1e3" as 1000 and "" as 0 — a retention policy kept
  // other snapshots than the operator wrote.
  if (typeof value !== 'string' || !/^[0-9]{1,9}$/.test(value)) throw new UsageError(`--${name} needs a whole number, like 7 (got "${typeof value === 'string' ? value : typeof value}")`);
  return Number(value);
}
