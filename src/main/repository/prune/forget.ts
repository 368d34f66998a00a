/** forget: apply a retention policy and delete the snapshot objects it does not keep (data stays until prune). */
import { NAMES } from '../backend/backend';
import type { Repository } from '../repo/repository';
import { listSnapshots } from '../snapshot/snapshot';
import { applyPolicy } from './forget-policy';
import type { ForgetDecision, RetentionPolicy } from './forget-policy';

export async function forget(repo: Repository, policy: RetentionPolicy, options: { dryRun?: boolean; device?: string } = {}): Promise<ForgetDecision[]> {
  let snapshots = await listSnapshots(repo);
  if (options.device !== undefined) snapshots = snapshots.filter((s) => s.device === options.device);
  const decisions = applyPolicy(snapshots, policy);
  if (!options.dryRun) {
    for (const d of decisions) if (!d.keep) await repo.backend.delete(`${NAMES.snapshots}${d.snapshot.id}`);
  }
  return decisions;
}
