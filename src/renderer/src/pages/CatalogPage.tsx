import { useEffect, useMemo, useRef, useState } from 'react';
import { ErrorBanner } from '../components/ErrorBanner';
import type { FormEvent } from 'react';
import { Button, Checkbox, Input, Label, TextField } from 'react-aria-components';
import { Form } from '../components/Form';
import type { SnapshotEntry, SnapshotInfo } from '../../../shared/schemas/catalog';
import { toAppError } from '../../../shared/errors';
import { api } from '../api';
import { byName, sortedNames } from '../../../shared/natural';
import { EmptyState } from '../components/EmptyState';
import { PageHeader } from '../components/PageHeader';
import { VirtualList } from '../components/VirtualList';
import { DownloadButton } from '../components/DownloadButton';
import { FileVersions } from '../components/FileVersions';
import { formatBytes } from '../format';
import { visibleName } from '../../../shared/visible-name';
import { routeQuery, useAppStore } from '../stores/app-store';
import { useCatalogStore } from '../stores/catalog-store';
import type { CatalogFilter } from '../stores/catalog-store';
import { ChoiceFilter } from '../components/ChoiceFilter';

function RepositoryPanel() {
  const repository = useCatalogStore((s) => s.repository);
  const { init, unlock, lock } = useCatalogStore.getState();
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [createFolder, setCreateFolder] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!repository) return null;
  const creating = !repository.exists;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (creating && password !== again) return setError('The passwords do not match');
    try {
      await (creating ? init(password, repository.folderMissing && createFolder) : unlock(password));
      setPassword('');
      setAgain('');
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  if (repository.unlocked) {
    return (
      <p className="muted" data-testid="repository-unlocked">
        Repository <code>{repository.location}</code> is unlocked.{' '}
        <Button className="button button-quiet" onPress={() => void lock()}>
          Lock
        </Button>
      </p>
    );
  }
  return (
    <Form className="card form" onSubmit={(e) => void submit(e)} data-testid="repository-form">
      <h2>{creating ? 'Create the repository' : 'Unlock the repository'}</h2>
      {creating && repository.folderMissing ? (
        <p className="status-bad" role="alert" data-testid="repository-folder-missing">
          The folder <code>{repository.location}</code> is not there. If the repository is on a disk, connect it so that it is mounted at that path, and it can be unlocked here; or set its
          new location in Settings. Creating a repository now makes a new, empty one on this computer&apos;s disk.
        </p>
      ) : null}
      <p className="muted">
        {creating
          ? `Backups are stored encrypted in ${repository.location}. Choose a password: without it nobody, including you, can read them.`
          : `${repository.location} is encrypted. Enter its password to see and make snapshots.`}
      </p>
      <TextField className="field" type="password" value={password} onChange={setPassword} isRequired autoFocus>
        <Label>Password</Label>
        <Input data-testid="repository-password" />
      </TextField>
      {creating ? (
        <TextField className="field" type="password" value={again} onChange={setAgain} isRequired>
          <Label>Repeat password</Label>
          <Input data-testid="repository-password-again" />
        </TextField>
      ) : null}
      {creating && repository.folderMissing ? (
        <Checkbox className="checkbox" isSelected={createFolder} onChange={setCreateFolder} data-testid="repository-create-folder">
          <div className="checkbox-box" aria-hidden="true" />
          <span>Create the folder: this is a new repository</span>
        </Checkbox>
      ) : null}
      <ErrorBanner message={error} testId="repository-error" />
      <div className="form-actions">
        <Button type="submit" className="button button-primary" isDisabled={creating && repository.folderMissing && !createFolder} data-testid="repository-submit">
          {creating ? 'Create repository' : 'Unlock'}
        </Button>
      </div>
    </Form>
  );
}

type EntryOrder = 'name' | 'time' | 'size';

/** An entry's name as shown (a symbolic link with its target). */
function shownName(e: SnapshotEntry): string {
  return e.type === 'symlink' ? `${visibleName(e.name)} → ${visibleName(e.target ?? '')}` : visibleName(e.name);
}

/** Which device's source a snapshot is of: another snapshot of it opens in the folder last looked at. */
const sourceKey = (s: SnapshotInfo) => JSON.stringify([s.device, s.source ?? s.kind]);

/**
 * One snapshot's files. Mounted afresh for each snapshot (keyed by its id): a download offered, a
 * file's versions or a folder belong to the snapshot they were chosen in — only another snapshot of
 * the same device and source opens in the same folder (`initialDir`).
 */
