import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';
import { createServices } from './index';

const profile = { name: 'rvm-031', host: '127.0.0.31', user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', site: 'Depot East', rpoMinutes: 15, sources: [] };
const platform = { transport: 'cli' as const, openExternal: () => Promise.resolve() };

describe('edits made by another process', () => {
  it('reach an open console as its own edits do: a device imported, edited and removed in a terminal, a setting set there', async () => {
    const dataDir = tempDir();
    const app = createServices({ dataDir, log: silentLogger, platform });
    const pushed: [string, unknown][] = [];
    app.bus.subscribe((event, payload) => pushed.push([event, payload]));
    app.start({ scheduler: false });
    // `jetvault device import`, `settings set` …: a process of its own, a connection of its own.
    const cli = () => createServices({ dataDir, log: silentLogger, platform });
    const devicesPushed = (name: string) => pushed.some(([event, p]) => event === 'devices:changed' && (p as { names: string[] }).names.includes(name));
    try {
      let terminal = cli();
      terminal.devices.import({ devices: [profile] }, 'cli');
      terminal.dispose();
      await waitFor('the import to reach the console', () => devicesPushed('rvm-031'), 10_000);

      pushed.length = 0;
      terminal = cli();
      terminal.settings.update({ defaultRpoMinutes: 45 }, 'cli');
      terminal.devices.update('rvm-031', { ...profile, site: 'Depot West' }, {}, 'cli', { hostKeys: 'given' });
      terminal.dispose();
      await waitFor('the setting to reach the console', () => pushed.some(([event, p]) => event === 'settings:changed' && (p as { defaultRpoMinutes: number }).defaultRpoMinutes === 45), 10_000);
      await waitFor('the edit to reach the console', () => devicesPushed('rvm-031'), 10_000);

      pushed.length = 0;
      terminal = cli();
      terminal.devices.remove('rvm-031', 'cli');
      terminal.dispose();
      await waitFor('the removal to reach the console', () => devicesPushed('rvm-031'), 10_000);

      // Nothing changed elsewhere: nothing is pushed (a tick costs one pragma).
      pushed.length = 0;
      await new Promise((resolve) => setTimeout(resolve, 4_500));
      expect(pushed.filter(([event]) => event === 'devices:changed' || event === 'settings:changed')).toEqual([]);
    } finally {
      app.dispose();
    }
  }, 60_000);
});
