/** The audit log: who did what, when, with what result; filtered in SQL and exported as CSV. */
import { AuditQuerySchema } from '../../shared/schemas/fleet';
import type { AuditEntry, AuditQuery, TextFile } from '../../shared/schemas/fleet';
import type { HistoryStore } from '../history/history-store';

/** One CSV field (RFC 4180); a leading = + - @ is prefixed so a spreadsheet never runs it as a formula. */
export function csvField(value: string | number | null): string {
  let text = value === null ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Most entries one CSV export holds (the newest that match). */
export const CSV_MAX_ROWS = 10_000;

function filters(q: ReturnType<typeof AuditQuerySchema.parse>) {
  const blank = (v: string | undefined) => (v === undefined || v.trim() === '' ? null : v.trim());
  return {
    from: q.from ? new Date(q.from).toISOString() : null,
    to: q.to ? new Date(q.to).toISOString() : null,
    actor: blank(q.actor),
    action: blank(q.action),
    target: blank(q.target),
    result: q.result ?? null,
    text: blank(q.text),
  };
}

export class AuditService {
  readonly #store: HistoryStore;
  readonly #now: () => number;

  constructor(store: HistoryStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** The newest `limit` entries the filters match. */
  list(query: AuditQuery = {}): AuditEntry[] {
    const q = AuditQuerySchema.parse(query);
    return this.#store.sql.auditFind.all({ ...filters(q), limit: q.limit });
  }

  /** How many entries the filters match in all (the list and the CSV hold the newest of them). */
  count(query: AuditQuery = {}): number {
    return this.#store.sql.auditCount.get(filters(AuditQuerySchema.parse(query)))!.n;
  }

  actions(): string[] {
    return this.#store.sql.auditActions.all().map((r) => r.action);
  }

  csv(query: AuditQuery = {}): TextFile {
    const rows = this.list({ ...query, limit: CSV_MAX_ROWS });
    const lines = [['at', 'actor', 'action', 'target', 'result', 'message', 'detail'].join(',')];
    for (const r of rows) lines.push([r.at, r.actor, r.action, r.target, r.result, r.message, r.detail].map(csvField).join(','));
    const stamp = new Date(this.#now()).toISOString().slice(0, 19).replaceAll(':', '-');
    return { filename: `jetvault-audit-${stamp}.csv`, mimeType: 'text/csv', text: `${lines.join('\r\n')}\r\n` };
  }
}
