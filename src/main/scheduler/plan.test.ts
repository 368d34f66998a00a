import { describe, expect, it } from 'vitest';
import { cronError, nextCronTime, parseCron } from '../../shared/cron';
import { leadTimeMs, planDevice, planSchedule, retryDelayMs, toStart } from './plan';
import type { DeviceScheduleState } from './plan';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const MIN = 60_000;
const at = (minutes: number) => new Date(T0 + minutes * MIN).toISOString();

function device(overrides: Partial<DeviceScheduleState> = {}): DeviceScheduleState {
  return { name: 'rvm-017', rpoMinutes: 60, ready: true, lastSuccessAt: at(-10), lastAttemptAt: at(-11), failuresInRow: 0, recentDurationsMs: [60_000], running: false, ...overrides };
}

describe('scheduler decisions', () => {
  it('a device becomes due before its RPO runs out, early enough for a usual run', () => {
    // RPO 60 min, runs of ~1 min: lead = max(10% of RPO, 1.5 × 1 min) = 6 min.
    expect(leadTimeMs(60, [60_000])).toBe(6 * MIN);
    expect(leadTimeMs(60, [30 * MIN, 40 * MIN, 50 * MIN])).toBe(30 * MIN); // capped at half the RPO
    const d = device({ lastSuccessAt: at(-50) });
    expect(planDevice(d, T0)).toEqual({ device: 'rvm-017', state: 'waiting', dueAt: at(4), reason: 'RPO of 60 min' });
    expect(planDevice(d, T0 + 4 * MIN).state).toBe('due');
    expect(planDevice(device({ lastSuccessAt: null, lastAttemptAt: null }), T0)).toMatchObject({ state: 'due', reason: 'never backed up' });
  });

  it('a cron schedule fires on top of the RPO, counted from the last attempt', () => {
    const d = device({ rpoMinutes: 24 * 60, schedule: '*/15 * * * *', lastSuccessAt: at(-5), lastAttemptAt: at(-5) });
    const entry = planDevice(d, T0);
    expect(entry.reason).toBe('schedule */15 * * * *');
    expect(Date.parse(entry.dueAt!) - T0).toBeLessThanOrEqual(15 * MIN);
    expect(planDevice(d, T0 + 15 * MIN).state).toBe('due');
  });

  it('a source with its own schedule runs alone; a whole-device run due at the same time covers it', () => {
    const d = device({ rpoMinutes: 24 * 60, lastSuccessAt: at(-60), lastAttemptAt: at(-20), sourceSchedules: [{ source: 'db', schedule: '*/15 * * * *', lastAttemptAt: at(-20) }] });
    expect(planDevice(d, T0)).toMatchObject({ state: 'due', reason: 'db: schedule */15 * * * *', sources: ['db'] });
    const whole = planDevice({ ...d, lastSuccessAt: at(-25 * 60) }, T0);
    expect(whole.state).toBe('due');
    expect(whole.sources).toBeUndefined();
    expect(whole.reason).toBe('RPO of 1440 min');
  });

  it('after failures it waits 1, 2, 4 … minutes (bounded by the RPO) before trying again', () => {
    expect([1, 2, 3, 4, 10].map((n) => retryDelayMs(60, n) / MIN)).toEqual([1, 2, 4, 8, 15]);
    expect(retryDelayMs(24 * 60, 10) / MIN).toBe(30);
    const failing = device({ lastSuccessAt: at(-70), lastAttemptAt: at(-1), failuresInRow: 3 });
    expect(planDevice(failing, T0)).toMatchObject({ state: 'waiting', dueAt: at(3), reason: 'retry after 3 failed attempts' });
    expect(planDevice(failing, T0 + 3 * MIN).state).toBe('due');
  });

  it('offline devices wait for their probe; running and not-ready devices are never started', () => {
    expect(planDevice(device({ lastSuccessAt: null, offlineUntil: T0 + 2 * MIN }), T0)).toMatchObject({ state: 'offline', dueAt: at(2) });
    expect(planDevice(device({ running: true }), T0).state).toBe('running');
    expect(planDevice(device({ ready: false, notReadyReason: 'no sources yet' }), T0)).toMatchObject({ state: 'not ready', dueAt: null, reason: 'no sources yet' });
  });

  it('the queue runs longest-overdue first and respects how many may run at once', () => {
    const queue = planSchedule(
      [
        device({ name: 'a', lastSuccessAt: at(-58) }),
        device({ name: 'b', lastSuccessAt: null }),
        device({ name: 'c', lastSuccessAt: at(-70) }),
        device({ name: 'd', running: true }),
        device({ name: 'e', lastSuccessAt: at(-1) }),
      ],
      T0,
    );
    expect(queue.map((e) => [e.device, e.state])).toEqual([
      ['d', 'running'],
      ['c', 'due'],
      ['a', 'due'],
      ['b', 'due'],
      ['e', 'waiting'],
    ]);
    expect(toStart(queue, 3)).toEqual(['c', 'a']);
    expect(toStart(queue, 1)).toEqual([]);
  });

  it('devices level in the queue (never backed up, offline, not ready) are in the order the Fleet page lists them: rvm-2 before rvm-10', () => {
    const queue = planSchedule(['rvm-10', 'rvm-2', 'rvm-1'].map((name) => device({ name, lastSuccessAt: null })), T0);
    expect(queue.map((e) => e.device)).toEqual(['rvm-1', 'rvm-2', 'rvm-10']);
    expect(toStart(queue, 2)).toEqual(['rvm-1', 'rvm-2']);
  });
});

