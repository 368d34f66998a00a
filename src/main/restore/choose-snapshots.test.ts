/** The planner's choice of snapshots for a point in time: the run in force, per source. */
import { describe, expect, it } from 'vitest';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';
import { chooseSnapshots } from './restore-service';

let n = 0;
function snap(device: string, source: string, run: string, time: string, kind = 'files'): SnapshotWithId {
  n++;
  return {
    id: n.toString(16).padStart(64, '0'),
    version: 1,
    time,
    tree: '0'.repeat(64),
    paths: [],
    hostname: 'laptop',
    username: 'tech',
    device,
    source: 'ssh',
    tags: [`device:${device}`, `source:${source}`, `kind:${kind}`, `run:${run}`],
    summary: { files: 0, dirs: 0, bytes: 0, filesRead: 0, blobsAdded: 0, bytesAdded: 0, errors: 0, durationMs: 0 },
  };
}

const all = [
  snap('rvm-1', 'app', 'r1', '2026-11-01T10:00:00.000Z'),
  snap('rvm-1', 'db', 'r1', '2026-11-01T10:00:05.000Z', 'postgres'),
  snap('rvm-2', 'app', 'x1', '2026-11-01T11:00:00.000Z'),
  snap('rvm-1', 'db', 'r2', '2026-11-02T10:00:00.000Z', 'postgres'), // a database-only run
  snap('rvm-1', 'app', 'r3', '2026-11-03T10:00:00.000Z'),
  snap('rvm-1', 'db', 'r3', '2026-11-03T10:00:04.000Z', 'postgres'),
];
const runs = (chosen: SnapshotWithId[]) => chosen.map((s) => `${s.tags[1]}@${s.tags[3]}`).sort();

describe('chooseSnapshots', () => {
  it('takes the sources of the run in force at the time, and other sources from their latest earlier snapshot', () => {
    expect(runs(chooseSnapshots(all, 'rvm-1', ['app', 'db'], { at: '2026-11-01T12:00:00Z' }).chosen)).toEqual(['source:app@run:r1', 'source:db@run:r1']);
    const mid = chooseSnapshots(all, 'rvm-1', ['app', 'db'], { at: '2026-11-02T12:00:00Z', scope: 'device' });
    expect(runs(mid.chosen)).toEqual(['source:app@run:r1', 'source:db@run:r2']);
    expect(mid.warnings).toEqual([expect.stringMatching(/"app" was not part of the run in force \(r2\)/)]);
    expect(runs(chooseSnapshots(all, 'rvm-1', ['app', 'db'], {}).chosen)).toEqual(['source:app@run:r3', 'source:db@run:r3']);
  });

  it('counts a snapshot committed exactly at the time, and never one after it', () => {
    expect(runs(chooseSnapshots(all, 'rvm-1', ['app', 'db'], { at: '2026-11-03T10:00:00Z' }).chosen)).toEqual(['source:app@run:r3', 'source:db@run:r2']);
  });

  it('one source: its latest snapshot at or before the time; nothing before the first backup', () => {
    expect(runs(chooseSnapshots(all, 'rvm-1', ['app', 'db'], { at: '2026-11-02T12:00:00Z', scope: 'source', sources: ['app'] }).chosen)).toEqual(['source:app@run:r1']);
    expect(() => chooseSnapshots(all, 'rvm-1', ['app'], { at: '2026-10-01T00:00:00Z' })).toThrow(/no snapshot at or before/);
    expect(() => chooseSnapshots(all, 'rvm-1', ['app'], { at: '2026-11-01T10:00:01Z', scope: 'source', sources: ['db'] })).toThrow(/no snapshot of "db"/);
    expect(() => chooseSnapshots(all, 'rvm-3', [], {})).toThrow(/rvm-3 has no snapshot/);
  });
});
