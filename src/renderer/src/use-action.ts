/**
 * What a button that calls the main process needs: a busy flag (the button is disabled while the
 * call runs) and the error to show. `run` clears the last error, marks busy, shows the message of
 * whatever the work throws (after `onError`, for what else the failure changes), and clears busy
 * however it ended. A refused input's reasons are part of the message, so none stays unseen where
 * a form has no field for it: a form's `onError` returns its `Refusal` (the fields it marked, the
 * reasons left), and the message then points at the marked fields instead of repeating them.
 */
import { useCallback, useState } from 'react';
import { toAppError } from '../../shared/errors';
import type { AppError } from '../../shared/errors';
import { refusalText } from '../../shared/refusal';
import type { Refusal } from '../../shared/refusal';

type OnError = (error: AppError) => Refusal | undefined | void;
type Work = (work: () => Promise<unknown>, onError?: OnError) => Promise<void>;

export interface Action {
  busy: boolean;
  error: string | null;
  setError: (message: string | null) => void;
  run: Work;
  /** As `run`, for a quick call beside the one the busy flag labels: shares the error, not the flag. */
  attempt: Work;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const settle = useCallback(async (marksBusy: boolean, work: () => Promise<unknown>, onError?: OnError) => {
    if (marksBusy) setBusy(true);
    setError(null);
    try {
      await work();
    } catch (caught) {
      const appError = toAppError(caught);
      const refusal = onError?.(appError) ?? { fields: 0, rest: appError.issues ?? [] };
      setError(refusalText(appError.message, refusal));
    } finally {
      if (marksBusy) setBusy(false);
    }
  }, []);
  const run = useCallback<Work>((work, onError) => settle(true, work, onError), [settle]);
  const attempt = useCallback<Work>((work, onError) => settle(false, work, onError), [settle]);
  return { busy, error, setError, run, attempt };
}
