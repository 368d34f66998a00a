import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAppUrl } from './app-url';

describe('the page the console trusts', () => {
  const page = '/opt/Jetvault/resources/app.asar/out/renderer/index.html';

  it('is the built renderer page itself, whatever its hash, and the dev server only under npm run dev', () => {
    expect(isAppUrl(`${pathToFileURL(page).href}#/devices/rvm-017`, undefined, page)).toBe(true);
    const spaced = '/home/tech/My Apps/Jetvault/out/renderer/index.html';
    expect(isAppUrl(pathToFileURL(spaced).href, undefined, spaced)).toBe(true);
    expect(isAppUrl('http://localhost:5173/', 'http://localhost:5173', page)).toBe(true);
    expect(isAppUrl('http://localhost:5173/', undefined, page)).toBe(false);
    expect(isAppUrl('https://example.com/renderer/index.html', undefined, page)).toBe(false);
    expect(isAppUrl('not a url', undefined, page)).toBe(false);
  });

  it('is not any other local file named renderer/index.html (one a Download of a device\'s snapshot put on the laptop)', () => {
    const downloaded = path.join('/home/tech/Downloads/rvm-017-app-20261130-141502/opt/myrvm/ui/renderer/index.html');
    expect(isAppUrl(pathToFileURL(downloaded).href, undefined, page)).toBe(false);
    expect(isAppUrl('file:///tmp/renderer/index.html', undefined, page)).toBe(false);
    expect(isAppUrl(`${pathToFileURL(page).href.replace('/out/', '/out/x/../')}`, undefined, page)).toBe(true);
  });
});
