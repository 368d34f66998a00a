import { create } from 'zustand';
import type { RepositoryStatus, SnapshotInfo } from '../../../shared/schemas/catalog';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';

/** Which snapshots the table lists: one device's, one source of it; null is all. */
export interface CatalogFilter {
  device: string | null;
  source: string | null;
}

interface CatalogState {
  repository: RepositoryStatus | null;
  snapshots: SnapshotInfo[];
  error: string | null;
  filter: CatalogFilter;
  setFilter: (filter: CatalogFilter) => void;
  refresh: () => Promise<void>;
  init: (password: string, createFolder?: boolean) => Promise<void>;
  unlock: (password: string) => Promise<void>;
  lock: () => Promise<void>;
}

export const useCatalogStore = create<CatalogState>()((set, get) => ({
  repository: null,
  snapshots: [],
  error: null,
  filter: { device: null, source: null },
  setFilter: (filter) => set({ filter }),
  async refresh() {
    const repository = await api().repository.status();
    set({ repository });
    if (!repository.unlocked) {
      set({ snapshots: [] });
      return;
    }
    try {
      set({ snapshots: await api().snapshots.list(), error: null });
    } catch (caught) {
      set({ error: toAppError(caught).message });
    }
  },
  async init(password, createFolder) {
    set({ repository: await api().repository.init({ password, ...(createFolder ? { createFolder } : {}) }) });
    await get().refresh();
  },
  async unlock(password) {
    set({ repository: await api().repository.unlock({ password }) });
    await get().refresh();
  },
  async lock() {
    set({ repository: await api().repository.lock(), snapshots: [] });
  },
}));
