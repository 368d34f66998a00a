/**
 * Local directory backend. An atomic put is: write a temp file beside the target, fsync it, rename
 * it over the target, fsync the directory. Temp files carry a ".tmp-" prefix and are never listed.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { RepositoryError } from '../errors';
import type { Backend, ObjectInfo, StagedObject } from './backend';

const TEMP_PREFIX = '.tmp-';

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes pieces with writev (one syscall per 1024 pieces, not one per piece), finishing short writes. */
async function writeAll(handle: FileHandle, parts: readonly Buffer[], start = 0): Promise<void> {
  let position = start;
  for (let i = 0; i < parts.length; i += 1024) {
    const group = parts.slice(i, i + 1024);
    const total = group.reduce((n, b) => n + b.length, 0);
    const { bytesWritten } = await handle.writev(group, position);
    if (bytesWritten < total) {
      const rest = Buffer.concat(group).subarray(bytesWritten);
      for (let done = 0; done < rest.length; ) done += (await handle.write(rest, done, rest.length - done, position + bytesWritten + done)).bytesWritten;
    }
    position += total;
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

export class LocalBackend implements Backend {
  readonly location: string;
  private readonly madeDirs = new Set<string>();
  /**
   * Whether the repository's folder was found here (or made by this backend's `init`). From then on
   * it is never made again: a folder gone (its USB disk unplugged or unmounted) is an error naming
   * it, not an empty repository — listings returned nothing, so a check passed with "0 snapshots",
   * and the next write made the folder again on the laptop's own disk, at the mount point.
   */
  private established = false;

  constructor(readonly root: string) {
    this.location = root;
  }

  private path(name: string): string {
    if (name.includes('..') || name.startsWith('/')) throw new Error(`bad object name ${name}`);
    return join(this.root, name);
  }

  private gone(): RepositoryError {
    return new RepositoryError(
      'unavailable',
      `the repository folder ${this.root} is not there any more (its disk unplugged or unmounted?): connect it again at that path and run this again; nothing stored there was changed`,
    );
  }

  /**
   * After an error: the folder gone as that error; a full disk named, with what to do (its `code`
   * kept, so callers that tell ENOSPC apart still do); any other error as it was.
   */
  private async explain(error: unknown): Promise<unknown> {
    if (error instanceof RepositoryError) return error;
    if (this.established && !(await stat(this.root).catch(() => null))?.isDirectory()) return this.gone();
    const code = (error as NodeJS.ErrnoException | null)?.code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return Object.assign(
        new Error(
          `the disk holding the repository ${this.root} is full (${code}): nothing more was written, and what it held is unchanged. Free some space there (a few MiB: every command first writes its lease; prune also needs room for the packs it rewrites), then run this again`,
        ),
        { code },
      );
    }
    return error;
  }

  /** Makes `dir` (below the root) where missing; the root itself only until the repository is there. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.madeDirs.has(dir)) return;
    if (!this.established) await mkdir(dir, { recursive: true });
    else {
      const parts = relative(this.root, dir).split(sep).filter(Boolean);
      let at = this.root;
      for (const part of parts) {
        at = join(at, part);
        try {
          await mkdir(at);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw await this.explain(error);
        }
      }
    }
    this.madeDirs.add(dir);
  }

  async put(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    try {
      await this.doPut(name, data);
    } catch (error) {
      throw await this.explain(error);
    }
    this.established = true;
  }

  private async doPut(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    const target = this.path(name);
    const dir = dirname(target);
    const temp = await this.writeTemp(dir, data);
    await rename(temp, target);
    await fsyncDir(dir);
  }

  /**
   * `data` in a new temp file in `dir` (made if missing), fsynced; its path. Nothing is left when
   * a write fails (a full disk: the temp file had stayed behind a failed lease, at 0 bytes).
   */
  private async writeTemp(dir: string, data: Buffer | readonly Buffer[]): Promise<string> {
    await this.ensureDir(dir);
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600).catch((error: unknown) => {
      // A folder made earlier in this process and gone since: the root's absence is the reason.
      this.madeDirs.delete(dir);
      throw error;
    });
    try {
      if (Buffer.isBuffer(data)) await handle.writeFile(data);
      else await writeAll(handle, data);
      await handle.sync();
    } catch (error) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await handle.close();
    return temp;
  }

  /**
   * Create-only: the temp file is written and fsynced, then hard-linked to the target — link(2)
   * fails with EEXIST when the name exists, atomically, so of two racing creators exactly one wins.
   */
  async putIfAbsent(name: string, data: Buffer): Promise<boolean> {
    try {
      return await this.doPutIfAbsent(name, data);
    } catch (error) {
      throw await this.explain(error);
    }
  }

  private async doPutIfAbsent(name: string, data: Buffer): Promise<boolean> {
    const target = this.path(name);
    const dir = dirname(target);
    const temp = await this.writeTemp(dir, data);
    try {
      await link(temp, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    await fsyncDir(dir);
    return true;
  }

  /**
   * A temp file in the repository's root (same file system, so the commit is a rename), written
   * by appending as pieces arrive; commit = fsync, rename into place, fsync the directory.
   */
  stage(): StagedObject {
    const temp = join(this.root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    const opened = open(temp, 'wx', 0o600);
    opened.catch(() => undefined);
    let chain: Promise<unknown> = opened;
    let position = 0;
    let pending = 0;
    let failure: Error | null = null;
    // Pieces are small (a blob is three: codec byte, body, tag); they are written in groups of
    // ~1 MiB with writev, one syscall per group.
    let group: Buffer[] = [];
    let groupBytes = 0;
    const closeAndRemove = async (): Promise<void> => {
      await (await opened.catch(() => null))?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
    };
    const flush = (): void => {
      if (group.length === 0) return;
      const pieces = group;
      const bytes = groupBytes;
      const at = position;
      group = [];
      groupBytes = 0;
      position += bytes;
      chain = chain.then(async () => {
        try {
          if (!failure) await writeAll(await opened, pieces, at);
        } catch (error) {
          failure = error as Error;
        } finally {
          pending -= bytes;
        }
      });
    };
    return {
      write: (piece) => {
        group.push(piece);
        groupBytes += piece.length;
        pending += piece.length;
        if (groupBytes >= 1024 * 1024) flush();
      },
      get pending() {
        return pending;
      },
      drained: async () => {
        flush();
        await chain;
        if (failure) throw await this.explain(failure);
      },
      commit: async (name) => {
        flush();
        await chain;
        if (failure) {
          await closeAndRemove();
          throw await this.explain(failure);
        }
        const target = this.path(name);
        const dir = dirname(target);
        try {
          const handle = await opened;
          await handle.sync();
          await handle.close();
          await this.ensureDir(dir);
          await rename(temp, target).catch((error: unknown) => {
            this.madeDirs.delete(dir);
            throw error;
          });
          await fsyncDir(dir);
        } catch (error) {
          await closeAndRemove();
          throw await this.explain(error);
        }
      },
      discard: async () => {
        await chain.catch(() => undefined);
        await closeAndRemove();
      },
    };
  }

  /**
   * Staged packs in the root, and the temp files of puts cut off part-way beside their targets in
   * `index/`, `snapshots/` and `data/xx/` (a prune killed while writing its index left one as large
   * as the index, for good). Not `locks/` or `keys/`: a console taking a lease or adding a key slot
   * meanwhile writes there without a lease of its own.
   */
  async removeStaged(): Promise<number> {
    let removed = 0;
    const sweep = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir).catch(() => [] as string[])) {
        if (!entry.startsWith(TEMP_PREFIX)) continue;
        await unlink(join(dir, entry)).catch(() => undefined);
        removed++;
      }
    };
    await sweep(this.root);
    await sweep(join(this.root, 'index'));
    await sweep(join(this.root, 'snapshots'));
    for (const sub of await readdir(join(this.root, 'data')).catch(() => [] as string[])) if (/^[0-9a-f]{2}$/.test(sub)) await sweep(join(this.root, 'data', sub));
    return removed;
  }

  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    let handle;
    try {
      handle = await open(this.path(name), 'r');
    } catch (error) {
      const explained = await this.explain(error);
      if (explained !== error) throw explained;
      if (isMissing(error)) throw new RepositoryError('not-found', `object ${name} is missing from ${this.location}`);
      throw error;
    }
    try {
      if (!range) return await handle.readFile();
      const buffer = Buffer.allocUnsafe(range.length);
      let done = 0;
      while (done < range.length) {
        const { bytesRead } = await handle.read(buffer, done, range.length - done, range.offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < range.length) throw new RepositoryError('corrupt', `object ${name} is shorter than expected`);
      return buffer;
    } finally {
      await handle.close();
    }
  }

  async stat(name: string): Promise<number | null> {
    try {
      return (await stat(this.path(name))).size;
    } catch (error) {
      const explained = await this.explain(error);
      if (explained !== error) throw explained;
      if (isMissing(error)) return null;
      throw error;
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.root, rel), { withFileTypes: true });
      } catch (error) {
        const explained = await this.explain(error);
        if (explained !== error) throw explained;
        if (isMissing(error)) return;
        throw error;
      }
      for (const entry of entries) {
        if (entry.name.startsWith(TEMP_PREFIX)) continue;
        const name = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory()) await walk(name);
        else if (entry.isFile() && name.startsWith(prefix)) {
          // Deleted between readdir and stat (a lease released meanwhile): not listed.
          const size = await stat(join(this.root, name)).then((s) => s.size, (error: unknown) => (isMissing(error) ? null : Promise.reject(error as Error)));
          if (size !== null) out.push({ name, size });
        }
      }
    };
    const dir = prefix.endsWith('/') ? prefix.slice(0, -1) : dirname(prefix) === '.' ? '' : dirname(prefix);
    await walk(dir);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(name: string): Promise<void> {
    try {
      await rm(this.path(name));
    } catch (error) {
      const explained = await this.explain(error);
      if (explained !== error) throw explained;
      if (!isMissing(error)) throw error;
    }
  }

  async exists(): Promise<boolean> {
    try {
      const there = (await stat(this.root)).isDirectory() && (await this.stat('config')) !== null;
      if (there) this.established = true;
      return there;
    } catch {
      return false;
    }
  }
}
