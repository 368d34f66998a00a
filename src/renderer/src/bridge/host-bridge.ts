/**
 * The test host's binding of the contract: the same `createApi` the preload uses, carried over a
 * WebSocket to the page's own origin. The token arrives once in the URL fragment (which browsers
 * never send to the server), is kept for this tab only, and is presented as a subprotocol.
 */
import { createApi } from '../../../shared/api';
import type { Api, ApiTransport, WireServerMessage } from '../../../shared/api';
import type { IpcResult } from '../../../shared/errors';

const TOKEN_KEY = 'jetvault.hostToken';
const WIRE_PROTOCOL = 'jetvault.v1';
const TOKEN_PROTOCOL_PREFIX = 'jetvault-token.';

function takeToken(): string | null {
  const match = /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(window.location.hash);
  if (match?.[1]) {
    sessionStorage.setItem(TOKEN_KEY, match[1]);
    history.replaceState(null, '', `${window.location.pathname}${window.location.search}#/`);
    return match[1];
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export async function connectTestHost(): Promise<Api> {
  const token = takeToken();
  if (!token) throw new Error('This page was opened without its access token: open the URL that `npm run host` printed.');
  const url = `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/ipc`;
  const socket = new WebSocket(url, [WIRE_PROTOCOL, `${TOKEN_PROTOCOL_PREFIX}${token}`]);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error('The test host refused the connection (stale or wrong token?)')), { once: true });
  });

  let nextId = 1;
  const pending = new Map<number, (result: IpcResult<unknown>) => void>();
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  socket.addEventListener('message', (message: MessageEvent<string>) => {
    const data = JSON.parse(message.data) as WireServerMessage;
    if (data.type === 'result') {
      pending.get(data.id)?.(data.result);
      pending.delete(data.id);
    } else {
      for (const listener of listeners.get(data.event) ?? []) listener(data.payload);
    }
  });
  socket.addEventListener('close', () => {
    for (const resolve of pending.values()) resolve({ ok: false, error: { code: 'UNAVAILABLE', message: 'The console backend closed the connection' } });
    pending.clear();
  });

  const transport: ApiTransport = {
    invoke: (channel, input) =>
      new Promise((resolve) => {
        if (socket.readyState !== WebSocket.OPEN) {
          resolve({ ok: false, error: { code: 'UNAVAILABLE', message: 'Not connected to the console backend' } });
          return;
        }
        const id = nextId++;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ type: 'invoke', id, channel, input }));
      }),
    subscribe: (event, callback) => {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(callback);
      return () => set.delete(callback);
    },
  };
  return createApi(transport, { plainErrors: true });
}
