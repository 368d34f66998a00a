import { useEffect, useState } from 'react';
import type { ReactNode } from 'react';
import { Button } from 'react-aria-components';
import type { FileDiff, FileVersions as Versions } from '../../../shared/schemas/files';
import type { RestorePlanSummary, RestoreRequest } from '../../../shared/schemas/restore';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { formatBytes } from '../format';
import { visibleName } from '../../../shared/visible-name';
import { useJobsStore } from '../stores/jobs-store';
import { useAction } from '../use-action';
import { ErrorBanner } from './ErrorBanner';
import { counted } from '../../../shared/plural';

/** Characters a line shows as nothing or as an ordinary space: controls (not tabs), format characters such as a byte-order mark, other spaces. */
const HIDDEN_IN_LINE = /[\p{Cf}\p{Cs}\p{Zl}\p{Zp}\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]|(?![\t])\p{Cc}/gu;

/**
 * A changed line's text with what would not show made visible: trailing spaces and tabs as · and →,
 * a byte-order mark, a no-break space or a control character as its escape (\uFEFF, \u00A0, \x0C).
 * Otherwise "- threshold: 0.85" and "+ threshold: 0.85 " read the same.
 */
function LineText({ text }: { text: string }) {
  const trailing = /[ \t]+$/.exec(text);
  const body = trailing ? text.slice(0, trailing.index) : text;
  const parts: ReactNode[] = [];
  let at = 0;
  for (const m of body.matchAll(HIDDEN_IN_LINE)) {
    if (m.index > at) parts.push(body.slice(at, m.index));
    const code = m[0].codePointAt(0)!;
    parts.push(
      <span key={m.index} className="diff-hidden" title={`U+${code.toString(16).toUpperCase().padStart(4, '0')}`}>
        {code < 0x100 && code !== 0xa0 ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}` : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`}
      </span>,
    );
    at = m.index + m[0].length;
  }
  if (at < body.length) parts.push(body.slice(at));
  if (trailing) {
    parts.push(
      <span key="trailing" className="diff-hidden" title="trailing whitespace">
        {trailing[0].replaceAll(' ', '·').replaceAll('\t', '→')}
      </span>,
    );
  }
  return <>{parts}</>;
}

function DiffView({ diff }: { diff: FileDiff }) {
  if (diff.identical) return <p className="muted" data-testid="diff-identical">The two versions are identical.</p>;
  if (diff.notText === 'binary') return <p className="muted" data-testid="diff-binary">Binary file: the versions differ, but there is no line diff to show.</p>;
  if (diff.notText === 'too-large') return <p className="muted" data-testid="diff-too-large">Too large to compare line by line in the console.</p>;
  // Every line the same, the bytes not: say what differs rather than show "+0 −0" and nothing.
  if (diff.notText === 'line-endings') return <p className="muted" data-testid="diff-invisible">The lines are the same: the versions differ only in their line endings (CRLF and LF), as when a file is saved again from a Windows editor.</p>;
  if (diff.notText === 'final-newline') return <p className="muted" data-testid="diff-invisible">The lines are the same: the versions differ only in the newline at the end of the file.</p>;
  return (
    <div className="diff" data-testid="diff" aria-label="Line diff">
      <p className="muted">
        <span className="diff-add">+{diff.added}</span> <span className="diff-del">−{diff.removed}</span>
      </p>
      {diff.hunks.map((h, i) => (
        <pre key={i} className="diff-hunk">
          <span className="diff-head">{`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`}</span>
          {h.lines.map((l, j) => (
            <span key={j} className={l.op === '+' ? 'diff-line diff-add' : l.op === '-' ? 'diff-line diff-del' : 'diff-line'} data-testid={l.op === ' ' ? undefined : 'diff-changed'}>
              <span className="diff-num">{l.oldLine ?? ''}</span>
              <span className="diff-num">{l.newLine ?? ''}</span>
              {`${l.op} `}
              {l.op === ' ' ? l.text : <LineText text={l.text} />}
            </span>
          ))}
        </pre>
      ))}
    </div>
  );
}

/**
 * One file's versions across the device's snapshots: pick two to diff, or restore one onto the
 * device in two clicks (the plan of that one file, then confirm).
 */
