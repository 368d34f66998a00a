export { formatBytes } from '../../shared/format-bytes';
export { byteTicks, durationTicks, formatBytesTick } from '../../shared/axis-ticks';

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/**
 * A chart axis's duration: as formatDuration, but below 10 s to the hundredth (and below 1 s in
 * milliseconds), so the half-second ticks of short runs read 500ms, 1s, 1.5s instead of 1s, 1s, 2s;
 * whole minutes and hours without their zero seconds or minutes.
 */
export function formatDurationTick(seconds: number): string {
  if (seconds > 0 && seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds > 0 && seconds < 10) return `${Number(seconds.toFixed(2))}s`;
  // A round tick reads 2m, 1h — not 2m 0s, 1h 0m.
  return formatDuration(seconds).replace(/ 0[sm]$/, '');
}

/** A text box of one entry per line (paths, globs, commands): its non-blank lines, trimmed. */
export function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
