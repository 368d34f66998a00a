/**
 * An open repository: keys, config, the merged index, and reading/writing blobs and objects.
 * Writers follow one order — packs, then the index naming them, then the snapshot naming trees —
 * so every object that exists only points at objects that already exist.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { RepositoryError } from '../errors';
import { NAMES } from '../backend/backend';
import { LocalBackend } from '../backend/local-backend';
import { decompress } from '../compress/codec';
import type { Backend } from '../backend/backend';
import { cacheKey, MetadataCache } from '../backend/metadata-cache';
import { blobId } from '../crypto/aead';
import { deriveKeys, newMasterSecret } from '../crypto/keys';
import type { RepositoryKeys } from '../crypto/keys';
import { addKeySlot, unlockMaster, DEFAULT_KDF } from '../crypto/key-slots';
import type { KdfParams } from '../crypto/key-slots';
import { openJson, sealJson } from '../crypto/sealed-object';
import type { ObjectKind } from '../crypto/sealed-object';
import { DEFAULT_CHUNKER, validateChunkerParams } from '../chunker/chunker';
import type { ChunkerParams } from '../chunker/chunker';
import { decodeIndex, encodeIndex } from '../index/index-file';
import type { IndexedPack } from '../index/index-file';
import { MasterIndex } from '../index/master-index';
import type { BlobLocation } from '../index/master-index';
import { headerLength, openBlob, openStoredBlob, parsePackHeader, PACK_PREFIX } from '../pack/pack-format';
import type { BlobType } from '../pack/pack-format';
import { Slots } from '../pipeline/slots';
import { PackUploader } from '../pack/pack-uploader';
import type { UploadSession } from '../pack/pack-uploader';
import { ChunkPool, mergeSortedIds, sortedIds } from '../pipeline/chunk-pool';
import type { KnownIds, RestoreBlob } from '../pipeline/chunk-pool';
import { gearTable } from '../chunker/chunker';
import { DEFAULT_PACK_SIZE } from './config';
import type { RepositoryConfig } from './config';

const TREE_PACK_CACHE = 64 * 1024 * 1024;
/**
 * Plain tree bytes kept by a Repository (read, or saved by a backup: the next backup of the same
 * source reads exactly those as its parent's, ~6 MB for 25,000 files — no decrypting and inflating
 * them again; decision 005, seventeenth pass).
 */
const TREE_CACHE = 32 * 1024 * 1024;
/** Data blobs below this are served from the pack cache. */
const SMALL_BLOB = 256 * 1024;

/** The config's fields this version reads (repository-format.md, section 3.1). */
const CONFIG_FIELDS = new Set(['version', 'id', 'created', 'chunker', 'packSize', 'idKeys']);

export interface InitOptions {
  chunker?: ChunkerParams;
  packSize?: number;
  kdf?: KdfParams;
  label?: string;
  /**
   * Share another repository's blob ids and chunking (its id key, chunker key and parameters):
   * `init --copy-chunker-params-from`. The encryption key stays this repository's own.
   */
  shareIdsWith?: Repository;
}

/** The master's subkeys, with the id and chunker keys replaced when the config carries shared ones. */
function keysFor(master: Buffer, config?: RepositoryConfig): RepositoryKeys {
  const keys = deriveKeys(master);
  if (!config?.idKeys) return keys;
  return { ...keys, mac: Buffer.from(config.idKeys.mac, 'hex'), chunker: Buffer.from(config.idKeys.chunker, 'hex') };
}

export class Repository {
  /** How long chunk workers outlive their last backup (releaseChunkPool); shorter in tests. */
  static poolIdleMs = 30_000;
  /** Ids the run of recently indexed ones holds at least before it is folded into the base (knownDataIds); smaller in tests. */
  static knownFoldIds = 65_536;
  readonly index = new MasterIndex();
  readonly uploader: PackUploader;
  /** Trees as plain bytes, by id: read or saved by this process (TREE_CACHE bytes at most, the least recently used dropped). */
  private readonly treeCache = new Map<string, Buffer>();
  private treeCacheBytes = 0;
  /** The data ids of the index as the chunk workers read them (knownDataIds), as of `packs` packs in `epoch`. */
  private sortedKnown: { epoch: number; packs: number; base: SharedArrayBuffer; recent: SharedArrayBuffer } | null = null;
  /** Snapshots read so far, by id (snapshot objects never change; listSnapshots drops deleted ones). */
  readonly snapshotCache = new Map<string, unknown>();
  /** Snapshot objects the last listing found damaged and left out (`check` names them too). */
  readonly damagedSnapshots = new Map<string, string>();

