import { useEffect, useState } from 'react';
import { Button, Input, Label, Radio, RadioGroup, TextArea, TextField } from 'react-aria-components';
import type { RestorePlanSummary } from '../../../shared/schemas/restore';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { EmptyState } from '../components/EmptyState';
import { ErrorBanner } from '../components/ErrorBanner';
import { PageHeader } from '../components/PageHeader';
import { formatBytes } from '../format';
import { useCatalogStore } from '../stores/catalog-store';
import { useFleetStore } from '../stores/fleet-store';
import { useJobsStore } from '../stores/jobs-store';

type Pending = Awaited<ReturnType<ReturnType<typeof api>['restore']['pending']>>[number];

function PlanView({ plan }: { plan: RestorePlanSummary }) {
  const fits = plan.spaceNeeded <= plan.freeBytes;
  return (
    <section className="card" aria-label="What will change" data-testid="restore-plan">
      <h2>What will change</h2>
      {plan.roots.map((root) => (
        <div key={root.target} className="plan-root">
          <p>
            <code>{root.target}</code>
            {root.targetExists ? '' : ' (will be created)'}: <strong data-testid="plan-replace">{root.replace}</strong> replaced,{' '}
            <strong data-testid="plan-add">{root.add}</strong> added, <strong data-testid="plan-remove">{root.remove}</strong> removed, {root.unchanged} unchanged
          </p>
          {root.samples.length > 0 ? (
            <ul className="plan-samples">
              {root.samples.map((line) => (
                <li key={line}>
                  <code>{line}</code>
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ))}
      <p className={fits ? 'status-ok' : 'status-bad'}>
        Sends {formatBytes(plan.bytesToSend)}; staging needs {formatBytes(plan.spaceNeeded)} of {formatBytes(plan.freeBytes)} free on the device.
      </p>
      {plan.warnings.map((w) => (
        <p key={w} className="status-warn">
          {w}
        </p>
      ))}
    </section>
  );
}

export function RestorePage() {
  const devices = useFleetStore((s) => s.devices);
  const snapshots = useCatalogStore((s) => s.snapshots);
  const repository = useCatalogStore((s) => s.repository);
  const recent = useJobsStore((s) => s.recent);
  const [device, setDevice] = useState<string | null>(null);
  const [snapshotId, setSnapshotId] = useState<string | null>(null);
  const [targetRoot, setTargetRoot] = useState('');
  const [include, setInclude] = useState('');
  const [plan, setPlan] = useState<RestorePlanSummary | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [pending, setPending] = useState<Pending[]>([]);

  const refreshPending = () => void api().restore.pending().then(setPending);
  useEffect(() => {
    void useCatalogStore.getState().refresh();
    refreshPending();
  }, [recent.length]);

  const candidates = snapshots.filter((s) => s.device === device && s.kind === 'files');
  const lastRestore = recent.find((j) => j.kind === 'restore');
  const request = () => ({
    device: device!,
    snapshotId: snapshotId!,
    ...(targetRoot.trim() ? { targetRoot: targetRoot.trim() } : {}),
    ...(include.trim() ? { include: include.split('\n').map((l) => l.trim()).filter(Boolean) } : {}),
  });
  const act = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (caught) {
      setError(toAppError(caught).message);
    } finally {
      setBusy(false);
    }
  };

  if (devices.length === 0 || !repository?.unlocked) {
    return (
      <>
        <PageHeader title="Restore" subtitle="Guided, verified restores to a device" />
        <EmptyState title="Nothing to restore yet" testId="restore-empty">
          <p>
            A restore starts from a snapshot. {devices.length === 0 ? 'Add a device and back it up first.' : 'Unlock the repository on the Catalog page first.'} The
            wizard shows exactly what will change before it changes anything.
          </p>
        </EmptyState>
      </>
    );
  }
  return (
    <>
      <PageHeader title="Restore" subtitle="Guided, verified restores to a device" />
      {lastRestore && lastRestore.status !== 'succeeded' ? (
        <ErrorBanner message={`The last restore ${lastRestore.status}${lastRestore.error ? `: ${lastRestore.error.message}` : ''}`} testId="restore-last-error" />
      ) : null}
      {pending.map((p) => (
        <section key={p.restoreId} className="card banner-ok" data-testid="restore-pending">
          <p>
            {p.device}: restored {p.targets.join(', ')} at {new Date(p.finishedAt).toLocaleString()}. The previous state is kept on the device until you decide.
          </p>
          <div className="form-actions">
            <Button className="button button-primary" isDisabled={busy} onPress={() => void act(async () => (await api().restore.confirm({ restoreId: p.restoreId }), refreshPending()))} data-testid="restore-confirm">
              Keep the restored state
            </Button>
            <Button className="button" isDisabled={busy} onPress={() => void act(async () => (await api().restore.rollback({ restoreId: p.restoreId }), refreshPending()))} data-testid="restore-rollback">
              Roll back
            </Button>
          </div>
        </section>
      ))}
      <div className="grid-2">
        <RadioGroup className="field card" value={device} onChange={(v) => (setDevice(v), setSnapshotId(null), setPlan(null))} data-testid="restore-device">
          <Label>1. Device</Label>
          {devices.map((d) => (
            <Radio key={d.id} value={d.name}>
              {d.name} <span className="muted">{d.site}</span>
            </Radio>
          ))}
        </RadioGroup>
        <RadioGroup className="field card" value={snapshotId} onChange={(v) => (setSnapshotId(v), setPlan(null))} data-testid="restore-snapshot" isDisabled={!device}>
          <Label>2. Point in time (files snapshots)</Label>
          {candidates.length === 0 ? <p className="muted">{device ? 'No files snapshots of this device yet.' : 'Choose a device first.'}</p> : null}
          {candidates.slice(0, 50).map((s) => (
            <Radio key={s.id} value={s.id}>
              {new Date(s.time).toLocaleString()} · {s.source} <span className="muted">{s.files} files</span>
            </Radio>
          ))}
        </RadioGroup>
      </div>
      <section className="card form" aria-label="Scope and target">
        <TextField className="field" value={include} onChange={(v) => (setInclude(v), setPlan(null))}>
          <Label>3. Only these paths (optional, one per line, relative to the snapshot&apos;s folder)</Label>
          <TextArea data-testid="restore-include" rows={2} placeholder="app.py&#10;config/*.yaml" />
        </TextField>
        <TextField className="field" value={targetRoot} onChange={(v) => (setTargetRoot(v), setPlan(null))}>
          <Label>Restore into another folder on the device (optional)</Label>
          <Input data-testid="restore-target" placeholder="In place" />
        </TextField>
        <div className="form-actions">
          <Button className="button" isDisabled={!snapshotId || busy} onPress={() => void act(async () => setPlan(await api().restore.plan(request())))} data-testid="restore-preview">
            Preview changes
          </Button>
          <Button
            className="button button-primary"
            isDisabled={!plan || busy}
            onPress={() => void act(async () => (await api().restore.start(request()), setPlan(null)))}
            data-testid="restore-start"
          >
            Restore
          </Button>
        </div>
        <ErrorBanner message={error} testId="restore-error" />
      </section>
      {plan ? <PlanView plan={plan} /> : null}
    </>
  );
}
