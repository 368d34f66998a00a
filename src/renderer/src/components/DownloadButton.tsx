import { useState } from 'react';
import { Button, Input, TextField } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { useJobsStore } from '../stores/jobs-store';
import { ErrorBanner } from './ErrorBanner';

const WARNINGS_SHOWN = 5;

/**
 * Downloads a snapshot (or some of its paths) to a folder on this computer. In the desktop app the
 * folder comes from the native picker; where there is none (the test host) the path is typed.
 * The download itself is a job (progress in the jobs tray) and lands in a new sub-folder.
 */
export function DownloadButton({ snapshotId, paths, label = 'Download', testId }: { snapshotId: string; paths?: string[]; label?: string; testId: string }) {
  const [typing, setTyping] = useState(false);
  const [folder, setFolder] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [target, setTarget] = useState<string | null>(null);
  // The download's job, and how it ended: a disk that fills up or a cancel in the jobs tray is said
  // here, where it was started, not only as a path that looks as if it had worked.
  const [jobId, setJobId] = useState<string | null>(null);
  const ended = useJobsStore((s) => (jobId ? s.recent.find((j) => j.id === jobId) : undefined));
  // What the download did not write (a FIFO or device node a laptop folder cannot hold, a name that
  // would have left the folder): named here, or "Downloaded" would pass for a whole copy.
  const warnings = ended?.status === 'succeeded' ? ((ended.result as { warnings?: string[] } | null)?.warnings ?? []) : [];

  const start = async (into: string) => {
    setError(null);
    try {
      const started = await api().downloads.start({ snapshotId, folder: into, ...(paths ? { paths } : {}) });
      setTarget(started.target);
      setJobId(started.jobId);
      setTyping(false);
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  const open = async () => {
    setError(null);
    setTarget(null);
    setJobId(null);
    try {
      const chosen = await api().downloads.chooseFolder();
      if (!chosen.supported) setTyping(true);
      else if (chosen.folder) await start(chosen.folder);
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  return (
    <span className="download">
      <Button className="button button-quiet" onPress={() => void open()} data-testid={testId}>
        {label}
      </Button>
      {typing ? (
        <span className="download-form">
          <TextField className="field" value={folder} onChange={setFolder} aria-label="Folder on this computer" autoFocus>
            <Input data-testid={`${testId}-folder`} placeholder="/home/you/Downloads" onKeyDown={(e) => e.key === 'Enter' && folder.trim() && void start(folder.trim())} />
          </TextField>
          <Button className="button button-primary" isDisabled={!folder.trim()} onPress={() => void start(folder.trim())} data-testid={`${testId}-go`}>
            Download here
          </Button>
          <Button className="button button-quiet" onPress={() => setTyping(false)}>
            Cancel
          </Button>
        </span>
      ) : null}
      {target ? (
        <span className="muted" data-testid={`${testId}-target`}>
          {' '}
          {!ended ? 'Downloading' : ended.status === 'succeeded' ? 'Downloaded' : 'Not downloaded'} → {target}
        </span>
      ) : null}
      {warnings.length > 0 ? (
        <p role="status" className="banner banner-warn" data-testid={`${testId}-warnings`}>
          {warnings.length === 1 ? '1 entry was' : `${warnings.length} entries were`} not written:
          {warnings.slice(0, WARNINGS_SHOWN).map((w) => (
            <span key={w}>
              <br />
              <code>{w}</code>
            </span>
          ))}
          {warnings.length > WARNINGS_SHOWN ? (
            <>
              <br />… and {warnings.length - WARNINGS_SHOWN} more
            </>
          ) : null}
        </p>
      ) : null}
      <ErrorBanner
        message={error ?? (ended && ended.status !== 'succeeded' ? `The download ${ended.status}${ended.error ? `: ${ended.error.message}` : ''}. What it wrote so far is in ${target}.` : null)}
        testId={`${testId}-error`}
      />
    </span>
  );
}
