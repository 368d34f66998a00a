import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log';
import { createServices } from '../services/index';
import { tempDir } from '../testing/temp-dir';

const platform = { transport: 'cli' as const, openExternal: () => Promise.resolve() };
const profile = { name: 'rvm-017', host: '127.0.0.1', port: 2222, user: 'jetson', hostKey: `SHA256:${'A'.repeat(43)}` };

describe('drill history and the RTO', () => {
  it('has no estimate before a drill; the objective comes from the device or the default', () => {
    const services = createServices({ dataDir: tempDir(), log: silentLogger, platform });
    try {
      services.devices.import(profile, 'test');
      expect(services.drills.rto('rvm-017')).toMatchObject({ status: 'unknown', estimateMs: null, objectiveMinutes: 60, objectiveFrom: 'default', lastDrill: null });
      services.settings.update({ defaultRtoMinutes: 20 }, 'test');
      expect(services.drills.rto('rvm-017')).toMatchObject({ objectiveMinutes: 20, objectiveFrom: 'default' });
      services.devices.update('rvm-017', { ...profile, rtoMinutes: 5 }, {}, 'test');
      expect(services.drills.rto('rvm-017')).toMatchObject({ objectiveMinutes: 5, objectiveFrom: 'device' });
      expect(() => services.drills.rto('nope')).toThrow(/nope/);
      expect(services.drills.list('rvm-017')).toEqual([]);

      // A drill that measured a time feeds the RTO and the "drill overdue" rule; a failed one does not.
      const id = services.devices.get('rvm-017').id;
      expect(services.drills.lastGoodAt(id)).toBeNull();
      services.history.sql.drillInsert.run('good', null, id, 'rvm-017', '2026-11-01T10:00:00.000Z');
      services.history.sql.drillFinish.run('run1', '2026-11-01T10:05:00.000Z', 'passed', 240_000, null, 'done', null, 'good');
      services.history.sql.drillInsert.run('bad', null, id, 'rvm-017', '2026-11-02T10:00:00.000Z');
      services.history.sql.drillFinish.run('run2', '2026-11-02T10:01:00.000Z', 'failed', null, 'link lost', 'done', null, 'bad');
      expect(services.drills.lastGoodAt(id)).toBe('2026-11-01T10:05:00.000Z');
      expect(services.drills.rto('rvm-017')).toMatchObject({ status: 'failed', estimateMs: 240_000, measuredAt: '2026-11-01T10:05:00.000Z', lastDrill: { id: 'bad' } });
      expect(services.drills.list('rvm-017').map((d) => d.id)).toEqual(['bad', 'good']);
    } finally {
      services.dispose();
    }
  });

  it('a drill the console left running is failed at the next start, one of a process that dies later as soon as its job is reaped; a drill without a backup fails clearly', async () => {
    const dataDir = tempDir();
    const first = createServices({ dataDir, log: silentLogger, platform, env: { JETVAULT_PASSWORD: 'drill test password' } });
    first.devices.import(profile, 'test');
    const device = first.devices.get('rvm-017');
    const now = new Date().toISOString();
    first.history.sql.drillInsert.run('d1', null, device.id, 'rvm-017', now);
    // Another process's drill, whose job that live process still runs, is not this start's to fail.
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    first.history.sql.jobInsert.run('job_other', 'drill', 'Drill rvm-018', 'dev-018', '["restore"]', 'restore', now, other.pid!, now, null);
    first.history.sql.drillInsert.run('d2', 'job_other', 'dev-018', 'rvm-018', now);
    first.dispose();

    const again = createServices({ dataDir, log: silentLogger, platform, env: { JETVAULT_PASSWORD: 'drill test password' } });
    try {
      expect(again.drills.list('rvm-017')).toMatchObject([{ id: 'd1', result: 'failed', error: 'The Jetvault process running this drill stopped before it finished' }]);
      expect(again.drills.get('d2')).toMatchObject({ result: 'running' });
      // That process dies while this one runs: its drill fails with its job at the next heartbeat's
      // look, not at the next start.
      other.kill('SIGKILL');
      await new Promise((resolve) => other.once('exit', resolve));
      expect(again.jobs.reapOrphans()).toBe(1);
      expect(again.drills.get('d2')).toMatchObject({ result: 'failed', error: 'The Jetvault process running this drill stopped before it finished' });
      expect(again.drills.rto('rvm-017').status).toBe('failed');
      await again.repository.init('drill test password');
      const started = again.drills.start('rvm-017');
      const { record } = await started.done;
      expect(record.status).toBe('failed');
      expect(record.error?.message).toBe('rvm-017 has no complete backup run to drill');
      expect(again.drills.get(started.drillId)).toMatchObject({ result: 'failed', totalMs: null, cleanup: null, sources: [] });
    } finally {
      again.dispose();
    }
  });
});
