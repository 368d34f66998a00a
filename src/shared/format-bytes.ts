const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`; three significant digits at most (the console's pages, and notes from the main process). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  // Up a unit also when the value would be shown as 1024 (1,048,570 B is "1.0 MiB", not "1024 KiB").
  while ((value >= 1024 || (unit > 0 && Math.round(value) >= 1024)) && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${UNITS[unit]}`;
}
