/**
 * A repository written by a newer Jetvault: key slots of a newer format (another key derivation) and
 * a config of a newer format version are named as such, with what to do — not as a wrong password
 * or as damage.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NAMES } from '../backend/backend';
import { LocalBackend } from '../backend/local-backend';
import { Repository } from '../repo/repository';
import { FAST, newRepo, PASSWORD } from '../testing/fixtures';
import { addKeySlot, listKeySlots } from './key-slots';
import { deriveKeys } from './keys';
import { sealJson } from './sealed-object';

/** A slot as a newer version might write it: version 2, a key derivation this one does not know. */
async function newerSlot(dir: string, id: string): Promise<void> {
  const path = join(dir, NAMES.keys, id);
  const slot = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  delete slot.N;
  delete slot.r;
  delete slot.p;
  await writeFile(path, JSON.stringify({ ...slot, version: 2, kdf: 'argon2id', m: 65536, t: 3 }));
}

describe('a repository from a newer Jetvault', () => {
  it('names key slots of a newer format as such: alone, every password is told to use that version; beside readable slots, a wrong password says they were skipped', async () => {
    const { dir, repo } = await newRepo();
    const backend = new LocalBackend(dir);
    const other = await addKeySlot(backend, repo.master, 'other-pw', 'other', FAST.kdf);
    await newerSlot(dir, other);
    const mixed = Repository.open(new LocalBackend(dir), 'other-pw');
    await expect(mixed).rejects.toMatchObject({ failure: 'wrong-password' });
    await expect(Repository.open(new LocalBackend(dir), 'other-pw')).rejects.toThrow(
      new RegExp(`key slot\\(s\\) ${other.slice(0, 8)} were written by a newer Jetvault \\(key slot version 2, "argon2id"\\) and were skipped`),
    );
    expect((await listKeySlots(backend, repo.slotId)).find((s) => s.id === other)?.label).toBe('(newer format: key slot version 2, "argon2id")');
    // The readable slot still opens.
    expect((await Repository.open(new LocalBackend(dir), PASSWORD)).config.id).toBe(repo.config.id);

    await newerSlot(dir, repo.slotId);
    const error = await Repository.open(new LocalBackend(dir), PASSWORD).then(
      () => ({ failure: 'none', message: 'opened' }),
      (e: unknown) => e as Error & { failure: string },
    );
    expect(error.failure).toBe('corrupt');
    expect(error.message).toMatch(/every key slot of the repository at .* was written by a newer Jetvault \(key slot version 2, "argon2id"\), which this one cannot read: open it with that version of Jetvault or a later one/);
    expect(error.message).not.toMatch(/damaged/);
  });

  it('says a config of a newer format version is from a newer Jetvault, not an "unsupported repository version"', async () => {
    const { dir, repo } = await newRepo();
    await writeFile(join(dir, NAMES.config), sealJson(deriveKeys(repo.master).enc, 'config', { ...repo.config, version: 2, newField: { codec: 'zstd' } }));
    await expect(Repository.open(new LocalBackend(dir), PASSWORD)).rejects.toThrow(
      /the repository at .* was made by a newer Jetvault \(repository format version 2; this one reads version 1\): open it with that version of Jetvault or a later one/,
    );
  });

  it('refuses a config of this format version with a field it does not know, naming the field', async () => {
    const { dir, repo } = await newRepo();
    await writeFile(join(dir, NAMES.config), sealJson(deriveKeys(repo.master).enc, 'config', { ...repo.config, dataKeys: { codec: 'zstd' } }));
    await expect(Repository.open(new LocalBackend(dir), PASSWORD)).rejects.toThrow(
      /the repository at .* was made by a newer Jetvault \(its config has "dataKeys", unknown to this one\): open it with that version of Jetvault or a later one/,
    );
  });
});
