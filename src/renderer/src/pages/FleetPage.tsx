import { useRef, useState } from 'react';
import { Button } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { ScheduleQueue } from '../components/ScheduleQueue';
import { AddDeviceDialog } from '../components/AddDeviceDialog';
import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';
import { useAppStore } from '../stores/app-store';
import { useFleetStore } from '../stores/fleet-store';
import { useSettingsStore } from '../stores/settings-store';
import type { DeviceSummary } from '../../../shared/schemas/devices';
import { DevicePage } from './DevicePage';

function ImportButton({ onResult }: { onResult: (message: { kind: 'ok' | 'error'; text: string }) => void }) {
  const input = useRef<HTMLInputElement>(null);
  const onFile = async (file: File | undefined) => {
    if (!file) return;
    try {
      const imported = await api().devices.import({ json: await file.text() });
      onResult({ kind: 'ok', text: `Imported ${imported.length} device(s): ${imported.map((d) => d.name).join(', ')}` });
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

type Protection = 'protected' | 'at-risk' | 'never';

/** A device is protected while its last good backup is younger than its RPO target. */
export function protectionOf(device: DeviceSummary, defaultRpoMinutes: number, now: number): { state: Protection; ageMinutes: number | null; rpo: number } {
  const rpo = device.rpoMinutes ?? defaultRpoMinutes;
  if (!device.lastBackupAt) return { state: 'never', ageMinutes: null, rpo };
  const ageMinutes = (now - Date.parse(device.lastBackupAt)) / 60_000;
  return { state: ageMinutes <= rpo ? 'protected' : 'at-risk', ageMinutes, rpo };
}

function formatAge(minutes: number): string {
  if (minutes < 1) return 'just now';
  if (minutes < 90) return `${Math.round(minutes)} min ago`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h ago`;
  return `${Math.round(minutes / 1440)} days ago`;
}

const PROTECTION_LABEL: Record<Protection, string> = { protected: 'Protected', 'at-risk': 'RPO breached', never: 'Never backed up' };

function FleetTable() {
  const devices = useFleetStore((s) => s.devices);
  const defaultRpo = useSettingsStore((s) => s.settings?.defaultRpoMinutes ?? 60);
  // Rendered ages are as of this render; the page re-renders on every fleet or job event.
  const [now] = useState(() => Date.now());
  const states = devices.map((d) => protectionOf(d, defaultRpo, now));
  const count = (state: Protection) => states.filter((p) => p.state === state).length;
  return (
    <>
      <div className="summary-strip" data-testid="fleet-summary">
        <span className="status-ok">{count('protected')} protected</span>
        <span className="status-bad">{count('at-risk')} RPO breached</span>
        <span className="status-warn">{count('never')} never backed up</span>
      </div>
      { }
      <DeviceRows devices={devices} states={states} />
    </>
  );
}

function DeviceRows({ devices, states }: { devices: DeviceSummary[]; states: ReturnType<typeof protectionOf>[] }) {
  return (
    <table className="table card" data-testid="fleet-table">
      <thead>
        <tr>
          <th scope="col">Device</th>
          <th scope="col">Site</th>
          <th scope="col">Address</th>
          <th scope="col">Last good backup</th>
          <th scope="col">Sources</th>
          <th scope="col">Host key</th>
          <th scope="col">Facts</th>
        </tr>
      </thead>
      <tbody>
        {devices.map((d, i) => (
          <tr key={d.id} data-testid={`device-row-${d.name}`} data-protection={states[i]!.state}>
            <td>
              <a href={`#/fleet/${encodeURIComponent(d.name)}`}>{d.name}</a>
              {d.tags.map((t) => (
                <span key={t} className="tag">
                  {t}
                </span>
              ))}
            </td>
            <td>{d.site || '—'}</td>
            <td>
              {d.user}@{d.host}:{d.port}
            </td>
            <td>
              <span className={`protection protection-${states[i]!.state}`}>{PROTECTION_LABEL[states[i]!.state]}</span>{' '}
              <span className="muted">
                {states[i]!.ageMinutes !== null ? `${formatAge(states[i]!.ageMinutes)} · RPO ${states[i]!.rpo} min` : `RPO ${states[i]!.rpo} min`}
                {d.lastAttemptStatus === 'failed' ? ' · last attempt failed' : ''}
              </span>
            </td>
            <td>{d.sourceCount === 0 ? <span className="status-warn">none yet</span> : d.sourceCount}</td>
            <td>{d.hostKey ? <span className="status-ok">pinned</span> : <span className="status-warn">not confirmed</span>}</td>
            <td>{d.factsAt ? new Date(d.factsAt).toLocaleString() : 'never read'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function FleetPage() {
  const param = useAppStore((s) => s.param);
  const devices = useFleetStore((s) => s.devices);
  const [adding, setAdding] = useState(false);
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
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
        <p role="status" className={`banner ${message.kind === 'error' ? 'banner-error' : 'banner-ok'}`} data-testid="fleet-message">
          {message.text}
        </p>
      ) : null}
      {devices.length === 0 ? (
        <EmptyState title="No devices in the inventory yet" testId="fleet-empty">
          <p>Add your first Jetson with its address and SSH key, or import device profiles a colleague exported.</p>
          <p>Each device then appears here with its site, sources and connection state.</p>
        </EmptyState>
      ) : (
        <FleetTable />
      )}
      <ScheduleQueue />
      <AddDeviceDialog isOpen={adding} onClose={() => setAdding(false)} onAdded={(name) => (window.location.hash = `#/fleet/${encodeURIComponent(name)}`)} />
    </>
  );
}
