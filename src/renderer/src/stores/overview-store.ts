import { create } from 'zustand';
import type { Overview } from '../../../shared/schemas/fleet';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';

interface OverviewState {
  overview: Overview | null;
  error: string | null;
  /** Fetches the whole overview from main (one query there); concurrent calls share one request. */
  load: () => Promise<void>;
}

let inflight: Promise<void> | null = null;
/** A change arrived while a request was in flight: its answer may predate the change, so ask again. */
let again = false;

export const useOverviewStore = create<OverviewState>()((set) => ({
  overview: null,
  error: null,
  load() {
    if (inflight) {
      again = true;
      return inflight;
    }
    inflight = api()
      .overview.get()
      .then((overview) => set({ overview, error: null }))
      .catch((caught: unknown) => set({ error: toAppError(caught).message }))
      .finally(() => {
        inflight = null;
        if (again) {
          again = false;
          void useOverviewStore.getState().load();
        }
      });
    return inflight;
  },
}));
