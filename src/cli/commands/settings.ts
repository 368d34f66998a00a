import { readFile } from 'node:fs/promises';
import { AppError } from '../../shared/errors';
import { SettingsSchema } from '../../shared/schemas/settings';
import type { SettingKey } from '../../shared/schemas/settings';
import type { Command } from '../command';
import { closestNames, UsageError } from '../command';
import { withServices } from '../services';

const KEYS = Object.keys(SettingsSchema.shape) as SettingKey[];

/** A key that is no setting: the closest ones first when it looks like a typo, then every key. */
function unknownSetting(key: string): UsageError {
  const near = closestNames(key, KEYS);
  return new UsageError(`unknown setting "${key}"${near.length > 0 ? ` (did you mean ${near.join(' or ')}?)` : ''}; the settings are ${KEYS.join(', ')}`);
}

/** Parses a command-line value into what the setting's schema expects (numbers, booleans, text). */
function parseValue(raw: string): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (/^\s*[[{]/.test(raw)) {
    try {
      return JSON.parse(raw) as unknown; // objects such as monitoringRules
    } catch {
      return raw;
    }
  }
  return raw;
}

export const settingsCommand: Command = {
  name: 'settings',
  summary: 'show or change console settings',
  usage: [
    'Usage: jetvault settings [--json]',
    '       jetvault settings get KEY          (its value as JSON, for scripts)',
    '       jetvault settings set KEY (VALUE | --value-file FILE)',
    '       jetvault settings reset',
    '',
    `Keys: ${KEYS.join(', ')}`,
    '',
    '--value-file FILE takes the value from the first line of FILE: the webhook URL can carry a token,',
    "which on the command line other users' ps and the shell's history would show.",
  ].join('\n'),
  options: { json: { type: 'boolean' }, 'value-file': { type: 'string' } },
  async run({ values, positionals }, io) {
    const [action, key, given, ...extra] = positionals;
    const file = values['value-file'];
    if (typeof file === 'string' && (action !== 'set' || given !== undefined)) throw new UsageError('--value-file is for "set KEY" without a VALUE');
    let value = given;
    if (typeof file === 'string') {
      try {
        value = (await readFile(file, 'utf8')).split(/\r?\n/)[0] ?? '';
      } catch (error) {
        throw new AppError('NOT_FOUND', `Cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
      }
    }
    return withServices(io, (services) => {
      if (action === undefined) {
        const settings = services.settings.get();
        if (values.json) io.out(JSON.stringify(settings, null, 2));
        else for (const k of KEYS) io.out(`${k.padEnd(22)} ${JSON.stringify(settings[k])}`);
        return 0;
      }
      if (action === 'get') {
        if (key === undefined || given !== undefined) throw new UsageError('get needs exactly one KEY');
        if (!KEYS.includes(key as SettingKey)) throw unknownSetting(key);
        io.out(JSON.stringify(services.settings.get()[key as SettingKey]));
        return 0;
      }
      if (action === 'set') {
        if (key === undefined || value === undefined || extra.length > 0) throw new UsageError('set needs exactly KEY and VALUE');
        if (!KEYS.includes(key as SettingKey)) throw unknownSetting(key);
        if (key === 'webhookUrl' && given) io.err("warning: the webhook URL can carry a token, and on the command line other users' ps and the shell's history show it: use --value-file FILE");
        const settings = services.settings.update({ [key]: parseValue(value) }, 'cli');
        io.out(`${key} = ${JSON.stringify(settings[key as SettingKey])}`);
        return 0;
      }
      if (action === 'reset') {
        if (key !== undefined) throw new UsageError('reset takes no arguments');
        services.settings.reset('cli');
        io.out('settings reset to defaults');
        return 0;
      }
      throw new UsageError(`unknown action "${action}"`);
    });
  },
};
