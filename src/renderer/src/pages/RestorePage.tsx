import { useEffect, useMemo, useRef, useState } from 'react';
import { Button, Checkbox, CheckboxGroup, Input, Label, Radio, RadioGroup, TextArea, TextField } from 'react-aria-components';
import type { SnapshotInfo } from '../../../shared/schemas/catalog';
import { RestorePlanSummarySchema } from '../../../shared/schemas/restore';
import type { RestorePlanSummary, RestoreRequest } from '../../../shared/schemas/restore';
import { useAction } from '../use-action';
import { api } from '../api';
import { toAppError } from '../../../shared/errors';
import { EmptyState } from '../components/EmptyState';
import { ErrorBanner } from '../components/ErrorBanner';
import { PageHeader } from '../components/PageHeader';
import { formatBytes, formatDuration, lines } from '../format';
import { useCatalogStore } from '../stores/catalog-store';
import { useStoredState } from '../stored-state';
import { useFleetStore } from '../stores/fleet-store';
import { useJobsStore } from '../stores/jobs-store';
import { newestRunKey } from '../../../shared/job-runs';
import { JOB_KINDS } from '../../../shared/schemas/jobs';
import { visibleName } from '../../../shared/visible-name';
import { counted, verb } from '../../../shared/plural';

type Pending = Awaited<ReturnType<ReturnType<typeof api>['restore']['pending']>>[number];

/**
 * A time typed in the point-in-time box as an instant, or null for one no backup can be at: the box
 * takes years up to 275760, where toISOString throws — the Restore page went blank, and stayed so
 * on every visit, the time being remembered.
 */
