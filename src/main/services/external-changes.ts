/**
 * Edits another process makes to the history store reach an open console: a technician's
 * `jetvault device import`, `device remove` or `settings set` in a terminal, or run-scheduler
 * reading a device's facts. The console pushed only its own edits, so its Fleet page and Settings
 * showed the old inventory until the window was reloaded.
 *
 * SQLite's `PRAGMA data_version` changes only when another connection commits, so a tick that finds
 * it unchanged costs one pragma. When it moved, each device's stamp (profile, pinned key and facts
 * times) and the settings' times are compared with the last ones seen, and what differs is pushed
 * as the console's own edits are (`devices:changed`, `settings:changed`).
 */
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { SettingsService } from './settings-service';

export const EXTERNAL_CHANGES_MS = 2_000;

export class ExternalChanges {
  readonly #store: HistoryStore;
  readonly #bus: EventBus;
  readonly #settings: SettingsService;
  #version = -1;
  #devices = new Map<string, string>();
  #settingsStamp = '';
  #timer: NodeJS.Timeout | null = null;

  constructor(store: HistoryStore, bus: EventBus, settings: SettingsService) {
    this.#store = store;
    this.#bus = bus;
    this.#settings = settings;
  }

  start(intervalMs = EXTERNAL_CHANGES_MS): void {
    if (this.#timer) return;
    this.#seen();
    this.#timer = setInterval(() => this.tick(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Pushes what another process changed since the last tick; nothing when no other connection committed. */
  tick(): void {
    const version = this.#store.db.pragma('data_version', { simple: true }) as number;
    if (version === this.#version) return;
    const before = { devices: this.#devices, settings: this.#settingsStamp };
    this.#seen(version);
    const names = new Set<string>();
    for (const [name, stamp] of this.#devices) if (before.devices.get(name) !== stamp) names.add(name);
    for (const name of before.devices.keys()) if (!this.#devices.has(name)) names.add(name);
    if (names.size > 0) this.#bus.emit('devices:changed', { names: [...names] });
    if (this.#settingsStamp !== before.settings) this.#bus.emit('settings:changed', this.#settings.get());
  }

  #seen(version = this.#store.db.pragma('data_version', { simple: true }) as number): void {
    this.#version = version;
    this.#devices = new Map(this.#store.sql.deviceStamps.all().map((r) => [r.name, r.stamp]));
    this.#settingsStamp = this.#store.sql.settingsAll
      .all()
      .map((r) => `${r.key}\u0000${r.updated_at}\u0000${r.value}`)
      .sort()
      .join('\u0001');
  }
}
