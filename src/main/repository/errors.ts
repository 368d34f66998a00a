/**
 * Repository failures a caller must tell apart (the CLI maps them to exit codes, the UI to advice).
 * They extend AppError so they cross the IPC boundary with a stable code.
 */
import { AppError } from '../../shared/errors';
import type { ErrorCode } from '../../shared/errors';

/**
 * `unavailable`: the store could not be reached or the link dropped (worth retrying, see
 * retry-backend.ts); `denied`: the store refused the operation (permissions), never retried.
 */
export type RepositoryFailure = 'missing' | 'exists' | 'locked' | 'wrong-password' | 'corrupt' | 'not-found' | 'cancelled' | 'unavailable' | 'denied';

const CODE: Record<RepositoryFailure, ErrorCode> = {
  missing: 'NOT_FOUND',
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

/** Any thrown value as an Error, so it can be stored and rethrown. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RepositoryError('cancelled', 'operation cancelled');
}

/**
 * Work done, reported as it happens so a job can show bytes/items and ETA. `reused`: the bytes are
 * an unchanged file's, taken from the parent snapshot without being read.
 */
export type ProgressFn = (delta: { bytes?: number; items?: number; reused?: boolean }) => void;
