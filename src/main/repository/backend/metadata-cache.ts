/**
 * A local cache of a remote repository's index and snapshot objects, so opening and listing a
 * repository on S3 or SFTP costs two listings instead of one download per object.
 *
 * Index and snapshot objects are immutable and named by the SHA-256 of their bytes, so a copy never
 * goes stale: it is either the object or damaged. Each copy is kept as
 *   version u8 (=1) | nonce[12] | AES-256-GCM(cacheKey, nonce, stored object bytes, aad = object name) | tag[16]
 * with cacheKey = HKDF-SHA-256(master secret, salt = repository id, "jetvault/v1/cache"), in
 * `<JETVAULT_HOME>/cache/<repository id>/index|snapshots/<id>` (files 0600). The objects are already
 * encrypted with the repository's keys; the cache's own seal binds each copy to its name and its
 * repository, and a copy that fails to open, or whose bytes do not hash to its name, is deleted and
 * fetched again. What exists is still decided by listing the store: names the listing no longer has
 * (forgotten snapshots, indexes replaced by prune) are dropped from the cache as the listing is read.
 * Writing a copy can fail (disk full, read-only home): the cache is an optimisation and is skipped.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hkdf } from '../crypto/aead';
import { NAMES } from './backend';
import type { Backend, ObjectInfo, StagedObject } from './backend';

const VERSION = 1;
const CACHED = [NAMES.index, NAMES.snapshots];

export function cacheKey(master: Buffer, repositoryId: string): Buffer {
  return hkdf(master, Buffer.from(repositoryId, 'utf8'), 'jetvault/v1/cache');
}

function cacheable(name: string): boolean {
  return CACHED.some((prefix) => name.startsWith(prefix) && /^[0-9a-f]{64}$/.test(name.slice(prefix.length)));
}

export interface CacheCounters {
  hits: number;
  misses: number;
  /** Copies that failed to open or to match their name (deleted and fetched again). */
  rejected: number;
  dropped: number;
}

export class MetadataCache implements Backend {
  readonly location: string;
  readonly counters: CacheCounters = { hits: 0, misses: 0, rejected: 0, dropped: 0 };
  readonly #key: Buffer;

  constructor(
    readonly inner: Backend,
    /** This repository's folder in the cache. */
    readonly dir: string,
    key: Buffer,
  ) {
    this.location = inner.location;
    this.#key = key;
    if (inner.stage) this.stage = () => inner.stage!();
    if (inner.removeStaged) this.removeStaged = () => inner.removeStaged!();
    const create = (inner as { putIfAbsent?: (name: string, data: Buffer) => Promise<boolean> }).putIfAbsent?.bind(inner);
    if (create) this.putIfAbsent = create; // leases: never cached

    // Uploads at once as the store likes them (S3: 4), not the local default.
    if (inner.uploadConcurrency !== undefined) this.uploadConcurrency = inner.uploadConcurrency;
  }

  readonly uploadConcurrency?: number;

  stage?: () => StagedObject;
  removeStaged?: () => Promise<number>;
  putIfAbsent?: (name: string, data: Buffer) => Promise<boolean>;

  #file(name: string): string {
    return path.join(this.dir, name);
  }

  #seal(name: string, bytes: Buffer): Buffer {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(bytes), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), nonce, body, cipher.getAuthTag()]);
  }

  #open(name: string, sealed: Buffer): Buffer | null {
    if (sealed.length < 1 + 12 + 16 || sealed[0] !== VERSION) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, sealed.subarray(1, 13));
      decipher.setAAD(Buffer.from(name));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const bytes = Buffer.concat([decipher.update(sealed.subarray(13, sealed.length - 16)), decipher.final()]);
      return createHash('sha256').update(bytes).digest('hex') === path.posix.basename(name) ? bytes : null;
    } catch {
      return null;
    }
  }

  async #read(name: string): Promise<Buffer | null> {
    let sealed: Buffer;
    try {
      sealed = await readFile(this.#file(name));
    } catch {
      return null;
    }
    const bytes = this.#open(name, sealed);
    if (!bytes) {
      this.counters.rejected++;
      await rm(this.#file(name), { force: true }).catch(() => undefined);
    }
    return bytes;
  }

  async #write(name: string, bytes: Buffer): Promise<void> {
    const file = this.#file(name);
    const temp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeFile(temp, this.#seal(name, bytes), { mode: 0o600 });
      await rename(temp, file);
    } catch {
      await rm(temp, { force: true }).catch(() => undefined);
    }
  }

  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    if (range || !cacheable(name)) return this.inner.get(name, range);
    const hit = await this.#read(name);
    if (hit) {
      this.counters.hits++;
      return hit;
    }
    const bytes = await this.inner.get(name);
    this.counters.misses++;
    await this.#write(name, bytes);
    return bytes;
  }

  async put(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    await this.inner.put(name, data);
    if (cacheable(name)) await this.#write(name, Buffer.isBuffer(data) ? data : Buffer.concat(data));
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const listed = await this.inner.list(prefix);
    const folder = CACHED.find((p) => prefix === p);
    if (folder) {
      const present = new Set(listed.map((o) => o.name));
      const copies = await readdir(this.#file(folder)).catch(() => [] as string[]);
      for (const copy of copies) {
        if (present.has(`${folder}${copy}`)) continue;
        await rm(path.join(this.#file(folder), copy), { force: true }).catch(() => undefined);
        this.counters.dropped++;
      }
    }
    return listed;
  }

  async delete(name: string): Promise<void> {
    await this.inner.delete(name);
    if (cacheable(name)) await rm(this.#file(name), { force: true }).catch(() => undefined);
  }

  stat(name: string): Promise<number | null> {
    return this.inner.stat(name);
  }

  exists(): Promise<boolean> {
    return this.inner.exists();
  }

  close(): void {
    this.inner.close?.();
  }
}
