import { AppError } from '../../shared/errors';
import { DEFAULT_SETTINGS, SETTING_FIELDS, SettingsPatchSchema } from '../../shared/schemas/settings';
import type { Settings, SettingsPatch } from '../../shared/schemas/settings';
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import { issuesOf } from '../ipc/router';
import type { Logger } from '../log';

/**
 * Console settings, stored one key per row in the history store. A stored value that no longer
 * validates (hand-edited, or from another version) falls back to its default and is reported,
 * instead of breaking the console.
 */
export class SettingsService {
  readonly #store: HistoryStore;
  readonly #bus: EventBus;
  readonly #log: Logger;

  constructor(store: HistoryStore, bus: EventBus, log: Logger) {
    this.#store = store;
    this.#bus = bus;
    this.#log = log;
  }

  get(): Settings {
    const stored: Record<string, unknown> = {};
    for (const row of this.#store.sql.settingsAll.all()) {
      if (!Object.hasOwn(DEFAULT_SETTINGS, row.key)) continue; // a setting a newer/older version knew
      try {
        stored[row.key] = JSON.parse(row.value);
      } catch {
        this.#log.warn(`setting ${row.key} is not valid JSON; using its default`);
      }
    }
    const settings: Record<string, unknown> = { ...DEFAULT_SETTINGS };
    for (const [key, value] of Object.entries(stored)) {
      const checked = SETTING_FIELDS[key as keyof Settings].safeParse(value);
      if (checked.success) settings[key] = checked.data;
      else this.#log.warn(`setting ${key} holds an invalid value; using its default`);
    }
    return settings as Settings;
  }

  update(patch: SettingsPatch, actor: string): Settings {
    const checked = SettingsPatchSchema.safeParse(patch);
    if (!checked.success) throw new AppError('VALIDATION', 'Invalid settings', issuesOf(checked.error));
    const now = new Date().toISOString();
    this.#store.db.transaction(() => {
      for (const [key, value] of Object.entries(checked.data)) {
        if (value !== undefined) this.#store.sql.settingUpsert.run(key, JSON.stringify(value), now);
      }
      this.#store.audit(actor, 'settings.update', null, { keys: Object.keys(checked.data) });
    })();
    const settings = this.get();
    this.#bus.emit('settings:changed', settings);
    return settings;
  }

  reset(actor: string): Settings {
    this.#store.db.transaction(() => {
      this.#store.sql.settingsClear.run();
      this.#store.audit(actor, 'settings.reset', null);
    })();
    const settings = this.get();
    this.#bus.emit('settings:changed', settings);
    return settings;
  }
}
