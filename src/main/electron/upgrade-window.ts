import { BrowserWindow } from 'electron';
import type { HistoryUpgrade } from '../history/upgrade';
import { upgradePageHtml } from '../history/upgrade-page';

/**
 * A small window shown while a long history upgrade runs (before the console's own window can
 * open): a static page, no preload, no script, its own CSP allowing only its one style block.
 * Closing it quits the app; the migration under way is rolled back and runs again at the next start.
 */
export function createUpgradeWindow(upgrade: HistoryUpgrade): BrowserWindow {
  const window = new BrowserWindow({
    width: 520,
    height: 220,
    resizable: false,
    maximizable: false,
    fullscreenable: false,
    show: false,
    title: 'Jetvault',
    backgroundColor: '#0f1419',
    autoHideMenuBar: true,
    webPreferences: {
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      javascript: false,
      webSecurity: true,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
      devTools: false,
    },
  });
  window.once('ready-to-show', () => window.show());
  void window.loadURL(`data:text/html;charset=utf-8,${encodeURIComponent(upgradePageHtml(upgrade))}`);
  window.setProgressBar(2); // indeterminate, where the desktop shows one (taskbar, dock)
  return window;
}
