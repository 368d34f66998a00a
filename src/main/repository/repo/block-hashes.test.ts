import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup } from '../archiver/archiver';
import { NAMES } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { LocalBackend } from '../backend/local-backend';
import { findSnapshot, walkTree } from '../snapshot/snapshot';
import { flipByte, newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { LocalSource } from '../walker/local-walker';
import { Repository } from './repository';

const blocks = (bytes: Buffer, size: number): string[] => {
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(createHash('sha256').update(bytes.subarray(at, at + size)).digest('hex'));
  return out;
};

/** The same store, seen through an object that is not a LocalBackend (as an S3 or SFTP store is). */
const elsewhere = (local: LocalBackend): Backend =>
  new Proxy(local, {
    getPrototypeOf: () => Object.prototype,
    get: (target, key) => {
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });

describe("a stored file's block hashes (block deltas)", () => {
  it('are the SHA-256 of its bytes in blocks, from a chunk worker here and from this thread for another store', async () => {
    const src = await tempDir();
    // Incompressible across packs, and text stored compressed.
    await writeFile(join(src, 'model.onnx'), randomBytes(3 * 1024 * 1024 + 12_345));
    await writeFile(join(src, 'app.log'), Array.from({ length: 40_000 }, (_, i) => `line ${i} of the log\n`).join(''));
    const { dir, repo } = await newRepo({ chunker: { min: 4096, avg: 16384, max: 65536 }, packSize: 1024 * 1024, kdf: { N: 1024, r: 8, p: 1 } });
    const snapshot = await findSnapshot(repo, (await backup(repo, new LocalSource([src]))).id);
    const files = new Map<string, string[]>();
    for await (const { path, node } of walkTree(repo, snapshot.tree)) if (node.type === 'file') files.set(path.split('/').at(-1)!, node.content!);
    const remote = await Repository.open(elsewhere(new LocalBackend(dir)), PASSWORD);
    expect(remote.backend).not.toBeInstanceOf(LocalBackend);
    for (const [name, ids] of files) {
      const bytes = await readFile(join(src, name));
      for (const size of [65536, 100_000]) {
        expect(await repo.blockHashes(ids, size), `${name}, blocks of ${size}`).toEqual(blocks(bytes, size));
        expect(await remote.blockHashes(ids, size), `${name}, blocks of ${size}, elsewhere`).toEqual(blocks(bytes, size));
      }
    }
    // A damaged blob is refused by its tag, not hashed.
    const ids = files.get('model.onnx')!;
    const victim = repo.index.get(ids[3]!)!;
    await flipByte(join(dir, NAMES.pack(victim.pack)), victim.offset + 5);
    await expect(repo.blockHashes(ids, 65536)).rejects.toThrow(/authentication failed/);
  });
});
