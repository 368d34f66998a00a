/**
 * Electron entry: app lifecycle, the window, the IPC binding. Thin glue only; everything the
 * console does lives in plain-Node services (./services) shared with the CLI and the test host.
 */
import { app, BrowserWindow, dialog } from 'electron';
import { createLogger } from './log';
import type { LogLevel } from './log';
import { ElectronIpcBinding } from './electron/ipc-binding';
import { createMainWindow } from './electron/main-window';
import { electronPlatform } from './electron/platform';
import { hardenApp, hardenSession } from './electron/security';
import { tuneGarbageCollection } from './gc-tuning';
import { createServices } from './services/index';
import { startupFailure } from './startup-failure';
import type { Services } from './services/index';

tuneGarbageCollection();

const devServerUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  let services: Services | null = null;
  let binding: ElectronIpcBinding | null = null;

  hardenApp(devServerUrl);
  app.on('second-instance', () => {
    const [window] = BrowserWindow.getAllWindows();
    if (window) {
      if (window.isMinimized()) window.restore();
      window.focus();
    }
  });

  const openWindow = (): void => {
    if (!binding) return;
    binding.attach(createMainWindow(devServerUrl));
  };

  void app.whenReady().then(() => {
    hardenSession(devServerUrl);
    const dataDir = process.env.JETVAULT_HOME || app.getPath('userData');
    const log = createLogger((process.env.JETVAULT_LOG_LEVEL as LogLevel | undefined) ?? 'info');
    try {
      services = createServices({ dataDir, log, platform: electronPlatform() });
      binding = new ElectronIpcBinding(services, devServerUrl);
      services.start();
    } catch (error) {
      // No window could work without the services: say why and quit (staying up windowless would
      // also keep the single-instance lock, so the next launch would do nothing either).
      log.error('the console could not start', error);
      const { title, detail } = startupFailure(error, dataDir);
      dialog.showErrorBox(title, detail);
      binding?.dispose();
      binding = null;
      const started = services;
      services = null;
      void (started ? started.shutdown() : Promise.resolve()).catch(() => undefined).finally(() => app.exit(1));
      return;
    }
    openWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) openWindow();
    });
  });

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('will-quit', (event) => {
    binding?.dispose();
    binding = null;
    const running = services;
    if (!running) return;
    services = null;
    // Quitting during a backup cancels it on purpose: its clean-up is done and it is recorded
    // cancelled before the history closes (closed at once, the next start called it interrupted).
    event.preventDefault();
    void running
      .shutdown()
      .catch((error: unknown) => running.log.error('the console did not stop cleanly', error))
      .finally(() => app.quit());
  });
}
