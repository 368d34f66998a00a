import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';
import { createServices } from './index';

const profile = { name: 'rvm-031', host: '127.0.0.31', user: 'jetson', hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', site: 'Depot East', rpoMinutes: 15, sources: [] };
const platform = { transport: 'cli' as const, openExternal: () => Promise.resolve() };

describe('edits made by another process', () => {
  it('reach an open console as its own edits do: a device imported, edited and removed in a terminal, a setting set there, a job that ended there', async () => {
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

      // A job another process runs (a `jetvault verify` in a terminal): its end is pushed as this console's own jobs' are.
      pushed.length = 0;
      terminal = cli();
      let finish!: () => void;
      const { id, done } = terminal.jobs.start({ kind: 'verify', title: 'Verify the repository', phases: ['check'] }, () => new Promise<void>((resolve) => (finish = resolve)));
      await new Promise((resolve) => setTimeout(resolve, 2_500)); // seen running elsewhere
      expect(pushed.filter(([event]) => event === 'jobs:finished')).toEqual([]);
      finish();
      await done;
      terminal.dispose();
      await waitFor('the end of the other process\'s job to reach the console', () => pushed.some(([event, p]) => event === 'jobs:finished' && (p as { job: { id: string } }).job.id === id), 10_000);
      expect(pushed.find(([event]) => event === 'jobs:finished')![1]).toMatchObject({ job: { id, status: 'succeeded', kind: 'verify' } });
      // One another process started and ended between two looks (a quick CLI command): pushed too.
      pushed.length = 0;
      const other = spawnSync('true').pid; // a pid that is not this process's
      const at = new Date().toISOString();
      terminal = cli();
      terminal.history.sql.jobInsert.run('job_quick1', 'verify', 'Verify the repository', null, '["check"]', 'check', at, other, at, null);
      terminal.history.sql.jobFinish.run('succeeded', 'check', at, 0, 0, null, null, 'job_quick1');
      terminal.dispose();
      await waitFor('the quick job of another process to reach the console', () => pushed.some(([event, p]) => event === 'jobs:finished' && (p as { job: { id: string } }).job.id === 'job_quick1'), 10_000);

      // Its own jobs' ends are announced once, by the job manager, not again from here.
      pushed.length = 0;
      await app.jobs.start({ kind: 'verify', title: 'Verify here', phases: ['check'] }, () => Promise.resolve()).done;
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(pushed.filter(([event]) => event === 'jobs:finished')).toHaveLength(1);

      // Nothing changed elsewhere: nothing is pushed (a tick costs one pragma).
      pushed.length = 0;
      await new Promise((resolve) => setTimeout(resolve, 4_500));
      expect(pushed.filter(([event]) => event === 'devices:changed' || event === 'settings:changed')).toEqual([]);
    } finally {
      app.dispose();
    }
  }, 60_000);
});
