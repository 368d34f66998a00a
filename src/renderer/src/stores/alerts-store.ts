import { create } from 'zustand';
import type { Alert } from '../../../shared/schemas/monitoring';
import { api } from '../api';

interface AlertsState {
  open: Alert[];
  /** Recent alerts whatever their state (loaded when the history is shown). */
  recent: Alert[];
  loaded: boolean;
  load: () => Promise<void>;
  loadRecent: () => Promise<void>;
  acknowledge: (id: number) => Promise<void>;
}

export const useAlertsStore = create<AlertsState>()((set, get) => ({
  open: [],
  recent: [],
  loaded: false,
  async load() {
    set({ open: await api().alerts.list({ status: 'open' }), loaded: true });
  },
  async loadRecent() {
    set({ recent: await api().alerts.list({ status: 'all' }) });
  },
  async acknowledge(id) {
    await api().alerts.acknowledge({ id });
    await get().load();
  },
}));
