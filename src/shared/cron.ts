/**
 * Cron schedules, the five classic fields (minute hour day-of-month month day-of-week) with `*`,
 * lists, ranges and steps (`*\/15`, `1-5`, `0,30`), in the console's local time. As in Vixie cron,
 * when both day fields are restricted a day matches if either does.
 */
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  dayRestricted: boolean;
  weekdayRestricted: boolean;
  /** The hour field starts with `*` (`*`, `*\/2`): runs in an hour the clock repeats run in both passes. */
  hourStar: boolean;
}

function parseField(text: string, field: (typeof FIELDS)[number]): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const match = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!match) throw new Error(`"${part}" is not a valid ${field.name}`);
    const step = match[4] ? Number(match[4]) : 1;
    const from = match[1] === '*' ? field.min : Number(match[2]);
    const to = match[1] === '*' ? field.max : match[3] !== undefined ? Number(match[3]) : match[4] ? field.max : from;
    if (from < field.min || to > field.max || from > to || step < 1) throw new Error(`"${part}" is out of range for the ${field.name} (${field.min}-${field.max})`);
    for (let v = from; v <= to; v += step) values.add(field.name === 'day of week' && v === 7 ? 0 : v);
  }
  return values;
}

/** Parses `m h dom mon dow`; throws with a readable reason. */
export function parseCron(expression: string): Cron {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error('A schedule has five fields: minute hour day-of-month month day-of-week (e.g. "0 */6 * * *")');
  const [minutes, hours, days, months, weekdays] = parts.map((p, i) => parseField(p, FIELDS[i]!)) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  return { minutes, hours, days, months, weekdays, dayRestricted: parts[2] !== '*', weekdayRestricted: parts[4] !== '*', hourStar: parts[1]!.startsWith('*') };
}

export function cronError(expression: string): string | null {
  try {
    parseCron(expression);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

/** `date` carries a local wall-clock time in its UTC fields (see `nextCronTime`). */
function dayMatches(cron: Cron, date: Date): boolean {
  const dom = cron.days.has(date.getUTCDate());
  const dow = cron.weekdays.has(date.getUTCDay());
  if (cron.dayRestricted && cron.weekdayRestricted) return dom || dow;
  if (cron.dayRestricted) return dom;
  if (cron.weekdayRestricted) return dow;
  return true;
}

/**
 * The first time strictly after `after` that the schedule fires (to the minute), or null within ~5 years.
 *
 * The search runs on the local wall clock (carried in a Date's UTC fields, where no hour is skipped or
 * repeated), then turns the time found into an instant. Across daylight saving changes that is what
 * cron does: a time the clock jumps over (02:30 on the night it goes from 02:00 to 03:00) fires as
 * soon as the clock has jumped, the same time past the gap (03:30), instead of the day being skipped;
 * a time the clock passes twice (when it goes back) fires once, the first time — unless the hour field
 * starts with `*` (`*\/30 * * * *`): as in Vixie cron such a schedule keeps its pace through the
 * repeated hour (01:00, 01:30, 01:00 again, 01:30 again, 02:00) instead of leaving a 90-minute gap.
 */
export function nextCronTime(cron: Cron, after: Date): Date | null {
  const at = nextWallTime(cron, after);
  if (!at || !cron.hourStar) return at;
  // Only near a clock change (within the last 3 hours, or before `at`) can a second pass come first.
  const offset = at.getTimezoneOffset();
  if (after.getTimezoneOffset() === offset && new Date(after.getTime() - 3 * 3_600_000).getTimezoneOffset() === offset) return at;
  const start = Math.floor(after.getTime() / 60_000) * 60_000 + 60_000;
  for (let t = start; t < at.getTime() && t - start < 3 * 3_600_000; t += 60_000) {
    const d = new Date(t);
    if (cron.minutes.has(d.getMinutes()) && cron.hours.has(d.getHours()) && cron.months.has(d.getMonth() + 1) && dayMatches(cron, new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate())))) return d;
  }
  return at;
}

function nextWallTime(cron: Cron, after: Date): Date | null {
  const wall = new Date(Date.UTC(after.getFullYear(), after.getMonth(), after.getDate(), after.getHours(), after.getMinutes() + 1));
  const limit = wall.getTime() + 5 * 366 * 86_400_000;
  while (wall.getTime() <= limit) {
    if (!cron.months.has(wall.getUTCMonth() + 1)) {
      wall.setUTCMonth(wall.getUTCMonth() + 1, 1);
      wall.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(cron, wall)) {
      wall.setUTCDate(wall.getUTCDate() + 1);
      wall.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!cron.hours.has(wall.getUTCHours())) {
      wall.setUTCHours(wall.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!cron.minutes.has(wall.getUTCMinutes())) {
      wall.setUTCMinutes(wall.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    // The local time constructor resolves a skipped time past the gap and a repeated one to its first pass.
    const at = new Date(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate(), wall.getUTCHours(), wall.getUTCMinutes());
    if (at.getTime() > after.getTime()) return at;
    wall.setUTCMinutes(wall.getUTCMinutes() + 1, 0, 0); // the repeated hour's second pass: that time has fired
  }
  return null;
}
