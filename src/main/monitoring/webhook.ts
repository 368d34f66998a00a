/**
 * The alert webhook as an outbox in the history store: an alert event is written first, then
 * POSTed as JSON; a failed delivery (offline laptop, receiver down, non-2xx) is retried with
 * exponential backoff, across restarts of the console, until it is delivered. Events go out in the
 * order they were written. A webhook URL can carry a token, so it never appears in logs, and rows
 * hold the secret store's reference to it (`target` reads it as each event is sent — decision 006).
 */
import type { HistoryStore } from '../history/history-store';
import type { Logger } from '../log';

export const FIRST_RETRY_MS = 15_000;
export const MAX_RETRY_MS = 3_600_000;
const TIMEOUT_MS = 10_000;
/**
 * An event being posted is held this long by the process posting it (the app, `run-scheduler` and
 * one-shot CLI commands share the outbox): longer than a POST may take. A process that dies
 * mid-POST leaves it to be sent again after this, so it is delivered at least once, never twice.
 */
const CLAIM_MS = TIMEOUT_MS + 5_000;
const BATCH = 20;
/**
 * A delivered event is kept this long (to look into with sqlite3 when a receiver says it missed
 * one), then removed: nothing else reads delivered rows, and a fleet raising and resolving alerts
 * all day had grown the table without end.
 */
export const KEEP_DELIVERED_MS = 7 * 24 * 3_600_000;

export function retryDelay(attempts: number): number {
  return Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, attempts - 1));
}

/** Where a URL points, without path or query (which may hold a token). */
export function redactUrl(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid URL)';
  }
}

export class WebhookOutbox {
  readonly #store: HistoryStore;
  readonly #log: Logger;
  readonly #clock: () => Date;
  readonly #target: (stored: string) => string;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;

  constructor(store: HistoryStore, log: Logger, clock: () => Date = () => new Date(), target: (stored: string) => string = (stored) => stored) {
    this.#store = store;
    this.#log = log;
    this.#clock = clock;
    this.#target = target;
  }

  enqueue(url: string, payload: unknown): void {
    const now = this.#clock().toISOString();
    this.#store.sql.outboxInsert.run(url, JSON.stringify(payload), now, now);
    this.kick();
  }

  /** Deliveries waiting, when the next one is due, and why the last try of the first failed (null: not tried yet). */
  pending(): { pending: number; nextAttemptAt: string | null; lastError: string | null } {
    const row = this.#store.sql.outboxPending.get()!;
    return { pending: row.pending, nextAttemptAt: row.next, lastError: row.last_error };
  }

  /** Delivers what is due now; resolves with how many were delivered. One run at a time. */
  deliverDue(): Promise<number> {
    this.#running ??= this.#deliver().finally(() => (this.#running = null));
    return this.#running;
  }

  async #deliver(): Promise<number> {
    let delivered = 0;
    this.#store.sql.outboxPurgeDelivered.run(new Date(this.#clock().getTime() - KEEP_DELIVERED_MS).toISOString());
    for (;;) {
      const head = this.#store.sql.outboxHead.all(BATCH);
      if (head.length === 0) return delivered;
      for (const row of head) {
        // Keep the order: nothing overtakes an event that is waiting for its retry.
        if (row.next_attempt_at > this.#clock().toISOString()) return delivered;
        const claimedUntil = new Date(this.#clock().getTime() + CLAIM_MS).toISOString();
        if (this.#store.sql.outboxClaim.run(claimedUntil, row.id, row.next_attempt_at).changes === 0) return delivered; // another process posts it
        let url = '';
        let error: string | null;
        try {
          url = this.#target(row.url);
          error = await this.#post(url, row.payload);
        } catch (unreadable) {
          error = (unreadable as Error).message;
        }
        const attempts = row.attempts + 1;
        if (error === null) {
          this.#store.sql.outboxDelivered.run(this.#clock().toISOString(), attempts, row.id);
          delivered++;
          continue;
        }
        const next = new Date(this.#clock().getTime() + retryDelay(attempts)).toISOString();
        this.#store.sql.outboxRetry.run(attempts, next, error, row.id);
        this.#log.warn(`webhook to ${url ? redactUrl(url) : '(no URL)'} failed (attempt ${attempts}, next at ${next}): ${error}`);
        return delivered;
      }
    }
  }

  /**
   * Why a delivery failed, in words an operator can act on (kept as the event's last error, shown by
   * the Alerts page and `jetvault alerts`): "unexpected redirect" and "The operation was aborted due
   * to timeout" named neither where the receiver pointed nor how long it was given.
   */
  async #post(url: string, payload: string): Promise<string | null> {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Jetvault' },
        body: payload,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        // Not followed (a redirected POST may arrive as a GET without its body), but said where to.
        redirect: 'manual',
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return null;
      if (response.status >= 300 && response.status < 400) {
        const location = response.headers.get('location');
        const target = location ? redactUrl(new URL(location, url).href) : null;
        return `HTTP ${response.status}: the receiver redirects${target ? ` to ${target}` : ''}; redirects are not followed — set the webhook to the address it moved to`;
      }
      return `HTTP ${response.status}`;
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      // fetch never connects to the ports browsers block (9, 6000, 10080 …) and says only "bad port".
      if (cause?.message === 'bad port') return `port ${new URL(url).port} is one that HTTP clients refuse to use (a blocked port): give the receiver another port`;
      // Never a URL itself (a token in its query, a password before an @): fetch quotes it in some
      // errors ("… a URL that includes credentials: https://user:password@…"), kept and logged.
      return (cause?.code ?? cause?.message ?? (error as Error).message).replace(/https?:\/\/\S+/g, (quoted) => redactUrl(quoted));
    }
  }

  /** Tries soon (after an enqueue). */
  kick(): void {
    setImmediate(() => void this.deliverDue().catch((error: unknown) => this.#log.error(`webhook delivery: ${(error as Error).message}`)));
  }

  /** Retries on a timer while the console runs. */
  start(intervalMs = 5_000): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.kick(), intervalMs);
    this.#timer.unref();
    this.kick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
