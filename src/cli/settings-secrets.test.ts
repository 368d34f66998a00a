/**
 * The webhook URL can carry a token (a chat service's incoming-hook URL is its own credential): it
 * can be set from a file, never having to be on a command line other users' `ps` shows.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const URL = 'https://chat.example/hooks/T0123/B0456/xK9sEcReTtOkEn';

describe('jetvault settings set webhookUrl', () => {
  it('takes the URL from a file, and warns when it is given on the command line', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home });
    const file = path.join(home, 'webhook');
    writeFileSync(file, `${URL}\n`, { mode: 0o600 });
    const set = await run('settings', 'set', 'webhookUrl', '--value-file', file);
    expect(set.err).toBe('');
    expect(set.code).toBe(0);
    expect((JSON.parse((await run('settings', '--json')).out) as { webhookUrl: string }).webhookUrl).toBe(URL);

    const typed = await run('settings', 'set', 'webhookUrl', URL);
    expect(typed.code).toBe(0);
    expect(typed.err).toMatch(/^warning: the webhook URL can carry a token, .* use --value-file FILE$/);
    // Turning it off (an empty value) is no secret.
    expect((await run('settings', 'set', 'webhookUrl', '')).err).toBe('');
    expect((await run('settings', 'set', 'webhookUrl', 'x', '--value-file', file)).code).toBe(2);
  });
});
