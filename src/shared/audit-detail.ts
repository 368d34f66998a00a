/**
 * An audit entry's detail (JSON, as stored and exported) in words for the Audit page: one
 * "key: value" per field, a change as "key: before → after", a list as its items, nested fields by
 * their path. The CSV export keeps the JSON.
 */
const BEFORE_AFTER = (v: unknown): v is { from: unknown; to: unknown } => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).sort().join() === 'from,to';

function words(value: unknown): string {
  if (value === null || value === undefined) return 'none';
  if (typeof value === 'string') return value === '' ? '""' : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map((v) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : words(v))).join(', ');
  return JSON.stringify(value);
}

function parts(value: Record<string, unknown>, prefix: string): string[] {
  return Object.entries(value).flatMap(([key, v]) => {
    const name = `${prefix}${key}`;
    if (BEFORE_AFTER(v)) return [`${name}: ${words(v.from)} → ${words(v.to)}`];
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return parts(v as Record<string, unknown>, `${name}.`);
    return [`${name}: ${words(v)}`];
  });
}

export function describeAuditDetail(detail: string | null): string {
  if (detail === null) return '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(detail);
  } catch {
    return detail; // not JSON (an older entry, or written by hand): as it is
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return detail;
  return parts(parsed as Record<string, unknown>, '').join('; ');
}
