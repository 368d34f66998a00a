import { useEffect, useState } from 'react';
import type { ReactNode } from 'react';
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { toAppError } from '../../../shared/errors';
import { RANGES } from '../../../shared/schemas/fleet';
import type { Dashboard, Range } from '../../../shared/schemas/fleet';
import { api } from '../api';
import { EmptyState } from '../components/EmptyState';
import { ErrorBanner } from '../components/ErrorBanner';
import { PageHeader } from '../components/PageHeader';
import { byteTicks, durationTicks, formatBytes, formatBytesTick, formatDurationTick } from '../format';
import { byName } from '../../../shared/natural';
import { formatAge, formatDuration } from '../../../shared/format-duration';
import { formatShare } from '../../../shared/format-share';
import { useAppStore } from '../stores/app-store';
import { useOverviewStore } from '../stores/overview-store';

// Series colours come from the theme's variables, so both themes keep their contrast.
const C = { a: 'var(--accent)', ok: 'var(--ok)', warn: 'var(--warn)', bad: 'var(--danger)', muted: 'var(--text-muted)' };

const RANGE_LABEL: Record<Range, string> = { '24h': '24 h', '7d': '7 days', '30d': '30 days', '90d': '90 days', '365d': '1 year' };

/**
 * A bucket's axis label. Day and week buckets are UTC days (the daily roll-up is kept per UTC day),
 * so they are named in UTC: in local time the bucket of 4 December, which starts at 16:00 on the
 * 3rd in California, was labelled "Dec 3" though most of its runs were on the 4th there.
 */
function tick(bucketSeconds: number) {
  return (t: number) => {
    const d = new Date(t * 1000);
    if (bucketSeconds >= 86_400) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
    // Hour buckets are whole UTC hours: in a half-hour zone (India, +05:30) or a 45-minute one
    // (Nepal) they start at :30 or :45 local, which an hour-only label would round to the hour.
    return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', ...(d.getMinutes() === 0 ? {} : { minute: '2-digit' }) });
  };
}

/** A bucket's tooltip title: its start in local time, or the UTC day or week it is. */
function bucketLabel(bucketSeconds: number) {
  return (t: unknown) => {
    const d = new Date(Number(t) * 1000);
    if (bucketSeconds < 86_400) return d.toLocaleString();
    const day = d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric', timeZone: 'UTC' });
    return bucketSeconds === 86_400 ? `${day} (UTC day)` : `Week from ${day} (UTC)`;
  };
}

/** A point at its own time (one device's drills), in local time. */
const localTick = (t: number) => new Date(t * 1000).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
const localLabel = (t: unknown) => new Date(Number(t) * 1000).toLocaleString();

function Chart({ title, testId, empty, children }: { title: string; testId: string; empty: boolean; children: ReactNode }) {
  return (
    <section className="card chart-card" aria-label={title} data-testid={testId}>
      <h2>{title}</h2>
      {empty ? (
        <p className="muted">No data in this range.</p>
      ) : (
        <ResponsiveContainer width="100%" height={220}>
          {children as React.ReactElement}
        </ResponsiveContainer>
      )}
    </section>
  );
}

/** A small dot on each bucket with runs: one between buckets without any is a point, not a line. */
const RUN_DOT = { r: 1.5 };
const pct = (v: number) => `${Math.round(v * 100)} %`;
const tooltipStyle = { background: 'var(--surface)', border: '1px solid var(--border)', color: 'var(--text)' };

/**
 * The runs of every bucket of the range, those without any as no runs: the charts' x axis lists
 * its points side by side, so a bucket missing from the answer (a device off for three days, which
 * the scheduler starts no backup for) would vanish and the line join the days on either side.
 */
function everyBucket(data: Dashboard): Dashboard['runs'] {
  const byTime = new Map(data.runs.map((r) => [r.t, r]));
  const out: Dashboard['runs'] = [];
  let cumulativeAdded = 0;
  for (let t = Date.parse(data.from) / 1000; t < Date.parse(data.to) / 1000; t += data.bucketSeconds) {
    const r = byTime.get(t) ?? { t, runs: 0, succeeded: 0, failed: 0, avgDurationMs: null, maxDurationMs: null, bytesTransferred: 0, bytesAdded: 0, cumulativeAdded };
    cumulativeAdded = r.cumulativeAdded;
    out.push(r);
  }
  return out;
}

