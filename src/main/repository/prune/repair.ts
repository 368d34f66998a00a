/**
 * repair-packs (under the exclusive lock): packs `check --read-data` found damaged are rewritten
 * without what no longer reads. Every blob that still opens is stored again in a new pack; then one
 * index naming every other pack and the new ones replaces the old index objects, and the damaged
 * packs are deleted (prune's crash-safe order). What could not be read is then no longer in the
 * index, so the next backup of the same files stores it again — while the damaged pack was indexed,
 * every later backup reused the damaged copy and the damage never went away.
 */
import { NAMES } from '../backend/backend';
import { isDamage, RepositoryError, throwIfAborted } from '../errors';
import type { ProgressFn } from '../errors';
import type { IndexedPack } from '../index/index-file';
import type { Lease } from '../lock/lock';
import { PackUploader } from '../pack/pack-uploader';
import type { Repository } from '../repo/repository';

export interface RepairReport {
  /** The damaged packs, removed. */
  packs: string[];
  blobsSalvaged: number;
  /** Blobs that could not be read and are held nowhere else: gone until a backup stores them again. */
  blobsLost: string[];
  packsWritten: number;
}

/** `ids`: pack ids, or unique prefixes of 8 hex digits or more (as check prints them). */
export async function repairPacks(repo: Repository, ids: readonly string[], options: { lease?: Lease; signal?: AbortSignal; onProgress?: ProgressFn } = {}): Promise<RepairReport> {
  await repo.refreshIndex();
  const targets: IndexedPack[] = [];
  for (const id of ids) {
    const matches = /^[0-9a-f]{8,64}$/.test(id) ? [...repo.index.packs.values()].filter((p) => p.id.startsWith(id)) : [];
    if (matches.length !== 1) throw new RepositoryError(matches.length === 0 ? 'not-found' : 'invalid', `${matches.length === 0 ? 'no indexed pack' : 'more than one pack'} starts with "${id}" (give the pack id \`jetvault check --read-data\` names)`);
    if (!targets.includes(matches[0]!)) targets.push(matches[0]!);
  }
  // Read from the store, not from what this process read before.
  repo.dropReadCaches();
  const uploader = new PackUploader(repo.backend, repo.keys.enc, repo.config.packSize, () => Promise.resolve(), () => false);
  const session = uploader.session();
  const unread: string[] = [];
  let blobsSalvaged = 0;
  for (const pack of targets) {
    for (const entry of pack.entries) {
      throwIfAborted(options.signal);
      if (repo.index.get(entry.id)?.pack !== pack.id) continue; // the copy the index reads is elsewhere
      let data: Buffer;
      try {
        data = await repo.loadBlob(entry.id);
      } catch (error) {
        if (!isDamage(error)) throw error;
        unread.push(entry.id);
        continue;
      }
      await uploader.add(session, entry.type, Buffer.from(entry.id, 'hex'), data);
      blobsSalvaged++;
      options.onProgress?.({ bytes: data.length });
    }
  }
  const written = await uploader.flush(session);
  await options.lease?.assertHeld();
  const remaining = [...repo.index.packs.values()].filter((p) => !targets.includes(p));
  const oldIndexes = [...repo.indexIds];
  await repo.writeIndex([...remaining, ...written], oldIndexes);
  for (const id of oldIndexes) await repo.backend.delete(`${NAMES.index}${id}`);
  repo.indexIds = repo.indexIds.filter((id) => !oldIndexes.includes(id));
  repo.index.replace([...remaining, ...written]);
  for (const pack of targets) {
    await options.lease?.assertHeld();
    await repo.backend.delete(NAMES.pack(pack.id));
    options.onProgress?.({ items: 1 });
  }
  repo.dropReadCaches();
  return { packs: targets.map((p) => p.id), blobsSalvaged, blobsLost: unread.filter((id) => !repo.index.has(id)), packsWritten: written.length };
}
