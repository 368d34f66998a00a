/**
 * Which page is the console's own: the one page whose calls the IPC binding accepts and the only
 * place its windows may navigate. Plain Node (no `electron` import), so it can be tested here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built renderer's page, beside the main bundle (out/main → out/renderer). */
export const RENDERER_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../renderer/index.html');

/**
 * Whether a URL is our own renderer: under `npm run dev` the dev server's origin; otherwise the file
 * `rendererFile` itself (any hash or query). Not every file URL ending in `renderer/index.html`: a
 * page of that name anywhere on the laptop — one a Download of a device's snapshot put there — would
 * have been let in as the console and handed its whole API had a window ever been led to it.
 */
export function isAppUrl(raw: string, devServerUrl: string | undefined, rendererFile: string = RENDERER_FILE): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (devServerUrl) return url.origin === new URL(devServerUrl).origin;
  if (url.protocol !== 'file:') return false;
  let file: string;
  try {
    file = path.resolve(fileURLToPath(url));
  } catch {
    return false;
  }
  const expected = path.resolve(rendererFile);
  // Windows and macOS file systems ignore case (and Chromium may write a drive letter either way).
  return process.platform === 'linux' ? file === expected : file.toLowerCase() === expected.toLowerCase();
}
