/**
 * The uploader seals blobs on the main thread; a stream's chunks arrive back to back through
 * promises, so it must hand the event loop a turn now and then (socket reads, worker messages)
 * instead of sealing a whole stream piece in one stretch.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blobId } from '../crypto/aead';
import { CODEC_NONE } from '../compress/codec';
import { FAST, newRepo } from '../testing/fixtures';
import { SEALED_PER_TURN } from './pack-uploader';

describe('PackUploader', () => {
  it('gives the event loop a turn between large blobs, not after every small one, and every blob reads back', async () => {
    const { repo } = await newRepo({ ...FAST, packSize: 64 * 1024 * 1024 });
    const session = repo.uploader.session();
    const store = async (data: Buffer): Promise<string> => {
      const id = blobId(repo.keys.mac, data);
      expect(await repo.uploader.addCompressed(session, 'data', id, CODEC_NONE, data, data.length)).toBe(true);
      return id.toString('hex');
    };

    // Counts the event loop's turns while blobs are stored.
    const countTurns = async (work: () => Promise<void>): Promise<number> => {
      let turns = 0;
      let counting = true;
      const tick = (): void => {
        if (!counting) return;
        turns++;
        setImmediate(tick);
      };
      setImmediate(tick);
      await work();
      counting = false;
      return turns;
    };

    // Small blobs: many are sealed per turn (a turn per blob would cost more than the sealing).
    const small = Array.from({ length: 20 }, () => randomBytes(1024));
    const smallIds: string[] = [];
    expect(await countTurns(async () => {
      for (const data of small) smallIds.push(await store(data));
    })).toBe(0);

    // Large blobs (a stream piece's chunks): a turn after each.
    const large = Array.from({ length: 4 }, () => randomBytes(SEALED_PER_TURN + 1));
    const largeIds: string[] = [];
    expect(await countTurns(async () => {
      for (const data of large) largeIds.push(await store(data));
    })).toBeGreaterThanOrEqual(large.length - 1);

    await repo.flush(session);
    for (const [i, id] of smallIds.entries()) expect((await repo.loadBlob(id)).equals(small[i]!)).toBe(true);
    for (const [i, id] of largeIds.entries()) expect((await repo.loadBlob(id)).equals(large[i]!)).toBe(true);
  });
});
