/**
 * Settings → Repositories: the primary (backed up into) and secondaries holding copies (3-2-1):
 * add one (local folder, S3 or SFTP; its password and credentials go to the secret store), test it,
 * mark it offsite, make it primary, remove it.
 */
import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { Button } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import type { RepositoryEntry, RepositoryTest } from '../../../shared/schemas/repositories';
import { api } from '../api';
import { useSecondPress } from '../use-second-press';
import { ErrorBanner } from './ErrorBanner';

type Kind = 'local' | 's3' | 'sftp';

const PLACEHOLDER: Record<Kind, string> = {
  local: '/media/usb-backup/jetvault',
  s3: 's3:https://rgw.example:7480/jetvault-fleet',
  sftp: 'sftp:backup@vault.example:/srv/jetvault',
};

function testSummary(test: RepositoryTest): string {
  if (test.error) return test.error;
  return `Reachable, initialised, ${test.snapshots ?? 0} snapshot${test.snapshots === 1 ? '' : 's'} of ${test.devices ?? 0} device${test.devices === 1 ? '' : 's'}`;
}

function AddRepositoryForm({ onAdded }: { onAdded: (entry: RepositoryEntry) => void }) {
  const [kind, setKind] = useState<Kind>('local');
  const [location, setLocation] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [accessKeyId, setAccessKeyId] = useState('');
  const [secretAccessKey, setSecretAccessKey] = useState('');
  const [sftpPassword, setSftpPassword] = useState('');
  const [offsite, setOffsite] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const where = kind === 'local' || location.startsWith(`${kind}:`) ? location.trim() : `${kind}:${location.trim()}`;
    try {
      const entry = await api().repositories.add({
        location: where,
        password,
        offsite,
        ...(name.trim() ? { name: name.trim() } : {}),
        ...(kind === 's3' && accessKeyId ? { accessKeyId, secretAccessKey } : {}),
        ...(kind === 'sftp' && sftpPassword ? { sftpPassword } : {}),
      });
      setLocation('');
      setName('');
      setPassword('');
      setAccessKeyId('');
      setSecretAccessKey('');
      setSftpPassword('');
      setOffsite(false);
      onAdded(entry);
    } catch (caught) {
      const failure = toAppError(caught);
      setError(failure.issues?.length ? `${failure.message}: ${failure.issues.map((i) => i.message).join('; ')}` : failure.message);
    }
  };

  return (
    <form className="repository-add" onSubmit={(e) => void submit(e)} data-testid="repository-add-form" aria-label="Add a repository">
      <div className="filters">
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind(e.target.value as Kind)} data-testid="repository-kind">
            <option value="local">Local folder</option>
            <option value="s3">S3-compatible</option>
            <option value="sftp">SFTP server</option>
          </select>
        </label>
        <label className="grow">
          Location
          <input value={location} onChange={(e) => setLocation(e.target.value)} placeholder={PLACEHOLDER[kind]} required data-testid="repository-location" />
        </label>
        <label>
          Name <input value={name} onChange={(e) => setName(e.target.value)} placeholder="optional" maxLength={64} data-testid="repository-name" />
        </label>
        <label>
          Repository password <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="off" data-testid="repository-password" />
        </label>
      </div>
      {kind === 's3' ? (
        <div className="filters">
          <label>
            Access key id <input value={accessKeyId} onChange={(e) => setAccessKeyId(e.target.value)} autoComplete="off" data-testid="repository-access-key" />
          </label>
          <label>
            Secret access key <input type="password" value={secretAccessKey} onChange={(e) => setSecretAccessKey(e.target.value)} autoComplete="off" data-testid="repository-secret-key" />
          </label>
          <span className="muted">Empty: the standard AWS environment or profile of this computer.</span>
        </div>
      ) : null}
      {kind === 'sftp' ? (
        <div className="filters">
          <label>
            Login password <input type="password" value={sftpPassword} onChange={(e) => setSftpPassword(e.target.value)} autoComplete="off" data-testid="repository-sftp-password" />
          </label>
          <span className="muted">Empty: the SSH agent or keys of this computer.</span>
        </div>
      ) : null}
      <div className="form-actions">
        <label className="checkbox">
          <input type="checkbox" checked={offsite} onChange={(e) => setOffsite(e.target.checked)} data-testid="repository-offsite" /> Offsite (another building or a cloud)
        </label>
        <button type="submit" className="button button-primary" data-testid="repository-add">
          Add repository
        </button>
      </div>
      <ErrorBanner message={error} testId="repository-add-error" />
    </form>
  );
}

