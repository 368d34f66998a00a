/**
 * Which snapshots a retention policy keeps (restic semantics): within each group (device + paths),
 * newest first, keep the last N; for each of hourly/daily/weekly/monthly/yearly keep the newest
 * snapshot of each of the N most recent periods that have one; keep everything within a duration
 * of the newest snapshot. A snapshot kept by any rule is kept. An empty policy keeps everything.
 */
import type { SnapshotWithId } from '../snapshot/snapshot';

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** e.g. "2d", "3w", "6m", "1y", "1y6m", "12h". */
  within?: string;
}

export interface ForgetDecision {
  snapshot: SnapshotWithId;
  keep: boolean;
  reasons: string[];
}

const pad = (n: number): string => String(n).padStart(2, '0');

function isoWeek(d: Date): string {
  const t = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const day = (t.getDay() + 6) % 7;
  t.setDate(t.getDate() - day + 3);
  const firstThursday = new Date(t.getFullYear(), 0, 4);
  const week = 1 + Math.round(((t.getTime() - firstThursday.getTime()) / 86_400_000 - 3 + ((firstThursday.getDay() + 6) % 7)) / 7);
  return `${t.getFullYear()}-W${pad(week)}`;
}

const BUCKETS: [keyof RetentionPolicy, (d: Date) => string][] = [
  ['hourly', (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}`],
  ['daily', (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`],
  ['weekly', isoWeek],
  ['monthly', (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}`],
  ['yearly', (d) => `${d.getFullYear()}`],
];

/** Parses "1y2m3w4d5h" into a cutoff before `from`. */
export function withinCutoff(spec: string, from: Date): Date {
  const re = /(\d+)([ymwdh])/g;
  if (!/^(\d+[ymwdh])+$/.test(spec)) throw new Error(`invalid duration "${spec}" (use e.g. 7d, 4w, 6m, 1y, 12h)`);
  const d = new Date(from);
  for (const [, n, unit] of spec.matchAll(re)) {
    const k = Number(n);
    if (unit === 'y') d.setFullYear(d.getFullYear() - k);
    else if (unit === 'm') d.setMonth(d.getMonth() - k);
    else if (unit === 'w') d.setDate(d.getDate() - 7 * k);
    else if (unit === 'd') d.setDate(d.getDate() - k);
    else d.setHours(d.getHours() - k);
  }
  // Longer than dates go (300000y, a "forever" of nines): the earliest date there is, so everything
  // is within it. An invalid Date compared false with every snapshot's time and kept none of them.
  return Number.isNaN(d.getTime()) ? new Date(-8.64e15) : d;
}

export function isEmptyPolicy(p: RetentionPolicy): boolean {
  return p.last === undefined && p.within === undefined && BUCKETS.every(([k]) => p[k] === undefined);
}

export function groupKey(s: SnapshotWithId): string {
  return `${s.device}\u0000${[...s.paths].sort().join('\u0000')}`;
}

export function applyPolicy(snapshots: SnapshotWithId[], policy: RetentionPolicy): ForgetDecision[] {
  const groups = new Map<string, SnapshotWithId[]>();
  for (const s of snapshots) groups.set(groupKey(s), [...(groups.get(groupKey(s)) ?? []), s]);
  const out: ForgetDecision[] = [];
  for (const group of groups.values()) {
    const newest = [...group].sort((a, b) => b.time.localeCompare(a.time));
    const decisions = newest.map((snapshot) => ({ snapshot, keep: false, reasons: [] as string[] }));
    if (isEmptyPolicy(policy)) decisions.forEach((d) => ((d.keep = true), d.reasons.push('no policy')));
    decisions.forEach((d, i) => {
      if (policy.last !== undefined && i < policy.last) d.reasons.push('last');
    });
    for (const [name, bucketOf] of BUCKETS) {
      const n = policy[name] as number | undefined;
      if (n === undefined) continue;
      const seen = new Set<string>();
      for (const d of decisions) {
        const bucket = bucketOf(new Date(d.snapshot.time));
        if (seen.has(bucket) || seen.size >= n) continue;
        seen.add(bucket);
        d.reasons.push(name);
      }
    }
    if (policy.within !== undefined && newest[0]) {
      const cutoff = withinCutoff(policy.within, new Date(newest[0].time)).getTime();
      for (const d of decisions) if (Date.parse(d.snapshot.time) >= cutoff) d.reasons.push(`within ${policy.within}`);
    }
    for (const d of decisions) d.keep ||= d.reasons.length > 0;
    out.push(...decisions);
  }
  return out;
}
