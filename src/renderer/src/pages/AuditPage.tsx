import { useEffect, useState } from 'react';
import { Button } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import type { AuditEntry, AuditQuery, AuditResult } from '../../../shared/schemas/fleet';
import { api } from '../api';
import { EmptyState } from '../components/EmptyState';
import { ErrorBanner } from '../components/ErrorBanner';
import { PageHeader } from '../components/PageHeader';
import { saveTextFile } from '../save-file';
import { ChoiceFilter } from '../components/ChoiceFilter';
import { describeAuditDetail } from '../../../shared/audit-detail';

interface Filter {
  from: string;
  to: string;
  action: string;
  target: string;
  result: '' | AuditResult;
  text: string;
}

const RESULT_LABEL: Record<AuditResult, string> = { ok: 'OK', failed: 'Failed', cancelled: 'Cancelled' };

/**
 * A date input's local day as an instant (`plusDays` later), or undefined for a day outside the years
 * 1–9999: the date box takes years up to 275760, where toISOString throws (the whole console went
 * blank) or writes a six-digit year the query refuses.
 */
function dayStart(value: string, plusDays = 0): string | undefined {
  if (!value) return undefined;
  const d = new Date(`${value}T00:00:00`);
  d.setDate(d.getDate() + plusDays);
  const year = d.getFullYear();
  return Number.isNaN(d.getTime()) || year < 1 || year > 9999 ? undefined : d.toISOString();
}

/** Dates typed that no entry can have, to say so beside the filters. */
function unusableDates(f: Filter): string[] {
  return [f.from && !dayStart(f.from) ? f.from : null, f.to && !dayStart(f.to, 1) ? f.to : null].filter((v): v is string => v !== null);
}

/** Date inputs give local days; the query takes instants (the end day is included whole). */
function toQuery(f: Filter): AuditQuery {
  return {
    from: dayStart(f.from),
    to: dayStart(f.to, 1),
    action: f.action || undefined,
    target: f.target.trim() || undefined,
    result: f.result || undefined,
    text: f.text.trim() || undefined,
  };
}

/** Records in RFC 4180 text: line ends outside quotes (a message with a line break is one quoted field). */
function csvRecords(text: string): number {
  let records = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '"') quoted = !quoted;
    else if (!quoted && text[i] === '\n') records++;
  }
  return records;
}

export function AuditPage() {
  const [filter, setFilter] = useState<Filter>({ from: '', to: '', action: '', target: '', result: '', text: '' });
  const [entries, setEntries] = useState<AuditEntry[] | null>(null);
  // How many entries match in all: the table lists the newest 500 of them.
  const [total, setTotal] = useState(0);
  const [actions, setActions] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [exported, setExported] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    api()
      .audit.list(toQuery(filter))
      .then((result) => {
        if (!current) return;
        setEntries(result.entries);
        setTotal(result.total);
        setActions(result.actions);
        setError(null);
      })
      .catch((caught: unknown) => current && setError(toAppError(caught).message));
    return () => {
      current = false;
    };
  }, [filter]);

  const exportCsv = async () => {
    try {
      const file = await api().audit.exportCsv(toQuery(filter));
      saveTextFile(file);
      const rows = csvRecords(file.text) - 1;
      setExported(rows < total ? `${file.filename}: the newest ${rows.toLocaleString()} of ${total.toLocaleString()} matching entries (narrow the dates to export the older ones)` : `${file.filename}: ${rows.toLocaleString()} ${rows === 1 ? 'entry' : 'entries'}`);
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };

  const set = (patch: Partial<Filter>) => setFilter({ ...filter, ...patch });
  const filtered = Object.values(filter).some(Boolean);
  return (
    <>
      <PageHeader
        title="Audit log"
        subtitle="Who did what, when, and with what result"
        actions={
          <Button className="button" onPress={() => void exportCsv()} isDisabled={!entries || entries.length === 0} data-testid="audit-export">
            Export CSV
          </Button>
        }
      />
      <ErrorBanner message={error} testId="audit-error" />
      {exported ? (
        <p role="status" className="banner banner-ok" data-testid="audit-exported">
          Saved {exported}
        </p>
      ) : null}
      {unusableDates(filter).length > 0 ? (
        <p role="alert" className="banner banner-error" data-testid="audit-date-error">
          {unusableDates(filter).join(' and ')}: not a day the log can be searched by (years 1 to 9999); left out of the filter.
        </p>
      ) : null}
      <div className="filters" role="search" aria-label="Filter the audit log">
        <label>
          From <input type="date" value={filter.from} onChange={(e) => set({ from: e.target.value })} data-testid="audit-from" />
        </label>
        <label>
          To <input type="date" value={filter.to} onChange={(e) => set({ to: e.target.value })} data-testid="audit-to" />
        </label>
        <ChoiceFilter label="Action" all="All actions" choices={actions} value={filter.action} onChange={(action) => set({ action })} testId="audit-action" />
        <label>
          Target <input value={filter.target} onChange={(e) => set({ target: e.target.value })} placeholder="device name" data-testid="audit-target" />
        </label>
        <label>
          Result
          <select value={filter.result} onChange={(e) => set({ result: e.target.value as Filter['result'] })} data-testid="audit-result">
            <option value="">Any result</option>
            <option value="ok">OK</option>
            <option value="failed">Failed</option>
            <option value="cancelled">Cancelled</option>
          </select>
        </label>
        <label>
          Contains <input type="search" value={filter.text} onChange={(e) => set({ text: e.target.value })} data-testid="audit-text" />
        </label>
      </div>
      {entries === null ? (
        error ? null : <p>Loading…</p>
      ) : entries.length === 0 ? (
        <EmptyState title={filtered ? 'Nothing matches these filters' : 'Nothing recorded yet'} testId="audit-empty">
          <p>Every change to devices, settings, restores and exports is recorded here with who made it and when.</p>
        </EmptyState>
      ) : (
        <>
          {entries.length < total ? (
            <p className="muted" data-testid="audit-count">
              The newest {entries.length.toLocaleString()} of {total.toLocaleString()} matching entries: narrow the dates or filters to see older ones.
            </p>
          ) : null}
          <table className="table card audit-table" data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Result</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.id} data-testid="audit-row">
                  <td>{new Date(e.at).toLocaleString()}</td>
                  <td>{e.actor}</td>
                  <td>{e.action}</td>
                  <td>{e.target ?? '—'}</td>
                  <td data-testid="audit-row-result">
                    <span className={e.result === 'ok' ? 'status-ok' : e.result === 'failed' ? 'status-bad' : 'status-warn'}>{RESULT_LABEL[e.result]}</span>
                    {e.message ? <span className="muted"> — {e.message}</span> : null}
                  </td>
                  <td className="audit-detail" title={e.detail ?? undefined}>
                    {describeAuditDetail(e.detail)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
