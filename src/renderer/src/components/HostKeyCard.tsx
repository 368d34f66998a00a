import { useState } from 'react';
import { Button, Checkbox } from 'react-aria-components';
import type { HostKeyCheck } from '../../../shared/schemas/devices';
import { api } from '../api';
import { useAction } from '../use-action';
import { ErrorBanner } from './ErrorBanner';

const ON_THE_DEVICE = 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub';

/**
 * The device's pinned host key, and the way to confirm one: a profile imported without a key, or a
 * device reinstalled with a new one (every connection is refused until then, nothing sent). The key
 * the device presents is fetched without logging in; it is pinned only after the technician ticks
 * that it matches what the device itself shows, and only if the device still presents it.
 */
export function HostKeyCard({ name, pinned, prominent }: { name: string; pinned: string | undefined; prominent: boolean }) {
  const { busy, error, run } = useAction();
  const [checked, setCheck] = useState<HostKeyCheck | null>(null);
  const [compared, setCompared] = useState(false);
  const [justPinned, setJustPinned] = useState(false);
  // Pinned since (here, in another window, by the CLI or an import): what was checked shows only once the page has the same key.
  const check = checked && checked.pinned === (pinned ?? null) ? checked : null;

  const checkNow = () =>
    run(async () => {
      setCompared(false);
      setJustPinned(false);
      setCheck(null);
      setCheck(await api().devices.checkHostKey({ name }));
    });
  const pin = (fingerprint: string) =>
    run(async () => {
      await api().devices.pinHostKey({ name, fingerprint });
      setCheck({ pinned: fingerprint, presented: fingerprint, matches: true });
      setCompared(false);
      setJustPinned(true);
    });

  const changed = check && !check.matches && check.pinned !== null;
  return (
    <section className={`card key-card${prominent ? ' card-attention' : ''}`} aria-label="Host key" data-testid="key-card">
      <h2>Host key</h2>
      <p>
        {pinned ? (
          <>
            Pinned: <code data-testid="key-card-pinned">{pinned}</code>
          </>
        ) : (
          <span className="status-warn" data-testid="key-card-pinned">
            Not confirmed yet: the console will not connect to this device until its key is confirmed.
          </span>
        )}
      </p>
      <ErrorBanner message={error} testId="key-card-error" />
      {check?.matches ? (
        <p role="status" className="banner banner-ok" data-testid="key-card-result">
          {justPinned ? 'Pinned. ' : ''}The device presents the pinned key.
        </p>
      ) : null}
      {check && !check.matches ? (
        <div role="status" className={`banner ${changed ? 'banner-error' : 'banner-warn'}`} data-testid="key-card-result">
          {changed ? (
            <p>
              The device presents a <strong>different key</strong> than the pinned one: <code data-testid="key-card-presented">{check.presented}</code>. If it was
              reinstalled, compare this fingerprint with the one the device shows (<code>{ON_THE_DEVICE}</code>) before you replace the pinned key. If it was not,
              do not: someone may be between you and the device.
            </p>
          ) : (
            <p>
              The device presents <code data-testid="key-card-presented">{check.presented}</code>. Compare it with the fingerprint the device shows (
              <code>{ON_THE_DEVICE}</code>).
            </p>
          )}
          <Checkbox className="checkbox" isSelected={compared} onChange={setCompared} data-testid="key-card-compared">
            <div className="checkbox-box" aria-hidden="true" />
            <span>I compared it: it is the fingerprint the device shows</span>
          </Checkbox>
          <div className="form-actions">
            <Button className={changed ? 'button button-danger' : 'button button-primary'} isDisabled={!compared || busy} onPress={() => void pin(check.presented)} data-testid="key-card-pin">
              {changed ? 'Replace the pinned key' : 'Trust this key'}
            </Button>
          </div>
        </div>
      ) : null}
      <div className="form-actions">
        <Button className="button" isDisabled={busy} onPress={() => void checkNow()} data-testid="key-card-check">
          {busy ? 'Checking…' : check ? 'Check again' : 'Check the key the device presents'}
        </Button>
      </div>
    </section>
  );
}
