import { useCallback, useEffect, useState } from 'react';
import { Button, Dialog, Heading, Modal, ModalOverlay } from 'react-aria-components';
import { toAppError } from '../../../shared/errors';
import type { Lease } from '../../../shared/schemas/leases';
import { api } from '../api';
import { ErrorBanner } from './ErrorBanner';

/** A lease turns stale when not refreshed for this long (the engine's STALE_MS). */
const STALE_MINUTES = 5;

function ago(iso: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

type Loaded = { leases: Lease[]; at: number } | { error: string } | { unavailable: string };

function fetchLeases(): Promise<Loaded> {
  return api()
    .repository.leases()
    .then(
      (leases) => ({ leases, at: Date.now() }),
      (caught: unknown) => {
        const error = toAppError(caught);
        // No repository yet, or not unlocked: leases are sealed with its key.
        return error.code === 'UNAVAILABLE' || error.code === 'NOT_FOUND' ? { unavailable: error.message } : { error: error.message };
      },
    );
}

/**
 * The repository's leases (which console holds the repository, for what, since when) with "Break
 * lease". A stale lease (holder crashed) breaks after one confirmation; a live one only after a
 * second, explicit "force" confirmation, since its holder may be a running prune. Self-contained:
 * it loads and refreshes itself, so it can sit on any repository or settings page.
 */
export function RepositoryLeases() {
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [target, setTarget] = useState<Lease | null>(null);
  const [forceStep, setForceStep] = useState(false);
  const [busy, setBusy] = useState(false);
  const leases = loaded && 'leases' in loaded ? loaded.leases : null;
  const now = loaded && 'at' in loaded ? loaded.at : 0;
  const error = actionError ?? (loaded && 'error' in loaded ? loaded.error : null);

  const load = useCallback(() => fetchLeases().then(setLoaded), []);
  useEffect(() => {
    void fetchLeases().then(setLoaded);
    const timer = setInterval(() => void fetchLeases().then(setLoaded), 15_000);
    return () => clearInterval(timer);
  }, []);

  const close = () => {
    setTarget(null);
    setForceStep(false);
  };
  const breakIt = async (lease: Lease, force: boolean) => {
    setBusy(true);
    setActionError(null);
    try {
      const broken = await api().repository.breakLease({ id: lease.id, force });
      setNotice(`Broke the ${broken.exclusive ? 'exclusive' : 'shared'} lease of pid ${broken.pid} on ${broken.host}.`);
      close();
      await load();
    } catch (caught) {
      setActionError(toAppError(caught).message);
      close();
      await load();
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-label="Repository leases" data-testid="leases">
      <h2>Repository leases</h2>
      <p className="muted">
        Consoles hold a lease while they back up, restore or check (shared) or prune (exclusive). A lease whose console stopped refreshing it for {STALE_MINUTES} minutes — or whose
        process on this laptop is gone — is stale and no longer blocks anyone.
      </p>
      <ErrorBanner message={error} testId="leases-error" />
      {loaded && 'unavailable' in loaded ? (
        <p className="muted" data-testid="leases-unavailable">
          Leases show once the repository is open. ({loaded.unavailable})
        </p>
      ) : null}
      {notice ? (
        <p role="status" className="form-status form-status-saved" data-testid="leases-notice">
          {notice}
        </p>
      ) : null}
      {leases === null ? null : leases.length === 0 ? (
        <p data-testid="leases-empty">No leases: nothing is using the repository now.</p>
      ) : (
        <table className="table" data-testid="leases-table">
          <thead>
            <tr>
              <th>Holder</th>
              <th>Kind</th>
              <th>Held for</th>
              <th>Last refresh</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {leases.map((l) => (
              <tr key={l.id} data-testid="lease-row" data-lease-id={l.id} data-stale={l.stale ? 'true' : 'false'}>
                <td data-testid="lease-holder">
                  {l.host}, pid {l.pid}
                </td>
                <td>{l.exclusive ? 'exclusive (prune)' : 'shared'}</td>
                <td>{ago(l.created, now)}</td>
                <td>{ago(l.refreshed, now)} ago</td>
                <td data-testid="lease-state" className={l.stale ? 'status-warn' : 'status-ok'}>
                  {l.stale ? 'stale' : 'live'}
                </td>
                <td>
                  <Button className="button button-quiet" onPress={() => (setNotice(null), setActionError(null), setTarget(l))} data-testid="lease-break">
                    Break lease…
                  </Button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="form-actions">
        <Button className="button" onPress={() => (setActionError(null), void load())} data-testid="leases-refresh">
          Refresh
        </Button>
      </div>

      <ModalOverlay className="modal-overlay" isOpen={target !== null} onOpenChange={(open) => (open ? undefined : close())} isDismissable>
        <Modal className="modal">
          <Dialog className="dialog" data-testid="lease-break-dialog">
            <Heading slot="title">{target?.stale ? 'Break a stale lease' : forceStep ? 'Force-break a live lease?' : 'This lease is live'}</Heading>
            {target ? (
              <div className="form">
                <p>
                  {target.exclusive ? 'Exclusive' : 'Shared'} lease of pid {target.pid} on {target.host}, held for {ago(target.created, now)}, last refreshed {ago(target.refreshed, now)} ago.
                </p>
                <p className="status-bad" data-testid="lease-break-warning">
                  Breaking a lease that is still in use can corrupt the repository: a prune that lost its lease stops within seconds, but what it deletes until then may be data
                  another console is backing up into, and a backup that lost its lease stops before saving its snapshot. Only break a lease when you know its console is gone.
                </p>
                {target.stale ? (
                  <p>It has not been refreshed for {STALE_MINUTES} minutes or more, or its process on this laptop has ended: its console is most likely gone.</p>
                ) : forceStep ? (
                  <p data-testid="lease-force-confirm">
                    Last chance: the console on {target.host} refreshed this lease {ago(target.refreshed, now)} ago and may be working right now. Force-break it only if you have made
                    sure that console is switched off or disconnected.
                  </p>
                ) : (
                  <p>
                    Its console refreshed it {ago(target.refreshed, now)} ago. Wait until it finishes, or until the lease turns stale ({STALE_MINUTES} minutes after its last refresh)
                    if that console crashed.
                  </p>
                )}
                <div className="form-actions">
                  {target.stale ? (
                    <Button className="button button-danger" isDisabled={busy} onPress={() => void breakIt(target, false)} data-testid="lease-break-confirm">
                      Break lease
                    </Button>
                  ) : forceStep ? (
                    <Button className="button button-danger" isDisabled={busy} onPress={() => void breakIt(target, true)} data-testid="lease-force-break">
                      Force-break the live lease
                    </Button>
                  ) : (
                    <Button className="button button-danger" onPress={() => setForceStep(true)} data-testid="lease-force">
                      Force…
                    </Button>
                  )}
                  <Button className="button" onPress={close} data-testid="lease-break-cancel">
                    Cancel
                  </Button>
                </div>
              </div>
            ) : null}
          </Dialog>
        </Modal>
      </ModalOverlay>
    </section>
  );
}
