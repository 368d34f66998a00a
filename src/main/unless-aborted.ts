/** Waits that a job's cancel must be able to end: for a device, a connection slot, the repository. */
import { AppError } from '../shared/errors';

/** `promise`, or a CANCELLED rejection as soon as `signal` fires (the promise itself goes on). */
export function unlessAborted(promise: Promise<unknown>, signal?: AbortSignal): Promise<void> {
  if (!signal) return promise.then(() => undefined);
  if (signal.aborted) return Promise.reject(new AppError('CANCELLED', 'Cancelled'));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new AppError('CANCELLED', 'Cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
