/**
 * A readable stream's chunks one by one, as they arrived, for `for await`. Node's own async
 * iterator calls `read()`, which joins everything the stream has buffered into one new Buffer — up
 * to ssh2's 2 MiB channel window per step, so every byte of a dump was copied once more, into memory
 * fresh from the allocator, only to be copied into the chunk pipeline's pieces next (~70 ms of the
 * console's thread per incremental backup at the benchmark's full size; decision 005).
 *
 * Back-pressure as before: the stream is paused once its high-water mark waits here, and resumed
 * when half of that is left.
 * The loop ends with the stream; a stream that errors or is destroyed before its end (a cut link)
 * throws there, after the chunks that came before; leaving the loop early destroys the stream.
 */
import { finished } from 'node:stream';
import type { Readable } from 'node:stream';

export async function* chunksOf(stream: Readable, highWater = stream.readableHighWaterMark): AsyncGenerator<Buffer, void, undefined> {
  const queue: Buffer[] = [];
  let head = 0;
  let queued = 0;
  // Set from the stream's callbacks (a holder, so the loop's checks are not narrowed away).
  const state: { ended: boolean; failure: Error | null } = { ended: false, failure: null };
  let wake: (() => void) | null = null;
  const signal = () => {
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued >= highWater) stream.pause();
    signal();
  };
  const stopWatching = finished(stream, (error) => {
    if (error) state.failure = error;
    else state.ended = true;
    signal();
  });
  stream.on('data', onData);
  stream.resume();
  try {
    for (;;) {
      if (head < queue.length) {
        const chunk = queue[head]!;
        queue[head++] = EMPTY;
        // Drop what was taken once in a while, not on every chunk (shift() moves the rest each time).
        if (head >= 1024) {
          queue.splice(0, head);
          head = 0;
        }
        queued -= chunk.length;
        if (queued <= highWater / 2 && stream.isPaused() && !state.ended) stream.resume();
        yield chunk;
        continue;
      }
      if (state.failure) throw state.failure;
      if (state.ended) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off('data', onData);
    stopWatching();
    if (!state.ended && !state.failure) stream.destroy();
  }
}

const EMPTY = Buffer.alloc(0);