export function RepositoriesPanel() {
  const [entries, setEntries] = useState<RepositoryEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const removal = useSecondPress<string>();

  const load = async () => {
    try {
      setEntries(await api().repositories.list());
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  useEffect(() => {
    let current = true;
    api()
      .repositories.list()
      .then((list) => current && setEntries(list))
      .catch((caught: unknown) => current && setError(toAppError(caught).message));
    return () => {
      current = false;
    };
  }, []);

  const act = async (id: string, work: () => Promise<unknown>) => {
    setBusy(id);
    setError(null);
    try {
      await work();
    } catch (caught) {
      setError(toAppError(caught).message);
    } finally {
      setBusy(null);
      await load();
    }
  };

  return (
    <section className="card" aria-labelledby="repositories-title" data-testid="repositories">
      <h2 id="repositories-title">Repositories</h2>
      <p className="muted">
        Backups go to the primary. Secondaries hold copies (3-2-1: three copies, two media, one offsite); the fleet shows how many copies of each device&apos;s latest run
        exist, as of each repository&apos;s last test.
      </p>
      <ErrorBanner message={error} testId="repositories-error" />
      {entries === null ? (
        error ? null : <p>Loading…</p>
      ) : (
        <table className="table" data-testid="repositories-table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Location</th>
              <th scope="col">Role</th>
              <th scope="col">Offsite</th>
              <th scope="col">Last test</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {entries.map((r) => (
              <tr key={r.id} data-testid={`repository-row-${r.name}`}>
                <td>{r.name}</td>
                <td>
                  <code>{r.location}</code>
                </td>
                <td data-testid="repository-role">{r.primary ? <strong>Primary</strong> : 'Secondary'}</td>
                <td className="checks">
                  {/* Each box says what it is: a second, unlabelled box beside the first read as one control. */}
                  <label className="nowrap">
                    <input
                      type="checkbox"
                      aria-label={`${r.name} is offsite`}
                      checked={r.offsite}
                      disabled={busy === r.id}
                      onChange={(e) => void act(r.id, () => api().repositories.update({ id: r.id, offsite: e.target.checked }))}
                      data-testid="repository-offsite-toggle"
                    />{' '}
                    offsite
                  </label>
                  {r.offsite && !r.primary ? (
                    <label className="muted nowrap" title="After each backup and every few minutes, new runs are copied here whenever it can be reached">
                      <input
                        type="checkbox"
                        checked={r.copyWhenReachable}
                        disabled={busy === r.id}
                        onChange={(e) => void act(r.id, () => api().repositories.update({ id: r.id, copyWhenReachable: e.target.checked }))}
                        data-testid="repository-copy-when-reachable"
                      />{' '}
                      copy when reachable
                    </label>
                  ) : null}
                </td>
                <td data-testid="repository-test-result" className={r.lastTest ? (r.lastTest.error ? 'status-bad' : 'status-ok') : 'muted'}>
                  {busy === r.id ? 'Testing…' : r.lastTest ? `${testSummary(r.lastTest)} (${new Date(r.lastTest.at).toLocaleString()})` : 'Not tested yet'}
                </td>
                <td>
                  <div className="row-actions">
                  <Button className="button" isDisabled={busy !== null} onPress={() => void act(r.id, () => api().repositories.test({ id: r.id }))} data-testid="repository-test">
                    Test
                  </Button>
                  {r.primary ? null : (
                    <>
                      <Button className="button" isDisabled={busy !== null} onPress={() => void act(r.id, () => api().repositories.setPrimary({ id: r.id }))} data-testid="repository-set-primary">
                        Make primary
                      </Button>
                      <Button
                        className={removal.armed === r.id ? 'button button-danger' : 'button button-quiet'}
                        isDisabled={busy !== null}
                        onPress={() => (removal.armed === r.id ? void act(r.id, () => api().repositories.remove({ id: r.id })).then(removal.disarm) : removal.arm(r.id))}
                        onBlur={removal.disarm}
                        data-testid="repository-remove"
                      >
                        {removal.armed === r.id ? 'Press again to remove' : 'Remove'}
                      </Button>
                    </>
                  )}
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>Add a repository</h3>
      <AddRepositoryForm onAdded={() => void load()} />
    </section>
  );
}
