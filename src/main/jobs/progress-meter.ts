/**
 * Rate and ETA for a job: bytes per second over a sliding window of recent samples, so a stall
 * shows as a falling rate within seconds rather than being averaged away over the whole job.
 */
export class ProgressMeter {
  readonly #windowMs: number;
  readonly #samples: { at: number; bytes: number }[] = [];

  constructor(windowMs = 5_000) {
    this.#windowMs = windowMs;
  }

  sample(bytesDone: number, at: number): void {
    this.#samples.push({ at, bytes: bytesDone });
    while (this.#samples.length > 2 && at - this.#samples[0]!.at > this.#windowMs) this.#samples.shift();
  }

  /** Bytes per second over the window; 0 until two samples span some time. */
  rate(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at <= first.at) return 0;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }

  etaSeconds(bytesDone: number, bytesTotal: number | null): number | null {
    if (bytesTotal === null) return null;
    if (bytesDone >= bytesTotal) return 0;
    const rate = this.rate();
    return rate > 0 ? (bytesTotal - bytesDone) / rate : null;
  }
}
