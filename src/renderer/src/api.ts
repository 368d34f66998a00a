import type { Api } from '../../shared/api';
import { toAppError } from '../../shared/errors';
import { connectTestHost } from './bridge/host-bridge';

let current: Api | null = null;

/** The same api with every rejection turned into an AppError, whichever transport carried it. */
function withAppErrors(raw: Api): Api {
  const wrapped: Record<string, Record<string, unknown>> = {};
  for (const [domain, members] of Object.entries(raw as unknown as Record<string, Record<string, unknown>>)) {
    wrapped[domain] = {};
    for (const [name, member] of Object.entries(members)) {
      const fn = member as (...args: unknown[]) => unknown;
      wrapped[domain][name] = name.startsWith('on')
        ? fn
        : (...args: unknown[]) =>
            (fn(...args) as Promise<unknown>).catch((error: unknown) => {
              throw toAppError(error);
            });
    }
  }
  return wrapped as unknown as Api;
}

/** Resolves `window.api`: from the Electron preload, or (in the test host) over its WebSocket. */
export async function initApi(): Promise<Api> {
  if (!window.api) {
    const api = await connectTestHost();
    // The same global the preload provides, so nothing downstream can tell the transports apart.
    Object.defineProperty(window, 'api', { value: api, writable: false, configurable: false });
  }
  current = withAppErrors(window.api!);
  return current;
}

export function api(): Api {
  if (!current) throw new Error('api() called before initApi()');
  return current;
}
