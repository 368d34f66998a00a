/**
 * Retention for a device: the policy (keep-last/hourly/daily/weekly/monthly/yearly/within, restic
 * semantics) applies to the device's *runs*, not to each source's snapshots on its own. A run is an
 * app-consistent bundle (one snapshot per source); forgetting sources of a run independently would
 * leave incomplete runs that the catalog hides. A run is kept or forgotten whole.
 */
import type { Repository } from '../repository/repo/repository';
import { applyPolicy, isEmptyPolicy } from '../repository/prune/forget-policy';
import type { RetentionPolicy } from '../repository/prune/forget-policy';
import { NAMES } from '../repository/backend/backend';
import { listSnapshots } from '../repository/snapshot/snapshot';
import type { SnapshotWithId } from '../repository/snapshot/snapshot';

export interface RunDecision {
  runId: string;
  time: string;
  sources: string[];
  snapshotIds: string[];
  keep: boolean;
  reasons: string[];
}

const tagValue = (tags: string[], key: string): string | null => tags.find((t) => t.startsWith(`${key}:`))?.slice(key.length + 1) ?? null;

/** The device's runs, newest first, each with the policy's verdict. */
export async function planDeviceRetention(repo: Repository, device: string, policy: RetentionPolicy): Promise<RunDecision[]> {
  const runs = new Map<string, SnapshotWithId[]>();
  for (const s of await listSnapshots(repo)) {
    if (s.device !== device) continue;
    const run = tagValue(s.tags, 'run') ?? `snapshot-${s.id}`;
    runs.set(run, [...(runs.get(run) ?? []), s]);
  }
  // One stand-in per run (its newest snapshot's time) in a single group, so buckets count runs.
  const standIns = [...runs.entries()].map(([runId, members]) => {
    const newest = members.reduce((a, b) => (b.time > a.time ? b : a));
    return { ...newest, id: runId, paths: ['(run)'] };
  });
  const decisions = isEmptyPolicy(policy) ? standIns.map((s) => ({ snapshot: s, keep: true, reasons: ['no policy'] })) : applyPolicy(standIns, policy);
  return decisions
    .map(({ snapshot, keep, reasons }) => {
      const members = runs.get(snapshot.id)!;
      return { runId: snapshot.id, time: snapshot.time, sources: members.map((m) => tagValue(m.tags, 'source') ?? m.source).sort(), snapshotIds: members.map((m) => m.id), keep, reasons };
    })
    .sort((a, b) => b.time.localeCompare(a.time));
}

/** Forgets the runs the policy does not keep (their data stays until a prune). */
export async function applyDeviceRetention(repo: Repository, device: string, policy: RetentionPolicy): Promise<{ runsForgotten: number; snapshotsForgotten: number; decisions: RunDecision[] }> {
  const decisions = await planDeviceRetention(repo, device, policy);
  let snapshotsForgotten = 0;
  for (const run of decisions.filter((d) => !d.keep)) {
    for (const id of run.snapshotIds) {
      await repo.backend.delete(`${NAMES.snapshots}${id}`);
      snapshotsForgotten++;
    }
  }
  return { runsForgotten: decisions.filter((d) => !d.keep).length, snapshotsForgotten, decisions };
}
