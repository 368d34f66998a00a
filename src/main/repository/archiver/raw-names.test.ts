/**
 * File names are bytes: a name that is not valid UTF-8 must survive backup and restore byte-exact
 * (and must not merge with another name that decodes to the same lossy string).
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend';
import { check } from '../checker/checker';
import { Repository } from '../repo/repository';
import { restore } from '../restorer/restorer';
import { decodeName, encodeName } from '../snapshot/names';
import { findSnapshot, walkTree } from '../snapshot/snapshot';
import { decodeTree, encodeTree } from '../snapshot/tree';
import { LocalSource } from '../walker/local-walker';
import { newRepo, PASSWORD, tempDir } from '../testing/fixtures';
import { backup } from './archiver';

const bytesPath = (...parts: (string | Buffer)[]): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])));

/** Every entry under `root` by its path bytes (hex): type, content, symlink target bytes. */
function describeBytes(root: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: Buffer, rel: string): void => {
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const path = bytesPath(dir, name);
      const key = `${rel}/${name.toString('hex')}`;
      const st = lstatSync(path);
      if (st.isSymbolicLink()) out[key] = `link:${readlinkSync(path, { encoding: 'buffer' }).toString('hex')}`;
      else if (st.isDirectory()) {
        out[key] = `dir:${(st.mode & 0o7777).toString(8)}`;
        walk(path, key);
      } else out[key] = `file:${(st.mode & 0o7777).toString(8)}:${readFileSync(path).toString('base64')}`;
    }
  };
  walk(root, '');
  return out;
}

describe('non-UTF-8 file names', () => {
  it('names and symlink targets that are not valid UTF-8 round-trip byte-exact', { timeout: 60_000 }, async () => {
    const src = await tempDir();
    const root = Buffer.from(src);
    const ffName = Buffer.from([0x66, 0xff, 0x6f]); // "f\xffo"
    const feName = Buffer.from([0x66, 0xfe, 0x6f]); // decodes to the same lossy string as ffName
    const dirName = Buffer.from([0x64, 0xc3, 0x28, 0x80]); // broken 2-byte sequence, then a stray continuation
    writeFileSync(bytesPath(root, ffName), 'first');
    writeFileSync(bytesPath(root, feName), 'second');
    mkdirSync(bytesPath(root, dirName));
    writeFileSync(bytesPath(root, dirName, Buffer.from('inside ünï')), 'inside');
    writeFileSync(bytesPath(root, dirName, Buffer.from([0xed, 0xa0, 0x80])), Buffer.alloc(700_000, 3)); // an encoded surrogate; large-file path
    writeFileSync(join(src, 'plain ünïcødé'), 'plain');
    symlinkSync(bytesPath(Buffer.from('target-'), Buffer.from([0xff])), bytesPath(root, Buffer.from('link')));
    const expected = describeBytes(root);
    expect(Object.keys(expected)).toHaveLength(7);

    const { dir, repo } = await newRepo();
    const first = await backup(repo, new LocalSource([src]));
    expect(first.warnings).toEqual([]);
    expect(first.snapshot.summary.files).toBe(5);
    // Stored names are exact bytes; the two names with the same lossy decoding stay apart.
    const snap = await findSnapshot(repo, first.id);
    const names: Buffer[] = [];
    for await (const { node } of walkTree(repo, snap.tree)) names.push(encodeName(node.name));
    expect(names.some((n) => n.equals(ffName))).toBe(true);
    expect(names.some((n) => n.equals(feName))).toBe(true);
    expect(names.some((n) => n.equals(dirName))).toBe(true);

    // Unchanged on the second run: every file, odd names included, matches its parent node.
    const second = await backup(repo, new LocalSource([src]), { parent: snap });
    expect(second.snapshot.summary.filesRead).toBe(0);

    const reopened = await Repository.open(new LocalBackend(dir), PASSWORD);
    expect((await check(reopened, { readData: true })).errors).toEqual([]);
    for (const workers of [0, 2]) {
      const target = await tempDir();
      await restore(reopened, snap, target, { workers });
      expect(describeBytes(bytesPath(Buffer.from(target), Buffer.from(src.slice(1)))), `workers ${workers}`).toEqual(expected);
    }
  });

  it('the tree format stores the exact bytes beside the name', () => {
    const name = decodeName(Buffer.from([0x66, 0xff, 0x6f]));
    const target = decodeName(Buffer.from([0x2f, 0x80]));
    const encoded = encodeTree([{ name, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: '0', size: 0, target }]);
    const json = JSON.parse(encoded.toString('utf8')) as { nodes: { rawName: string; rawTarget: string }[] };
    expect(Buffer.from(json.nodes[0]!.rawName, 'base64')).toEqual(Buffer.from([0x66, 0xff, 0x6f]));
    expect(Buffer.from(json.nodes[0]!.rawTarget, 'base64')).toEqual(Buffer.from([0x2f, 0x80]));
    const [node] = decodeTree(encoded).nodes;
    expect(encodeName(node!.name)).toEqual(Buffer.from([0x66, 0xff, 0x6f]));
    expect(encodeName(node!.target!)).toEqual(Buffer.from([0x2f, 0x80]));
    expect(node).not.toHaveProperty('rawName');
    // Valid names carry no extra field, so trees of ordinary files are unchanged by this.
    expect(encodeTree([{ name: 'ünï', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: '0', size: 0 }]).toString()).not.toContain('raw');
  });
});
