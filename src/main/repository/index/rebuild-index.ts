/**
 * rebuild-index: the index is a cache of the pack headers, so it can always be rebuilt from the
 * packs alone. Index objects are listed before packs, so every pack they name is among those read;
 * the new index is written before the old ones are deleted. Safe next to a running backup.
 */
import { NAMES } from '../backend/backend';
import { isStoreUnreachable, RepositoryError, throwIfAborted } from '../errors';
import type { ProgressFn } from '../errors';
import type { IndexedPack } from './index-file';
import type { Repository } from '../repo/repository';

export interface RebuildReport {
  packs: number;
  blobs: number;
  unreadable: string[];
  oldIndexes: number;
}

export async function rebuildIndex(repo: Repository, options: { signal?: AbortSignal; onProgress?: ProgressFn } = {}): Promise<RebuildReport> {
  const oldIndexes = (await repo.backend.list(NAMES.index)).map((o) => o.name.slice(NAMES.index.length));
  const packs: IndexedPack[] = [];
  const unreadable: string[] = [];
  for (const object of await repo.backend.list(NAMES.data)) {
    throwIfAborted(options.signal);
    const id = NAMES.packId(object.name);
    try {
      packs.push(await repo.readPackHeader(id, object.size));
    } catch (error) {
      // A pack the store did not hand over (unreachable, refused) is not damaged: leaving it out of
      // the new index, which replaces the old ones, would drop its blobs for a passing outage.
      if (isStoreUnreachable(error)) {
        throw new RepositoryError(error.failure, `rebuild-index stopped, nothing was changed: ${error.message}`);
      }
      unreadable.push(id);
    }
    options.onProgress?.({ items: 1 });
  }
  await repo.writeIndex(packs, oldIndexes);
  for (const id of oldIndexes) await repo.backend.delete(`${NAMES.index}${id}`);
  repo.indexIds = repo.indexIds.filter((id) => !oldIndexes.includes(id));
  for (const pack of packs) repo.index.addPack(pack);
  return { packs: packs.length, blobs: packs.reduce((n, p) => n + p.entries.length, 0), unreadable, oldIndexes: oldIndexes.length };
}
