import { RetentionCard } from '../components/RetentionCard';
import { useEffect, useState } from 'react';
import type { DeviceCopies } from '../../../shared/schemas/repositories';
import { ErrorBanner } from '../components/ErrorBanner';
import { Button, Checkbox, CheckboxGroup } from 'react-aria-components';
import type { DeviceDetail, DeviceDisks, DeviceFacts, DiskUsage, Source } from '../../../shared/schemas/devices';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { PageHeader } from '../components/PageHeader';
import { DownloadButton } from '../components/DownloadButton';
import { DrillCard } from '../components/DrillCard';
import { SourceEditor } from '../components/SourceEditor';
import { BackupHistory } from '../components/BackupHistory';
import { DeviceSettingsCard } from '../components/DeviceSettingsCard';
import { HostKeyCard } from '../components/HostKeyCard';
import type { SnapshotInfo } from '../../../shared/schemas/catalog';
import { formatBytes } from '../format';
import { saveTextFile } from '../save-file';
import { useFleetStore } from '../stores/fleet-store';
import { useJobsStore } from '../stores/jobs-store';
import { newestRunKey } from '../../../shared/job-runs';
import { describeSource } from '../../../shared/describe-source';
import { useAction } from '../use-action';
import { useSecondPress } from '../use-second-press';
import { counted } from '../../../shared/plural';

/** The disks the newest read saw: a discovery's, or a backup's (`byBackupAt`: every backup reads them). */
function Disks({ disks, byBackupAt }: { disks: DiskUsage[]; byBackupAt: string | null }) {
  return (
    <>
      <dt>Disks</dt>
      <dd data-testid="device-disks">
        {disks
          .filter((d) => d.sizeBytes > 0)
          .slice(0, 6)
          .map((d) => `${d.mount}: ${formatBytes(d.availableBytes)} free of ${formatBytes(d.sizeBytes)}`)
          .join(' · ')}
        {byBackupAt ? <span className="muted" data-testid="facts-disks-at">{` (read by the backup of ${new Date(byBackupAt).toLocaleString()})`}</span> : null}
      </dd>
    </>
  );
}

/** The last discovery's facts, with the disks the newest read saw (a backup's, when later than the discovery). */
function Facts({ facts, factsAt, disks }: { facts: DeviceFacts | null; factsAt: string | null; disks: DeviceDisks | null }) {
  if (!facts) {
    return disks ? (
      <section className="card" aria-label="Device facts" data-testid="device-facts">
        <h2>Device</h2>
        <dl className="facts">
          <Disks disks={disks.disks} byBackupAt={disks.at} />
        </dl>
        <p className="muted">Connect and discover reads the rest: L4T, board, tools, databases.</p>
      </section>
    ) : null;
  }
  return (
    <section className="card" aria-label="Device facts" data-testid="device-facts">
      <h2>Device</h2>
      <dl className="facts">
        <dt>L4T</dt>
        <dd>{facts.l4t ? `${facts.l4t.release}.${facts.l4t.revision}${facts.l4t.board ? ` (${facts.l4t.board})` : ''}` : 'no release file'}</dd>
        <dt>Board</dt>
        <dd>{facts.model ?? 'unknown'}</dd>
        <dt>Kernel</dt>
        <dd>
          {facts.kernel} ({facts.arch})
        </dd>
        <dt>Tools</dt>
        <dd>{Object.keys(facts.tools).join(', ') || 'none found'}</dd>
        {facts.databaseErrors.length > 0 ? (
          <>
            <dt>Databases not listed</dt>
            <dd data-testid="facts-database-errors">
              {facts.databaseErrors.map((e) => (
                <div key={`${e.engine}-${e.where}`}>
                  {e.engine === 'postgres' ? 'PostgreSQL' : 'MySQL'} at {e.where}: {e.message}
                </div>
              ))}
              <span className="muted">The device&apos;s login could not list these databases: add a source by hand with a user that may (Add a source), or let the login read them.</span>
            </dd>
          </>
        ) : null}
        <Disks disks={facts.disks} byBackupAt={disks && disks.at !== factsAt ? disks.at : null} />
      </dl>
      <p className="muted">Read {new Date(facts.collectedAt).toLocaleString()}</p>
    </section>
  );
}

