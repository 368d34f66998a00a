import { create } from 'zustand';
import type { DeviceDetail, DeviceSummary } from '../../../shared/schemas/devices';
import { api } from '../api';

interface FleetState {
  devices: DeviceSummary[];
  loaded: boolean;
  /** Details of devices opened in this session, by name. */
  details: Record<string, DeviceDetail>;
  load: () => Promise<void>;
  loadDetail: (name: string) => Promise<DeviceDetail>;
  /** The inventory changed in main: refresh the list and any open details. */
  changed: (names: string[]) => void;
}

export const useFleetStore = create<FleetState>()((set, get) => ({
  devices: [],
  loaded: false,
  details: {},
  async load() {
    set({ devices: await api().devices.list(), loaded: true });
  },
  async loadDetail(name) {
    const detail = await api().devices.get({ name });
    set((state) => ({ details: { ...state.details, [name]: detail } }));
    return detail;
  },
  changed(names) {
    void get().load();
    for (const name of names) {
      if (get().details[name]) {
        get()
          .loadDetail(name)
          .catch(() => set((state) => ({ details: Object.fromEntries(Object.entries(state.details).filter(([n]) => n !== name)) })));
      }
    }
  },
}));