  private constructor(
    readonly backend: Backend,
    readonly keys: RepositoryKeys,
    readonly master: Buffer,
    readonly slotId: string,
    readonly config: RepositoryConfig,
  ) {
    this.uploader = new PackUploader(
      backend,
      keys.enc,
      config.packSize,
      async (packs) => {
        await this.writeIndex(packs);
        for (const pack of packs) this.index.addPack(pack);
      },
      (id) => this.index.has(id),
    );
  }

  static async init(backend: Backend, password: string, options: InitOptions = {}): Promise<Repository> {
    if ((await backend.stat(NAMES.config)) !== null) throw new RepositoryError('exists', `a repository already exists at ${backend.location}`);
    const shared = options.shareIdsWith;
    const chunker = shared ? { ...shared.config.chunker } : (options.chunker ?? DEFAULT_CHUNKER);
    validateChunkerParams(chunker);
    const master = newMasterSecret();
    const config: RepositoryConfig = {
      version: 1,
      id: randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunker,
      packSize: options.packSize ?? DEFAULT_PACK_SIZE,
      ...(shared ? { idKeys: { mac: shared.keys.mac.toString('hex'), chunker: shared.keys.chunker.toString('hex') } } : {}),
    };
    const keys = keysFor(master, config);
    // The key slot first, the config last: a repository "exists" only once it is complete.
    const slotId = await addKeySlot(backend, master, password, options.label ?? 'initial', options.kdf ?? DEFAULT_KDF);
    await backend.put(NAMES.config, sealJson(keys.enc, 'config', config));
    return new Repository(backend, keys, master, slotId, config);
  }

  /**
   * Unlocks a repository. With `cacheDir` (remote stores), index and snapshot objects are read
   * through an encrypted local cache in `<cacheDir>/<repository id>` (see metadata-cache.ts).
   */
  static async open(backend: Backend, password: string, options: { cacheDir?: string } = {}): Promise<Repository> {
    if (!(await backend.exists())) throw new RepositoryError('missing', `no repository at ${backend.location} (run \`jetvault init\` first)`);
    const sealedConfig = await backend.get(NAMES.config);
    const opensConfig = (master: Buffer): boolean => {
      try {
        openJson<RepositoryConfig>(deriveKeys(master).enc, 'config', sealedConfig, 'config');
        return true;
      } catch {
        return false;
      }
    };
    const { master, slotId } = await unlockMaster(backend, password, opensConfig);
    const config = openJson<RepositoryConfig>(deriveKeys(master).enc, 'config', sealedConfig, 'config');
    if (config.version !== 1) {
      throw new RepositoryError(
        'corrupt',
        `the repository at ${backend.location} was made by a newer Jetvault (repository format version ${String(config.version)}; this one reads version 1): open it with that version of Jetvault or a later one — nothing was changed`,
      );
    }
    // A field this version does not know may change how data is cut, named or keyed (as idKeys
    // did): writing without it would store what the newer version cannot read as it expects.
    const unknown = Object.keys(config).filter((key) => !CONFIG_FIELDS.has(key));
    if (unknown.length > 0) {
      throw new RepositoryError(
        'corrupt',
        `the repository at ${backend.location} was made by a newer Jetvault (its config has ${unknown.map((k) => JSON.stringify(k)).join(', ')}, unknown to this one): open it with that version of Jetvault or a later one — nothing was changed`,
      );
    }
    const store = options.cacheDir && /^[0-9a-f]{32}$/.test(config.id) ? new MetadataCache(backend, join(options.cacheDir, config.id), cacheKey(master, config.id)) : backend;
    const repo = new Repository(store, keysFor(master, config), master, slotId, config);
    await repo.loadIndex();
    return repo;
  }

