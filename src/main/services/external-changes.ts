/**
 * Edits another process makes to the history store reach an open console: a technician's
 * `jetvault device import`, `device remove` or `settings set` in a terminal, run-scheduler reading a
 * device's facts, and the end of a job another process ran (`jetvault backup --device` in a
 * terminal, run-scheduler's backups). The console pushed only its own, so its Fleet page, Settings,
 * job list and Catalog showed the old state until the window was reloaded.
 *
 * SQLite's `PRAGMA data_version` changes only when another connection commits, so a tick that finds
 * it unchanged costs one pragma. When it moved, each device's stamp (profile, pinned key and facts
 * times) and the settings' times are compared with the last ones seen, and what differs is pushed
 * as the console's own edits are (`devices:changed`, `settings:changed`); a job another process was
 * running at the last look and no longer is, as its own jobs' ends are (`jobs:finished`).
 */
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { JobManager } from '../jobs/job-manager';
import type { Logger } from '../log';
import type { SettingsService } from './settings-service';

export const EXTERNAL_CHANGES_MS = 2_000;

export class ExternalChanges {
  readonly #store: HistoryStore;
  readonly #bus: EventBus;
  readonly #settings: SettingsService;
  readonly #jobs: Pick<JobManager, 'runsHere' | 'get'>;
  readonly #log: Logger;
  /** Why the last look failed (said once, until a look succeeds again). */
  #failure: string | null = null;
  #version = -1;
  /** Jobs other processes were running at the last look, and the newest job row then. */
  #elsewhere = new Set<string>();
  #lastJob = 0;
  #devices = new Map<string, string>();
  #settingsStamp = '';
  #timer: NodeJS.Timeout | null = null;

  constructor(store: HistoryStore, bus: EventBus, settings: SettingsService, jobs: Pick<JobManager, 'runsHere' | 'get'>, log: Logger) {
    this.#log = log;
    this.#store = store;
    this.#bus = bus;
    this.#settings = settings;
    this.#jobs = jobs;
  }

  start(intervalMs = EXTERNAL_CHANGES_MS): void {
    if (this.#timer) return;
    this.#seen();
    // A look that fails (the store busy, a row no push can carry) is said once and tried again next tick.
    this.#timer = setInterval(() => {
      try {
        this.tick();
        this.#failure = null;
      } catch (error) {
        const message = (error as Error).message;
        if (this.#failure !== message) this.#log.warn(`could not look for other processes' changes: ${message}`);
        this.#failure = message;
      }
    }, intervalMs);
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
    const before = { devices: this.#devices, settings: this.#settingsStamp, elsewhere: this.#elsewhere, lastJob: this.#lastJob };
    this.#seen(version);
    // Ended since the last look: one another process was running then, or one it started and ended in between.
    const ended = [...before.elsewhere].filter((id) => !this.#elsewhere.has(id));
    for (const { id } of this.#store.sql.jobsEndedSince.all(before.lastJob, process.pid)) if (!ended.includes(id)) ended.push(id);
    for (const id of ended) {
      const job = this.#jobs.get(id);
      if (job && job.status !== 'running') this.#bus.emit('jobs:finished', { job });
    }
    const names = new Set<string>();
    for (const [name, stamp] of this.#devices) if (before.devices.get(name) !== stamp) names.add(name);
    for (const name of before.devices.keys()) if (!this.#devices.has(name)) names.add(name);
    if (names.size > 0) this.#bus.emit('devices:changed', { names: [...names] });
    if (this.#settingsStamp !== before.settings) this.#bus.emit('settings:changed', this.#settings.get());
  }

  #seen(version = this.#store.db.pragma('data_version', { simple: true }) as number): void {
    this.#version = version;
    this.#elsewhere = new Set(this.#store.sql.jobsRunning.all().flatMap((r) => (this.#jobs.runsHere(r.id) ? [] : [r.id])));
    this.#lastJob = this.#store.sql.jobsLastRowid.get()?.last ?? 0;
    this.#devices = new Map(this.#store.sql.deviceStamps.all().map((r) => [r.name, r.stamp]));
    this.#settingsStamp = this.#store.sql.settingsAll
      .all()
      .map((r) => `${r.key}\u0000${r.updated_at}\u0000${r.value}`)
      .sort()
      .join('\u0001');
  }
}