export function FileVersions({ snapshotId, path, onClose }: { snapshotId: string; path: string; onClose: () => void }) {
  // Results belong to what they were read for; another file or pair shows "Loading" until its own arrive.
  const key = `${snapshotId}:${path}`;
  const [loaded, setLoaded] = useState<{ key: string; versions: Versions } | null>(null);
  const versions = loaded?.key === key ? loaded.versions : null;
  const [chosen, setPair] = useState<{ key: string; pair: [string, string] } | null>(null);
  const defaultPair: [string, string] | null = versions && versions.versions.length >= 2 ? [versions.versions[1]!.snapshotId, versions.versions[0]!.snapshotId] : null;
  const pair = chosen?.key === key ? chosen.pair : defaultPair;
  const [diffed, setDiff] = useState<{ key: string; diff: FileDiff } | null>(null);
  const diff = pair && diffed?.key === `${key}:${pair.join(':')}` ? diffed.diff : null;
  const { busy, error, setError, run: act } = useAction();
  const [restore, setRestore] = useState<{ request: RestoreRequest; plan: RestorePlanSummary } | null>(null);
  const [jobId, setJobId] = useState<string | null>(null);
  const finished = useJobsStore((s) => (jobId ? s.recent.find((j) => j.id === jobId) : undefined));

  useEffect(() => {
    api()
      .files.versions({ snapshotId, path })
      .then((v) => setLoaded({ key: `${snapshotId}:${path}`, versions: v }))
      .catch((caught: unknown) => setError(toAppError(caught).message));
  }, [snapshotId, path, setError]);

  // By default the diff shows what changed most recently (the previous version against the newest).
  const [from, to] = pair ?? [null, null];
  useEffect(() => {
    if (!from || !to) return;
    api()
      .files.diff({ from, to, path })
      .then((d) => setDiff({ key: `${snapshotId}:${path}:${from}:${to}`, diff: d }))
      .catch((caught: unknown) => setError(toAppError(caught).message));
  }, [snapshotId, from, to, path, setError]);
  const choose = (next: [string, string]) => setPair({ key, pair: next });

  const planRestore = (id: string) =>
    act(async () => {
      setJobId(null);
      const request = await api().files.restoreRequest({ snapshotId: id, path });
      setRestore({ request, plan: await api().restore.plan(request) });
    });
  const confirm = () =>
    act(async () => {
      if (!restore) return;
      const started = await api().restore.start(restore.request);
      setJobId(started.jobId);
      setRestore(null);
    });

  const when = (iso: string) => new Date(iso).toLocaleString();
  // One version has nothing to be compared with: its "old" and "new" only diffed it with itself.
  const comparable = versions !== null && versions.versions.length >= 2;
  return (
    <section className="card" aria-label={`Versions of ${visibleName(path)}`} data-testid="file-versions">
      <div className="page-header">
        <h2>
          Versions of <code>{visibleName(path)}</code>
        </h2>
        <Button className="button button-quiet" onPress={onClose} data-testid="versions-close">
          Close
        </Button>
      </div>
      <ErrorBanner message={error} testId="versions-error" />
      {versions === null && !error ? <p>Loading…</p> : null}
      {versions ? (
        <table className="table" data-testid="versions-table">
          <thead>
            <tr>
              <th scope="col">First seen</th>
              <th scope="col">Last seen</th>
              <th scope="col">Seen in snapshots</th>
              <th scope="col">Size</th>
              <th scope="col">Content</th>
              {comparable ? <th scope="col">Compare</th> : null}
              <th scope="col" />
            </tr>
          </thead>
          <tbody>
            {versions.versions.map((v, i) => (
              <tr key={`${v.snapshotId}-${i}`} data-testid="version-row">
                <td>{when(v.firstSeen)}</td>
                <td>{v.lastSeen === v.firstSeen ? '' : when(v.lastSeen)}</td>
                <td>{v.snapshots}</td>
                <td>{formatBytes(v.size)}</td>
                <td>
                  <code>{v.contentId.slice(0, 8)}</code>
                  {i === 0 ? <span className="tag">newest</span> : null}
                </td>
                {comparable ? (
                  <td>
                    <Button className="button button-quiet" isDisabled={pair?.[0] === v.snapshotId} onPress={() => choose([v.snapshotId, pair?.[1] ?? versions.versions[0]!.snapshotId])} data-testid={`version-from-${i}`}>
                      old
                    </Button>
                    <Button className="button button-quiet" isDisabled={pair?.[1] === v.snapshotId} onPress={() => choose([pair?.[0] ?? v.snapshotId, v.snapshotId])} data-testid={`version-to-${i}`}>
                      new
                    </Button>
                  </td>
                ) : null}
                <td>
                  <Button className="button" isDisabled={busy} onPress={() => void planRestore(v.snapshotId)} data-testid={`version-restore-${i}`}>
                    Restore this version
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {versions && versions.versions.length < 2 ? <p className="muted">Only one version: the file did not change across {counted(versions.versions[0]?.snapshots ?? 0, 'snapshot')}.</p> : null}
      {restore ? (
        <div className="banner" data-testid="version-restore-plan">
          <p>
            Put this version of <code>{visibleName(path)}</code> back on {restore.plan.device}:{' '}
            {restore.plan.roots.map((r) => r.samples.map(visibleName).join(', ')).filter(Boolean).join('; ') || 'it already matches, nothing to change'}. Sends{' '}
            {formatBytes(restore.plan.bytesToSend)}. The current file is kept on the device until you keep or roll back the restore.
          </p>
          {restore.plan.warnings.map((w) => (
            <p key={w} className="status-warn">
              {w}
            </p>
          ))}
          <div className="form-actions">
            <Button className="button button-primary" isDisabled={busy} onPress={() => void confirm()} data-testid="version-restore-confirm">
              Confirm restore
            </Button>
            <Button className="button button-quiet" onPress={() => setRestore(null)}>
              Cancel
            </Button>
          </div>
        </div>
      ) : null}
      {jobId ? (
        <p className={finished ? (finished.status === 'succeeded' ? 'banner banner-ok' : 'banner banner-error') : 'banner'} data-testid="version-restore-status">
          {!finished ? 'Restoring…' : finished.status === 'succeeded' ? 'Restored. Keep it or roll it back on the Restore page.' : `The restore ${finished.status}${finished.error ? `: ${finished.error.message}` : ''}`}
          {finished?.status === 'succeeded' ? (
            <>
              {' '}
              <a href="#/restore">Open the Restore page</a>
            </>
          ) : null}
        </p>
      ) : null}
      {diff && pair ? (
        <>
          <h3>
            {when(versions?.versions.find((v) => v.snapshotId === pair[0])?.lastSeen ?? '')} → {when(versions?.versions.find((v) => v.snapshotId === pair[1])?.lastSeen ?? '')}
          </h3>
          <DiffView diff={diff} />
        </>
      ) : null}
    </section>
  );
}
