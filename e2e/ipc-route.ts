/**
 * Puts the test between the page and the test host's IPC socket (a flaky or slow link, a backend
 * that answers late): each call from the page may be answered here or passed on late, and each
 * message to the page held back. Everything else passes as it is.
 */
import type { Page } from '@playwright/test';

/** A call from the page as the socket carries it (null for anything that is not JSON). */
export type IpcCall = { type: string; id: number; channel?: string } | null;

export interface IpcRoute {
  /** Per call (`connection` counts the page's sockets from 1): answer it here, or pass it on `delayMs` later. */
  up?(call: IpcCall, connection: number): { answer: unknown } | { delayMs: number } | undefined;
  /** Per message to the page: false holds it back. */
  down?(message: string | Buffer): boolean;
}

export async function routeIpc(page: Page, route: IpcRoute): Promise<void> {
  let connections = 0;
  await page.routeWebSocket(/\/ipc$/, (ws) => {
    const connection = ++connections;
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      const call = typeof message === 'string' ? (JSON.parse(message) as IpcCall) : null;
      const what = call?.type === 'invoke' ? route.up?.(call, connection) : undefined;
      if (what && 'answer' in what) ws.send(JSON.stringify({ type: 'result', id: call!.id, result: what.answer }));
      else if (what) setTimeout(() => server.send(message), what.delayMs);
      else server.send(message);
    });
    server.onMessage((message) => {
      if (route.down?.(message) ?? true) ws.send(message);
    });
  });
}

/** An answer as the backend gives one when it cannot be reached. */
export const unavailable = (message: string) => ({ answer: { ok: false, error: { code: 'UNAVAILABLE', message } } });