  /** Ids of the index objects loaded. */
  indexIds: string[] = [];

  async loadIndex(): Promise<void> {
    await this.refreshIndex();
  }

  private refreshing: Promise<void> = Promise.resolve();

  /**
   * Brings the in-memory index up to date with the repository: a Repository kept open (the app
   * does) must see what other processes wrote, and must forget packs another process's prune
   * deleted, or dedup would point new snapshots at data that is gone. Call at the start of every
   * operation; operations here do. Safe beside running backups: refreshes run one at a time and
   * the index changes in one synchronous step, so a concurrent lookup never sees it half-loaded.
   */
  refreshIndex(): Promise<void> {
    const run = this.refreshing.catch(() => undefined).then(() => this.doRefreshIndex());
    this.refreshing = run;
    return run;
  }

  private async doRefreshIndex(): Promise<void> {
    const present = (await this.backend.list(NAMES.index)).map((o) => o.name.slice(NAMES.index.length));
    const presentSet = new Set(present);
    const reset = this.indexIds.some((id) => !presentSet.has(id));
    const known = new Set(reset ? [] : this.indexIds);
    const loaded: { id: string; packs: IndexedPack[] }[] = [];
    for (const id of present) {
      if (known.has(id)) continue;
      const { packs } = decodeIndex(openJson(this.keys.enc, 'index', await this.backend.get(`${NAMES.index}${id}`), `index ${id}`));
      loaded.push({ id, packs });
    }
    if (reset) {
      this.index.replace(loaded.flatMap((l) => l.packs));
      this.indexIds = loaded.map((l) => l.id);
      this.dropReadCaches();
      return;
    }
    for (const { id, packs } of loaded) {
      for (const pack of packs) this.index.addPack(pack);
      if (!this.indexIds.includes(id)) this.indexIds.push(id);
    }
  }

  /** Writes a sealed object named by the SHA-256 of its bytes; returns that id. */
  async putObject(prefix: string, kind: ObjectKind, value: unknown, options: { derivedSalt?: boolean } = {}): Promise<string> {
    const bytes = sealJson(this.keys.enc, kind, value, options);
    const id = createHash('sha256').update(bytes).digest('hex');
    await this.backend.put(`${prefix}${id}`, bytes);
    return id;
  }

  async getObject<T>(prefix: string, kind: ObjectKind, id: string): Promise<T> {
    const bytes = await this.backend.get(`${prefix}${id}`);
    if (createHash('sha256').update(bytes).digest('hex') !== id) throw new RepositoryError('corrupt', `${kind} ${id}: bytes do not match its name`);
    return openJson<T>(this.keys.enc, kind, bytes, id);
  }

  async writeIndex(packs: IndexedPack[], supersedes: string[] = []): Promise<string> {
    const id = await this.putObject(NAMES.index, 'index', encodeIndex(packs, supersedes));
    if (!this.indexIds.includes(id)) this.indexIds.push(id);
    return id;
  }

  /** Waits until every pack holding a blob `session` wrote or referenced is stored and indexed. */
  async flush(session: UploadSession): Promise<void> {
    await this.uploader.flush(session);
  }

  /** Stores a blob unless the repository already has it. Returns whether it was new. */
  async saveBlob(session: UploadSession, type: BlobType, data: Buffer): Promise<{ id: string; added: boolean }> {
    const id = blobId(this.keys.mac, data);
    const added = await this.uploader.add(session, type, id, data);
    const hex = id.toString('hex');
    // The next backup of this source reads its parent's trees: those are the ones saved now.
    if (type === 'tree') this.cacheTree(hex, data);
    return { id: hex, added };
  }

  private pool: { pool: ChunkPool; users: number; idle: NodeJS.Timeout | null } | null = null;
  private largeFileSlots: Slots | null = null;

