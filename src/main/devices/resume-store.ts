/**
 * What backup runs cut off part-way had stored, per repository, device and files source (files by
 * relative path): the next run of that source does not transfer those files again while they are
 * unchanged and their chunks are in the repository (a flaky field link: each try gets further).
 *
 * Kept in memory and, with a folder, on this computer too — sealed with the repository's key (kind
 * `checkpoint` in the AEAD's data, so it can pass for nothing else), written atomically, readable
 * only by this user — so a console restarted after the cut, or the next `jetvault backup --device`
 * process, takes up where the cut run stopped. A file that cannot be read (damaged, another
 * repository's key) is ignored: the run then transfers everything, as without it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openJson, sealJson } from '../repository/crypto/sealed-object';
import type { Repository } from '../repository/repo/repository';
import type { TreeNode } from '../repository/snapshot/tree';

type Files = Map<string, TreeNode>;

export class ResumeStore {
  /** By repository id, then device and source. */
  readonly #memory = new Map<string, Map<string, Files>>();

  /** `dir`: where checkpoints outlive the process (`<data folder>/resume`); memory only without it. */
  constructor(private readonly dir: string | null) {}

  async get(repo: Repository, device: string, source: string): Promise<Files | undefined> {
    const key = keyOf(device, source);
    const held = this.#memory.get(repo.config.id)?.get(key);
    if (held || !this.dir) return held;
    try {
      const entries = openJson<[string, TreeNode][]>(repo.keys.enc, 'checkpoint', await readFile(this.#file(repo, key)), `checkpoint of ${device}/${source}`);
      return new Map(entries);
    } catch {
      return undefined; // none, or unreadable: the run transfers what it must
    }
  }

  async set(repo: Repository, device: string, source: string, files: Files): Promise<void> {
    const key = keyOf(device, source);
    let held = this.#memory.get(repo.config.id);
    if (!held) this.#memory.set(repo.config.id, (held = new Map<string, Files>()));
    held.set(key, files);
    if (!this.dir) return;
    const file = this.#file(repo, key);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const temp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(temp, sealJson(repo.keys.enc, 'checkpoint', [...files]), { mode: 0o600 });
      await rename(temp, file);
    } catch (error) {
      // A disk that filled up mid-write keeps no half-written temp file.
      await rm(temp, { force: true });
      throw error;
    }
  }

  /** The run completed: its snapshots hold it all now. */
  async delete(repo: Repository, device: string, source: string): Promise<void> {
    const key = keyOf(device, source);
    this.#memory.get(repo.config.id)?.delete(key);
    if (this.dir) await rm(this.#file(repo, key), { force: true });
  }

  /**
   * A device or some of its sources were removed or renamed: what their cut runs stored is of use
   * to no run now, in any repository (a device added again later starts afresh).
   */
  async forget(device: string, sources: string[]): Promise<void> {
    const keys = sources.map((source) => keyOf(device, source));
    for (const held of this.#memory.values()) for (const key of keys) held.delete(key);
    if (!this.dir) return;
    const repos = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(repos.flatMap((repo) => keys.map((key) => rm(path.join(this.dir!, repo, key), { force: true }))));
  }

  #file(repo: Repository, key: string): string {
    return path.join(this.dir!, repo.config.id.replace(/[^0-9A-Za-z_-]/g, '_'), key);
  }
}

/** A file name for a device and source (names are safe already; hashed so no pair can collide). */
const keyOf = (device: string, source: string) => createHash('sha256').update(`${device}\0${source}`).digest('hex').slice(0, 32);
