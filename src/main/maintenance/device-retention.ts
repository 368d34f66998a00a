/**
 * Retention for a device: the policy (keep-last/hourly/daily/weekly/monthly/yearly/within, restic
 * semantics) keeps or forgets the device's *runs* whole, never one source of a run. A run is an
 * app-consistent bundle (one snapshot per source); forgetting sources of a run independently would
 * leave incomplete runs that the catalog hides.
 *
 * The policy is applied once per source, over the runs that hold that source, and a run is kept if
 * any of its sources keeps it. Counting runs alone would let a source on its own schedule (the
 * database every 15 minutes) fill every slot: `last: 5` or `daily: 7` would keep five database-only
 * runs, or each day's last one, and forget every run that held the configuration and the app.
 */
import type { Repository } from '../repository/repo/repository';
import { applyPolicy, isEmptyPolicy } from '../repository/prune/forget-policy';
import type { RetentionPolicy } from '../repository/prune/forget-policy';
import { NAMES } from '../repository/backend/backend';
import { listSnapshots, sourceOf, tagValue } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';

export interface RunDecision {
  runId: string;
  time: string;
  sources: string[];
  snapshotIds: string[];
  keep: boolean;
  reasons: string[];
}


/** The device's runs, newest first, each with the policy's verdict. */
export async function planDeviceRetention(repo: Repository, device: string, policy: RetentionPolicy): Promise<RunDecision[]> {
  return planRuns((await listSnapshots(repo)).filter((s) => s.device === device), policy);
}

/** One device's snapshots grouped into runs (by their run tag; an untagged snapshot is a run of its own), newest first, with the verdict. */
export function planRuns(snapshots: SnapshotWithId[], policy: RetentionPolicy): RunDecision[] {
  const runs = new Map<string, SnapshotWithId[]>();
  for (const s of snapshots) {
    const run = tagValue(s.tags, 'run') ?? `snapshot-${s.id}`;
    runs.set(run, [...(runs.get(run) ?? []), s]);
  }
  // One stand-in per run and source (the run's newest time), grouped by source: each source's
  // buckets count the runs that hold it.
  const standIns = [...runs.entries()].flatMap(([runId, members]) => {
    const newest = members.reduce((a, b) => (b.time > a.time ? b : a));
    return [...new Set(members.map(sourceOf))].map((source) => ({ ...newest, id: runId, paths: [source] }));
  });
  const verdicts = new Map<string, Map<string, string[]>>(); // run → reason → sources that give it
  const decisions = isEmptyPolicy(policy) ? standIns.map((s) => ({ snapshot: s, keep: true, reasons: ['no policy'] })) : applyPolicy(standIns, policy);
  for (const { snapshot, reasons } of decisions) {
    const byReason = verdicts.get(snapshot.id) ?? new Map<string, string[]>();
    for (const reason of reasons) byReason.set(reason, [...(byReason.get(reason) ?? []), snapshot.paths[0]!]);
    verdicts.set(snapshot.id, byReason);
  }
  return [...runs.entries()]
    .map(([runId, members]) => {
      const sources = [...new Set(members.map(sourceOf))].sort();
      const byReason = verdicts.get(runId)!;
      // A reason every source of the run gives is the run's; otherwise it names the sources it keeps.
      const reasons = [...byReason].map(([reason, from]) => (from.length === sources.length ? reason : `${reason} (${from.sort().join(', ')})`));
      const time = members.reduce((a, b) => (b.time > a.time ? b : a)).time;
      return { runId, time, sources, snapshotIds: members.map((m) => m.id), keep: reasons.length > 0, reasons };
    })
    .sort((a, b) => b.time.localeCompare(a.time));
}

export interface ForgetPlanEntry extends RunDecision {
  device: string;
  /** run: a device's run (one snapshot per source) kept or forgotten whole; snapshot: a snapshot without a run (a local backup), grouped by paths. */
  unit: 'run' | 'snapshot';
}

/**
 * What `forget` removes: snapshots that belong to a run (device backups, tagged `run:`) are grouped
 * per device into whole runs and kept or forgotten whole, as the device policy does after each
 * backup; snapshots without a run (local `backup` of folders) keep restic's grouping by device and
 * paths. Newest first.
 */
export async function planForget(repo: Repository, policy: RetentionPolicy, device?: string): Promise<ForgetPlanEntry[]> {
  const all = (await listSnapshots(repo)).filter((s) => device === undefined || s.device === device);
  const byDevice = new Map<string, SnapshotWithId[]>();
  const loose: SnapshotWithId[] = [];
  for (const s of all) {
    if (tagValue(s.tags, 'run') === null) loose.push(s);
    else byDevice.set(s.device, [...(byDevice.get(s.device) ?? []), s]);
  }
  const out: ForgetPlanEntry[] = [];
  for (const [name, snapshots] of byDevice) out.push(...planRuns(snapshots, policy).map((d) => ({ ...d, device: name, unit: 'run' as const })));
  for (const { snapshot, keep, reasons } of applyPolicy(loose, policy)) {
    out.push({ runId: snapshot.id, time: snapshot.time, sources: [snapshot.source], snapshotIds: [snapshot.id], keep, reasons, device: snapshot.device, unit: 'snapshot' });
  }
  return out.sort((a, b) => b.time.localeCompare(a.time) || a.device.localeCompare(b.device));
}

/** Deletes the snapshots of every entry the plan does not keep (their data stays until a prune). */
export async function forgetPlanned(repo: Repository, plan: readonly RunDecision[]): Promise<number> {
  let deleted = 0;
  for (const entry of plan.filter((d) => !d.keep)) {
    for (const id of entry.snapshotIds) {
      await repo.backend.delete(`${NAMES.snapshots}${id}`);
      deleted++;
    }
  }
  return deleted;
}

/** Forgets the runs the policy does not keep (their data stays until a prune). */
export async function applyDeviceRetention(repo: Repository, device: string, policy: RetentionPolicy): Promise<{ runsForgotten: number; snapshotsForgotten: number; decisions: RunDecision[] }> {
  const decisions = await planDeviceRetention(repo, device, policy);
  const snapshotsForgotten = await forgetPlanned(repo, decisions);
  return { runsForgotten: decisions.filter((d) => !d.keep).length, snapshotsForgotten, decisions };
}