function Browser({ snapshot, initialDir, onDir }: { snapshot: SnapshotInfo; initialDir: string; onDir: (dir: string) => void }) {
  const [dir, setDirState] = useState(initialDir);
  const setDir = (next: string) => {
    setDirState(next);
    onDir(next);
  };
  const key = `${snapshot.id}:${dir}`;
  // Entries, or the reason they could not be read, belong to the folder they were read for: another
  // folder (or snapshot) shows "Loading" until its own arrive, not the last one's error.
  const [loaded, setLoaded] = useState<{ key: string; entries: SnapshotEntry[] } | null>(null);
  const [failed, setFailed] = useState<{ key: string; message: string } | null>(null);
  const [versionsOf, setVersionsOf] = useState<string | null>(null);
  const [download, setDownload] = useState<{ paths?: string[]; label: string } | null>(null);
  // It opens below a table of up to 500 snapshots: bring it into view, or the click seems to do nothing.
  const card = useRef<HTMLElement>(null);
  useEffect(() => {
    card.current?.scrollIntoView({ block: 'start' });
  }, [snapshot.id]);
  useEffect(() => {
    api()
      .snapshots.browse({ id: snapshot.id, path: dir })
      .then((r) => {
        setFailed(null);
        setLoaded({ key: `${snapshot.id}:${dir}`, entries: [...r.entries].sort((a, b) => Number(b.type === 'dir') - Number(a.type === 'dir') || byName(a.name, b.name)) });
      })
      .catch((caught: unknown) => setFailed({ key: `${snapshot.id}:${dir}`, message: toAppError(caught).message }));
  }, [snapshot.id, dir]);
  const entries = loaded?.key === key ? loaded.entries : null;
  const error = failed?.key === key ? failed.message : null;
  // Part of a name to find in this folder (100,000 files are not looked through by scrolling).
  const [find, setFind] = useState({ key: '', text: '' });
  const text = find.key === key ? find.text : '';
  // By name (as read), or the newest or the largest first: folders always before files.
  const [order, setOrder] = useState<EntryOrder>('name');
  const shown = useMemo(() => {
    const wanted = text.trim().toLowerCase();
    const found = !entries || !wanted ? entries : entries.filter((e) => e.name.toLowerCase().includes(wanted) || visibleName(e.name).toLowerCase().includes(wanted));
    if (!found || order === 'name') return found;
    // One number per entry, then one sort of the numbers: 100,000 entries in a few tens of ms.
    const keyed = found.map((e) => ({ e, dir: e.type === 'dir' ? 0 : 1, k: order === 'size' ? e.size : Number(e.mtime) }));
    keyed.sort((a, b) => a.dir - b.dir || b.k - a.k);
    return keyed.map((x) => x.e);
  }, [entries, text, order]);
  const crumbs = dir.split('/').filter(Boolean);
  const pathOf = (name: string) => (dir ? `${dir}/${name}` : name);
  const isFiles = snapshot.kind === 'files';
  return (
    <>
      <section className="card" aria-label="Files in snapshot" data-testid="snapshot-browser" ref={card}>
        <div className="page-header">
          <h2>
            {snapshot.device} · {snapshot.source ?? snapshot.kind} · {new Date(snapshot.time).toLocaleString()}
          </h2>
          <div className="page-actions">
            <Button className="button" onPress={() => setDownload({ label: 'the whole snapshot' })} data-testid="download-snapshot">
              Download snapshot
            </Button>
            {dir ? (
              <Button className="button" onPress={() => setDownload({ paths: [dir], label: `${visibleName(dir)}/` })} data-testid="download-current-folder">
                Download this folder
              </Button>
            ) : null}
          </div>
        </div>
        {download ? (
          <div className="banner" data-testid="download-panel">
            Download <code>{download.label}</code> to a folder on this computer (into a new sub-folder named after the snapshot):{' '}
            <DownloadButton snapshotId={snapshot.id} {...(download.paths ? { paths: download.paths } : {})} label="Choose folder…" testId="download-choose" />
            <Button className="button button-quiet" onPress={() => setDownload(null)}>
              Close
            </Button>
          </div>
        ) : null}
        <nav className="crumbs" aria-label="Folder">
          <Button className="link-button" onPress={() => setDir('')}>
            /
          </Button>
          {crumbs.map((c, i) => (
            <Button key={i} className="link-button" onPress={() => setDir(crumbs.slice(0, i + 1).join('/'))}>
              {visibleName(c)}/
            </Button>
          ))}
        </nav>
        <ErrorBanner message={error} />
        {entries === null ? (
          error ? null : <p>Loading…</p>
        ) : entries.length === 0 ? (
          <p className="muted" data-testid="snapshot-folder-empty">
            This folder is empty.
          </p>
        ) : (
          <>
            <div className="filters" role="search" aria-label="Find in this folder">
              {/* Before the find box, so Tab goes from what was typed to the files found. */}
              <label>
                Order
                <select value={order} onChange={(ev) => setOrder(ev.target.value as EntryOrder)} data-testid="entries-order">
                  <option value="name">Name</option>
                  <option value="time">Newest first</option>
                  <option value="size">Largest first</option>
                </select>
              </label>
              <label>
                Find in this folder
                <input type="search" value={text} onChange={(ev) => setFind({ key, text: ev.target.value })} placeholder="part of a name" data-testid="entries-find" />
              </label>
              <span className="muted" data-testid="entries-count" aria-live="polite">
                {text.trim() ? `${(shown ?? entries).length.toLocaleString()} of ${entries.length.toLocaleString()}` : `${entries.length.toLocaleString()} ${entries.length === 1 ? 'entry' : 'entries'}`}
              </span>
            </div>
            {shown?.length === 0 ? (
              <p className="muted" data-testid="entries-none">
                No name in this folder contains “{text.trim()}”.
              </p>
            ) : (
              <VirtualList
                key={`${key}:${text}:${order}`}
                items={shown ?? entries}
                rowHeight={30}
                height={Math.min(420, Math.max(60, (shown ?? entries).length * 30))}
                label="Entries"
                testId="snapshot-entries"
                render={(e) => (
                  <div className="entry">
                    {e.type === 'dir' ? (
                      <Button className="link-button" onPress={() => setDir(dir ? `${dir}/${e.name}` : e.name)}>
                        {visibleName(e.name)}/
                      </Button>
                    ) : (
                      // Cut with an ellipsis to fit the row: the whole name on hover (two long names may differ only at their end).
                      // Bytes that are not UTF-8, control and direction-changing characters are shown as escapes.
                      <span className="entry-name" title={shownName(e)}>
                        {shownName(e)}
                      </span>
                    )}
                    <span className="muted">{e.type === 'file' ? formatBytes(e.size) : e.type}</span>
                    {/* A folder the backup only made to hold its paths (their parents) has no time of its own: 0, not 1970. */}
                    <span className="muted">{e.mtime === '0' ? '—' : new Date(Number(BigInt(e.mtime) / 1_000_000n)).toLocaleString()}</span>
                    <span className="entry-actions">
                      {isFiles && e.type === 'file' ? (
                        <Button className="button button-quiet" onPress={() => setVersionsOf(pathOf(e.name))} aria-label={`Versions of ${visibleName(e.name)}`} data-testid={`entry-versions-${e.name}`}>
                          Versions
                        </Button>
                      ) : null}
                      <Button className="button button-quiet" onPress={() => setDownload({ paths: [pathOf(e.name)], label: visibleName(pathOf(e.name)) })} aria-label={`Download ${visibleName(e.name)}${e.type === 'dir' ? '/' : ''}`} data-testid={`entry-download-${e.name}`}>
                        Download
                      </Button>
                    </span>
                  </div>
                )}
              />
            )}
          </>
        )}
      </section>
      {versionsOf ? <FileVersions snapshotId={snapshot.id} path={versionsOf} onClose={() => setVersionsOf(null)} /> : null}
    </>
  );
}

