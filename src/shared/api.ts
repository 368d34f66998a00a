/**
 * Builds the domain-shaped `window.api` from the contract, for any transport: the Electron
 * preload and the test host's WebSocket bridge both call `createApi`, so the renderer sees the
 * identical object in both. `settings:get` becomes `api.settings.get()`, the event
 * `jobs:progress` becomes `api.jobs.onProgress(cb)` returning an unsubscribe function.
 */
import { CHANNELS, EVENTS } from './contract';
import type { Channel, ChannelInput, ChannelOutput, EventName, EventPayload } from './contract';
import { AppError } from './errors';
import type { IpcResult } from './errors';

type DomainOf<K extends string> = K extends `${infer D}:${string}` ? D : never;
type Domain = DomainOf<Channel> | DomainOf<EventName>;

type Method<C extends Channel> = undefined extends ChannelInput<C>
  ? (input?: ChannelInput<C>) => Promise<ChannelOutput<C>>
  : (input: ChannelInput<C>) => Promise<ChannelOutput<C>>;

type Listener<E extends EventName> = (callback: (payload: EventPayload<E>) => void) => () => void;

export type Api = {
  readonly [D in Domain]: {
    readonly [C in Channel as C extends `${D}:${infer A}` ? A : never]: Method<C>;
  } & {
    readonly [E in EventName as E extends `${D}:${infer N}` ? `on${Capitalize<N>}` : never]: Listener<E>;
  };
};

export interface ApiTransport {
  invoke(channel: Channel, input: unknown): Promise<IpcResult<unknown>>;
  /** Subscribes to one pushed event; returns the function that unsubscribes. */
  subscribe(event: EventName, callback: (payload: unknown) => void): () => void;
}

export interface CreateApiOptions {
  /**
   * Electron's contextBridge copies only the message of a thrown Error, so the preload rejects
   * with a plain `{name:'AppError', code, message, issues}` object (plain objects cross intact);
   * the renderer's `toAppError` turns either form back into an AppError.
   */
  plainErrors?: boolean;
}

export function createApi(transport: ApiTransport, options: CreateApiOptions = {}): Api {
  const domains: Record<string, Record<string, unknown>> = {};
  const domainOf = (name: string): Record<string, unknown> => {
    const [domain] = name.split(':') as [string];
    return (domains[domain] ??= {});
  };

  for (const channel of CHANNELS) {
    const action = channel.slice(channel.indexOf(':') + 1);
    domainOf(channel)[action] = async (input?: unknown) => {
      const result = await transport.invoke(channel, input);
      if (!result.ok) {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- see CreateApiOptions.plainErrors
        throw options.plainErrors ? { name: 'AppError', ...result.error } : AppError.fromShape(result.error);
      }
      return result.value;
    };
  }
  for (const event of EVENTS) {
    const name = event.slice(event.indexOf(':') + 1);
    domainOf(event)[`on${name[0]!.toUpperCase()}${name.slice(1)}`] = (callback: (payload: unknown) => void) => {
      if (typeof callback !== 'function') throw new TypeError(`api listener for ${event} needs a function`);
      return transport.subscribe(event, callback);
    };
  }
  for (const domain of Object.values(domains)) Object.freeze(domain);
  return Object.freeze(domains) as unknown as Api;
}

/** Wire format of the test host's WebSocket bridge (the Electron binding uses ipcRenderer instead). */
export type WireClientMessage = { type: 'invoke'; id: number; channel: string; input?: unknown };
export type WireServerMessage =
  | { type: 'result'; id: number; result: IpcResult<unknown> }
  | { type: 'event'; event: EventName; payload: unknown };

/**
 * Sent by the preload once the page's scripts have run (and so subscribed); the Electron binding
 * queues pushed events for a window until then.
 */
export const ELECTRON_READY_CHANNEL = 'jetvault:renderer-ready';
