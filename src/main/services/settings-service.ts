import { AppError } from '../../shared/errors';
import { DEFAULT_SETTINGS, SETTING_FIELDS, SettingsPatchSchema } from '../../shared/schemas/settings';
import type { Settings, SettingsPatch } from '../../shared/schemas/settings';
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import { issuesOf } from '../ipc/router';
import type { Logger } from '../log';
import type { SecretStore } from '../secrets/secret-store';
import { counted } from '../../shared/plural';

/** Where the webhook URL is kept: it can carry a token (a chat service's hook URL is its own credential). */
export const WEBHOOK_URL_REF = 'settings:webhookUrl';

/**
 * Console settings, stored one key per row in the history store. A stored value that no longer
 * validates (hand-edited, or from another version) falls back to its default and is reported,
 * instead of breaking the console. The webhook URL is the exception: it can carry a token, so it
 * lives in the secret store (decision 006) and its row holds ''. A URL this process cannot read (the
 * app's keyring, or another passphrase) reads as '' and is kept as it is: a save that leaves the URL
 * as shown does not touch it.
 */
export class SettingsService {
  readonly #store: HistoryStore;
  readonly #bus: EventBus;
  readonly #log: Logger;
  readonly #secrets: SecretStore | undefined;
  /** Why the webhook URL could not be read, as last logged. */
  #unreadableWebhook: string | null = null;

  constructor(store: HistoryStore, bus: EventBus, log: Logger, secrets?: SecretStore) {
    this.#store = store;
    this.#bus = bus;
    this.#log = log;
    this.#secrets = secrets;
  }

  /**
   * A webhook URL stored in plain text by an earlier version goes into the secret store, and out of
   * the webhook outbox's rows, once a cipher is there to hold it. Without one it stays (and works) as
   * it was; a new URL is refused until there is one.
   */
  protectWebhookUrl(): void {
    const secrets = this.#secrets;
    const row = this.#store.sql.settingsAll.all().find((r) => r.key === 'webhookUrl');
    if (!secrets?.available || !row) return;
    let plain: unknown;
    try {
      plain = JSON.parse(row.value);
    } catch {
      return;
    }
    if (typeof plain !== 'string' || plain === '') return;
    const { db, sql } = this.#store;
    // Zeroed where it was (secure_delete) and out of the WAL's older page images (a truncating checkpoint).
    const secureDelete = db.pragma('secure_delete', { simple: true }) as number;
    db.pragma('secure_delete = ON');
    try {
      db.transaction(() => {
        secrets.set(WEBHOOK_URL_REF, plain);
        sql.settingUpsert.run('webhookUrl', JSON.stringify(''), row.updated_at);
        sql.outboxProtectUrl.run(WEBHOOK_URL_REF, plain);
      })();
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.pragma(`secure_delete = ${secureDelete ? 'ON' : 'OFF'}`);
    }
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
    const webhookUrl = this.#webhookUrl();
    if (webhookUrl !== null) settings.webhookUrl = webhookUrl;
    return settings as Settings;
  }

  /** The URL in the secret store; '' when this process cannot read it; null when none is stored there. */
  #webhookUrl(): string | null {
    try {
      return this.#secretWebhookUrl();
    } catch (error) {
      // Said once: settings are read on every connection and every minute's alert check.
      const why = (error as Error).message;
      if (why !== this.#unreadableWebhook) this.#log.warn(`the webhook URL cannot be read here: ${why}`);
      this.#unreadableWebhook = why;
      return '';
    }
  }

  #secretWebhookUrl(): string | null {
    return this.#secrets?.has(WEBHOOK_URL_REF) ? this.#secrets.get(WEBHOOK_URL_REF, 'The webhook URL') : null;
  }

  /** Whether a webhook is set, whether or not this process can read its URL. */
  webhookConfigured(): boolean {
    return this.#secrets?.has(WEBHOOK_URL_REF) === true || this.get().webhookUrl !== '';
  }

  /**
   * Where a queued webhook event goes: `stored` is the outbox row's URL — the secret store's
   * reference for events queued since the URL moved there (the URL set when it is sent), a plain
   * URL for older ones. Throws, saying why, when this process cannot read it or none is set.
   */
  webhookTarget(stored: string): string {
    if (stored !== WEBHOOK_URL_REF) return stored;
    const url = this.#secretWebhookUrl() ?? this.get().webhookUrl;
    if (!url) throw new AppError('VALIDATION', 'no webhook URL is set (the event waits until one is)');
    return url;
  }

  update(patch: SettingsPatch, actor: string): Settings {
    const checked = SettingsPatchSchema.safeParse(patch);
    if (!checked.success) throw new AppError('VALIDATION', 'Invalid settings', issuesOf(checked.error));
    const now = new Date().toISOString();
    const { webhookUrl, ...rest } = checked.data;
    const before = this.get();
    const hookChanged = webhookUrl !== undefined && webhookUrl !== before.webhookUrl;
    // For the audit log: each changed setting before and after (the webhook URL, which may carry a
    // token, only as set or turned off). It listed every key the form sent, changed or not.
    const changes: Record<string, unknown> = {};
    this.#store.db.transaction(() => {
      if (hookChanged) {
        this.#setWebhookUrl(webhookUrl, now);
        changes.webhookUrl = webhookUrl === '' ? 'turned off' : 'set';
      }
      for (const [key, value] of Object.entries(rest)) {
        if (value === undefined) continue;
        this.#store.sql.settingUpsert.run(key, JSON.stringify(value), now);
        const was = before[key as keyof typeof rest];
        if (JSON.stringify(was) !== JSON.stringify(value)) changes[key] = { from: was ?? null, to: value };
      }
      this.#store.audit(actor, 'settings.update', null, Object.keys(changes).length > 0 ? changes : null);
    })();
    const settings = this.get();
    this.#bus.emit('settings:changed', settings);
    return settings;
  }

  /**
   * Into the secret store, never the settings row; '' turns the webhook off and forgets the URL. What
   * waits in the outbox follows: to the new URL at once, counted afresh (kept for an address that was
   * mistyped or retired, it held the head of the queue, and every alert behind it, for good), or
   * dropped when the webhook is turned off. Any process's change counts: the outbox is shared.
   */
  #setWebhookUrl(url: string, now: string): void {
    if (url !== '') {
      if (!this.#secrets?.available) {
        throw new AppError(
          'UNAVAILABLE',
          'The webhook URL can carry a token, so it is stored only encrypted: set JETVAULT_SECRETS_PASSPHRASE (8+ characters) to store it here (the desktop app uses the system keyring where there is one)',
        );
      }
      this.#secrets.set(WEBHOOK_URL_REF, url);
      this.#store.sql.outboxReschedule.run(WEBHOOK_URL_REF, now);
    } else {
      this.#secrets?.delete(WEBHOOK_URL_REF);
      const dropped = this.#store.sql.outboxDropUndelivered.run().changes;
      if (dropped > 0) this.#log.info(`webhook turned off: ${counted(dropped, 'undelivered event')} dropped`);
    }
    this.#store.sql.settingUpsert.run('webhookUrl', JSON.stringify(''), now);
  }

  reset(actor: string): Settings {
    this.#store.db.transaction(() => {
      this.#store.sql.settingsClear.run();
      this.#secrets?.delete(WEBHOOK_URL_REF);
      this.#store.sql.outboxDropUndelivered.run();
      this.#store.audit(actor, 'settings.reset', null);
    })();
    const settings = this.get();
    this.#bus.emit('settings:changed', settings);
    return settings;
  }
}
