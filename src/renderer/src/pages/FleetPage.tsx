import { useEffect, useMemo, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { Button } from 'react-aria-components';
import { AppError, toAppError } from '../../../shared/errors';
import { profilesFileTooLarge } from '../../../shared/schemas/devices';
import { api } from '../api';
import { ScheduleQueue } from '../components/ScheduleQueue';
import { AddDeviceDialog } from '../components/AddDeviceDialog';
import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';
import { useAppStore } from '../stores/app-store';
import { useFleetStore } from '../stores/fleet-store';
import { useOverviewStore } from '../stores/overview-store';
import { ErrorBanner } from '../components/ErrorBanner';
import { formatBytes, formatDuration } from '../format';
import { byName, sortedNames } from '../../../shared/natural';
import type { FleetStatus, Overview, OverviewRow } from '../../../shared/schemas/fleet';
import { DevicePage } from './DevicePage';
import { ChoiceFilter } from '../components/ChoiceFilter';
import { counted } from '../../../shared/plural';
import { useSecondPress } from '../use-second-press';
import { useSettingsStore } from '../stores/settings-store';

type Message = { kind: 'ok' | 'warn' | 'error'; text: string; warnings?: string[] };

function ImportButton({ onResult }: { onResult: (message: Message) => void }) {
  const input = useRef<HTMLInputElement>(null);
  const onFile = async (file: File | undefined) => {
    if (!file) return;
    try {
      const tooLarge = profilesFileTooLarge(file.name, file.size);
      if (tooLarge) throw new AppError('VALIDATION', tooLarge);
      const imported = await api().devices.import({ json: await file.text() });
      const text = `Imported ${counted(imported.length, 'device')}: ${imported.map((d) => d.name).join(', ')}`;
      // A profile exported on another laptop names its key files there: said now, as the CLI does, not at the first backup.
      const warnings = await api()
        .devices.keyFileWarnings({ names: imported.map((d) => d.name) })
        .catch((caught: unknown) => [`Whether their key files can be read here was not checked: ${toAppError(caught).message}`]);
      onResult(warnings.length > 0 ? { kind: 'warn', text, warnings } : { kind: 'ok', text });
    } catch (caught) {
      const error = toAppError(caught);
      const details = (error.issues ?? []).slice(0, 5).map((i) => `${i.path}: ${i.message}`);
      onResult({ kind: 'error', text: [error.message, ...details].join(' — ') });
    } finally {
      if (input.current) input.current.value = '';
    }
  };
  return (
    <>
      <input ref={input} type="file" accept="application/json,.json" hidden data-testid="import-file" onChange={(e) => void onFile(e.target.files?.[0])} />
      <Button className="button" onPress={() => input.current?.click()} data-testid="import-devices">
        Import profiles…
      </Button>
    </>
  );
}

/**
 * Whole units gone by, rounded down: a backup 23 h 40 min old within a 24 h RPO reads "23 h ago",
 * not "24 h ago" beside another device's "24 h ago · breached".
 */
function formatAge(minutes: number): string {
  if (minutes < 1) return 'just now';
  if (minutes < 90) return `${Math.floor(minutes)} min ago`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h ago`;
  return `${Math.floor(minutes / 1440)} days ago`;
}

function formatMinutes(minutes: number): string {
  return minutes < 60 ? `${minutes} min` : minutes % 1440 === 0 ? `${minutes / 1440} d` : minutes % 60 === 0 ? `${minutes / 60} h` : `${(minutes / 60).toFixed(1)} h`;
}

/** A day, with its year when not this one (a check of last December is not "Dec 5" of this year). */
function shortDate(iso: string | null): string {
  if (!iso) return '—';
  const day = new Date(iso);
  return day.toLocaleDateString(undefined, day.getFullYear() === new Date().getFullYear() ? { month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' });
}

const STATUS_LABEL: Record<FleetStatus, string> = { protected: 'Protected', 'at-risk': 'At risk', unreachable: 'Unreachable' };
const STATUS_RANK: Record<FleetStatus, number> = { unreachable: 0, 'at-risk': 1, protected: 2 };
const TIER_RANK = { critical: 0, important: 1, standard: 2 } as const;

type SortKey = 'status' | 'name' | 'site' | 'tier' | 'age' | 'rto' | 'disk' | 'alerts';
const SORTS: Record<SortKey, (a: OverviewRow, b: OverviewRow) => number> = {
  status: (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || rpoUse(b) - rpoUse(a),
  name: (a, b) => byName(a.name, b.name),
  site: (a, b) => byName(a.site, b.site),
  tier: (a, b) => TIER_RANK[a.tier] - TIER_RANK[b.tier],
  // Share of the RPO used up: the most urgent first.
  age: (a, b) => rpoUse(b) - rpoUse(a),
  rto: (a, b) => rtoUse(b) - rtoUse(a),
  disk: (a, b) => (a.diskFreeFraction ?? 2) - (b.diskFreeFraction ?? 2),
  alerts: (a, b) => b.openAlerts - a.openAlerts,
};

/**
 * Which way each sort runs, for the header's aria-sort and arrow: names and sites A to Z, disk by
 * the least free first; the rest the most urgent (the highest) first.
 */
const SORT_DIRECTION: Record<SortKey, 'ascending' | 'descending'> = {
  status: 'descending',
  name: 'ascending',
  site: 'ascending',
  tier: 'descending',
  age: 'descending',
  rto: 'descending',
  disk: 'ascending',
  alerts: 'descending',
};

/**
 * Share of the RTO objective the measured recovery takes; a device whose newest drill failed first
 * (its measured time is an older drill's, and it may not recover at all), one never drilled last.
 */
function rtoUse(row: OverviewRow): number {
  if (row.rtoState === 'failed') return Number.POSITIVE_INFINITY;
  return row.rtoEstimateMs === null ? -1 : row.rtoEstimateMs / (row.rtoObjectiveMinutes * 60_000);
}

function rpoUse(row: OverviewRow): number {
  return row.ageMinutes === null ? Number.POSITIVE_INFINITY : row.ageMinutes / row.rpoMinutes;
}

function Filters({ overview, filter, setFilter }: { overview: Overview; filter: Filter; setFilter: (f: Filter) => void }) {
  const sites = useMemo(() => sortedNames(new Set(overview.devices.map((d) => d.site).filter(Boolean))), [overview]);
  const tags = useMemo(() => sortedNames(new Set(overview.devices.flatMap((d) => d.tags))), [overview]);
  return (
    <div className="filters" role="search" aria-label="Filter devices">
      <label>
        Search <input type="search" value={filter.text} onChange={(e) => setFilter({ ...filter, text: e.target.value })} placeholder="device name" data-testid="filter-text" />
      </label>
      <ChoiceFilter label="Site" all="All sites" choices={sites} value={filter.site} onChange={(site) => setFilter({ ...filter, site })} testId="filter-site" />
      <ChoiceFilter label="Tag" all="All tags" choices={tags} value={filter.tag} onChange={(tag) => setFilter({ ...filter, tag })} testId="filter-tag" />
      <label>
        Status
        <select value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.target.value as Filter['status'] })} data-testid="filter-status">
          <option value="">Any status</option>
          <option value="protected">Protected</option>
          <option value="at-risk">At risk</option>
          <option value="unreachable">Unreachable</option>
        </select>
      </label>
    </div>
  );
}

interface Filter {
  text: string;
  site: string;
  tag: string;
  status: '' | FleetStatus;
}

function SortHeader({ label, id, sort, setSort }: { label: string; id: SortKey; sort: SortKey; setSort: (s: SortKey) => void }) {
  return (
    <th scope="col" aria-sort={sort === id ? SORT_DIRECTION[id] : 'none'}>
      <button type="button" className="th-sort" onClick={() => setSort(id)} data-testid={`sort-${id}`}>
        {label}
        {sort === id ? (SORT_DIRECTION[id] === 'ascending' ? ' ▴' : ' ▾') : ''}
      </button>
    </th>
  );
}

/**
 * Backs up every device the table shows (a site, a tag, the ones at risk): one job each, as many at
 * once as Settings allow. More than one asks for a second press — thirty devices over field links
 * is not a click to make by mistake. Devices busy with a job, or without sources, are skipped and said.
 */
function BackUpShown({ names, onResult }: { names: string[]; onResult: (message: Message) => void }) {
  const confirming = useSecondPress<string>();
  const [starting, setStarting] = useState(false);
  const atOnce = useSettingsStore((s) => s.settings?.maxParallelDevices);
  // The devices armed, whatever their order: a refresh that re-sorts the rows keeps the first press,
  // a filter that changes what is shown asks again.
  const key = [...names].sort().join('\n');
  const armed = names.length > 1 && confirming.armed === key;
  const start = async () => {
    setStarting(true);
    try {
      const { started, skipped } = await api().backups.startMany({ devices: names });
      const reasons = skipped.map((s) => (s.reason.startsWith(s.device) ? s.reason : `${s.device}: ${s.reason}`));
      const pace = atOnce && started.length > atOnce ? `; ${atOnce} run at once, the rest wait their turn` : '';
      if (started.length === 0) onResult({ kind: 'error', text: `No backup started: ${counted(skipped.length, 'device was', 'devices were')} skipped`, warnings: reasons });
      else if (skipped.length > 0) onResult({ kind: 'warn', text: `Started ${counted(started.length, 'backup')}${pace}. Skipped ${counted(skipped.length, 'device')}:`, warnings: reasons });
      else onResult({ kind: 'ok', text: `Started ${counted(started.length, 'backup')}${pace}. The jobs tray shows each.` });
    } catch (caught) {
      onResult({ kind: 'error', text: `No backup started: ${toAppError(caught).message}` });
    } finally {
      setStarting(false);
    }
  };
  const onPress = () => {
    if (names.length > 1 && !armed) return confirming.arm(key);
    confirming.disarm();
    void start();
  };
  const label = starting ? 'Starting…' : armed ? `Press again to back up ${counted(names.length, 'device')}` : names.length === 0 ? 'No device shown to back up' : names.length === 1 ? `Back up ${names[0]}` : `Back up these ${counted(names.length, 'device')}`;
  return (
    <Button className={armed ? 'button button-primary' : 'button'} isDisabled={names.length === 0 || starting} onPress={onPress} onBlur={confirming.disarm} data-testid="fleet-backup-shown">
      {label}
    </Button>
  );
}

function OverviewTable({ overview, onResult }: { overview: Overview; onResult: (message: Message) => void }) {
  const [filter, setFilter] = useState<Filter>({ text: '', site: '', tag: '', status: '' });
  const [sort, setSort] = useState<SortKey>('status');
  const rows = useMemo(() => {
    const text = filter.text.trim().toLowerCase();
    return overview.devices
      .filter((d) => (!filter.site || d.site === filter.site) && (!filter.tag || d.tags.includes(filter.tag)) && (!filter.status || d.status === filter.status) && (!text || d.name.toLowerCase().includes(text)))
      .sort((a, b) => SORTS[sort](a, b) || byName(a.name, b.name));
  }, [overview, filter, sort]);
  const { summary } = overview;
  const header = (label: string, id: SortKey) => <SortHeader label={label} id={id} sort={sort} setSort={setSort} />;
  return (
    <>
      <div className="summary-strip" data-testid="fleet-summary">
        <button type="button" className="summary-chip status-ok" onClick={() => setFilter({ ...filter, status: 'protected' })}>
          {summary.protected} protected
        </button>
        <button type="button" className="summary-chip status-bad" onClick={() => setFilter({ ...filter, status: 'at-risk' })}>
          {summary.atRisk} at risk
        </button>
        <button type="button" className="summary-chip status-warn" onClick={() => setFilter({ ...filter, status: 'unreachable' })}>
          {summary.unreachable} unreachable
        </button>
        <span className="muted">of {summary.total} devices</span>
      </div>
      <Filters overview={overview} filter={filter} setFilter={setFilter} />
      <div className="fleet-toolbar">
        <p className="muted" data-testid="fleet-count">
          Showing {rows.length} of {overview.devices.length}
        </p>
        <BackUpShown names={rows.map((d) => d.name)} onResult={onResult} />
      </div>
      <WindowedRows rows={rows} header={
        <tr aria-rowindex={1}>
          {header('Device', 'name')}
          {header('Status', 'status')}
          {header('Site', 'site')}
          {header('Tier · RPO', 'tier')}
          {header('Last good', 'age')}
          <th scope="col">Contact</th>
          {header('RTO', 'rto')}
          <th scope="col">Verified · Copies</th>
          {header('Disk free · DB', 'disk')}
          {header('Alerts', 'alerts')}
        </tr>
      } alertsAvailable={overview.alertsAvailable} generatedAt={Date.parse(overview.generatedAt)} />
    </>
  );
}

/** Fixed row height, so only the rows in view (plus a margin) are rendered: 500 devices render like 60. */
const ROW_HEIGHT = 38;
const OVERSCAN = 25;

function WindowedRows({ rows, header, alertsAvailable, generatedAt }: { rows: OverviewRow[]; header: ReactNode; alertsAvailable: boolean; generatedAt: number }) {
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(900);
  const scroller = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setHeight(element.clientHeight || 900));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  return (
    // At least 240 px on a short window, but never taller than the rows: a short fleet leaves no empty band.
    <div className="fleet-scroll card" data-testid="fleet-scroll" ref={scroller} style={{ minHeight: Math.min(240, (rows.length + 1) * ROW_HEIGHT + 2) }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)}>
      {/* Only the rows in view are in the page: the table says how many there are, each row where it stands. */}
      <table className="table fleet-table" data-testid="fleet-table" data-count={rows.length} aria-rowcount={rows.length + 1}>
        <thead>{header}</thead>
        <tbody>
          {first > 0 ? <tr aria-hidden="true" style={{ height: first * ROW_HEIGHT }} /> : null}
          {rows.slice(first, last).map((d, i) => (
            <DeviceRow key={d.id} d={d} alertsAvailable={alertsAvailable} rowIndex={first + i + 2} now={generatedAt} />
          ))}
          {last < rows.length ? <tr aria-hidden="true" style={{ height: (rows.length - last) * ROW_HEIGHT }} /> : null}
        </tbody>
      </table>
    </div>
  );
}

/** A contact older than the device's RPO (an hour at least) is shown with its age, and no longer in green: the device may have gone since. */
const CONTACT_FRESH_MINUTES = 60;

function DeviceRow({ d, alertsAvailable, rowIndex, now }: { d: OverviewRow; alertsAvailable: boolean; rowIndex: number; now: number }) {
  const contactMinutes = d.lastContactAt ? Math.max(0, (now - Date.parse(d.lastContactAt)) / 60_000) : null;
  const stale = contactMinutes !== null && contactMinutes > Math.max(CONTACT_FRESH_MINUTES, d.rpoMinutes);
  return (
    <tr aria-rowindex={rowIndex} data-testid={`device-row-${d.name}`} data-protection={d.status} data-rpo={d.rpoState} className={`row-${d.status}`} style={{ height: ROW_HEIGHT }}>
      <td>
        <a href={`#/fleet/${encodeURIComponent(d.name)}`}>{d.name}</a>
        {/* The tier has its own column. */}
        {d.tags
          .filter((t) => !t.startsWith('tier:'))
          .map((t) => (
            <span key={t} className="tag">
              {t}
            </span>
          ))}
      </td>
      <td>
        <span className={`protection protection-${d.status}`}>{STATUS_LABEL[d.status]}</span>
      </td>
      <td>{d.site || '—'}</td>
      <td>
        {d.tier} · {formatMinutes(d.rpoMinutes)}
      </td>
      <td className={d.rpoState === 'ok' ? 'status-ok' : 'status-bad'} data-testid={`rpo-${d.name}`}>
        {d.ageMinutes === null ? 'never' : formatAge(d.ageMinutes)}
        {d.rpoState === 'breached' ? ' · breached' : ''}
        {d.lastAttemptStatus === 'failed' ? (
          <span className="muted" title={d.lastAttemptError ?? undefined}>
            {' '}
            · last failed
          </span>
        ) : null}
      </td>
      <td>
        {/* "reachable" is as of the last contact: one of two weeks ago (a console closed meanwhile) says when. */}
        <span className={d.reachability === 'unreachable' ? 'status-bad' : d.reachability === 'reachable' && !stale ? 'status-ok' : 'muted'} data-testid={`contact-${d.name}`}>
          {d.reachability}
          {stale ? ` ${formatAge(contactMinutes)}` : ''}
        </span>
        {d.lastAttemptErrorCode === 'HOST_KEY_MISMATCH' ? (
          <span className="status-bad" data-testid={`host-key-${d.name}`} title={d.lastAttemptError ?? undefined}>
            {' '}
            · host key changed
          </span>
        ) : d.hostKeyPinned ? (
          <span className="sr-only"> · host key pinned</span>
        ) : (
          <span className="status-warn" data-testid={`host-key-${d.name}`}>
            {' '}
            · key not confirmed
          </span>
        )}
      </td>
      <td className={d.rtoState === 'ok' ? 'status-ok' : d.rtoState === 'partial' ? 'status-warn' : d.rtoState === 'unknown' ? 'muted' : 'status-bad'} title={d.rtoState === 'partial' ? 'The drill that measured it skipped sources it cannot drill' : undefined}>
        {d.rtoState === 'failed' ? 'failed · ' : d.rtoState === 'partial' ? 'partial · ' : ''}
        {/* A device drilled but never measured (its drills failed) has had a drill: not "failed · no drill yet". */}
        {d.rtoEstimateMs === null ? (d.rtoState === 'failed' ? 'none measured' : 'no drill yet') : formatDuration(d.rtoEstimateMs / 1000)} / {formatMinutes(d.rtoObjectiveMinutes)}
      </td>
      <td>
        <span className={d.lastVerifyStatus === 'failed' ? 'status-bad' : undefined}>{d.lastVerifyAt ? shortDate(d.lastVerifyAt) : 'never'}</span>
        {' · '}
        {/* Copies of the latest run: the primary plus each secondary repository holding it; "off" when one is offsite. */}
        <span data-testid={`copies-${d.name}`} className={d.copies === 0 ? 'status-bad' : d.copies === 1 ? 'status-warn' : 'status-ok'} title={`${d.copies} ${d.copies === 1 ? 'copy' : 'copies'} of the latest run${d.offsiteCopy ? ', one offsite' : ''}`}>
          {d.copies}×{d.offsiteCopy ? ' off' : ''}
        </span>
      </td>
      <td>
        <span className={d.diskFreeFraction !== null && d.diskFreeFraction < 0.1 ? 'status-bad' : undefined}>
          {d.diskFreeBytes === null ? 'disk ?' : formatBytes(d.diskFreeBytes)}
        </span>
        {d.databaseUp === null ? null : d.databaseUp ? <span className="muted"> · DB up</span> : <span className="status-bad"> · DB down</span>}
      </td>
      <td data-testid={`alerts-${d.name}`} className={d.openAlerts > 0 ? 'status-bad' : undefined}>
        {!alertsAvailable ? '—' : d.openAlerts > 0 ? <a href="#/alerts">{d.openAlerts}</a> : 0}
      </td>
    </tr>
  );
}

