/**
 * The webhook URL can carry a token (a chat service's incoming-hook URL is its own credential): it
 * can be set from a file, never having to be on a command line other users' `ps` shows, and it is
 * kept only in the secret store — never in a plain file of the data folder (decision 006).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesHolding } from '../main/testing/plaintext';
import { tempDir } from '../main/testing/temp-dir';
import { cliRunner } from './testing';

const TOKEN = 'xK9sEcReTtOkEn';
const URL = `https://chat.example/hooks/T0123/B0456/${TOKEN}`;
const PASSPHRASE = 'cli secrets passphrase';

describe('jetvault settings set webhookUrl', () => {
  it('takes the URL from a file, warns when it is given on the command line, and keeps it out of every plain file', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home, JETVAULT_SECRETS_PASSPHRASE: PASSPHRASE });
    const file = path.join(tempDir(), 'webhook');
    writeFileSync(file, `${URL}\n`, { mode: 0o600 });
    const set = await run('settings', 'set', 'webhookUrl', '--value-file', file);
    expect(set.err).toBe('');
    expect(set.code).toBe(0);
    expect((JSON.parse((await run('settings', '--json')).out) as { webhookUrl: string }).webhookUrl).toBe(URL);
    expect(JSON.parse((await run('settings', 'get', 'webhookUrl')).out)).toBe(URL);
    expect(filesHolding(home, TOKEN)).toEqual([]);

    const typed = await run('settings', 'set', 'webhookUrl', URL);
    expect(typed.code).toBe(0);
    expect(typed.err).toMatch(/^warning: the webhook URL can carry a token, .* use --value-file FILE$/);
    // Turning it off (an empty value) is no secret.
    expect((await run('settings', 'set', 'webhookUrl', '')).err).toBe('');
    expect((JSON.parse((await run('settings', '--json')).out) as { webhookUrl: string }).webhookUrl).toBe('');
    expect((await run('settings', 'set', 'webhookUrl', 'x', '--value-file', file)).code).toBe(2);
  });

  it('is refused without a secrets passphrase, saying what to set, and nothing is stored', async () => {
    const home = tempDir();
    const run = cliRunner({ JETVAULT_HOME: home });
    const file = path.join(tempDir(), 'webhook');
    writeFileSync(file, URL, { mode: 0o600 });
    const set = await run('settings', 'set', 'webhookUrl', '--value-file', file);
    expect(set.code).not.toBe(0);
    expect(set.err).toMatch(/webhook URL can carry a token, so it is stored only encrypted: set JETVAULT_SECRETS_PASSPHRASE/);
    expect(set.err).not.toContain(TOKEN);
    expect((JSON.parse((await run('settings', '--json')).out) as { webhookUrl: string }).webhookUrl).toBe('');
    expect(filesHolding(home, TOKEN)).toEqual([]);
  });
});
