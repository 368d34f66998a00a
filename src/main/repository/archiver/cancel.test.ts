import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { findSnapshot, listSnapshots } from '../snapshot/snapshot';
import { restore } from '../restorer/restorer';
import type { NodeMeta } from '../snapshot/tree';
import { newRepo, tempDir } from '../testing/fixtures';
import { backup } from './archiver';
import type { Source, SourceEntry } from './source';

const meta = (type: 'dir' | 'file', size: number): NodeMeta => ({ type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: '0', size });

/** Items one at a time, each after a turn of the event loop's microtasks, as a stream gives them. */
async function* paced<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

/** A source that never looks at the signal itself, so what stops a backup is the archiver's own check. */
function source(entries: () => Generator<SourceEntry>): Source {
  return { paths: ['/data'], kind: 'test', warnings: [], entries: () => paced(entries()) };
}

describe('a cancelled backup', () => {
  it('stops at the next entry, writes no snapshot, and leaves no listener on the signal', async () => {
    const { repo } = await newRepo();
    const controller = new AbortController();
    let folders = 0;
    const tree = source(function* () {
      for (let i = 0; i < 5; i++) {
        const body = Buffer.from(`file ${i}\n`);
        yield { path: `f${i}`, meta: meta('file', body.length), open: () => paced([body]) };
      }
      controller.abort();
      // Folders only from here: nothing is read, so the check between entries is what stops it.
      for (; folders < 50; folders++) yield { path: `d${String(folders).padStart(2, '0')}`, meta: meta('dir', 0) };
    });
    let listening = -1;
    const run = backup(repo, tree, {
      signal: controller.signal,
      onProgress: ({ items }) => {
        if (items !== undefined) listening = getEventListeners(controller.signal, 'abort').length;
      },
    });
    await expect(run).rejects.toMatchObject({ failure: 'cancelled' });
    expect(listening).toBe(1);
    expect(folders).toBe(0);
    expect(await listSnapshots(repo)).toEqual([]);
    expect(getEventListeners(controller.signal, 'abort')).toEqual([]);
  });

  it('stops a streamed file between its pieces', async () => {
    const { repo } = await newRepo();
    const controller = new AbortController();
    let pieces = 0;
    const piece = Buffer.alloc(64 * 1024, 7);
    const stream = source(function* () {
      yield {
        path: 'dump.bin',
        meta: meta('file', 0),
        open: () =>
          paced(
            (function* () {
              for (; pieces < 40; pieces++) {
                if (pieces === 10) controller.abort();
                yield piece;
              }
            })(),
          ),
      };
    });
    await expect(backup(repo, stream, { signal: controller.signal })).rejects.toMatchObject({ failure: 'cancelled' });
    expect(pieces).toBe(10);
    expect(await listSnapshots(repo)).toEqual([]);
  });

  it('a signal that fired before the start reads nothing; one that never fires is left as it was', async () => {
    const { repo } = await newRepo();
    let opened = 0;
    const one = source(function* () {
      yield { path: 'a', meta: meta('file', 2), open: () => paced((function* () { opened++; yield Buffer.from('a\n'); })()) };
    });
    await expect(backup(repo, one, { signal: AbortSignal.abort() })).rejects.toMatchObject({ failure: 'cancelled' });
    expect(opened).toBe(0);
    const live = new AbortController();
    const done = await backup(repo, one, { signal: live.signal });
    expect([done.snapshot.summary.files, opened]).toEqual([1, 1]);
    expect(getEventListeners(live.signal, 'abort')).toEqual([]);
  });

  it('a cancelled restore stops at the next file; a restore leaves no listener on the signal', async () => {
    const { repo } = await newRepo();
    const files = source(function* () {
      for (let i = 0; i < 40; i++) yield { path: `f${String(i).padStart(2, '0')}`, meta: meta('file', 3), open: () => paced([Buffer.from(`${i}\n`.padStart(3, '0'))]) };
    });
    const snapshot = await findSnapshot(repo, (await backup(repo, files)).id);
    const target = await tempDir('jv-dst-');
    const controller = new AbortController();
    let restored = 0;
    const run = restore(repo, snapshot, target, {
      workers: 0,
      signal: controller.signal,
      onProgress: ({ items }) => {
        restored += items ?? 0;
        if (restored === 3) controller.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ failure: 'cancelled' });
    expect(restored).toBe(3);
    expect((await readdir(target)).filter((name) => name.startsWith('f')).length).toBeLessThan(40);
    const live = new AbortController();
    expect((await restore(repo, snapshot, await tempDir('jv-dst-'), { workers: 0, signal: live.signal })).files).toBe(40);
    expect(getEventListeners(live.signal, 'abort')).toEqual([]);
  });
});
