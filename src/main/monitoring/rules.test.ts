import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../../shared/schemas/monitoring';
import type { Rules } from '../../shared/schemas/monitoring';
import type { DiskUsage } from '../../shared/schemas/devices';
import { evaluateRules } from './rules';
import type { DeviceState, MonitorInput, RunSummary } from './rules';

const T0 = Date.parse('2026-11-30T12:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const run = (status: RunSummary['status'], startMin: number, seconds: number, error: string | null = null): RunSummary => ({
  status,
  startedAt: at(startMin),
  finishedAt: new Date(T0 + startMin * 60_000 + seconds * 1000).toISOString(),
  error,
});

function device(overrides: Partial<DeviceState> = {}): DeviceState {
  return { id: 'd1', name: 'rvm-017', rpoMinutes: 60, createdAt: at(-10_000), lastSuccessAt: at(-30), runs: [run('succeeded', -31, 60)], disks: null, ...overrides };
}

function input(devices: DeviceState[], now = at(0), extra: Partial<MonitorInput> = {}): MonitorInput {
  return { now: new Date(now), devices, repository: { location: '/repo', freeBytes: 500 * 1024 ** 3 }, lastCheck: null, ...extra };
}

const rules = (patch: Partial<Rules> = {}): Rules => ({ ...DEFAULT_RULES, ...patch });
const ids = (conditions: { rule: string }[]) => conditions.map((c) => c.rule).sort();

function disks(mounts: { mount: string; size: number; avail: number; fs?: string }[]): DiskUsage[] {
  return mounts.map((m) => ({ mount: m.mount, filesystem: m.fs ?? '/dev/mmcblk0p1', sizeBytes: m.size, usedBytes: m.size - m.avail, availableBytes: m.avail }));
}