describe('cron schedules', () => {
  it('parses the five fields and finds the next time', () => {
    const local = (y: number, mo: number, d: number, h: number, mi: number) => new Date(y, mo - 1, d, h, mi);
    expect(nextCronTime(parseCron('0 */6 * * *'), local(2026, 11, 30, 7, 0))).toEqual(local(2026, 11, 30, 12, 0));
    expect(nextCronTime(parseCron('30 2 * * 1-5'), local(2026, 11, 28, 12, 0))).toEqual(local(2026, 11, 30, 2, 30)); // Saturday → Monday
    expect(nextCronTime(parseCron('0 0 1 * *'), local(2026, 11, 30, 0, 0))).toEqual(local(2026, 12, 1, 0, 0));
    expect(nextCronTime(parseCron('15,45 * * * 7'), local(2026, 11, 29, 10, 20))).toEqual(local(2026, 11, 29, 10, 45)); // 7 is Sunday
    expect(nextCronTime(parseCron('0 0 31 2 *'), local(2026, 1, 1, 0, 0))).toBeNull();
  });

  it('keeps a daily time across daylight saving changes (TZ Europe/Berlin): once on each day', () => {
    const tz = process.env.TZ;
    process.env.TZ = 'Europe/Berlin';
    try {
      const fires = (expression: string, from: string, n: number) => {
        const out: string[] = [];
        for (let at: Date | null = new Date(from); out.length < n && at; ) {
          at = nextCronTime(parseCron(expression), at);
          if (at) out.push(at.toISOString());
        }
        return out;
      };
      // 28 March 2027: 02:00 CET becomes 03:00 CEST, 02:00 and 02:30 never happen that night; the run
      // comes as soon as the clock has jumped (cron runs what the jump skipped), not a day later.
      expect(fires('0 2 * * *', '2027-03-26T12:00:00Z', 3)).toEqual(['2027-03-27T01:00:00.000Z', '2027-03-28T01:00:00.000Z', '2027-03-29T00:00:00.000Z']);
      expect(fires('30 2 * * *', '2027-03-27T12:00:00Z', 2)).toEqual(['2027-03-28T01:30:00.000Z', '2027-03-29T00:30:00.000Z']);
      // 25 October 2026: 03:00 CEST becomes 02:00 CET, 02:00–02:59 happen twice; a daily time runs once.
      expect(fires('30 2 * * *', '2026-10-24T12:00:00Z', 3)).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
      // Asked during the repeated hour, after the first 02:30 has passed: the next one is the next day.
      expect(fires('30 2 * * *', '2026-10-25T01:10:00Z', 1)).toEqual(['2026-10-26T01:30:00.000Z']);
      // A schedule of every hour keeps its pace through the repeated hour (Vixie cron's wildcard hours):
      // 02:00 and 02:30 CEST, then 02:00 and 02:30 CET, then 03:00 — never a 90-minute gap.
      expect(fires('*/30 * * * *', '2026-10-24T23:45:00Z', 5)).toEqual(['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-25T02:00:00.000Z']);
      expect(fires('15 */2 * * *', '2026-10-24T23:00:00Z', 3)).toEqual(['2026-10-25T00:15:00.000Z', '2026-10-25T01:15:00.000Z', '2026-10-25T03:15:00.000Z']);
      // And through the spring gap: 01:30 CET, then 03:00 CEST (02:00 and 02:30 never come), 03:30.
      expect(fires('*/30 * * * *', '2027-03-28T00:15:00Z', 3)).toEqual(['2027-03-28T00:30:00.000Z', '2027-03-28T01:00:00.000Z', '2027-03-28T01:30:00.000Z']);
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('explains what is wrong with a bad schedule', () => {
    expect(cronError('* * *')).toMatch(/five fields/);
    expect(cronError('61 * * * *')).toMatch(/out of range for the minute/);
    expect(cronError('*/0 * * * *')).toMatch(/out of range/);
    expect(cronError('a * * * *')).toMatch(/not a valid minute/);
    expect(cronError('0 3 * * *')).toBeNull();
  });
});
