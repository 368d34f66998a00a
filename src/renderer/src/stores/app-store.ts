import { create } from 'zustand';
import type { AppInfo } from '../../../shared/contract';
import { api } from '../api';

export const PAGES = [
  { id: 'fleet', label: 'Fleet' },
  { id: 'catalog', label: 'Catalog' },
  { id: 'restore', label: 'Restore' },
  { id: 'dashboards', label: 'Dashboards' },
  { id: 'alerts', label: 'Alerts' },
  { id: 'settings', label: 'Settings' },
] as const;
export type PageId = (typeof PAGES)[number]['id'];

export function pageFromHash(hash: string): PageId {
  const id = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return PAGES.find((p) => p.id === id)?.id ?? 'fleet';
}

interface AppState {
  info: AppInfo | null;
  page: PageId;
  loadInfo: () => Promise<void>;
  navigated: (page: PageId) => void;
}

export const useAppStore = create<AppState>()((set) => ({
  info: null,
  page: pageFromHash(window.location.hash),
  async loadInfo() {
    set({ info: await api().app.info() });
  },
  navigated: (page) => set({ page }),
}));
