/**
 * Repository failures a caller must tell apart (the CLI maps them to exit codes, the UI to advice).
 * They extend AppError so they cross the IPC boundary with a stable code.
 */
import { AppError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';

/**
 * `unavailable`: the store could not be reached or the link dropped (worth retrying, see
 * retry-backend.ts); `denied`: the store refused the operation (permissions), never retried;
 * `invalid`: a location that cannot name a repository (a malformed s3:/sftp: one, a file).
 */
export type RepositoryFailure = 'missing' | 'invalid' | 'exists' | 'locked' | 'wrong-password' | 'corrupt' | 'not-found' | 'cancelled' | 'unavailable' | 'denied';

const CODE: Record<RepositoryFailure, ErrorCode> = {
  missing: 'NOT_FOUND',
  invalid: 'VALIDATION',
  exists: 'CONFLICT',
  locked: 'CONFLICT',
  'wrong-password': 'VALIDATION',
  corrupt: 'INTERNAL',
  'not-found': 'NOT_FOUND',
  cancelled: 'CANCELLED',
  unavailable: 'UNAVAILABLE',
  denied: 'AUTH_FAILED',
};

export class RepositoryError extends AppError {
  readonly failure: RepositoryFailure;
  constructor(failure: RepositoryFailure, message: string) {
    super(CODE[failure], message);
    this.failure = failure;
  }
}

/** The repository's data is damaged or missing (as opposed to a store outage, or a target refusing a write). */
export function isDamage(error: unknown): error is RepositoryError {
  return error instanceof RepositoryError && (error.failure === 'corrupt' || error.failure === 'not-found');
}

/** The store did not answer, or refused: that says nothing about whether the data is damaged. */
export function isStoreUnreachable(error: unknown): error is RepositoryError {
  return error instanceof RepositoryError && (error.failure === 'unavailable' || error.failure === 'denied');
}

/** Any thrown value as an Error, so it can be stored and rethrown. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RepositoryError('cancelled', 'operation cancelled');
}

/**
 * Whether a signal has fired, read through objects of one shape. Node gives every AbortSignal a
 * hidden class of its own (`new AbortController().signal` twice: two maps), so optimised code that
 * reads a run's signal in a loop meets a map it has not seen in the next run, is thrown away and
 * compiled again — the archiver's loop ~200 ms of compiling per run (decision 005, twenty-ninth
 * pass). Loops that run per file or per piece check this instead; `dispose` removes its listener.
 */
export class AbortFlag {
  aborted = false;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => {
    this.aborted = true;
  };

  constructor(signal: AbortSignal | undefined) {
    this.#signal = signal;
    if (signal?.aborted) this.aborted = true;
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  throwIfAborted(): void {
    if (this.aborted) throw new RepositoryError('cancelled', 'operation cancelled');
  }

  dispose(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}

/**
 * Work done, reported as it happens so a job can show bytes/items and ETA. `reused`: the bytes are
 * an unchanged file's, taken from the parent snapshot without being read.
 */
export type ProgressFn = (delta: { bytes?: number; items?: number; reused?: boolean }) => void;