describe('monitoring rules', () => {
  it('a healthy device raises nothing', () => {
    expect(evaluateRules(input([device()]), rules())).toEqual([]);
  });

  it('RPO breached: raised once the last good backup is older than threshold × RPO, cleared by a new one', () => {
    const d = device({ lastSuccessAt: at(-61) });
    expect(ids(evaluateRules(input([d]), rules()))).toEqual(['rpoBreached']);
    expect(evaluateRules(input([d]), rules())[0]!.message).toMatch(/61 min old, over its RPO of 60 min/);
    // A looser threshold (1.5 × RPO) tolerates the same age.
    expect(evaluateRules(input([d]), rules({ rpoBreached: { enabled: true, threshold: 1.5 } }))).toEqual([]);
    expect(evaluateRules(input([{ ...d, lastSuccessAt: at(-5) }]), rules())).toEqual([]);
    // Never backed up: counted from when the device was added.
    expect(evaluateRules(input([device({ lastSuccessAt: null, runs: [], createdAt: at(-90) })]), rules())[0]!.message).toMatch(/never backed up/);
    expect(evaluateRules(input([device({ lastSuccessAt: null, runs: [], createdAt: at(-10) })]), rules())).toEqual([]);
  });

  it('backup failed: counts failures in a row (cancelled runs do not interrupt), threshold configurable', () => {
    const failing = device({ runs: [run('failed', -5, 3, 'rvm-017 is unreachable (EHOSTUNREACH)'), run('cancelled', -10, 1), run('failed', -20, 3), run('succeeded', -31, 60)] });
    const raised = evaluateRules(input([failing]), rules());
    expect(ids(raised)).toEqual(['backupFailed']);
    expect(raised[0]!.message).toBe('rvm-017: the last 2 backups failed: rvm-017 is unreachable (EHOSTUNREACH)');
    expect(evaluateRules(input([failing]), rules({ backupFailed: { enabled: true, threshold: 3 } }))).toEqual([]);
    expect(evaluateRules(input([failing]), rules({ backupFailed: { enabled: false, threshold: 1 } }))).toEqual([]);
    expect(evaluateRules(input([device({ runs: [run('succeeded', -2, 60), ...failing.runs] })]), rules())).toEqual([]);
  });

  it('device disk low: per mount under threshold % free, pseudo filesystems ignored', () => {
    const GiB = 1024 ** 3;
    const d = device({ disks: disks([{ mount: '/', size: 64 * GiB, avail: 3 * GiB }, { mount: '/data', size: 100 * GiB, avail: 50 * GiB }, { mount: '/proc', size: 1, avail: 0, fs: 'proc' }]) });
    const raised = evaluateRules(input([d]), rules());
    expect(ids(raised)).toEqual(['deviceDiskLow']);
    expect(raised[0]!.message).toBe('rvm-017: little free space on / (4.7% free)');
    expect(evaluateRules(input([d]), rules({ deviceDiskLow: { enabled: true, threshold: 4 } }))).toEqual([]);
  });

  it('backup slower than usual: the newest run against the median of the previous ones', () => {
    const usual = [run('succeeded', -60, 60), run('succeeded', -120, 62), run('succeeded', -180, 58), run('succeeded', -240, 61)];
    const slow = device({ runs: [run('succeeded', -5, 200), ...usual] });
    const raised = evaluateRules(input([slow]), rules());
    expect(ids(raised)).toEqual(['backupSlower']);
    expect(raised[0]!.message).toMatch(/took 200\.0 s, 3\.3× its usual 60\.5 s/);
    expect(evaluateRules(input([slow]), rules({ backupSlower: { enabled: true, threshold: 4 } }))).toEqual([]);
    // A normal run after it clears the condition; without enough history there is no baseline.
    expect(evaluateRules(input([device({ runs: [run('succeeded', -1, 59), ...slow.runs] })]), rules())).toEqual([]);
    expect(evaluateRules(input([device({ runs: [run('succeeded', -5, 200), usual[0]!] })]), rules())).toEqual([]);
  });

  it('repository storage low and verification failed are about the laptop, not a device', () => {
    const low = evaluateRules(input([], at(0), { repository: { location: '/repo', freeBytes: 2 * 1024 ** 3 } }), rules());
    expect(low).toEqual([{ rule: 'repositoryStorageLow', subject: 'repository', deviceId: null, severity: 'critical', message: 'Only 2.0 GiB free where the repository is (/repo)' }]);
    expect(evaluateRules(input([], at(0), { repository: { location: '/repo', freeBytes: 2 * 1024 ** 3 } }), rules({ repositoryStorageLow: { enabled: true, threshold: 1 } }))).toEqual([]);
    const failedCheck = evaluateRules(input([], at(0), { lastCheck: run('failed', -60, 30, 'pack 3f2a… is damaged') }), rules());
    expect(ids(failedCheck)).toEqual(['verificationFailed']);
    expect(failedCheck[0]!.message).toMatch(/damaged/);
    expect(evaluateRules(input([], at(0), { lastCheck: run('succeeded', -30, 30) }), rules())).toEqual([]);
  });

  it('drill overdue: only where drills are recorded, counted from the last drill or from when the device was added', () => {
    expect(evaluateRules(input([device()]), rules())).toEqual([]); // drills not recorded: no opinion
    expect(ids(evaluateRules(input([device({ lastDrillAt: null, createdAt: at(-40 * 24 * 60) })]), rules()))).toEqual(['drillOverdue']);
    expect(ids(evaluateRules(input([device({ lastDrillAt: at(-31 * 24 * 60) })]), rules()))).toEqual(['drillOverdue']);
    expect(evaluateRules(input([device({ lastDrillAt: at(-2 * 24 * 60) })]), rules())).toEqual([]);
    expect(evaluateRules(input([device({ lastDrillAt: null, createdAt: at(-60) })]), rules())).toEqual([]);
  });

  it('a time ahead of the clock (stamped while it ran ahead) is no protection: RPO and drill reminders hold at once', () => {
    const added = device({ createdAt: at(3 * 24 * 60), lastSuccessAt: null, runs: [] });
    const rpo = evaluateRules(input([added]), rules());
    expect(ids(rpo)).toEqual(['rpoBreached']);
    expect(rpo[0]!.message).toBe(`rvm-017: never backed up; added at ${at(3 * 24 * 60)}, ahead of this computer's clock, so how long it has waited is not known (RPO 60 min)`);
    // A few minutes ahead is a clock stepped back a little (NTP after a sleep): still counted.
    expect(evaluateRules(input([device({ createdAt: at(2), lastSuccessAt: null, runs: [] })]), rules())).toEqual([]);
    const drill = evaluateRules(input([device({ lastDrillAt: null, createdAt: at(3 * 24 * 60) })]), rules());
    expect(drill.map((c) => c.message)).toEqual([`rvm-017: no restore drill since it was added at ${at(3 * 24 * 60)}, ahead of this computer's clock`]);
    expect(ids(evaluateRules(input([device({ lastDrillAt: at(400 * 24 * 60) })]), rules()))).toEqual(['drillOverdue']);
    // Nor is an offsite copy of a run dated ahead: it would have looked fresh until the clock got there.
    const offsite = evaluateRules(input([device({ lastOffsiteAt: at(30 * 24 * 60) })]), rules());
    expect(offsite.map((c) => c.message)).toEqual([`rvm-017: the newest offsite copy is of a run dated ${at(30 * 24 * 60)}, ahead of this computer's clock, so how old it is is not known`]);
    expect(evaluateRules(input([device({ lastOffsiteAt: at(2) })]), rules())).toEqual([]);
  });

  it('offsite copy missing: only once a repository is offsite; none yet, or the newest older than the threshold in days', () => {
    expect(evaluateRules(input([device()]), rules())).toEqual([]); // no repository is offsite: no opinion
    expect(evaluateRules(input([device({ lastOffsiteAt: null })]), rules()).map((c) => c.message)).toEqual(['rvm-017: no copy in an offsite repository yet']);
    expect(evaluateRules(input([device({ lastOffsiteAt: at(-6 * 24 * 60) })]), rules())).toEqual([]);
    expect(evaluateRules(input([device({ lastOffsiteAt: at(-8 * 24 * 60) })]), rules()).map((c) => c.message)).toEqual(['rvm-017: the newest offsite copy is 8 days old (over 7 days)']);
  });
});
