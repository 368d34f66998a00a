import { useState } from 'react';
import { Button, Checkbox } from 'react-aria-components';
import type { DeviceProfile, HostKeyCheck, KeyComparison, KeyTarget } from '../../../shared/schemas/devices';
import { useFleetStore } from '../stores/fleet-store';
import { api } from '../api';
import { useAction } from '../use-action';
import { ErrorBanner } from './ErrorBanner';

const ON_THE_HOST = 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub';

/** What the check found for one host that is not its pinned key, and the way to pin it once compared. */
function Unconfirmed({ target, comparison, busy, onPin }: { target: KeyTarget; comparison: KeyComparison; busy: boolean; onPin: () => void }) {
  const [compared, setCompared] = useState(false);
  const changed = comparison.pinned !== null;
  const who = target === 'jump' ? 'The jump host' : 'The device';
  return (
    <div className={`banner ${changed ? 'banner-error' : 'banner-warn'}`} data-testid={`key-card-result-${target}`}>
      {/* The finding is announced; the checkbox and button below it are not part of the live region. */}
      {changed ? (
        <p role="alert">
          {who} presents a <strong>different key</strong> than the pinned one: <code data-testid={`key-card-presented-${target}`}>{comparison.presented}</code>. If it
          was reinstalled, compare this fingerprint with the one it shows (<code>{ON_THE_HOST}</code>) before you replace the pinned key. If it was not, do not:
          someone may be between you and the device.
        </p>
      ) : (
        <p role="status">
          {who} presents <code data-testid={`key-card-presented-${target}`}>{comparison.presented}</code>. Compare it with the fingerprint it shows (
          <code>{ON_THE_HOST}</code>).
        </p>
      )}
      <Checkbox className="checkbox" isSelected={compared} onChange={setCompared} data-testid={`key-card-compared-${target}`}>
        <div className="checkbox-box" aria-hidden="true" />
        <span>I compared it: it is the fingerprint {target === 'jump' ? 'the jump host' : 'the device'} shows</span>
      </Checkbox>
      <div className="form-actions">
        <Button className={changed ? 'button button-danger' : 'button button-primary'} isDisabled={!compared || busy} onPress={onPin} data-testid={`key-card-pin-${target}`}>
          {changed ? `Replace the pinned key${target === 'jump' ? ' of the jump host' : ''}` : `Trust this key${target === 'jump' ? ' for the jump host' : ''}`}
        </Button>
      </div>
    </div>
  );
}

/**
 * The device's pinned host key (and its jump host's), and the way to confirm one: a profile
 * imported without a key, or a host reinstalled with a new one (every connection is refused until
 * then, nothing sent). The keys presented are fetched without logging in to the device; one is
 * pinned only after the technician ticks that it matches what the host itself shows, and only if
 * the host still presents it. The jump host comes first: the device's key is read through it.
 */
export function HostKeyCard({ profile, prominent }: { profile: DeviceProfile; prominent: boolean }) {
  const { busy, error, run } = useAction();
  const [checked, setCheck] = useState<HostKeyCheck | null>(null);
  const [justPinned, setJustPinned] = useState(false);
  const pinned = { device: profile.hostKey ?? null, jump: profile.jump ? (profile.jump.hostKey ?? null) : null };
  // Pinned since (here, in another window, by the CLI or an import): a check shows only while the page has the keys it compared.
  const check = checked && (checked.device?.pinned ?? pinned.device) === pinned.device && (checked.jump?.pinned ?? pinned.jump) === pinned.jump ? checked : null;

  const checkNow = () =>
    run(async () => {
      setJustPinned(false);
      setCheck(null);
      setCheck(await api().devices.checkHostKey({ name: profile.name }));
    });
  const pin = (target: KeyTarget, fingerprint: string) =>
    run(async () => {
      // Held at once: the page's next save is made on the profile as pinned (its updatedAt moved on).
      useFleetStore.getState().received(await api().devices.pinHostKey({ name: profile.name, fingerprint, target }));
      setJustPinned(true);
      // A jump host pinned: the device's key can be read through it now.
      setCheck(target === 'jump' ? await api().devices.checkHostKey({ name: profile.name }) : { jump: checked?.jump ?? null, device: { pinned: fingerprint, presented: fingerprint, matches: true } });
    });

  const allMatch = check !== null && check.device?.matches === true && (check.jump === null || check.jump.matches);
  return (
    <section className={`card key-card${prominent ? ' card-attention' : ''}`} aria-label="Host key" data-testid="key-card">
      <h2>Host key</h2>
      <p>
        {pinned.device ? (
          <>
            Pinned: <code data-testid="key-card-pinned">{pinned.device}</code>
          </>
        ) : (
          <span className="status-warn" data-testid="key-card-pinned">
            Not confirmed yet: the console will not connect to this device until its key is confirmed.
          </span>
        )}
        {profile.jump ? (
          <>
            <br />
            Jump host {profile.jump.user}@{profile.jump.host}:{profile.jump.port}: <code data-testid="key-card-pinned-jump">{pinned.jump ?? 'not confirmed'}</code>
          </>
        ) : null}
      </p>
      <ErrorBanner message={error} testId="key-card-error" />
      {allMatch ? (
        <p role="status" className="banner banner-ok" data-testid="key-card-result">
          {justPinned ? 'Pinned. ' : ''}The device presents the pinned key{check.jump ? ', and so does its jump host' : ''}.
        </p>
      ) : null}
      {check?.jump && !check.jump.matches ? (
        <Unconfirmed key={`jump:${check.jump.presented}`} target="jump" comparison={check.jump} busy={busy} onPin={() => void pin('jump', check.jump!.presented)} />
      ) : null}
      {check?.device && !check.device.matches ? (
        <Unconfirmed key={`device:${check.device.presented}`} target="device" comparison={check.device} busy={busy} onPin={() => void pin('device', check.device!.presented)} />
      ) : null}
      {check?.jump?.matches && justPinned && !allMatch ? (
        <p role="status" className="banner banner-ok" data-testid="key-card-result">
          Pinned the jump host&apos;s key.
        </p>
      ) : null}
      <div className="form-actions">
        <Button className="button" isDisabled={busy} onPress={() => void checkNow()} data-testid="key-card-check">
          {busy ? 'Checking…' : check ? 'Check again' : profile.jump ? 'Check the keys presented now' : 'Check the key the device presents'}
        </Button>
      </div>
    </section>
  );
}
