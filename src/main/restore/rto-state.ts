import type { RtoStatus } from '../../shared/schemas/drills';

/**
 * The RTO against its objective, as the device page, the Fleet page and the report show it: from the
 * newest drill that ended (`last`: passed, partial or failed) and the newest that measured a time
 * (`measured`: passed or partial).
 */
export function rtoStateOf(last: string | null | undefined, measured: { ms: number | null; result: string | null | undefined }, objectiveMinutes: number): RtoStatus['status'] {
  if (!last) return 'unknown';
  if (last === 'failed') return 'failed';
  if (measured.ms === null) return 'unknown';
  if (measured.ms > objectiveMinutes * 60_000) return 'over';
  // Within the objective, but a drill that skipped sources measured only the rest.
  return measured.result === 'partial' ? 'partial' : 'ok';
}