  /**
   * Large files read at once, across all backups running on this Repository: each holds up to two
   * ~16 MiB pieces, so a per-backup limit would let eight backups hold eight times the memory.
   */
  largeFiles(limit = 2): Slots {
    return (this.largeFileSlots ??= new Slots(limit));
  }

  /**
   * The chunk workers, shared by the backups running at once (so eight backups use two workers,
   * not sixteen). Workers skip compressing chunks indexed when the pool started; chunks indexed
   * later are deduplicated by the uploader instead. Release with `releaseChunkPool`.
   */
  acquireChunkPool(workers?: number): ChunkPool {
    const kept = this.pool;
    if (kept?.idle && kept.pool.broken) {
      clearTimeout(kept.idle);
      this.pool = null;
      void kept.pool.close();
    } else if (kept) {
      if (kept.idle) {
        // Taken up again within `poolIdleMs`: what was stored meanwhile is known to the workers too.
        clearTimeout(kept.idle);
        kept.idle = null;
        kept.pool.ref();
        kept.pool.setKnown(this.knownDataIds());
      }
      kept.users++;
      return kept.pool;
    }
    // `enc`: the workers also hash a stored file's blocks for block deltas (blockHashes).
    const pool = new ChunkPool({ mac: this.keys.mac, enc: this.keys.enc, gear: gearTable(this.keys.chunker), chunker: this.config.chunker, known: this.knownDataIds() }, workers);
    this.pool = { pool, users: 1, idle: null };
    return pool;
  }

  /** Where a blob is stored, for a worker to read it (`of`: what it belongs to, for the error). */
  locateBlob(id: string, of?: string): RestoreBlob {
    const where = this.index.get(id);
    if (!where) throw new RepositoryError('corrupt', `blob ${id.slice(0, 12)}${of ? ` of ${of}` : ''} is not in the index (run \`jetvault check\`)`);
    return { pack: where.pack, salt: this.index.packs.get(where.pack)!.salt, id, offset: where.offset, length: where.length, rawLength: where.rawLength };
  }

  /**
   * SHA-256 of a stored file's bytes (its data blob ids, in order) in blocks of `blockSize`, the last
   * one what is left: compared with a device's copy for block deltas (devices/sources/block-delta.ts).
   * Each blob is authenticated by its GCM tag; ids are not recomputed, since the hashes are only
   * compared (a damaged blob would only make its blocks differ). From a local repository one chunk
   * worker reads and hashes, off this thread and its heap (a pass over a large file here cost more
   * in collections than in hashing); from another store this thread does.
   */
  async blockHashes(ids: readonly string[], blockSize: number): Promise<string[]> {
    const blobs = ids.map((id) => this.locateBlob(id));
    if (!(this.backend instanceof LocalBackend)) {
      const hashes: string[] = [];
      let hash = createHash('sha256');
      let filled = 0;
      for (const id of ids) {
        const { codec, payload } = await this.loadStoredBlob(id);
        const data = decompress(codec, payload, `data blob ${id.slice(0, 12)}`);
        for (let at = 0; at < data.length; ) {
          const take = Math.min(data.length - at, blockSize - filled);
          hash.update(data.subarray(at, at + take));
          at += take;
          filled += take;
          if (filled === blockSize) {
            hashes.push(hash.digest('hex'));
            hash = createHash('sha256');
            filled = 0;
          }
        }
      }
      if (filled > 0) hashes.push(hash.digest('hex'));
      return hashes;
    }
    const pool = this.acquireChunkPool();
    try {
      const { result } = await pool.blockHashes(resolve(this.backend.root), blobs, blockSize);
      return await result;
    } finally {
      await this.releaseChunkPool(pool);
    }
  }

