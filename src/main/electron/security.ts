/**
 * Window hardening for every webContents the app creates: no navigation away from our page, no
 * new windows, no permission grants, no webviews. External links go through the allowlist only.
 */
import { app, session, shell } from 'electron';
import type { WebContents } from 'electron';
import { CONTENT_SECURITY_POLICY } from '../../shared/csp';
import { isAllowedExternalUrl } from '../services/external-links';
import { isAppUrl } from './app-url';

export function hardenSession(devServerUrl: string | undefined): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.setDevicePermissionHandler(() => false);
  // The CSP also travels as a header, so it holds even if the meta tag were stripped. Not under the
  // dev server, whose hot reload needs inline styles and a WebSocket.
  if (!devServerUrl) {
    ses.webRequest.onHeadersReceived((details, callback) => {
      callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
    });
  }
}

export function hardenWebContents(contents: WebContents, devServerUrl: string | undefined): void {
  contents.on('will-navigate', (event, url) => {
    if (!isAppUrl(url, devServerUrl)) event.preventDefault();
  });
  contents.on('will-redirect', (event, url) => {
    if (!isAppUrl(url, devServerUrl)) event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(({ url }) => {
    if (isAllowedExternalUrl(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
}

export function hardenApp(devServerUrl: string | undefined): void {
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, devServerUrl));
}
