import { useCallback, useEffect, useState } from 'react';
import { Button } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import type { ScheduleEntryInfo } from '../../../shared/schemas/monitoring';
import { api } from '../api';
import { useFleetStore } from '../stores/fleet-store';
import { useJobsStore } from '../stores/jobs-store';
import { ErrorBanner } from './ErrorBanner';

const STATE_CLASS: Record<ScheduleEntryInfo['state'], string> = { running: 'status-ok', due: 'status-warn', waiting: 'muted', offline: 'status-bad', 'not ready': 'muted' };

/** What the scheduler runs next: running, due, waiting (soonest first), offline, not ready. */
export function ScheduleQueue() {
  const [queue, setQueue] = useState<{ enabled: boolean; entries: ScheduleEntryInfo[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Jobs starting and finishing move the queue (progress ticks do not).
  const jobs = useJobsStore((s) => `${Object.keys(s.active).sort().join(',')}|${s.recent[0]?.id ?? ''}`);
  const devices = useFleetStore((s) => s.devices);
  const load = useCallback(() => {
    api()
      .scheduler.queue()
      .then((q) => (setQueue(q), setError(null)))
      .catch((e: unknown) => setError(toAppError(e).message));
  }, []);
  useEffect(() => {
    load();
    const timer = setInterval(load, 30_000);
    return () => clearInterval(timer);
  }, [load, jobs, devices]);
  // A queue that could not be read says so, rather than passing for a fleet with nothing due.
  if (!queue && error)
    return (
      <section className="card" aria-label="Backup queue" data-testid="schedule-queue">
        <h2>Next backups</h2>
        <ErrorBanner message={`The backup queue could not be read: ${error}`} testId="schedule-queue-error" />
      </section>
    );
  if (!queue || queue.entries.length === 0) return null;
  const runNow = async () => {
    setError(null);
    try {
      await api().scheduler.tick();
      load();
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  return (
    <section className="card" aria-label="Backup queue" data-testid="schedule-queue">
      <h2>Next backups</h2>
      <p className="muted">
        {queue.enabled
          ? 'Devices are backed up by themselves before their RPO runs out, and on their schedules, while the console runs.'
          : 'Automatic backups are off here (Settings, or a console started without the scheduler). Due devices wait for “Back up now”.'}
      </p>
      <ErrorBanner message={error} testId="schedule-queue-error" />
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">State</th>
            <th scope="col">When</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {queue.entries.map((e) => (
            <tr key={e.device} data-testid={`queue-${e.device}`}>
              <td>
                <a href={`#/fleet/${encodeURIComponent(e.device)}`}>{e.device}</a>
              </td>
              <td className={STATE_CLASS[e.state]}>{e.state}</td>
              <td>{e.dueAt ? new Date(e.dueAt).toLocaleString() : '—'}</td>
              <td className="muted">{e.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="form-actions">
        <Button className="button" onPress={() => void runNow()} isDisabled={!queue.entries.some((e) => e.state === 'due')} data-testid="queue-run-due">
          Start due backups now
        </Button>
      </div>
    </section>
  );
}