/** Rows the table shows at first, and adds per "Show more": a fleet makes hundreds of snapshots a day. */
const PAGE_ROWS = 500;

/** Device and source filters; a link such as `#/catalog?device=rvm-017` sets them. */
function CatalogFilters({ snapshots, matching, shown, onMore }: { snapshots: SnapshotInfo[]; matching: number; shown: number; onMore: () => void }) {
  const filter = useCatalogStore((s) => s.filter);
  const { setFilter } = useCatalogStore.getState();
  useEffect(() => {
    const fromLink = () => {
      const query = routeQuery(window.location.hash);
      if (query.has('device')) setFilter({ device: query.get('device'), source: query.get('source') });
    };
    fromLink();
    window.addEventListener('hashchange', fromLink);
    return () => window.removeEventListener('hashchange', fromLink);
  }, [setFilter]);
  const devices = sortedNames(new Set(snapshots.map((s) => s.device)));
  const sources = sortedNames(new Set(snapshots.filter((s) => filter.device === null || s.device === filter.device).map((s) => s.source ?? s.kind)));
  return (
    <div className="filters" data-testid="catalog-filters">
      <ChoiceFilter label="Device" all="All devices" choices={devices} value={filter.device ?? ''} onChange={(v) => setFilter({ device: v || null, source: null })} testId="catalog-device" />
      <ChoiceFilter label="Source" all="All sources" choices={sources} value={filter.source ?? ''} onChange={(v) => setFilter({ ...filter, source: v || null })} testId="catalog-source" />
      <span className="muted" data-testid="catalog-count">
        {shown < matching ? `The newest ${shown} of ${matching} snapshots` : `${matching} of ${snapshots.length} snapshots`}
      </span>
      {shown < matching ? (
        <Button className="button button-quiet" onPress={onMore} data-testid="catalog-more">
          Show {Math.min(PAGE_ROWS, matching - shown)} more
        </Button>
      ) : null}
    </div>
  );
}