function Charts({ data }: { data: Dashboard }) {
  const x = { dataKey: 't', tickFormatter: tick(data.bucketSeconds), stroke: C.muted, fontSize: 11, minTickGap: 24 };
  const labelFormatter = bucketLabel(data.bucketSeconds);
  // Of the runs that ended on their own: a run the operator or a quit cancelled neither succeeded nor failed.
  const runs = everyBucket(data).map((r) => ({ ...r, successRate: r.succeeded + r.failed === 0 ? null : r.succeeded / (r.succeeded + r.failed), avgS: r.avgDurationMs === null ? null : r.avgDurationMs / 1000, maxS: r.maxDurationMs === null ? null : r.maxDurationMs / 1000 }));
  // In seconds, as the run durations: one axis style (0s, 15m, 30m, 45m, 1h) for both duration charts.
  const drills = data.drills.map((d) => ({ ...d, avgS: d.avgMs === null ? null : d.avgMs / 1000, maxS: d.maxMs === null ? null : d.maxMs / 1000, objectiveS: d.objectiveMs / 1000 }));
  const storage = data.storage.map((s) => ({ ...s, diskAvg: s.diskPermille === null ? null : s.diskPermille / 1000, diskMax: s.diskPermilleMax === null ? null : s.diskPermilleMax / 1000 }));
  // Without repository samples (a repository on S3 or an SFTP server), growth is what backups added
  // since the range began (cumulative), and named so: it is not the repository's size.
  const measured = storage.some((s) => s.repositoryBytes !== null);
  const growth: { t: number; repositoryBytes: number | null; laptopFree: number | null }[] = measured
    ? storage
    : data.runs.length === 0
      ? []
      : runs.map((r) => ({ t: r.t, repositoryBytes: r.cumulativeAdded, laptopFree: null }));
  // A bucket's drills against each one's own device objective: the fleet's line is only the default
  // one, under which a device with an objective of its own can be over.
  const drillTitle = (t: unknown, items: readonly { payload?: unknown }[]) => {
    const title = data.device ? localLabel(t) : labelFormatter(t);
    const d = items[0]?.payload as (typeof drills)[number] | undefined;
    if (!d) return title;
    if (data.device) return `${title} · ${d.failed ? 'failed' : d.over ? 'over the objective' : 'within the objective'}`;
    return `${title} · ${d.count} ${d.count === 1 ? 'drill' : 'drills'}: ${d.over} over their device's objective${d.failed ? `, ${d.failed} failed` : ''}`;
  };
  const grid = <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />;
  /** An axis's props: round ticks (byteTicks, durationTicks) over the largest of `values`. */
  const roundAxis = (values: (number | null)[], ticksFor: (max: number) => number[] | undefined, tickFormatter: (v: number) => string) => {
    const ticks = ticksFor(values.reduce<number>((max, v) => (v !== null && v > max ? v : max), 0));
    return { tickFormatter, ...(ticks ? { ticks, domain: [0, ticks.at(-1)!] } : {}) };
  };
  const byteAxis = (values: (number | null)[]) => roundAxis(values, byteTicks, formatBytesTick);
  // `format` gets the value and the bucket's whole data point (for counts beside a share).
  const tooltip = <P,>(format: (v: number, point: P) => string, label: (t: unknown, items: readonly { payload?: unknown }[]) => string = labelFormatter) => (
    <Tooltip contentStyle={tooltipStyle} labelFormatter={label} formatter={(v, _name, item) => (typeof v === 'number' ? format(v, (item as { payload: P }).payload) : String(v))} />
  );
  return (
    <div className="charts">
      <Chart title="Backup duration per run" testId="chart-duration" empty={data.runs.length === 0}>
        <LineChart data={runs}>
          {grid}
          <XAxis {...x} />
          {/* Round durations (1 min, 2 min; short runs 0.5 s, 1 s, 1.5 s: a whole-second label would repeat). */}
          <YAxis stroke={C.muted} fontSize={11} {...roundAxis(runs.map((r) => r.maxS), durationTicks, formatDurationTick)} width={60} />
          {tooltip((v) => formatDuration(v * 1000))}
          <Legend />
          <Line type="monotone" dataKey="avgS" name="mean" stroke={C.a} dot={RUN_DOT} isAnimationActive={false} />
          <Line type="monotone" dataKey="maxS" name="slowest" stroke={C.warn} dot={RUN_DOT} isAnimationActive={false} />
        </LineChart>
      </Chart>
      <Chart title="Bytes transferred vs added (dedup effect)" testId="chart-dedup" empty={data.runs.length === 0}>
        <BarChart data={runs}>
          {grid}
          <XAxis {...x} />
          <YAxis stroke={C.muted} fontSize={11} {...byteAxis(runs.flatMap((r) => [r.bytesTransferred, r.bytesAdded]))} width={70} />
          {tooltip((v) => formatBytes(v))}
          <Legend />
          <Bar dataKey="bytesTransferred" name="transferred" fill={C.a} isAnimationActive={false} />
          <Bar dataKey="bytesAdded" name="added to the repository" fill={C.ok} isAnimationActive={false} />
        </BarChart>
      </Chart>
      <Chart title="Backup success rate" testId="chart-success" empty={data.runs.length === 0}>
        <LineChart data={runs}>
          {grid}
          <XAxis {...x} />
          <YAxis stroke={C.muted} fontSize={11} domain={[0, 1]} tickFormatter={pct} width={50} />
          {tooltip((v, r: (typeof runs)[number]) => `${formatShare(v)} (${r.succeeded} of ${r.succeeded + r.failed} runs${r.runs > r.succeeded + r.failed ? `; ${r.runs - r.succeeded - r.failed} cancelled` : ''})`)}
          <Line type="monotone" dataKey="successRate" name="succeeded" stroke={C.ok} dot={RUN_DOT} isAnimationActive={false} />
        </LineChart>
      </Chart>
      <Chart title="RPO compliance (share of the devices' time within their RPO)" testId="chart-rpo" empty={data.rpoCompliance.length === 0}>
        <AreaChart data={data.rpoCompliance}>
          {grid}
          <XAxis {...x} />
          <YAxis stroke={C.muted} fontSize={11} domain={[0, 1]} tickFormatter={pct} width={50} />
          {tooltip(
            (v, c: Dashboard['rpoCompliance'][number]) =>
              `${formatShare(v)} of the time (${c.devices} ${c.devices === 1 ? 'device' : 'devices'}${c.outsideSeconds > 0 ? `; ${formatAge(c.outsideSeconds * 1000)} outside RPO in all` : ''})`,
          )}
          <Area type="stepAfter" dataKey="fraction" name="compliant" stroke={C.ok} fill={C.ok} fillOpacity={0.25} isAnimationActive={false} />
        </AreaChart>
      </Chart>
      <Chart title="Repository growth and laptop free space" testId="chart-storage" empty={growth.length === 0}>
        <LineChart data={growth}>
          {grid}
          <XAxis {...x} />
          {/* Two scales: the repository is far smaller than the disk's free space. */}
          <YAxis yAxisId="repo" stroke={C.a} fontSize={11} {...byteAxis(growth.map((g) => g.repositoryBytes))} width={70} />
          <YAxis yAxisId="free" orientation="right" stroke={C.warn} fontSize={11} {...byteAxis(growth.map((g) => g.laptopFree))} width={70} />
          {tooltip((v) => formatBytes(v))}
          <Legend />
          <Line yAxisId="repo" type="monotone" dataKey="repositoryBytes" name={measured ? 'repository (left)' : `added by backups since ${tick(data.bucketSeconds)(Date.parse(data.from) / 1000)} (left)`} stroke={C.a} dot={false} connectNulls isAnimationActive={false} />
          <Line yAxisId="free" type="monotone" dataKey="laptopFree" name="laptop free (right)" stroke={C.warn} dot={false} connectNulls isAnimationActive={false} />
        </LineChart>
      </Chart>
      <Chart title={data.device ? 'Device disk usage' : 'Device disk usage (mean and fullest device)'} testId="chart-disks" empty={storage.every((s) => s.diskPermille === null)}>
        <LineChart data={storage}>
          {grid}
          <XAxis {...x} />
          <YAxis stroke={C.muted} fontSize={11} domain={[0, 1]} tickFormatter={pct} width={50} />
          {tooltip(formatShare)}
          <Legend />
          <Line type="monotone" dataKey="diskAvg" name={data.device ? 'used' : 'mean used'} stroke={C.a} dot={false} connectNulls isAnimationActive={false} />
          {data.device ? null : <Line type="monotone" dataKey="diskMax" name="fullest" stroke={C.bad} dot={false} connectNulls isAnimationActive={false} />}
        </LineChart>
      </Chart>
      <Chart title={data.device ? 'Measured RTO per drill vs objective' : 'Measured RTO vs objective (mean and slowest drill)'} testId="chart-rto" empty={drills.length === 0}>
        <LineChart data={drills}>
          {grid}
          {/* One device's drills are points at their own time; the fleet's are buckets. */}
          <XAxis {...x} {...(data.device ? { tickFormatter: localTick } : {})} />
          <YAxis stroke={C.muted} fontSize={11} {...roundAxis(drills.flatMap((d) => [d.maxS ?? d.avgS, d.objectiveS]), durationTicks, formatDurationTick)} width={60} />
          {tooltip((v) => formatDuration(v * 1000), drillTitle)}
          <Legend />
          <Line type="monotone" dataKey="avgS" name={data.device ? 'measured' : 'mean'} stroke={C.a} dot={!!data.device} isAnimationActive={false} />
          {data.device ? null : <Line type="monotone" dataKey="maxS" name="slowest" stroke={C.warn} dot={false} isAnimationActive={false} />}
          <Line type="stepAfter" dataKey="objectiveS" name={data.device ? 'objective' : 'default objective'} stroke={C.bad} strokeDasharray="6 4" dot={false} isAnimationActive={false} />
        </LineChart>
      </Chart>
    </div>
  );
}

