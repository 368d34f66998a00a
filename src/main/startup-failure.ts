/**
 * What the console says when it cannot start: the history store cannot be opened (not a database,
 * written by a newer Jetvault, a full disk) or the data folder cannot be used. The app shows it in a
 * dialog and quits — without it the main process stayed up with no window, holding the single-instance
 * lock, so launching again did nothing at all. The test host prints the same words.
 */
import { toAppError } from '../shared/errors';

export interface StartupFailure {
  title: string;
  detail: string;
}

export function startupFailure(error: unknown, dataDir: string): StartupFailure {
  const { message } = toAppError(error);
  return {
    title: 'Jetvault could not start',
    detail: `${message}\n\nData folder: ${dataDir}\nThe repositories and their snapshots are not affected.`,
  };
}
