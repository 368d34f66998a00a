/**
 * The Electron side of `PlatformAdapter`: what only the desktop app can do (system browser, desktop
 * notifications, native folder picker, opening files, printing to PDF, safe storage). Thin on
 * purpose: the services decide what to do, this only calls Electron.
 */
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { BrowserWindow, dialog, Notification, shell } from 'electron';
import type { PlatformAdapter } from '../services/index';
import { SafeStorageCipher } from './safe-storage-cipher';

/** Renders a local HTML file in a hidden, sandboxed window with no scripts and prints it to PDF (A4, backgrounds on). */
async function printToPdf(htmlFile: string, pdfFile: string): Promise<void> {
  // Its own in-memory session: the console's CSP header (no inline styles) is not applied to the report,
  // which carries its own CSP (default-src 'none'); scripts are off altogether.
  const window = new BrowserWindow({ show: false, webPreferences: { partition: 'jetvault-print', sandbox: true, contextIsolation: true, javascript: false, nodeIntegration: false } });
  try {
    await window.loadURL(pathToFileURL(htmlFile).toString());
    const pdf = await window.webContents.printToPDF({ pageSize: 'A4', printBackground: true });
    await writeFile(pdfFile, pdf, { mode: 0o600 });
  } finally {
    window.destroy();
  }
}

export function electronPlatform(): PlatformAdapter {
  return {
    transport: 'electron',
    openExternal: (url) => shell.openExternal(url),
    notify: (title, body, options) => {
      // A job the user is watching in a console window needs no notification; one left running behind other windows does.
      if (options?.onlyInBackground && BrowserWindow.getAllWindows().some((w) => w.isFocused())) return;
      if (Notification.isSupported()) new Notification({ title, body }).show();
    },
    chooseFolder: async () => {
      const options: Electron.OpenDialogOptions = { title: 'Download into folder', properties: ['openDirectory', 'createDirectory'] };
      const parent = BrowserWindow.getFocusedWindow();
      const chosen = parent ? await dialog.showOpenDialog(parent, options) : await dialog.showOpenDialog(options);
      return chosen.canceled ? null : (chosen.filePaths[0] ?? null);
    },
    openPath: async (file) => {
      // shell.openPath resolves with an error message ('' when it worked) instead of rejecting.
      const failure = await shell.openPath(file);
      if (failure) throw new Error(failure);
    },
    printToPdf,
    // With no usable OS keyring the passphrase cipher (JETVAULT_SECRETS_PASSPHRASE) takes over.
    ...(SafeStorageCipher.available() ? { secretCipher: new SafeStorageCipher() } : {}),
  };
}
