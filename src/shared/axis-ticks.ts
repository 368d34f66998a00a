/**
 * Ticks for the dashboards' axes at round values of the unit a reader thinks in, where recharts picks
 * round decimal numbers of the axis's raw unit (bytes, seconds): 19.1, 38.1, 57.2 MiB; 35 s, 1m 10s.
 */
import { formatBytes } from './format-bytes';

/** From 0 to at least `max`, about `count` steps of the first of `steps` (in `unit`s) that is long enough, else undefined. */
function ticksOf(max: number, count: number, steps: readonly number[], unit = 1): number[] | undefined {
  const step = steps.map((s) => s * unit).find((s) => s * count >= max);
  return step === undefined ? undefined : Array.from({ length: Math.ceil(max / step) + 1 }, (_, i) => i * step);
}

/** Steps of a byte axis, in its unit: round for a reader of KiB, MiB and GiB. */
const BYTE_STEPS = [1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500];

/**
 * The ticks of a byte axis from 0 to at least `max`, about `count` steps of a round number of one
 * binary unit (0, 20, 40, 60, 80 MiB), where the chart's own ticks are round numbers of bytes that
 * read 19.1, 38.1, 57.2 MiB. Undefined when there is nothing to scale (the chart's default then).
 */
export function byteTicks(max: number, count = 4): number[] | undefined {
  if (!Number.isFinite(max) || max <= 0) return undefined;
  let unit = 1;
  while (max / count / unit >= 1024 && unit < 1024 ** 4) unit *= 1024;
  return ticksOf(max, count, [...BYTE_STEPS, 1024], unit);
}

/** A byte axis's label: as formatBytes, without a trailing ".0" (20 MiB, 2.5 MiB). */
export function formatBytesTick(bytes: number): string {
  return formatBytes(bytes).replace(/\.0 /, ' ');
}

/** Steps of a duration axis, in seconds: sub-second, then whole seconds, minutes, hours, days. */
const DURATION_STEPS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];

/**
 * The ticks of a duration axis (seconds) from 0 to at least `max`: about `count` steps of a round
 * duration (0, 30 s, 1 min, 1 min 30 s; 0, 15, 30, 45 min), where the chart's own read 35 s, 1m 10s, 1m 45s.
 * Undefined when there is nothing to scale.
 */
export function durationTicks(max: number, count = 4): number[] | undefined {
  if (!Number.isFinite(max) || max <= 0) return undefined;
  return ticksOf(max, count, DURATION_STEPS) ?? ticksOf(max, count, [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000], 86_400);
}
