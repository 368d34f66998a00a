import { forgetPlanned, planForget } from '../../main/maintenance/device-retention';
import type { RetentionPolicy } from '../../main/repository/prune/forget-policy';
import { isEmptyPolicy, withinCutoff } from '../../main/repository/prune/forget-policy';
import { prune } from '../../main/repository/prune/prune';
import type { Repository } from '../../main/repository/repo/repository';
import { NAMES } from '../../main/repository/backend/backend';
import { listSnapshots } from '../../main/repository/snapshot/snapshot';
import type { Command } from '../command';
import { UsageError } from '../command';
import { formatBytes, pruneIncomplete, pruneWarnings, positiveInt, REPO_OPTIONS, REPO_USAGE, shortId, withRepository } from './repo-common';
import { counted } from '../../shared/plural';

const KEEPS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

export const repoForgetCommand: Command = {
  name: 'forget',
  summary: 'remove snapshots by a retention policy',
  usage: [
    'Usage: jetvault forget [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N]',
    '                       [--keep-monthly N] [--keep-yearly N] [--keep-within 7d] [--device NAME]',
    '                       [--damaged] [--dry-run] [--prune] [--json]',
    '',
    'Device backups are kept or removed by whole runs (one snapshot per source, the same run tag), per',
    'device, as the device retention policy does; snapshots without a run (local folders) are grouped by',
    'host and paths. --prune removes the unreferenced data afterwards.',
    '--damaged removes the snapshot objects that cannot be read (`check` names them; they block prune,',
    'which cannot know what they used); it needs no --keep-* option.',
    REPO_USAGE,
  ].join('\n'),
  options: {
    ...REPO_OPTIONS,
    ...Object.fromEntries(KEEPS.map((k) => [`keep-${k}`, { type: 'string' as const }])),
    'keep-within': { type: 'string' },
    device: { type: 'string' },
    'dry-run': { type: 'boolean', short: 'n' },
    prune: { type: 'boolean' },
    damaged: { type: 'boolean' },
  },
  async run({ values }, io) {
    const policy: RetentionPolicy = {};
    for (const k of KEEPS) {
      const n = positiveInt(values[`keep-${k}`], `keep-${k}`);
      // As a device's retention (1 or more): a 0 (an unset variable in a script) kept nothing, so
      // `forget --keep-last 0 --prune` removed every snapshot and its data.
      if (n === 0) throw new UsageError(`--keep-${k} needs 1 or more (0 would keep nothing; leave it out instead)`);
      if (n !== undefined) policy[k] = n;
    }
    if (typeof values['keep-within'] === 'string') {
      // Checked before the repository is opened: a bad duration is a usage error (2), not a failure.
      try {
        withinCutoff(values['keep-within'], new Date());
      } catch (error) {
        throw new UsageError(`--keep-within: ${(error as Error).message}`);
      }
      policy.within = values['keep-within'];
    }
    const damagedOnly = values.damaged === true && isEmptyPolicy(policy);
    if (isEmptyPolicy(policy) && !damagedOnly) throw new UsageError('give at least one --keep-* option or --damaged (nothing would be removed)');
    if (damagedOnly && typeof values.device === 'string') throw new UsageError('--device goes with --keep-* options; --damaged removes every damaged snapshot (whose device cannot be read)');
    const dryRun = values['dry-run'] === true;
    // With --prune the whole run holds the exclusive lock (prune deletes packs); forget alone shares.
    return withRepository(values, io, values.prune ? 'exclusive' : 'shared', async (repo, lease) => {
      const plan = damagedOnly ? [] : await planForget(repo, policy, typeof values.device === 'string' ? values.device : undefined);
      const damaged = values.damaged === true ? await forgetDamaged(repo, dryRun) : [];
      const removed = plan.filter((d) => !d.keep);
      if (!dryRun) await forgetPlanned(repo, plan);
      const snapshotsRemoved = removed.reduce((n, d) => n + d.snapshotIds.length, 0) + damaged.length;
      let pruned = null;
      // A dry run leaves the damaged snapshots in place, and prune cannot plan around them.
      const pruneBlocked = dryRun && damaged.length > 0;
      if (values.prune && !pruneBlocked && (removed.length > 0 || damaged.length > 0)) pruned = await prune(repo, { dryRun, ...(lease ? { lease } : {}) });
      if (values.prune && pruneBlocked && !values.json) io.err('prune cannot be planned while the damaged snapshots are there: it runs once they are removed');
      if (values.json) {
        const view = (d: (typeof plan)[number]) => ({ unit: d.unit, id: d.runId, time: d.time, device: d.device, sources: d.sources, snapshots: d.snapshotIds, reasons: d.reasons });
        io.out(JSON.stringify({ dryRun, keep: plan.filter((d) => d.keep).map(view), remove: removed.map(view), damaged: damaged.map(({ id, why }) => ({ id, why })), snapshotsRemoved, prune: pruned }, null, 2));
        return pruned && pruneIncomplete(pruned) ? 1 : 0;
      }
      for (const d of damaged) io.out(`remove snapshot ${shortId(d.id)} damaged: ${d.why}`);
      for (const d of plan) io.out(`${d.keep ? 'keep  ' : 'remove'} ${d.unit === 'run' ? `run ${d.runId.slice(0, 12)}` : `snapshot ${shortId(d.runId)}`} ${d.time} ${d.device} [${d.sources.join(', ')}] ${d.reasons.join(', ')}`);
      const runs = removed.filter((d) => d.unit === 'run').length;
      io.out(`${dryRun ? 'would remove' : 'removed'} ${counted(snapshotsRemoved, 'snapshot')}${runs > 0 ? ` (${counted(runs, 'whole run')})` : ''}, kept ${counted(plan.length - removed.length, 'run or snapshot', 'runs or snapshots')}`);
      if (pruned) io.out(`${dryRun ? 'prune would free' : 'prune freed'} ${formatBytes(pruned.bytesFreed)}`);
      if (pruned) for (const line of pruneWarnings(pruned)) io.err(line);
      return pruned && pruneIncomplete(pruned) ? 1 : 0;
    });
  },
};

/**
 * The snapshot objects that cannot be read, removed (unless `dryRun`). Their trees cannot be
 * reached, so nothing of their contents is lost that was not already; what only they used becomes
 * garbage a prune can then remove.
 */
async function forgetDamaged(repo: Repository, dryRun: boolean): Promise<{ id: string; why: string }[]> {
  await listSnapshots(repo);
  const damaged = [...repo.damagedSnapshots].map(([id, why]) => ({ id, why }));
  if (dryRun) return damaged;
  for (const { id } of damaged) {
    await repo.backend.delete(`${NAMES.snapshots}${id}`);
    repo.damagedSnapshots.delete(id); // no "left out" warning for what is gone
  }
  return damaged;
}
