import { create } from 'zustand';
import type { Settings, SettingsPatch } from '../../../shared/schemas/settings';
import { api } from '../api';

interface SettingsState {
  settings: Settings | null;
  loadError: string | null;
  load: () => Promise<void>;
  /** Saves a patch; rejects with the AppError (VALIDATION issues included) so forms can show it. */
  save: (patch: SettingsPatch) => Promise<Settings>;
  reset: () => Promise<Settings>;
  received: (settings: Settings) => void;
}

export const useSettingsStore = create<SettingsState>()((set) => ({
  settings: null,
  loadError: null,
  async load() {
    try {
      set({ settings: await api().settings.get(), loadError: null });
    } catch (error) {
      set({ loadError: (error as Error).message });
    }
  },
  async save(patch) {
    const settings = await api().settings.update(patch);
    set({ settings });
    return settings;
  },
  async reset() {
    const settings = await api().settings.reset();
    set({ settings });
    return settings;
  },
  received: (settings) => set({ settings }),
}));
