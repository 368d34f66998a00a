import { create } from 'zustand';
import type { Api } from '../../../shared/api';
import type { DeviceDetail, DeviceSummary } from '../../../shared/schemas/devices';
import { api } from '../api';
import { byName } from '../../../shared/natural';

type ProfileEdit = Omit<Parameters<Api['devices']['update']>[0], 'ifUpdatedAt'>;

interface FleetState {
  devices: DeviceSummary[];
  loaded: boolean;
  /** Details of devices opened in this session, by name. */
  details: Record<string, DeviceDetail>;
  load: () => Promise<void>;
  loadDetail: (name: string) => Promise<DeviceDetail>;
  /** The inventory changed in main: refresh the list and any open details. */
  changed: (names: string[]) => void;
  /**
   * Saves an edit of a device's whole profile, made on the detail held here: refused when the profile
   * was saved since (the CLI, another window) — the detail is then read again, so the page shows the
   * profile as it is and the edit can be made again on it, instead of undoing the other save.
   */
  updateProfile: (edit: ProfileEdit) => Promise<DeviceDetail>;
  /** A detail main answered with (a key pinned here): held at once, not only once the push's reload arrives. */
  received: (detail: DeviceDetail) => void;
}

export const useFleetStore = create<FleetState>()((set, get) => ({
  devices: [],
  loaded: false,
  details: {},
  async load() {
    // In the order lists show them (the Restore wizard's devices, the Add source pickers): rvm-2 before rvm-10.
    set({ devices: (await api().devices.list()).sort((a, b) => byName(a.name, b.name)), loaded: true });
  },
  async loadDetail(name) {
    const detail = await api().devices.get({ name });
    set((state) => ({ details: { ...state.details, [name]: detail } }));
    return detail;
  },
  async updateProfile(edit) {
    const held = get().details[edit.name];
    try {
      const updated = await api().devices.update({ ...edit, ...(held ? { ifUpdatedAt: held.updatedAt } : {}) });
      set((state) => ({ details: { ...state.details, [updated.profile.name]: updated } }));
      return updated;
    } catch (caught) {
      if ((caught as { code?: string }).code === 'CONFLICT') await get().loadDetail(edit.name).catch(() => undefined);
      throw caught;
    }
  },
  received(detail) {
    set((state) => ({ details: { ...state.details, [detail.profile.name]: detail } }));
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