function matches(s: SnapshotInfo, filter: CatalogFilter): boolean {
  return (filter.device === null || s.device === filter.device) && (filter.source === null || (s.source ?? s.kind) === filter.source);
}

export function CatalogPage() {
  const repository = useCatalogStore((s) => s.repository);
  const snapshots = useCatalogStore((s) => s.snapshots);
  const error = useCatalogStore((s) => s.error);
  const filter = useCatalogStore((s) => s.filter);
  const param = useAppStore((s) => s.param);
  useEffect(() => {
    void useCatalogStore.getState().refresh();
  }, []);
  const selected = param ? snapshots.find((s) => s.id === param) : undefined;
  // The folder last opened per device and source.
  const [folders, setFolders] = useState<Record<string, string>>({});
  // Newest first, as the list arrives; another filter starts from the first page again.
  const [page, setPage] = useState({ filter, limit: PAGE_ROWS });
  const limit = page.filter === filter ? page.limit : PAGE_ROWS;
  const matching = snapshots.filter((s) => matches(s, filter));
  const listed = matching.slice(0, limit);
  return (
    <>
      <PageHeader title="Catalog" subtitle="Snapshots in the repository, by device and source" />
      <RepositoryPanel />
      <ErrorBanner message={error} />
      {repository?.unlocked && snapshots.length === 0 ? (
        <EmptyState title="No snapshots yet" testId="catalog-empty">
          <p>Snapshots appear here after a device&apos;s first backup: open a device on the Fleet page and press Back up now.</p>
        </EmptyState>
      ) : null}
      {repository && !repository.unlocked ? (
        <EmptyState title="No snapshots to show" testId="catalog-empty">
          <p>The repository is {repository.exists ? 'locked' : 'not created yet'}; its snapshots show here once it is {repository.exists ? 'unlocked' : 'created'}.</p>
        </EmptyState>
      ) : null}
      {snapshots.length > 0 ? <CatalogFilters snapshots={snapshots} matching={matching.length} shown={listed.length} onMore={() => setPage({ filter, limit: limit + PAGE_ROWS })} /> : null}
      {snapshots.length > 0 ? (
        <table className="table card" data-testid="snapshots-table">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Device</th>
              <th scope="col">Source</th>
              <th scope="col">Files</th>
              <th scope="col">Size</th>
              <th scope="col">Added</th>
            </tr>
          </thead>
          <tbody>
            {listed.map((s) => (
              <tr key={s.id} data-testid={`snapshot-${s.device}-${s.source ?? s.kind}`} aria-selected={s.id === param}>
                <td>
                  <a href={`#/catalog/${s.id}`}>{new Date(s.time).toLocaleString()}</a>
                </td>
                <td>{s.device}</td>
                <td>
                  {s.source ?? '—'} <span className="muted">{s.kind}</span>
                  {s.tags.includes('integrity:damaged') ? <span className="status-failed"> · damaged (integrity_check failed)</span> : null}
                </td>
                <td>{s.files.toLocaleString()}</td>
                <td>{formatBytes(s.bytes)}</td>
                <td>{formatBytes(s.bytesAdded)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {selected ? <Browser key={selected.id} snapshot={selected} initialDir={folders[sourceKey(selected)] ?? ''} onDir={(dir) => setFolders((f) => ({ ...f, [sourceKey(selected)]: dir }))} /> : null}
    </>
  );
}
