import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../../shared/schemas/settings';
import type { SettingsPatch } from '../../shared/schemas/settings';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { silentLogger } from '../log';
import type { Logger } from '../log';
import { tempDir } from '../testing/temp-dir';
import { SettingsService } from './settings-service';

function open(dir: string, log: Logger = silentLogger) {
  const store = new HistoryStore(dir);
  const bus = new EventBus();
  const events: unknown[] = [];
  bus.subscribe((event, payload) => events.push([event, payload]));
  return { store, events, settings: new SettingsService(store, bus, log) };
}

describe('SettingsService', () => {
  it('starts from defaults', () => {
    const { settings, store } = open(tempDir());
    expect(settings.get()).toEqual(DEFAULT_SETTINGS);
    store.close();
  });

  it('stores a patch without touching other settings, survives a reopen, and announces the change', () => {
    const dir = tempDir();
    const first = open(dir);
    first.settings.update({ defaultRpoMinutes: 15 }, 'test');
    const after = first.settings.update({ theme: 'dark' }, 'test');
    expect(after).toEqual({ ...DEFAULT_SETTINGS, theme: 'dark', defaultRpoMinutes: 15 });
    expect(first.events.at(-1)).toEqual(['settings:changed', after]);
    first.store.close();
    const second = open(dir);
    expect(second.settings.get()).toEqual(after);
    expect(second.store.sql.auditRecent.all(10).map((r) => r.action)).toEqual(['settings.update', 'settings.update']);
    // Each entry says what changed, from what to what; a save that changed nothing says nothing.
    expect(JSON.parse(second.store.sql.auditRecent.all(1)[0]!.detail!)).toEqual({ theme: { from: DEFAULT_SETTINGS.theme, to: 'dark' } });
    second.settings.update({ theme: 'dark', defaultRpoMinutes: 15 }, 'test');
    expect(second.store.sql.auditRecent.all(1)[0]!.detail).toBeNull();
    second.store.close();
  });

  it('rejects invalid values and keeps what was stored', () => {
    const { settings, store } = open(tempDir());
    settings.update({ maxParallelDevices: 4 }, 'test');
    expect(() => settings.update({ maxParallelDevices: 0 }, 'test')).toThrow(/Invalid settings/);
    expect(() => settings.update({ bogus: 1 } as unknown as SettingsPatch, 'test')).toThrow(/Invalid settings/);
    expect(settings.get().maxParallelDevices).toBe(4);
    // Below 10 s a slow link's own round trips could read as silence; above 10 min a dead link holds a job too long.
    expect(settings.get().silentLinkSeconds).toBe(20);
    for (const silentLinkSeconds of [9, 601, 12.5]) expect(() => settings.update({ silentLinkSeconds }, 'test')).toThrow(/Invalid settings/);
    settings.update({ silentLinkSeconds: 90 }, 'test');
    expect(settings.get().silentLinkSeconds).toBe(90);
    store.close();
  });

  it('falls back to the default for a stored value that no longer validates, and says so', () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => warnings.push(m) };
    const { settings, store } = open(tempDir(), log);
    store.sql.settingUpsert.run('theme', JSON.stringify('neon'), new Date().toISOString());
    store.sql.settingUpsert.run('defaultRpoMinutes', '{not json', new Date().toISOString());
    store.sql.settingUpsert.run('maxParallelDevices', '3', new Date().toISOString());
    expect(settings.get()).toEqual({ ...DEFAULT_SETTINGS, maxParallelDevices: 3 });
    expect(warnings.join('\n')).toMatch(/theme holds an invalid value/);
    expect(warnings.join('\n')).toMatch(/defaultRpoMinutes is not valid JSON/);
    store.close();
  });

  it('resets to defaults', () => {
    const { settings, store } = open(tempDir());
    settings.update({ theme: 'light', logLevel: 'debug' }, 'test');
    expect(settings.reset('test')).toEqual(DEFAULT_SETTINGS);
    store.close();
  });
});
