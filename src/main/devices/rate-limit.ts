/**
 * The bandwidth limit per device link (Settings → "Bandwidth limit per device"): what a command's
 * stdout delivers and what its stdin sends are each held to the limit. Only the reading side is
 * slowed — ssh2 grants the device more window only as we read — so the link itself carries no more
 * than the limit after the first window (2 MiB), and a metered or shared field link is left the rest.
 */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

/** Credit a pause earns at most: a short burst after idling, not a second's worth at once. */
const BURST_MS = 100;

/**
 * One direction of one link, shared by the commands running on it at once: each chunk is given the
 * next free slot at `rate` bytes per second.
 */
export class RateLimiter {
  #free = 0;

  /** Milliseconds to hold `bytes` back so that this direction stays at `rate` (0: unlimited). */
  delayFor(bytes: number, rate: number): number {
    if (!(rate > 0)) return 0;
    const now = performance.now();
    this.#free = Math.max(this.#free, now - BURST_MS) + (bytes / rate) * 1000;
    return Math.max(0, this.#free - now);
  }
}

/** Larger chunks go out in slices of this size, each in its own slot: a 4 MiB blob is not held, then sent at once. */
const SLICE = 16 * 1024;

/** A pass-through that holds each slice until the limiter lets it go (backpressure does the rest). */
export function throttled(limiter: RateLimiter, rate: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      let at = 0;
      const next = (): void => {
        while (at < chunk.length) {
          const slice = chunk.subarray(at, at + SLICE);
          at += slice.length;
          const wait = limiter.delayFor(slice.length, rate);
          if (wait >= 1) {
            setTimeout(() => {
              if (this.destroyed) return; // cancelled or the link was lost meanwhile
              this.push(slice);
              next();
            }, wait);
            return;
          }
          this.push(slice);
        }
        callback();
      };
      next();
    },
  });
}