function instantOf(value: string): string | null {
  const d = new Date(value);
  const year = d.getFullYear();
  return Number.isNaN(d.getTime()) || year < 1 || year > 9999 ? null : d.toISOString();
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
/** How a restore's bytes crossed the link (decision 019). */
const sentHow = (wireCompression: boolean): string => (wireCompression ? "sent gzip'ed (slow link)" : 'sent as it is (fast link)');

/**
 * What a finished restore job reported, in one line: how long it took, its steps, and whether its
 * bytes crossed the link gzip'ed (a slow link, decision 019). Null when the job left no report.
 */
function restoreReport(job: { title: string; startedAt: string; finishedAt: string | null; result: unknown }): string | null {
  const parsed = RestorePlanSummarySchema.safeParse(job.result);
  if (!parsed.success || parsed.data.timings.length === 0 || job.finishedAt === null) return null;
  const { timings, wireCompression, notes } = parsed.data;
  const took = new Date(job.finishedAt).getTime() - new Date(job.startedAt).getTime();
  return `${job.title} finished in ${seconds(took)} (${timings.map((t) => `${t.step} ${seconds(t.ms)}`).join(' · ')}); ${sentHow(wireCompression)}.${notes.map((n) => ` ${n}`).join('')}`;
}

type Scope = 'device' | 'source' | 'files';

/** Backup runs of a device, newest first: a run is the app-consistent point a restore goes back to. */
function runsOf(snapshots: SnapshotInfo[], device: string): { runId: string; time: string; sources: string[] }[] {
  const runs = new Map<string, { runId: string; time: string; sources: string[] }>();
  for (const s of snapshots) {
    if (s.device !== device) continue;
    const key = s.runId ?? s.id;
    const run = runs.get(key) ?? { runId: key, time: s.time, sources: [] };
    if (s.time > run.time) run.time = s.time;
    if (s.source) run.sources.push(s.source);
    runs.set(key, run);
  }
  return [...runs.values()].sort((a, b) => b.time.localeCompare(a.time));
}

function PlanView({ plan }: { plan: RestorePlanSummary }) {
  const fits = plan.spaceNeeded <= plan.freeBytes;
  return (
    <section className="card" aria-label="What will change" data-testid="restore-plan">
      <h2>4. What will change (dry run: nothing has changed yet)</h2>
      <p data-testid="plan-snapshots">
        {plan.at ? `State of ${new Date(plan.at).toLocaleString()}: ` : ''}
        {plan.snapshots.map((s) => `${s.source} (${s.kind}, ${new Date(s.time).toLocaleString()}${s.l4t ? `, L4T ${s.l4t}` : ''})`).join(' · ')}
      </p>
      {plan.roots.map((root) => (
        <div key={root.target} className="plan-root">
          <p>
            <code>{root.target}</code>
            {root.targetExists ? '' : ' (will be created)'}: <strong data-testid="plan-replace">{root.replace}</strong> replaced,{' '}
            <strong data-testid="plan-add">{root.add}</strong> added, <strong data-testid="plan-remove">{root.remove}</strong> removed, {root.unchanged} unchanged ({formatBytes(root.bytes)} to
            send)
          </p>
          {root.mode ? (
            <p data-testid="plan-mode">
              The folder&apos;s mode goes back from <code>0{root.mode.from.toString(8)}</code> to <code>0{root.mode.to.toString(8)}</code> (as in the snapshot).
            </p>
          ) : null}
          {root.owner ? (
            <p data-testid="plan-owner">
              The folder&apos;s owner goes back from <code>{root.owner.from}</code> to <code>{root.owner.to}</code> (uid:gid, as in the snapshot).
            </p>
          ) : null}
          {root.owners > 0 ? (
            <p data-testid="plan-owners">
              {root.owners === 1 ? 'One of them gets its' : `${root.owners} of them get their`} owner (uid:gid) from the snapshot back.
            </p>
          ) : null}
          {root.contents ? (
            <p data-testid="plan-contents">
              Contents checked: {root.contents.checked} file{root.contents.checked === 1 ? '' : 's'} read on the device, <strong>{root.contents.differ}</strong> differ from the snapshot
              {root.contents.differ > 0 ? ' (replaced, counted above)' : ''}
              {root.contents.unreadable > 0 ? `, ${root.contents.unreadable} the device's login cannot read (left as they are)` : ''}.
            </p>
          ) : null}
          {root.samples.length > 0 ? (
            <ul className="plan-samples">
              {root.samples.map((line) => (
                <li key={line}>
                  <code>{visibleName(line)}</code>
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ))}
      {plan.databases.length > 0 ? (
        <ul data-testid="plan-databases">
          {plan.databases.map((d) => (
            <li key={d.source} data-testid={`plan-database-${d.source}`}>
              <strong>{d.source}</strong> ({d.kind}): {d.action === 'replace' ? 'replaces' : d.action === 'create' ? 'creates' : 'restores a copy as'} <code>{d.target}</code> — {formatBytes(d.bytes)}
              {d.rows !== null ? `, ${d.tables} tables, ${d.rows.toLocaleString()} rows checked after the restore` : ', row counts not recorded by this snapshot'}
              {d.action === 'replace' ? '; the current one is kept until you decide' : ''}
              {d.space ? (
                <span className={d.space.needed <= d.space.freeBytes ? undefined : 'status-bad'} data-testid={`plan-database-space-${d.source}`}>
                  {' '}
                  — written on its own disk (<code>{d.space.location}</code>): needs about {formatBytes(d.space.needed)} of {formatBytes(d.space.freeBytes)} free there
                </span>
              ) : null}
            </li>
          ))}
        </ul>
      ) : null}
      {plan.services.stop.length > 0 ? (
        <p data-testid="plan-services">
          Services stopped around the swap: <code>{plan.services.stop.join('; ')}</code>, started again with <code>{plan.services.start.join('; ')}</code>.
        </p>
      ) : null}
      <p className={fits ? 'status-ok' : 'status-bad'}>
        Sends {plan.patchableBytes > 0 ? 'at most ' : ''}
        {formatBytes(plan.bytesToSend)}
        {plan.patchableBytes > 0 ? ` (${formatBytes(plan.patchableBytes)} of it large files the device has a copy of: only the blocks that differ cross, where the device has python3)` : ''}
        {plan.resumableBytes > 0 ? `; ${formatBytes(plan.resumableBytes)} of it is on the device already, staged by an earlier restore its link cut off (taken up, not sent again)` : ''}; staging needs {formatBytes(plan.spaceNeeded)} of {formatBytes(plan.freeBytes)} free on the device.
      </p>
      {plan.warnings.map((w) => (
        <p key={w} className="status-warn" data-testid="plan-warning">
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
  const active = useJobsStore((s) => s.active);
  // The wizard's choices (and the restore it started) survive closing the window; the plan is made
  // again (the device may have changed) and a destructive restore's confirmation is typed again.
  const [device, setDevice] = useStoredState<string | null>('restore.device', null);
  const [run, setRun] = useStoredState<string>('restore.run', 'latest');
  const [at, setAt] = useStoredState('restore.at', '');
  const [scope, setScope] = useStoredState<Scope>('restore.scope', 'device', (v) => ['device', 'source', 'files'].includes(v));
  const [sources, setSources] = useStoredState<string[]>('restore.sources', []);
  const [targetRoot, setTargetRoot] = useStoredState('restore.targetRoot', '');
  const [targetDatabase, setTargetDatabase] = useStoredState('restore.targetDatabase', '');
  const [targetPath, setTargetPath] = useStoredState('restore.targetPath', '');
  const [include, setInclude] = useStoredState('restore.include', '');
  const [checkContents, setCheckContents] = useStoredState('restore.checkContents', false);
  const [confirmName, setConfirmName] = useState('');
  const [plan, setPlan] = useState<RestorePlanSummary | null>(null);
  const { busy, error, run: act } = useAction();
  const [pending, setPending] = useState<Pending[]>([]);
  const [jobId, setJobId] = useStoredState<string | null>('restore.jobId', null);
  // The device that restore runs on: the wizard may have moved on to another one since.
  const [jobDevice, setJobDevice] = useStoredState<string | null>('restore.jobDevice', null);
  /** What Look for interrupted restores found: a line on what waits for a decision, then what it settled. */
  const [notice, setNotice] = useState<string[] | null>(null);
  // Staging folders a keep or a rollback could not remove entirely (files of another account).
  const [leftovers, setLeftovers] = useState<string[]>([]);

  // A remembered device that has since been removed is forgotten.
  useEffect(() => {
    if (device !== null && devices.length > 0 && !devices.some((d) => d.name === device)) setDevice(null);
  }, [device, devices, setDevice]);
  // A restore waiting for Keep or Roll back that could not be read is said, not left out as if none waited.
  const [pendingError, setPendingError] = useState<string | null>(null);
  const refreshPending = () =>
    void api()
      .restore.pending()
      .then((list) => (setPending(list), setPendingError(null)))
      .catch((caught: unknown) => setPendingError(toAppError(caught).message));
  // Keep and Roll back have their own busy flag and error, said in the card of the restore they
  // were pressed for (not down at the wizard's Preview button, out of sight).
  const decision = useAction();
  const [deciding, setDeciding] = useState<string | null>(null);
  const decide = (how: 'confirm' | 'rollback', restoreId: string) => {
    setDeciding(restoreId);
    return decision.run(async () => {
      setLeftovers((await api().restore[how]({ restoreId })).leftovers);
      refreshPending();
    });
  };
  // Read again as a job ends (a restore leaves one waiting, a backup makes snapshots): keyed on the
  // newest run, not the list's length, which stops changing once the list is full.
  const jobsEnded = newestRunKey(recent, JOB_KINDS);
  useEffect(() => {
    void useCatalogStore.getState().refresh();
    refreshPending();
  }, [jobsEnded]);

  const runs = useMemo(() => (device ? runsOf(snapshots, device) : []), [snapshots, device]);
  const deviceSources = useMemo(() => {
    const kinds = new Map<string, string>();
    for (const s of snapshots) if (s.device === device && s.source) kinds.set(s.source, s.kind);
    return [...kinds.entries()].map(([name, kind]) => ({ name, kind }));
  }, [snapshots, device]);
  // Each changed choice counts: a preview answered after one is for choices no longer on screen, and
  // is dropped rather than shown (and restored) under them. Restore sends what was previewed.
  const choices = useRef(0);
  const planned = useRef<RestoreRequest | null>(null);
  const statusRef = useRef<HTMLDivElement>(null);
  const reset = () => (choices.current++, setPlan(null), setConfirmName(''));
  const chosenKinds = new Set(deviceSources.filter((s) => sources.includes(s.name)).map((s) => s.kind));
  // A typed time that is no instant is not "latest": nothing is previewed until it is corrected.
  const atInstant = at ? instantOf(at) : null;
  const badAt = run === 'latest' && at !== '' && atInstant === null;
  const pointInTime = run === 'latest' ? (atInstant ?? undefined) : runs.find((r) => r.runId === run)?.time;
  const request = (): RestoreRequest => ({
    device: device!,
    scope,
    ...(pointInTime ? { at: pointInTime } : {}),
    ...(scope !== 'device' ? { sources } : {}),
    ...(targetRoot.trim() ? { targetRoot: targetRoot.trim() } : {}),
    ...(scope === 'files' && include.trim() ? { include: lines(include) } : {}),
    ...(targetDatabase.trim() && (chosenKinds.has('postgres') || chosenKinds.has('mysql')) ? { targetDatabase: targetDatabase.trim() } : {}),
    ...(targetPath.trim() && chosenKinds.has('sqlite') ? { targetPath: targetPath.trim() } : {}),
    ...(checkContents ? { checkContents: true } : {}),
  });
  const destructive = plan !== null && (plan.roots.some((r) => !targetRoot.trim() && (r.replace > 0 || r.remove > 0)) || plan.databases.some((d) => d.action === 'replace'));
  const canStart = plan !== null && !busy && (!destructive || confirmName === device);
  const running = jobId ? active[jobId] : undefined;
  const lastRestore = recent.find((j) => j.kind === 'restore');
  const lastReport = lastRestore?.status === 'succeeded' ? restoreReport(lastRestore) : null;

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
      {lastReport ? (
        <p className="muted" data-testid="restore-last-result">
          {lastReport}
        </p>
      ) : null}
      {leftovers.length > 0 ? (
        <div className="banner banner-warn" data-testid="restore-leftovers">
          Done, but {leftovers.length === 1 ? 'a folder' : `${leftovers.length} folders`} of the previous state could not be removed from the device: {leftovers.length === 1 ? 'it holds' : 'they hold'}{' '}
          files of another account, and the device&apos;s login is not root. Remove {leftovers.length === 1 ? 'it' : 'them'} as root:
          {leftovers.map((path) => (
            <div key={path}>
              <code>{path}</code>
            </div>
          ))}
        </div>
      ) : null}
      {/* Where focus goes once Restore is pressed (its button goes with the plan): the restore's progress, then its Keep / Roll back. */}
      <div ref={statusRef} tabIndex={-1} aria-label="Restore status" className="restore-status" data-testid="restore-status">
        {running ? (
          <section className="card" data-testid="restore-running" aria-live="polite">
            <p>
              Restoring {jobDevice ?? device}: <strong data-testid="restore-phase">{running.phase}</strong> (phase {running.phaseIndex + 1} of {running.phaseCount})
              {running.bytesTotal ? ` · ${formatBytes(running.bytesDone)} of ${formatBytes(running.bytesTotal)}` : ''}
              {running.rate > 0 ? ` · ${formatBytes(running.rate)}/s` : ''}
              {running.etaSeconds !== null ? ` · about ${formatDuration(Math.ceil(running.etaSeconds))} left` : ''}
              {running.stalledSeconds !== null ? <span className="job-stalled" data-testid="restore-stalled">{` · no progress for ${formatDuration(running.stalledSeconds)}`}</span> : null}
            </p>
          </section>
        ) : null}
        <ErrorBanner message={pendingError ? `Restores waiting for Keep or Roll back could not be read: ${pendingError}` : null} testId="restore-pending-error" />
        {pending.map((p) => (
          <section key={p.restoreId} className="card banner-ok" data-testid="restore-pending">
            <p>
              {p.device}: restored {p.targets.join(', ')}
              {p.pointInTime ? ` to the state of ${new Date(p.pointInTime).toLocaleString()}` : ''} at {new Date(p.finishedAt).toLocaleString()}
              {p.seconds !== null ? ` in ${seconds(p.seconds * 1000)}, ${sentHow(p.wireCompression)}` : ' (found on the device after an interruption)'}. The
              previous state
              {p.databases.length > 0 ? ` (including the previous database${p.databases.length > 1 ? 's' : ''} ${p.databases.join(', ')})` : ''} is kept on the device until you decide.
            </p>
            {deciding === p.restoreId ? <ErrorBanner message={decision.error} testId="restore-decision-error" /> : null}
            <div className="form-actions">
              <Button className="button button-primary" isDisabled={busy || decision.busy} onPress={() => void decide('confirm', p.restoreId)} data-testid="restore-confirm">
                Keep the restored state
              </Button>
              <Button className="button" isDisabled={busy || decision.busy} onPress={() => void decide('rollback', p.restoreId)} data-testid="restore-rollback">
                Roll back
              </Button>
            </div>
          </section>
        ))}
      </div>
      <div className="grid-2">
        <div className="field card">
          <RadioGroup className="field" value={device} onChange={(v) => (setDevice(v), setRun('latest'), setSources([]), setNotice(null), reset())} data-testid="restore-device">
            <Label>1. Device</Label>
            {devices.map((d) => (
              <Radio key={d.id} value={d.name}>
                {d.name} <span className="muted">{d.site}</span>
              </Radio>
            ))}
          </RadioGroup>
          <div className="form-actions">
            <Button
              className="button"
              isDisabled={!device || busy}
              onPress={() =>
                void act(async () => {
                  const { pending, settled } = await api().restore.recover({ device: device! });
                  const waiting = pending.length === 0 ? `No restore on ${device} is waiting for a decision.` : `${counted(pending.length, 'restore')} on ${device} ${verb(pending.length, 'waits', 'wait')} for your decision (above).`;
                  setNotice([settled.length === 0 && pending.length === 0 ? `${waiting} Nothing was left half-done.` : waiting, ...settled]);
                  refreshPending();
                })
              }
              data-testid="restore-recover"
            >
              Look for interrupted restores
            </Button>
          </div>
          {notice ? (
            <div className="muted" data-testid="restore-recover-result">
              {notice.map((line) => (
                <p key={line}>{line}</p>
              ))}
            </div>
          ) : null}
        </div>
        <div className="field card">
          <RadioGroup className="field" value={run} onChange={(v) => (setRun(v), reset())} data-testid="restore-run" isDisabled={!device}>
            <Label>2. Point in time</Label>
            <Radio value="latest" data-testid="restore-run-latest">
              {at ? 'The time below' : 'Latest backup'}
            </Radio>
            {runs.slice(0, 30).map((r) => (
              <Radio key={r.runId} value={r.runId} data-testid={`restore-run-${r.runId}`}>
                {new Date(r.time).toLocaleString()} <span className="muted">{r.sources.join(', ')}</span>
              </Radio>
            ))}
          </RadioGroup>
          <TextField className="field" value={at} onChange={(v) => (setAt(v), setRun('latest'), reset())} isDisabled={!device}>
            <Label>Or the state at (latest backup at or before)</Label>
            <Input type="datetime-local" step={1} data-testid="restore-at" />
          </TextField>
          {badAt ? (
            <p role="alert" className="banner banner-error" data-testid="restore-at-error">
              {at}: not a time a backup can be at (years 1 to 9999); correct it or clear it for the latest backup.
            </p>
          ) : null}
        </div>
      </div>
      <section className="card form" aria-label="Scope and target">
        <RadioGroup className="field" value={scope} onChange={(v) => {
            setScope(v as Scope);
            // Files of one source: only a files source can stay ticked, and only one (the list shows no other).
            if (v === 'files') setSources(sources.filter((n) => deviceSources.some((s) => s.name === n && s.kind === 'files')).slice(0, 1));
            reset();
          }}
          orientation="horizontal" data-testid="restore-scope" isDisabled={!device}>
          <Label>3. What to restore</Label>
          <Radio value="device" data-testid="restore-scope-device">
            Whole device
          </Radio>
          <Radio value="source" data-testid="restore-scope-source">
            Sources
          </Radio>
          <Radio value="files" data-testid="restore-scope-files">
            Files of one source
          </Radio>
        </RadioGroup>
        {scope !== 'device' ? (
          <CheckboxGroup
            value={sources}
            onChange={(v) => (setSources(scope === 'files' ? v.filter((n) => !sources.includes(n)).slice(0, 1) : v), reset())}
            aria-label="Sources to restore"
            data-testid="restore-sources"
          >
            {deviceSources
              .filter((s) => scope !== 'files' || s.kind === 'files')
              .map((s) => (
                <Checkbox key={s.name} value={s.name} className="checkbox" data-testid={`restore-source-${s.name}`}>
                  <div className="checkbox-box" aria-hidden="true" />
                  <span>
                    <strong>{s.name}</strong> <span className="muted">{s.kind}</span>
                  </span>
                </Checkbox>
              ))}
          </CheckboxGroup>
        ) : null}
        {scope === 'files' ? (
          <TextField className="field" value={include} onChange={(v) => (setInclude(v), reset())}>
            <Label>Only these paths (one per line, relative to the snapshot&apos;s folder)</Label>
            <TextArea data-testid="restore-include" rows={2} placeholder="app.py&#10;config/*.yaml" />
          </TextField>
        ) : null}
        <TextField className="field" value={targetRoot} onChange={(v) => (setTargetRoot(v), reset())}>
          <Label>Restore files into another folder on the device (optional)</Label>
          <Input data-testid="restore-target" placeholder="In place" />
        </TextField>
        <Checkbox className="checkbox" isSelected={checkContents} onChange={(v) => (setCheckContents(v), reset())} data-testid="restore-check-contents">
          <div className="checkbox-box" aria-hidden="true" />
          <span>
            Check the contents of files that look unchanged (same size, time and mode): finds copies damaged on the device. Reads every such file on the device and in
            the repository, so the preview takes longer.
          </span>
        </Checkbox>
        {chosenKinds.has('postgres') || chosenKinds.has('mysql') ? (
          <TextField className="field" value={targetDatabase} onChange={(v) => (setTargetDatabase(v), reset())}>
            <Label>Restore the {chosenKinds.has('postgres') ? 'PostgreSQL' : 'MySQL'} database under another name, for inspection (optional)</Label>
            <Input data-testid="restore-target-database" placeholder="Replace the live database" />
          </TextField>
        ) : null}
        {chosenKinds.has('sqlite') ? (
          <TextField className="field" value={targetPath} onChange={(v) => (setTargetPath(v), reset())}>
            <Label>Restore the SQLite file to another path (optional)</Label>
            <Input data-testid="restore-target-path" placeholder="Replace the live file" />
          </TextField>
        ) : null}
        <div className="form-actions">
          <Button
            className="button"
            isDisabled={!device || (scope !== 'device' && sources.length === 0) || busy || badAt}
            onPress={() =>
              void act(async () => {
                const asked = choices.current;
                const wanted = request();
                const made = await api().restore.plan(wanted);
                if (choices.current !== asked) return;
                // "Latest" is pinned to the time it was previewed at: a backup landing before
                // Restore is pressed would otherwise put back a state nobody previewed.
                planned.current = !wanted.at && made.at ? { ...wanted, at: made.at } : wanted;
                setPlan(made);
              })
            }
            data-testid="restore-preview"
          >
            Preview changes (dry run)
          </Button>
        </div>
        <ErrorBanner message={error} testId="restore-error" />
      </section>
      {plan ? <PlanView plan={plan} /> : null}
      {plan ? (
        <section className="card form" aria-label="Confirm">
          {destructive ? (
            <TextField className="field" value={confirmName} onChange={setConfirmName}>
              <Label>5. This replaces data on {device}. Type the device name to confirm</Label>
              <Input data-testid="restore-confirm-name" placeholder={device ?? ''} />
            </TextField>
          ) : (
            <p>5. Nothing live is replaced by this restore.</p>
          )}
          <div className="form-actions">
            <Button
              className="button button-primary"
              isDisabled={!canStart}
              onPress={() => {
                // Focus moves first: while the call runs the button is disabled (busy), and a
                // focused button that is disabled drops focus onto the page's body.
                statusRef.current?.focus();
                void act(async () => {
                  const started = await api().restore.start(planned.current ?? request());
                  setJobId(started.jobId);
                  setJobDevice(planned.current?.device ?? device);
                  setPlan(null);
                  setConfirmName('');
                });
              }}
              data-testid="restore-start"
            >
              Restore
            </Button>
          </div>
        </section>
      ) : null}
    </>
  );
}
