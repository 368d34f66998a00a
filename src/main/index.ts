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
import { createUpgradeWindow } from './electron/upgrade-window';
import { tuneGarbageCollection } from './gc-tuning';
import { upgradeHistory, upgradeMessage } from './history/upgrade';
import { createServices } from './services/index';
import { startupFailure } from './startup-failure';
import type { Services } from './services/index';

tuneGarbageCollection();

const devServerUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;
/** An upgrade of the history that takes longer than this shows a window while it runs. */
const UPGRADE_WINDOW_AFTER_MS = 400;

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

  let quitting = false;
  app.on('before-quit', () => {
    quitting = true;
  });

  void app.whenReady().then(async () => {
    hardenSession(devServerUrl);
    const dataDir = process.env.JETVAULT_HOME || app.getPath('userData');
    const log = createLogger((process.env.JETVAULT_LOG_LEVEL as LogLevel | undefined) ?? 'info');
    const upgrading: { window?: BrowserWindow } = {};
    let showUpgrade: ReturnType<typeof setTimeout> | undefined;
    try {
      // A history upgrade runs in a worker; one that takes a while shows a window saying so (closing it quits).
      await upgradeHistory(dataDir, {
        onStart: (upgrade) => {
          log.info(upgradeMessage(upgrade));
          showUpgrade = setTimeout(() => {
            upgrading.window = createUpgradeWindow(upgrade);
            // Closed by the user ('close' is not emitted by destroy()): quit on every platform, macOS too,
            // as the window says; the migration under way is rolled back.
            upgrading.window.on('close', () => app.quit());
          }, UPGRADE_WINDOW_AFTER_MS);
        },
        warn: (line) => log.warn(line),
      });
      clearTimeout(showUpgrade);
      if (quitting) return;
      services = createServices({ dataDir, log, platform: electronPlatform() });
      binding = new ElectronIpcBinding(services, devServerUrl);
      services.start();
    } catch (error) {
      clearTimeout(showUpgrade);
      // No window could work without the services: say why and quit (staying up windowless would
      // also keep the single-instance lock, so the next launch would do nothing either).
      log.error('the console could not start', error);
      const { title, detail } = startupFailure(error, dataDir);
      upgrading.window?.destroy();
      dialog.showErrorBox(title, detail);
      binding?.dispose();
      binding = null;
      const started = services;
      services = null;
      void (started ? started.shutdown() : Promise.resolve()).catch(() => undefined).finally(() => app.exit(1));
      return;
    }
    openWindow();
    // Destroyed only now: closing the last window first would quit the app.
    upgrading.window?.destroy();
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
