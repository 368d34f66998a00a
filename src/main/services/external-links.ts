import type { PlatformAdapter } from './index';

/** Origins the console may open in the system browser; everything else is refused. */
export const EXTERNAL_LINK_ALLOWLIST: readonly string[] = [
  'https://docs.nvidia.com',
  'https://developer.nvidia.com',
  'https://www.postgresql.org',
  'https://sqlite.org',
];

export function isAllowedExternalUrl(raw: string, allowlist: readonly string[] = EXTERNAL_LINK_ALLOWLIST): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  return url.protocol === 'https:' && url.username === '' && url.password === '' && allowlist.includes(url.origin);
}

export class ExternalLinks {
  readonly #platform: PlatformAdapter;

  constructor(platform: PlatformAdapter) {
    this.#platform = platform;
  }

  async open(url: string): Promise<boolean> {
    if (!isAllowedExternalUrl(url)) return false;
    await this.#platform.openExternal(url);
    return true;
  }
}
