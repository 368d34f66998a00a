/**
 * Retries a remote backend's operations after transient failures — the store unreachable, the link
 * dropped or reset, a timeout, a 5xx or throttling answer — with exponential backoff and jitter
 * (0.5 s, 1 s, 2 s, 4 s, 8 s: about 15 s in all, enough for a restarted server or a brief outage).
 * What is not transient fails at once: a missing object, a refused permission, a wrong host key or
 * credentials, damaged data. Every operation of the format is safe to repeat: puts write whole
 * objects under content names (or replace small ones), deletes of absent objects succeed.
 *
 * A staged object cannot be re-sent from the backend's side once its pieces are gone, so the wrapper
 * keeps the pieces of each staged object until it is committed (a pack, 16 MiB by default): if the
 * staged upload fails transiently, the pack is put whole, with retries. The SFTP backend reconnects
 * on the next operation after a dropped connection, so a retry is also a reconnect.
 */
import { AppError } from '../../../shared/errors';
import { RepositoryError } from '../errors';
import type { Backend, ObjectInfo, StagedObject } from './backend';

export interface RetryOptions {
  /** Attempts in all, the first included (default 6). */
  attempts?: number;
  /** The first wait; each next one doubles (default 500 ms). */
  baseDelayMs?: number;
  /** Called before each wait, for logs and tests. */
  onRetry?: (what: string, attempt: number, error: Error) => void;
}

/** Whether an error is worth another attempt. */
export function isTransient(error: unknown): boolean {
  if (error instanceof RepositoryError) return error.failure === 'unavailable';
  if (error instanceof AppError) return error.code === 'UNAVAILABLE' || error.code === 'TIMEOUT';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(code);
}

export class RetryBackend implements Backend {
  readonly location: string;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #onRetry: RetryOptions['onRetry'];
  /** Retries made so far (for tests and diagnostics). */
  retries = 0;

  constructor(
    readonly inner: Backend,
    options: RetryOptions = {},
  ) {
    this.location = inner.location;
    this.#attempts = Math.max(1, options.attempts ?? 6);
    this.#baseDelayMs = options.baseDelayMs ?? 500;
    this.#onRetry = options.onRetry;
    if (inner.stage) this.stage = () => this.#stage(inner.stage!());
    if (inner.removeStaged) this.removeStaged = () => this.#retry('cleanup', () => inner.removeStaged!());
    const create = (inner as { putIfAbsent?: (name: string, data: Buffer) => Promise<boolean> }).putIfAbsent?.bind(inner);
    if (create) this.putIfAbsent = (name, data) => this.#putIfAbsent(create, name, data);

    // Uploads at once as the store likes them (S3: 4), not the local default.
    if (inner.uploadConcurrency !== undefined) this.uploadConcurrency = inner.uploadConcurrency;
  }

  readonly uploadConcurrency?: number;

  /** Create-only put (leases), when the store has one. */
  putIfAbsent?: (name: string, data: Buffer) => Promise<boolean>;

  /**
   * A retried create-only put can find the name taken by its own earlier attempt (stored, answer
   * lost): then the object holds exactly our bytes (lock objects are sealed with a random salt), and
   * that counts as created.
   */
  async #putIfAbsent(create: (name: string, data: Buffer) => Promise<boolean>, name: string, data: Buffer): Promise<boolean> {
    let retried = false;
    const created = await this.#retry(`create-only upload of ${name}`, async () => {
      try {
        return await create(name, data);
      } catch (error) {
        if (isTransient(error)) retried = true;
        throw error;
      }
    });
    if (created || !retried) return created;
    const existing = await this.get(name).catch(() => null);
    return existing !== null && existing.equals(data);
  }

  async #retry<T>(what: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work();
      } catch (error) {
        if (attempt >= this.#attempts || !isTransient(error)) throw error;
        this.retries++;
        this.#onRetry?.(what, attempt, error as Error);
        const delay = this.#baseDelayMs * 2 ** (attempt - 1);
        await new Promise((resolve) => setTimeout(resolve, delay * (0.75 + Math.random() * 0.5)));
      }
    }
  }

  put(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    return this.#retry(`upload of ${name}`, () => this.inner.put(name, data));
  }

  get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    return this.#retry(`download of ${name}`, () => this.inner.get(name, range));
  }

  stat(name: string): Promise<number | null> {
    return this.#retry(`stat of ${name}`, () => this.inner.stat(name));
  }

  list(prefix: string): Promise<ObjectInfo[]> {
    return this.#retry(`listing of ${prefix}`, () => this.inner.list(prefix));
  }

  delete(name: string): Promise<void> {
    return this.#retry(`delete of ${name}`, () => this.inner.delete(name));
  }

  exists(): Promise<boolean> {
    return this.#retry('existence check', () => this.inner.exists());
  }

  stage?: () => StagedObject;
  removeStaged?: () => Promise<number>;

  #stage(inner: StagedObject): StagedObject {
    const kept: Buffer[] = [];
    let innerFailed: Error | null = null;
    const absorb = (error: unknown): void => {
      if (!isTransient(error)) throw error;
      innerFailed ??= error as Error;
    };
    return {
      write: (piece) => {
        kept.push(piece);
        if (!innerFailed) inner.write(piece);
      },
      get pending() {
        return innerFailed ? 0 : inner.pending;
      },
      drained: async () => {
        if (!innerFailed) await inner.drained().catch(absorb);
      },
      commit: async (name) => {
        if (!innerFailed) {
          try {
            await inner.commit(name);
            return;
          } catch (error) {
            absorb(error);
          }
        }
        await inner.discard().catch(() => undefined);
        this.retries++;
        this.#onRetry?.(`staged upload of ${name}`, 1, innerFailed!);
        await this.put(name, kept);
      },
      discard: () => inner.discard(),
    };
  }

  close(): void {
    (this.inner as { close?: () => void }).close?.();
  }
}