  /**
   * The data ids the index holds, sorted for the chunk workers, kept between backups: decoding and
   * sorting them all takes ~0.5 s per million ids on the thread that serves the console, and that
   * at every backup's start. Two runs: a base laid out once and the ids indexed since, merged into
   * a small run of their own (folded into the base once it passes knownFoldIds or a sixteenth of
   * it, so the copy a merge makes stays small). After the index forgot blobs (prune) both are laid
   * out anew. Costs 32 bytes per id while the repository is open.
   */
  private knownDataIds(): KnownIds {
    const { index } = this;
    let kept = this.sortedKnown;
    if (!kept || kept.epoch !== index.epoch) {
      kept = { epoch: index.epoch, packs: index.packs.size, base: sortedIds(dataIdsOf(index.allBlobs())), recent: new SharedArrayBuffer(0) };
    } else if (kept.packs !== index.packs.size) {
      let { base, recent } = kept;
      recent = mergeSortedIds(recent, sortedIds(dataIdsOf(index.blobsAddedSince(kept.packs))));
      if (recent.byteLength > Math.max(Repository.knownFoldIds * 32, base.byteLength / 16)) {
        base = mergeSortedIds(base, recent);
        recent = new SharedArrayBuffer(0);
      }
      kept = { epoch: index.epoch, packs: index.packs.size, base, recent };
    }
    this.sortedKnown = kept;
    return { runs: [kept.base, kept.recent] };
  }

  /**
   * The last user's release keeps the workers (and their spare piece buffers) for `poolIdleMs`:
   * a fleet's backups run back to back, and each new pool costs ~90 ms of CPU per worker to start
   * plus the page faults of fresh buffers. Unused that long, they are closed.
   */
  async releaseChunkPool(pool: ChunkPool): Promise<void> {
    const entry = this.pool;
    if (entry?.pool !== pool) return;
    if (--entry.users > 0) return;
    if (pool.broken) {
      this.pool = null;
      await pool.close();
      return;
    }
    pool.unref();
    entry.idle = setTimeout(() => {
      if (this.pool !== entry || entry.users > 0) return;
      this.pool = null;
      void pool.close();
    }, Repository.poolIdleMs);
    entry.idle.unref();
  }

  /** Closes chunk workers kept for the next backup (the repository is being closed). */
  async closeIdleWorkers(): Promise<void> {
    const entry = this.pool;
    if (!entry?.idle) return;
    clearTimeout(entry.idle);
    this.pool = null;
    await entry.pool.close();
  }

  async loadBlob(id: string): Promise<Buffer> {
    const cached = this.treeCache.get(id);
    if (cached) {
      // Kept as the most recently used.
      this.treeCache.delete(id);
      this.treeCache.set(id, cached);
      return cached;
    }
    const { where, pack, sealed } = await this.readSealedBlob(id);
    const data = openBlob(this.keys.enc, this.keys.mac, Buffer.from(pack.salt, 'hex'), where, sealed, where.pack);
    if (where.type === 'tree') this.cacheTree(id, data);
    return data;
  }

  /**
   * Forgets the trees and packs this process keeps in memory, so what is read next comes from the
   * store: a check verifies the store, and a tree this process saved or read would come from memory.
   */
  dropReadCaches(): void {
    this.treeCache.clear();
    this.treeCacheBytes = 0;
    this.treePacks.clear();
    this.treePackBytes = 0;
  }

  private cacheTree(id: string, data: Buffer): void {
    if (this.treeCache.has(id) || data.length > TREE_CACHE / 4) return;
    for (const [oldest, bytes] of this.treeCache) {
      if (this.treeCacheBytes + data.length <= TREE_CACHE) break;
      this.treeCache.delete(oldest);
      this.treeCacheBytes -= bytes.length;
    }
    this.treeCache.set(id, data);
    this.treeCacheBytes += data.length;
  }

  /** A blob as stored (codec and compressed payload, decrypted), for copying it to another repository. */
  async loadStoredBlob(id: string): Promise<{ type: BlobType; codec: number; payload: Buffer; rawLength: number }> {
    const { where, pack, sealed } = await this.readSealedBlob(id);
    const { codec, payload } = openStoredBlob(this.keys.enc, Buffer.from(pack.salt, 'hex'), where, sealed, where.pack);
    return { type: where.type, codec, payload, rawLength: where.rawLength };
  }