export function DevicePage({ name }: { name: string }) {
  const detail = useFleetStore((s) => s.details[name]);
  const loadDetail = useFleetStore((s) => s.loadDetail);
  // busy: discovery is connecting (its button says so); the other actions (attempt) only report errors.
  const { busy, error, setError, run, attempt } = useAction();
  const [proposals, setProposals] = useState<Source[]>([]);
  const [accepted, setAccepted] = useState<string[]>([]);
  const removal = useSecondPress<true>();
  /** The source being edited (its index), 'new' while one is added, null with no editor open. */
  const [editing, setEditing] = useState<number | 'new' | null>(null);
  /** A source whose Remove was pressed once: pressed again, it goes. */
  const sourceRemoval = useSecondPress<string>();
  const [reportNote, setReportNote] = useState<string | null>(null);
  /** Discovery was refused for the host key: the Host key card moves to the top. */
  const [keyRefused, setKeyRefused] = useState(false);
  const [copies, setCopies] = useState<DeviceCopies | null>(null);
  const recent = useJobsStore((s) => s.recent);
  // Back up now was pressed and its job is not over yet: from the press on, not only once the job's
  // first progress arrives — a second press (a double click) meanwhile queued a second whole run.
  const [starting, setStarting] = useState(false);
  const [startedJob, setStartedJob] = useState<string | null>(null);
  const running = useJobsStore(
    (s) => starting || Object.values(s.active).some((j) => j.kind === 'backup' && j.title === `Back up ${name}`) || (startedJob !== null && !s.recent.some((j) => j.id === startedJob)),
  );
  // null while not known (loading, or the repository locked): no source is called "not backed up" then.
  const [snapshots, setSnapshots] = useState<SnapshotInfo[] | null>(null);
  // Reload when a run ends: a new backup makes snapshots, a backup or a copy changes the copies.
  const backupsEnded = newestRunKey(recent, ['backup']);
  const copiesChanged = newestRunKey(recent, ['backup', 'copy']);

  // Again when a backup ends: it read the device's disks.
  useEffect(() => {
    loadDetail(name).catch((caught: unknown) => setError(toAppError(caught).message));
  }, [name, loadDetail, setError, backupsEnded]);
  useEffect(() => {
    // Locked or missing repository: no downloads offered, nothing to report here.
    api()
      .snapshots.list({ device: name })
      .then(setSnapshots)
      .catch(() => setSnapshots(null));
  }, [name, backupsEnded]);
  useEffect(() => {
    api()
      .repositories.copies({ device: name })
      .then(setCopies)
      .catch(() => setCopies(null));
  }, [name, copiesChanged]);

  const discover = () =>
    run(
      async () => {
        setKeyRefused(false);
        const result = await api().devices.discover({ name });
        setProposals(result.proposals);
        setAccepted(result.proposals.map((p) => p.name));
      },
      (refusal) => setKeyRefused(refusal.code.startsWith('HOST_KEY_')),
    );

  const accept = (device: DeviceDetail) =>
    attempt(async () => {
      const chosen = proposals.filter((p) => accepted.includes(p.name));
      await useFleetStore.getState().updateProfile({ name, profile: { ...device.profile, sources: [...device.profile.sources, ...chosen] } });
      setProposals([]);
    });

  const removeSource = (device: DeviceDetail, source: string) =>
    attempt(async () => {
      sourceRemoval.disarm();
      await useFleetStore.getState().updateProfile({ name, profile: { ...device.profile, sources: device.profile.sources.filter((s) => s.name !== source) } });
    });

  const backUp = () => {
    setStarting(true);
    return attempt(async () => setStartedJob((await api().backups.start({ device: name })).jobId)).finally(() => setStarting(false));
  };

  const remove = () =>
    attempt(async () => {
      await api().devices.remove({ name });
      window.location.hash = '#/fleet';
    });

  const report = () => attempt(async () => saveTextFile(await api().reports.device({ name })));

  const printReport = () =>
    attempt(async () => {
      setReportNote(null);
      const opened = await api().reports.open({ name });
      setReportNote(opened.opened ? `Opened ${opened.path} for printing` : `Saved to ${opened.path}: open it in a browser and print it (print to PDF)`);
    });

  if (!detail) {
    return (
      <>
        <PageHeader title={name} subtitle="Device" />
        {error ? <ErrorBanner message={error} /> : <p>Loading…</p>}
      </>
    );
  }
  const { profile } = detail;
  const lastRun = recent.find((j) => j.deviceId === detail.id && j.kind === 'backup');
  // Files or folders the device's login could not read in that run (the run kept everything else).
  const lastSources = (lastRun?.result as { snapshots?: { source?: string; warnings?: number; changedWhileRead?: number; integrityCheck?: string; inconsistentTables?: string }[] } | null)?.snapshots ?? [];
  // MySQL dumps that held tables of a non-transactional engine (MyISAM…): kept, but not one consistent view.
  const inconsistent = lastSources.filter((s) => s.inconsistentTables).map((s) => s.source ?? '');
  // Files that changed while read were kept as read: said apart (see Recent backups).
  const changed = lastSources.reduce((n, s) => n + (s.changedWhileRead ?? 0), 0);
  const unread = lastSources.reduce((n, s) => n + (s.warnings ?? 0), 0) - changed;
  // SQLite databases whose copy failed integrity_check: kept, but not a backup to count on.
  const damaged = lastSources.filter((s) => s.integrityCheck).map((s) => s.source ?? '');
  // Nothing connects until the key is confirmed: then the card comes first.
  const keyNeeded = !profile.hostKey || (profile.jump !== undefined && !profile.jump.hostKey) || keyRefused || Boolean(lastRun?.error?.code.startsWith('HOST_KEY_'));
  // Keyed: it keeps what it checked when it moves down after the key is pinned.
  const hostKeyCard = <HostKeyCard key="host-key" profile={profile} prominent={keyNeeded} />;
  return (
    <div className="page-stack" data-testid="device-page">
      <PageHeader
        title={profile.name}
        subtitle={`${profile.user}@${profile.host}:${profile.port}${profile.site ? ` · ${profile.site}` : ''}`}
        actions={
          <>
            <Button className="button" onPress={() => void discover()} isDisabled={busy} data-testid="device-discover">
              {busy ? 'Connecting…' : 'Connect and discover'}
            </Button>
            <Button className="button button-primary" onPress={() => void backUp()} isDisabled={running || profile.sources.length === 0} data-testid="device-backup">
              {running ? 'Backing up…' : 'Back up now'}
            </Button>
            <Button className="button" onPress={() => void report()} data-testid="device-report">
              Report
            </Button>
            <Button className="button" onPress={() => void printReport()} data-testid="device-report-print">
              Open for printing
            </Button>
            {/* Removing forgets the device and its stored secrets (not its snapshots): ask once more. */}
            <Button
              className={removal.armed ? 'button button-danger' : 'button button-quiet'}
              onPress={() => (removal.armed ? void remove() : removal.arm(true))}
              onBlur={removal.disarm}
              data-testid="device-remove"
            >
              {removal.armed ? 'Press again to remove' : 'Remove'}
            </Button>
          </>
        }
      />
      <p className="muted">
        <a href="#/fleet">← All devices</a> · <a href={`#/dashboards/${encodeURIComponent(profile.name)}`} data-testid="device-charts">Charts</a> · Host key {profile.hostKey ? <code data-testid="device-host-key">{profile.hostKey}</code> : 'not confirmed'}
      </p>
      <ErrorBanner message={error} testId="device-error" />
      {reportNote ? (
        <p role="status" className="banner banner-ok" data-testid="device-report-note">
          {reportNote}
        </p>
      ) : null}
      {lastRun ? (
        <p className={`banner ${lastRun.status !== 'succeeded' ? 'banner-error' : unread > 0 || changed > 0 || damaged.length > 0 || inconsistent.length > 0 ? 'banner-warn' : 'banner-ok'}`} data-testid="device-last-backup">
          Last backup {new Date(lastRun.startedAt).toLocaleString()}: {lastRun.status}
          {lastRun.error ? ` — ${lastRun.error.message}` : ` — ${formatBytes(lastRun.bytesDone)} transferred`}
          {unread > 0 ? ` · ${unread} file${unread === 1 ? '' : 's'} or folder${unread === 1 ? '' : 's'} could not be read (see Recent backups)` : null}
          {changed > 0 ? ` · ${changed} file${changed === 1 ? '' : 's'} changed while read, kept as read (see Recent backups)` : null}
          {inconsistent.length > 0 ? ` · the MySQL dump${inconsistent.length === 1 ? '' : 's'} ${inconsistent.join(', ')} held tables outside ${inconsistent.length === 1 ? 'its' : 'their'} consistent view (see Recent backups)` : null}
          {damaged.length > 0 ? ` · the database${damaged.length === 1 ? '' : 's'} ${damaged.join(', ')} on the device ${damaged.length === 1 ? 'is' : 'are'} damaged: integrity_check failed (see Recent backups)` : null}
          {lastRun.status === 'succeeded' ? (
            <>
              {' '}
              · <a href={`#/catalog?device=${encodeURIComponent(name)}`}>see the snapshots</a>
            </>
          ) : null}
        </p>
      ) : null}
      {keyNeeded ? hostKeyCard : null}
      {copies && (copies.copies > 0 || (snapshots?.length ?? 0) > 0) ? (
        <p className={`banner ${copies.copies >= 2 && copies.offsite ? 'banner-ok' : 'banner-warn'}`} data-testid="device-copies">
          {copies.copies === 0 ? 'No copy of the latest run is recorded yet' : `${copies.copies} ${copies.copies === 1 ? 'copy' : 'copies'} of the latest run`}
          {copies.offsite ? ', one offsite' : ', none offsite'}
          {copies.lastOffsiteAt && !copies.offsite ? ` (newest offsite copy ${new Date(copies.lastOffsiteAt).toLocaleString()})` : ''}
          {' · '}
          <a href="#/settings">repositories</a>
        </p>
      ) : null}
      <div className="grid-2">
        <Facts facts={detail.facts} factsAt={detail.factsAt} disks={detail.disks} />
        <section className="card" aria-label="Sources" data-testid="device-sources">
          <h2>Sources</h2>
          {profile.sources.length === 0 ? (
            <p className="muted">No sources yet. Connect and discover to find databases, config, logs and apps on the device, or add one.</p>
          ) : (
            <ul className="sources">
              {profile.sources.map((s, i) => {
                const latest = snapshots?.find((x) => x.source === s.name);
                return (
                  <li key={s.name} data-testid={`source-${s.name}`}>
                    <strong>{s.name}</strong> <span className="muted">{s.kind}</span>
                    {snapshots ? (
                      <span className="muted" data-testid={`source-latest-${s.name}`}>
                        {latest ? ` · last snapshot ${new Date(latest.time).toLocaleString()}` : ' · not backed up yet: the next run of the device takes it'}
                      </span>
                    ) : null}
                    {latest ? <DownloadButton snapshotId={latest.id} label="Download latest" testId={`source-download-${s.name}`} /> : null}
                    <span className="entry-actions source-actions">
                      <Button className="button button-quiet" onPress={() => setEditing(i)} data-testid={`source-edit-${s.name}`}>
                        Edit
                      </Button>
                      {/* Its snapshots stay in the catalog (and restorable); only future runs leave it out. */}
                      <Button
                        className={sourceRemoval.armed === s.name ? 'button button-danger' : 'button button-quiet'}
                        onPress={() => (sourceRemoval.armed === s.name ? void removeSource(detail, s.name) : sourceRemoval.arm(s.name))}
                        onBlur={sourceRemoval.disarm}
                        data-testid={`source-remove-${s.name}`}
                      >
                        {sourceRemoval.armed === s.name ? 'Press again: stop backing it up' : 'Remove'}
                      </Button>
                    </span>
                    <div className="muted" data-testid={`source-describe-${s.name}`}>
                      {describeSource(s, detail.databasePasswords.includes(s.name))}
                    </div>
                  </li>
                );
              })}
            </ul>
          )}
          <div className="form-actions">
            <Button className="button" onPress={() => setEditing('new')} data-testid="source-add">
              Add a source
            </Button>
          </div>
          {editing !== null ? <SourceEditor profile={profile} index={editing === 'new' ? null : editing} passwords={detail.databasePasswords} onClose={() => setEditing(null)} /> : null}
        </section>
      </div>
      {/* Right under the sources it adds to, in view when discovery ends (not below the history and drill cards). */}
      {proposals.length > 0 ? (
        <section className="card" aria-label="Discovered sources" data-testid="proposals">
          <h2>Found on the device</h2>
          <CheckboxGroup value={accepted} onChange={setAccepted} aria-label="Sources to add">
            {proposals.map((p) => (
              <Checkbox key={p.name} value={p.name} className="checkbox" data-testid={`proposal-${p.name}`}>
                <div className="checkbox-box" aria-hidden="true" />
                <span>
                  <strong>{p.name}</strong> — {describeSource(p, false)}
                </span>
              </Checkbox>
            ))}
          </CheckboxGroup>
          <div className="form-actions">
            <Button className="button button-primary" onPress={() => void accept(detail)} isDisabled={accepted.length === 0} data-testid="proposals-accept">
              Add {counted(accepted.length, 'source')}
            </Button>
          </div>
        </section>
      ) : null}
      <BackupHistory device={profile.name} latest={lastRun ? `${lastRun.id}:${lastRun.status}` : ''} />
      <DrillCard device={profile.name} deviceId={detail.id} objective={profile.rtoMinutes} />
      {keyNeeded ? null : hostKeyCard}
      <DeviceSettingsCard profile={profile} />
      <RetentionCard key={JSON.stringify(profile.retention ?? {})} profile={profile} />
    </div>
  );
}
