/**
 * Typed events the main side pushes to every connected renderer. Services emit; each transport
 * (Electron windows, test-host sockets) subscribes once and forwards.
 */
import type { EventName, EventPayload } from '../shared/contract';
import { checkEvent } from './ipc/router';

export type BusListener = <E extends EventName>(event: E, payload: EventPayload<E>) => void;

export class EventBus {
  readonly #listeners = new Set<BusListener>();

  emit<E extends EventName>(event: E, payload: EventPayload<E>): void {
    const checked = checkEvent(event, payload);
    for (const listener of this.#listeners) listener(event, checked);
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: BusListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
