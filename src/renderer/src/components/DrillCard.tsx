import { useEffect, useState } from 'react';
import { Button } from 'react-aria-components';
import type { DrillRecord, RtoStatus } from '../../../shared/schemas/drills';
import { toAppError } from '../../../shared/errors';
import { formatDuration } from '../../../shared/format-duration';
import { api } from '../api';
import { formatBytes } from '../format';
import { useJobsStore } from '../stores/jobs-store';
import { ErrorBanner } from './ErrorBanner';

const STATUS_TEXT: Record<RtoStatus['status'], string> = {
  ok: 'within the objective',
  partial: 'within the objective for the sources drilled',
  over: 'slower than the objective',
  failed: 'the last drill failed',
  unknown: 'not measured yet',
};

/**
 * The device's last restore drill and the RTO it measured, against the objective; runs a drill.
 * `objective`: the device's own RTO target, so the card reads the status again when it is changed.
 */
export function DrillCard({ device, deviceId, objective }: { device: string; deviceId: string; objective?: number | undefined }) {
  const [rto, setRto] = useState<RtoStatus | null>(null);
  const [history, setHistory] = useState<DrillRecord[]>([]);
  const [error, setError] = useState<string | null>(null);
  // Pressed and its job not over yet: from the press on, not only once the job's first progress
  // arrives — a second press (a double click) meanwhile queued a second drill.
  const [starting, setStarting] = useState(false);
  const [startedJob, setStartedJob] = useState<string | null>(null);
  const running = useJobsStore(
    (s) => starting || Object.values(s.active).some((j) => j.kind === 'drill' && j.title === `Drill ${device}`) || (startedJob !== null && !s.recent.some((j) => j.id === startedJob)),
  );
  // A drill of this device that finished since the card loaded: read the record again.
  const finishedDrills = useJobsStore((s) => s.recent.filter((j) => j.kind === 'drill' && j.deviceId === deviceId).length);

  useEffect(() => {
    api()
      .drills.rto({ device })
      .then(setRto)
      .catch((caught: unknown) => setError(toAppError(caught).message));
    api()
      .drills.list({ device, limit: 10 })
      .then(setHistory)
      .catch((caught: unknown) => setError(toAppError(caught).message));
  }, [device, finishedDrills, objective]);

  const start = async () => {
    setError(null);
    setStarting(true);
    try {
      setStartedJob((await api().drills.start({ device })).jobId);
    } catch (caught) {
      setError(toAppError(caught).message);
    } finally {
      setStarting(false);
    }
  };
  const last = rto?.lastDrill ?? null;
  return (
    <section className="card" aria-label="Restore drill and RTO" data-testid="device-drill">
      <div className="page-header">
        <h2>Recovery (RTO)</h2>
        <Button className="button" onPress={() => void start()} isDisabled={running} data-testid="drill-start">
          {running ? 'Drilling…' : 'Run a restore drill'}
        </Button>
      </div>
      <ErrorBanner message={error} testId="drill-error" />
      {rto ? (
        <p data-testid="drill-rto">
          RTO estimate{' '}
          <strong className={`rto-${rto.status}`} data-testid="drill-rto-value">
            {rto.estimateMs === null ? '—' : formatDuration(rto.estimateMs)}
          </strong>{' '}
          against an objective of {rto.objectiveMinutes} min ({rto.objectiveFrom === 'device' ? "this device's" : 'the default'}):{' '}
          <span className={`rto-${rto.status}`} data-testid="drill-rto-status">
            {STATUS_TEXT[rto.status]}
          </span>
          {rto.estimateMs !== null && !rto.complete ? <span className="muted"> — measured without the sources the drill skipped</span> : null}
        </p>
      ) : null}
      {last ? (
        <>
          <p className={last.result === 'failed' ? 'banner banner-error' : 'muted'} data-testid="drill-last">
            Last drill {new Date(last.startedAt).toLocaleString()}: <strong data-testid="drill-last-result">{last.result}</strong>
            {last.error ? ` — ${last.error}` : ''}
            {last.cleanup && last.cleanup !== 'done' ? ` — scratch area ${last.cleanup}` : ''}
            {last.leftoversStopped?.length ? ` — first stopped what an earlier run had left running on the device (${last.leftoversStopped.join(', ')})` : ''}
          </p>
          <table className="table" data-testid="drill-sources">
            <thead>
              <tr>
                <th scope="col">Source</th>
                <th scope="col">Result</th>
                <th scope="col">Recovery time</th>
                <th scope="col">Restored</th>
              </tr>
            </thead>
            <tbody>
              {last.sources.map((s) => (
                <tr key={s.source} data-testid={`drill-source-${s.source}`}>
                  <td>
                    {s.source} <span className="muted">{s.kind}</span>
                  </td>
                  <td className={s.result === 'passed' ? 'status-ok' : s.result === 'failed' ? 'status-failed' : 'status-warn'} title={s.error ?? s.detail ?? ''}>
                    {s.result}
                    {s.result !== 'passed' && s.error ? <span className="muted"> ({s.error})</span> : null}
                  </td>
                  <td>{s.result === 'passed' ? formatDuration(s.durationMs) : '—'}</td>
                  <td>{s.result === 'passed' ? `${s.files.toLocaleString()} entries, ${formatBytes(s.bytes)}` : ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {history.some((d) => d.id !== last.id && d.result !== 'running') ? (
            <details data-testid="drill-history">
              <summary>Earlier drills</summary>
              <ul className="sources">
                {history.filter((d) => d.id !== last.id && d.result !== 'running').map((d) => (
                  <li key={d.id}>
                    {new Date(d.startedAt).toLocaleString()}: <span className={d.result === 'failed' ? 'status-failed' : d.result === 'passed' ? 'status-ok' : 'status-warn'}>{d.result}</span>
                    {d.totalMs !== null ? ` in ${formatDuration(d.totalMs)}` : ''}
                    {d.error ? <span className="muted"> — {d.error}</span> : null}
                  </li>
                ))}
              </ul>
            </details>
          ) : null}
        </>
      ) : rto ? (
        <p className="muted">
          No drill yet. A drill restores the latest backup into a scratch folder on the device, verifies it, removes it again and measures how long recovery takes. The
          running app is not touched.
        </p>
      ) : null}
    </section>
  );
}
