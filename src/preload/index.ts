/**
 * The preload: exposes the typed, domain-shaped `window.api` built from the contract, and nothing
 * else. ipcRenderer itself never reaches the page, and listeners never see the IPC event object.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { createApi, ELECTRON_READY_CHANNEL } from '../shared/api';
import type { IpcResult } from '../shared/errors';

const api = createApi({
  invoke: (channel, input) => ipcRenderer.invoke(channel, input) as Promise<IpcResult<unknown>>,
  subscribe: (event, callback) => {
    const listener = (_event: Electron.IpcRendererEvent, payload: unknown): void => callback(payload);
    ipcRenderer.on(event, listener);
    return () => {
      ipcRenderer.removeListener(event, listener);
    };
  },
}, { plainErrors: true });

contextBridge.exposeInMainWorld('api', api);

// Module scripts have run (and subscribed) by DOMContentLoaded: from then on main may push events.
window.addEventListener('DOMContentLoaded', () => ipcRenderer.send(ELECTRON_READY_CHANNEL));