export function DashboardsPage() {
  const [range, setRange] = useState<Range>('30d');
  // `#/dashboards/<device>` opens the charts of one device (the device page links here).
  const param = useAppStore((s) => s.param);
  const [device, setDevice] = useState(param ?? '');
  // Another device's link followed while the page is open (an alert, the device page): its charts
  // (state adjusted while rendering, as React advises for state that follows a prop).
  const [linked, setLinked] = useState(param);
  if (param !== linked) {
    setLinked(param);
    setDevice(param ?? '');
  }
  const [data, setData] = useState<Dashboard | null>(null);
  const [error, setError] = useState<string | null>(null);
  const overview = useOverviewStore((s) => s.overview);
  const loadOverview = useOverviewStore((s) => s.load);

  useEffect(() => {
    if (!overview) void loadOverview();
  }, [overview, loadOverview]);

  useEffect(() => {
    let current = true;
    api()
      .dashboards.get({ range, device: device || undefined })
      .then((d) => current && (setData(d), setError(null)))
      // Charts of the last choice under the error of this one would pass for this one's.
      .catch((caught: unknown) => current && (setData(null), setError(toAppError(caught).message)));
    return () => {
      current = false;
    };
  }, [range, device]);

  const actions = (
    <>
      <label className="muted">
        Device{' '}
        <select value={device} onChange={(e) => setDevice(e.target.value)} data-testid="dashboard-device" className="select-native">
          <option value="">Whole fleet</option>
          {/* A link to a device removed since (or mistyped) says so, not "Whole fleet". */}
          {device && overview && !overview.devices.some((d) => d.name === device) ? <option value={device}>{device} (not in the inventory)</option> : null}
          {[...(overview?.devices ?? [])].sort((a, b) => byName(a.name, b.name)).map((d) => (
            <option key={d.id} value={d.name}>
              {d.name}
            </option>
          ))}
        </select>
      </label>
      <div className="range-picker" role="group" aria-label="Time range">
        {RANGES.map((r) => (
          <button key={r} type="button" aria-pressed={r === range} onClick={() => setRange(r)} data-testid={`range-${r}`}>
            {RANGE_LABEL[r]}
          </button>
        ))}
      </div>
    </>
  );
  const empty = data !== null && data.runs.length === 0 && data.drills.length === 0 && data.storage.length === 0;
  return (
    <>
      <PageHeader title="Dashboards" subtitle="RPO and RTO over time, backup sizes and durations, storage" actions={actions} />
      <ErrorBanner message={error} testId="dashboards-error" />
      {data === null ? (
        error ? null : <p>Loading…</p>
      ) : empty ? (
        <EmptyState title="No history to chart yet" testId="dashboards-empty">
          <p>Charts fill in as backups, restores and drills run: durations, sizes, dedup, RPO compliance and measured RTO.</p>
        </EmptyState>
      ) : (
        <div data-testid="dashboards" data-range={data.range} data-device={data.device ?? ''}>
          <Charts data={data} />
        </div>
      )}
    </>
  );
}