  private async readSealedBlob(id: string): Promise<{ where: BlobLocation; pack: IndexedPack; sealed: Buffer }> {
    const where = this.index.get(id);
    if (!where) throw new RepositoryError('corrupt', `blob ${id.slice(0, 12)} is not in the index (run \`jetvault check\`)`);
    const pack = this.index.packs.get(where.pack)!;
    const viaCache = where.type === 'tree' || where.length < SMALL_BLOB;
    const sealed = viaCache ? await this.cachedPackBytes(pack.id, pack.size, where) : await this.backend.get(NAMES.pack(where.pack), { offset: where.offset, length: where.length });
    return { where, pack, sealed };
  }

  /**
   * Trees and small data blobs are read through a cache of whole packs: walking a snapshot touches
   * thousands of trees in a few packs, and restoring thousands of small files reads them in the
   * order they were packed, so one read per pack beats one per blob (more so on S3 or SFTP).
   */
  private readonly treePacks = new Map<string, Promise<Buffer>>();
  private treePackBytes = 0;

  private async cachedPackBytes(packId: string, size: number, where: { offset: number; length: number }): Promise<Buffer> {
    if (size > TREE_PACK_CACHE / 2) return this.backend.get(NAMES.pack(packId), where);
    let bytes = this.treePacks.get(packId);
    if (!bytes) {
      while (this.treePackBytes + size > TREE_PACK_CACHE && this.treePacks.size > 0) {
        const [oldest] = this.treePacks.keys();
        this.treePackBytes -= (await this.treePacks.get(oldest!)!).length;
        this.treePacks.delete(oldest!);
      }
      bytes = this.backend.get(NAMES.pack(packId));
      bytes.catch(() => this.treePacks.delete(packId));
      this.treePacks.set(packId, bytes);
      this.treePackBytes += size;
    }
    return (await bytes).subarray(where.offset, where.offset + where.length);
  }

  /** Reads a pack's header from the pack itself (two ranged reads). */
  async readPackHeader(packId: string, size?: number): Promise<IndexedPack> {
    const name = NAMES.pack(packId);
    const total = size ?? (await this.backend.stat(name));
    if (total === null || total < PACK_PREFIX + 4) throw new RepositoryError('corrupt', `pack ${packId}: missing or truncated`);
    const prefix = await this.backend.get(name, { offset: 0, length: PACK_PREFIX });
    const length = headerLength(await this.backend.get(name, { offset: total - 4, length: 4 }));
    if (length + 4 + PACK_PREFIX > total) throw new RepositoryError('corrupt', `pack ${packId}: bad header length`);
    const tail = await this.backend.get(name, { offset: total - 4 - length, length });
    const { salt, entries } = parsePackHeader(this.keys.enc, prefix, tail, total, packId);
    return { id: packId, salt: salt.toString('hex'), size: total, entries };
  }

  /**
   * Packs left by an interrupted run (written, never indexed) are indexed now so their blobs are
   * reused instead of uploaded again. Unreadable leftovers are skipped (check reports them).
   */
  private recovering: Promise<number> | null = null;

  recoverUnindexedPacks(): Promise<number> {
    // Backups starting together share one pass instead of indexing the same leftovers twice.
    this.recovering ??= this.doRecoverUnindexedPacks().finally(() => {
      this.recovering = null;
    });
    return this.recovering;
  }

  private async doRecoverUnindexedPacks(): Promise<number> {
    const recovered: IndexedPack[] = [];
    for (const object of await this.backend.list(NAMES.data)) {
      const id = NAMES.packId(object.name);
      // Packs a running backup of this process stored are indexed by that backup.
      if (this.index.packs.has(id) || this.uploader.ownsPack(id)) continue;
      try {
        recovered.push(await this.readPackHeader(id, object.size));
      } catch {
        // A damaged leftover is not an error for a backup; check names it, prune removes it.
      }
    }
    if (recovered.length > 0) {
      await this.writeIndex(recovered);
      for (const pack of recovered) this.index.addPack(pack);
    }
    return recovered.length;
  }
}

function* dataIdsOf(blobs: Iterable<BlobLocation>): Generator<string> {
  for (const blob of blobs) if (blob.type === 'data') yield blob.id;
}
