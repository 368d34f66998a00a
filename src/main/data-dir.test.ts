import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultDataDir, resolveDataDir } from './data-dir';

describe('data directory', () => {
  it('uses JETVAULT_HOME when set', () => {
    expect(resolveDataDir({ JETVAULT_HOME: '/tmp/jv-home' })).toBe('/tmp/jv-home');
    expect(resolveDataDir({ JETVAULT_HOME: '  ' })).toBe(defaultDataDir({}));
  });

  it('matches the folder Electron uses for userData on each platform', () => {
    expect(defaultDataDir({}, 'linux')).toBe(path.join(os.homedir(), '.config', 'Jetvault'));
    expect(defaultDataDir({ XDG_CONFIG_HOME: '/x' }, 'linux')).toBe('/x/Jetvault');
    expect(defaultDataDir({}, 'darwin')).toBe(path.join(os.homedir(), 'Library', 'Application Support', 'Jetvault'));
    expect(defaultDataDir({ APPDATA: 'C:\\Users\\t\\AppData\\Roaming' }, 'win32')).toBe(path.join('C:\\Users\\t\\AppData\\Roaming', 'Jetvault'));
  });
});
