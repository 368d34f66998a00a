import { useRef, useState } from 'react';
import { Button } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { AddDeviceDialog } from '../components/AddDeviceDialog';
import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';
import { useAppStore } from '../stores/app-store';
import { useFleetStore } from '../stores/fleet-store';
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

function FleetTable() {
  const devices = useFleetStore((s) => s.devices);
  return (
    <table className="table card" data-testid="fleet-table">
      <thead>
        <tr>
          <th scope="col">Device</th>
          <th scope="col">Site</th>
          <th scope="col">Address</th>
          <th scope="col">Sources</th>
          <th scope="col">Host key</th>
          <th scope="col">Facts</th>
        </tr>
      </thead>
      <tbody>
        {devices.map((d) => (
          <tr key={d.id} data-testid={`device-row-${d.name}`}>
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
      <AddDeviceDialog isOpen={adding} onClose={() => setAdding(false)} onAdded={(name) => (window.location.hash = `#/fleet/${encodeURIComponent(name)}`)} />
    </>
  );
}
