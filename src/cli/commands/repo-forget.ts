import { forget } from '../../main/repository/prune/forget';
import type { RetentionPolicy } from '../../main/repository/prune/forget-policy';
import { isEmptyPolicy } from '../../main/repository/prune/forget-policy';
import { prune } from '../../main/repository/prune/prune';
import type { Command } from '../command';
import { UsageError } from '../command';
import { formatBytes, positiveInt, REPO_OPTIONS, REPO_USAGE, shortId, withRepository } from './repo-common';

const KEEPS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

export const repoForgetCommand: Command = {
  name: 'forget',
  summary: 'remove snapshots by a retention policy',
  usage: [
    'Usage: jetvault forget [--keep-last N] [--keep-hourly N] [--keep-daily N] [--keep-weekly N]',
    '                       [--keep-monthly N] [--keep-yearly N] [--keep-within 7d] [--device NAME]',
    '                       [--dry-run] [--prune] [--json]',
    '',
    'The policy applies per device and path set. --prune removes the unreferenced data afterwards.',
    REPO_USAGE,
  ].join('\n'),
  options: {
    ...REPO_OPTIONS,
    ...Object.fromEntries(KEEPS.map((k) => [`keep-${k}`, { type: 'string' as const }])),
    'keep-within': { type: 'string' },
    device: { type: 'string' },
    'dry-run': { type: 'boolean', short: 'n' },
    prune: { type: 'boolean' },
  },
  async run({ values }, io) {
    const policy: RetentionPolicy = {};
    for (const k of KEEPS) {
      const n = positiveInt(values[`keep-${k}`], `keep-${k}`);
      if (n !== undefined) policy[k] = n;
    }
    if (typeof values['keep-within'] === 'string') policy.within = values['keep-within'];
    if (isEmptyPolicy(policy)) throw new UsageError('give at least one --keep-* option (nothing would be removed)');
    const dryRun = values['dry-run'] === true;
    // With --prune the whole run holds the exclusive lock (prune deletes packs); forget alone shares.
    return withRepository(values, io, values.prune ? 'exclusive' : 'shared', async (repo) => {
      const decisions = await forget(repo, policy, { dryRun, ...(typeof values.device === 'string' ? { device: values.device } : {}) });
      const removed = decisions.filter((d) => !d.keep);
      let pruned = null;
      if (values.prune && removed.length > 0) pruned = await prune(repo, { dryRun });
      if (values.json) {
        io.out(JSON.stringify({ dryRun, keep: decisions.filter((d) => d.keep).map((d) => ({ id: d.snapshot.id, time: d.snapshot.time, device: d.snapshot.device, reasons: d.reasons })), remove: removed.map((d) => ({ id: d.snapshot.id, time: d.snapshot.time, device: d.snapshot.device })), prune: pruned }, null, 2));
        return 0;
      }
      for (const d of decisions) io.out(`${d.keep ? 'keep  ' : 'remove'} ${shortId(d.snapshot.id)} ${d.snapshot.time} ${d.snapshot.device} ${d.reasons.join(', ')}`);
      io.out(`${dryRun ? 'would remove' : 'removed'} ${removed.length} snapshot(s), kept ${decisions.length - removed.length}`);
      if (pruned) io.out(`${dryRun ? 'prune would free' : 'prune freed'} ${formatBytes(pruned.bytesFreed)}`);
      return 0;
    });
  },
};
