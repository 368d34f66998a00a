/**
 * The Electron binding of the IPC router: one ipcMain handler per contract channel, and pushed
 * events forwarded to every window, queued per window until its renderer says it is ready.
 */
import { ipcMain } from 'electron';
import type { BrowserWindow, IpcMainInvokeEvent } from 'electron';
import { ELECTRON_READY_CHANNEL } from '../../shared/api';
import { CHANNELS } from '../../shared/contract';
import type { EventName } from '../../shared/contract';
import { createHandlers } from '../ipc/handlers';
import { IpcRouter } from '../ipc/router';
import type { Sender } from '../ipc/router';
import type { Services } from '../services/index';
import { isAppUrl } from './app-url';

const MAX_QUEUED_EVENTS = 1000;

interface WindowChannel {
  ready: boolean;
  queue: { event: EventName; payload: unknown }[];
}

export class ElectronIpcBinding {
  readonly #windows = new Map<number, { window: BrowserWindow; state: WindowChannel }>();
  readonly #dispose: (() => void)[] = [];

  constructor(services: Services, devServerUrl: string | undefined) {
    const router = new IpcRouter(createHandlers(services, 'electron'), {
      log: services.log,
      // Only our own page, in a top-level frame of one of our windows, may call.
      isTrustedSender: (sender) => sender.transport === 'electron' && sender.authenticated && sender.url !== null && isAppUrl(sender.url, devServerUrl),
    });
    const senderOf = (event: IpcMainInvokeEvent): Sender => {
      const frame = event.senderFrame;
      return {
        transport: 'electron',
        url: frame?.url ?? null,
        authenticated: frame !== null && frame.parent === null && this.#windows.has(event.sender.id),
      };
    };
    for (const channel of CHANNELS) {
      ipcMain.handle(channel, (event, input: unknown) => router.handle(channel, input, senderOf(event)));
      this.#dispose.push(() => ipcMain.removeHandler(channel));
    }
    const onReady = (event: Electron.IpcMainEvent): void => {
      const entry = this.#windows.get(event.sender.id);
      if (!entry) return;
      entry.state.ready = true;
      for (const item of entry.state.queue) entry.window.webContents.send(item.event, item.payload);
      entry.state.queue = [];
    };
    ipcMain.on(ELECTRON_READY_CHANNEL, onReady);
    this.#dispose.push(() => ipcMain.removeListener(ELECTRON_READY_CHANNEL, onReady));
    this.#dispose.push(
      services.bus.subscribe((event, payload) => {
        for (const { window, state } of this.#windows.values()) {
          if (window.isDestroyed()) continue;
          if (state.ready) window.webContents.send(event, payload);
          else {
            state.queue.push({ event, payload });
            if (state.queue.length > MAX_QUEUED_EVENTS) state.queue.shift();
          }
        }
      }),
    );
  }

  attach(window: BrowserWindow): void {
    const id = window.webContents.id;
    const state: WindowChannel = { ready: false, queue: [] };
    this.#windows.set(id, { window, state });
    // A reload starts a new page: queue again until it is ready.
    window.webContents.on('did-start-navigation', (details) => {
      if (details.isMainFrame && !details.isSameDocument) state.ready = false;
    });
    window.on('closed', () => this.#windows.delete(id));
  }

  dispose(): void {
    for (const undo of this.#dispose.splice(0)) undo();
  }
}