/** How often the Fleet page reads the overview again while it is open. */
const OVERVIEW_REFRESH_MS = 60_000;

export function FleetPage() {
  const param = useAppStore((s) => s.param);
  const devices = useFleetStore((s) => s.devices);
  const overview = useOverviewStore((s) => s.overview);
  const overviewError = useOverviewStore((s) => s.error);
  const loadOverview = useOverviewStore((s) => s.load);
  const [adding, setAdding] = useState(false);
  useEffect(() => {
    if (param) return;
    void loadOverview();
    // Ages and the RPO verdicts are as of the last read: read again every minute, or a page left open
    // says "12 min ago · Protected" for hours while a device that stopped backing up breaches its RPO.
    const timer = setInterval(() => void loadOverview(), OVERVIEW_REFRESH_MS);
    return () => clearInterval(timer);
  }, [param, loadOverview]);
  const [message, setMessage] = useState<Message | null>(null);
  if (param) return <DevicePage name={param} />;
  const actions = (
    <>
      <ImportButton onResult={setMessage} />
      <Button className="button button-primary" onPress={() => setAdding(true)} data-testid="add-device">
        Add device
      </Button>
    </>
  );
  return (
    <>
      <PageHeader title="Fleet" subtitle="Which devices are protected, which are at risk" actions={actions} />
      {message ? (
        <div role="status" className={`banner banner-${message.kind} page-banner`} data-testid="fleet-message">
          {message.text}
          {message.warnings ? (
            <ul data-testid="fleet-message-warnings">
              {message.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      <ErrorBanner message={overviewError} testId="overview-error" />
      {devices.length === 0 && (overview?.devices.length ?? 0) === 0 ? (
        <EmptyState title="No devices in the inventory yet" testId="fleet-empty">
          <p>Add your first Jetson with its address and SSH key, or import device profiles a colleague exported.</p>
          <p>Each device then appears here with its site, sources and connection state.</p>
        </EmptyState>
      ) : (
        // Under a first load's error the banner says it all: "Loading…" beside it would wait for nothing.
        overview ? <OverviewTable overview={overview} onResult={setMessage} /> : overviewError ? null : <p>Loading…</p>
      )}
      <ScheduleQueue />
      <AddDeviceDialog isOpen={adding} onClose={() => setAdding(false)} onAdded={(name) => (window.location.hash = `#/fleet/${encodeURIComponent(name)}`)} />
    </>
  );
}
