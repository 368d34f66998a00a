import { create } from 'zustand';
import type { AppInfo } from '../../../shared/contract';
import { api } from '../api';

export const PAGES = [
  { id: 'fleet', label: 'Fleet' },
  { id: 'catalog', label: 'Catalog' },
  { id: 'restore', label: 'Restore' },
  { id: 'dashboards', label: 'Dashboards' },
  { id: 'alerts', label: 'Alerts' },
  { id: 'audit', label: 'Audit log' },
  { id: 'settings', label: 'Settings' },
] as const;
export type PageId = (typeof PAGES)[number]['id'];

export function pageFromHash(hash: string): PageId {
  const id = hash.replace(/^#\/?/, '').split(/[/?]/)[0];
  return PAGES.find((p) => p.id === id)?.id ?? 'fleet';
}

/**
 * The part of the route after the page, e.g. the device name in `#/fleet/rvm-017`. A part that is no
 * valid escape (`#/fleet/rvm%2`, a link cut short) is taken as written: decodeURIComponent threw, and
 * at start-up that left the window blank, the console never starting.
 */
export function routeParam(hash: string): string | null {
  const rest = hash.replace(/^#\/?/, '').split('?')[0]!.split('/')[1];
  if (!rest) return null;
  try {
    return decodeURIComponent(rest);
  } catch {
    return rest;
  }
}

/** The route's query, e.g. `device=rvm-017` in `#/catalog?device=rvm-017`. */
export function routeQuery(hash: string): URLSearchParams {
  const at = hash.indexOf('?');
  return new URLSearchParams(at < 0 ? '' : hash.slice(at + 1));
}

interface AppState {
  info: AppInfo | null;
  page: PageId;
  param: string | null;
  loadInfo: () => Promise<void>;
  navigated: (page: PageId, param: string | null) => void;
}

export const useAppStore = create<AppState>()((set) => ({
  info: null,
  page: pageFromHash(window.location.hash),
  param: routeParam(window.location.hash),
  async loadInfo() {
    set({ info: await api().app.info() });
  },
  navigated: (page, param) => set({ page, param }),
}));
