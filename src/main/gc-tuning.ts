/**
 * How the console's V8 collects garbage, set once per process by each entry point (the Electron
 * main process, the `jetvault` command, the test host, the benchmark's console process).
 *
 * V8 copies the young generation (a scavenge) with helper threads on other cores, and the main
 * thread waits until every helper is done. On a machine with two cores a backup already keeps both
 * busy — the main thread, a chunk worker, and on loopback the device itself — so a helper often
 * gets no core and the main thread stalls behind it. There the scavenge runs on the main thread
 * alone: a full-size incremental device backup took 0.99 s instead of 1.10 s (medians of 12
 * alternating pairs, faster in all 12) and 0.76 instead of 0.85 CPU-s; first backups 2–11% faster
 * (decision 005, twenty-third pass). With more cores the helpers have room, so V8's default stays.
 */
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';

/** Machines with at most this many cores scavenge on the main thread alone. */
export const SERIAL_SCAVENGE_MAX_CORES = 2;

/** The V8 flags for a machine with `cores` cores (none: V8's defaults). */
export function gcFlagsFor(cores: number): string[] {
  return cores <= SERIAL_SCAVENGE_MAX_CORES ? ['--no-parallel-scavenge'] : [];
}

/**
 * Applies gcFlagsFor(this machine) to the running process; returns the flags it set. V8 reads
 * this flag at every scavenge, so setting it after start-up (before the first backup) takes effect.
 */
export function tuneGarbageCollection(cores = availableParallelism()): string[] {
  const flags = gcFlagsFor(cores);
  for (const flag of flags) setFlagsFromString(flag);
  return flags;
}
