import { describe, expect, it } from 'vitest';
import { ExternalLinks, isAllowedExternalUrl } from './external-links';

describe('external links', () => {
  it('allows only https URLs on allowlisted origins', () => {
    expect(isAllowedExternalUrl('https://docs.nvidia.com/jetson/archives/r36.4/DeveloperGuide/')).toBe(true);
    for (const url of [
      'http://docs.nvidia.com/',
      'https://docs.nvidia.com.evil.example/',
      'https://user:pw@docs.nvidia.com/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'smb://share/x',
      'not a url',
    ]) {
      expect(isAllowedExternalUrl(url), url).toBe(false);
    }
  });

  it('opens allowed links through the platform and refuses the rest', async () => {
    const opened: string[] = [];
    const links = new ExternalLinks({ transport: 'cli', openExternal: (url) => Promise.resolve(void opened.push(url)) });
    expect(await links.open('https://www.postgresql.org/docs/')).toBe(true);
    expect(await links.open('https://evil.example/')).toBe(false);
    expect(opened).toEqual(['https://www.postgresql.org/docs/']);
  });
});
