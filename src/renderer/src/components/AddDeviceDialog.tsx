import { useEffect, useRef, useState } from 'react';
import { useSecretsNote } from '../secrets-note';
import { ErrorBanner } from './ErrorBanner';
import type { FormEvent } from 'react';
import { Button, Dialog, FieldError, Heading, Input, Label, Modal, ModalOverlay, NumberField, Radio, RadioGroup, Text, TextField } from 'react-aria-components';
import { Form } from './Form';
import { useAction } from '../use-action';
import { useFieldErrors } from '../field-errors';
import { api } from '../api';
import { NameSchema } from '../../../shared/schemas/devices';

type Auth = 'key' | 'password' | 'agent';
type Step = { kind: 'details' } | { kind: 'confirm-jump'; fingerprint: string } | { kind: 'confirm'; fingerprint: string };
interface Jump {
  user: string;
  host: string;
  port: number;
}

/** `user@host[:port]` as ssh -J takes it (an IPv6 address in brackets); the main process validates it again. */
/** The fields that show a refused save's reason. */
const FIELDS = ['name', 'host', 'port', 'user', 'identityFile', 'passphrase', 'password', 'site', 'jump', 'jumpIdentity', 'sysroot'];

function parseJump(text: string): Jump | null {
  const match = /^([^@\s]+)@([^:\s]+|\[[^\]\s]+\])(?::(\d{1,5}))?$/.exec(text.trim());
  return match ? { user: match[1]!, host: match[2]!.replace(/^\[(.*)\]$/, '$1'), port: match[3] ? Number(match[3]) : 22 } : null;
}

/**
 * Adds a device in two steps: the details, then the host key fingerprint, fetched without logging
 * in, which the technician compares with the device before anything is trusted. A device behind a
 * jump host takes one more step first: the jump host's own fingerprint; the device's is then
 * fetched through it.
 */
export function AddDeviceDialog({ isOpen, onClose, onAdded }: { isOpen: boolean; onClose: () => void; onAdded: (name: string) => void }) {
  const secretsNote = useSecretsNote();
  const [name, setName] = useState('');
  const [host, setHost] = useState('');
  const [port, setPort] = useState(22);
  const [user, setUser] = useState('jetson');
  const [auth, setAuth] = useState<Auth>('key');
  const [identityFile, setIdentityFile] = useState('');
  const [password, setPassword] = useState('');
  const [passphrase, setPassphrase] = useState('');
  const [site, setSite] = useState('');
  const [sysroot, setSysroot] = useState('');
  const [jumpText, setJumpText] = useState('');
  const [jumpIdentity, setJumpIdentity] = useState('');
  const [jumpHostKey, setJumpHostKey] = useState<string | null>(null);
  const [step, setStep] = useState<Step>({ kind: 'details' });
  const { busy, error, setError, run } = useAction();
  const { errors: fieldErrors, refused, set: setFieldErrors, editing: edited } = useFieldErrors(FIELDS);

  // A host key answered on a slow link may come after Cancel or Back, or after the address was
  // corrected meanwhile: it showed then as the key of the address now typed (or greeted the dialog
  // opened again later with a fingerprint of the earlier attempt). Each check is numbered, and its
  // answer kept only while it is still the latest and the address is still the one it was fetched for.
  const attempt = useRef(0);
  const typed = useRef({ host, port, jump: jumpText.trim() });
  useEffect(() => {
    typed.current = { host, port, jump: jumpText.trim() };
  }, [host, port, jumpText]);
  const stillWanted = (mine: number, asked: { host: string; port: number; jump: string }): boolean => {
    if (attempt.current !== mine) return false;
    const now = typed.current;
    if (now.host === asked.host && now.port === asked.port && now.jump === asked.jump) return true;
    setError(`The address changed while the host key of ${asked.host}:${asked.port} was being fetched: check the host key again.`);
    return false;
  };

  const reset = () => {
    attempt.current++;
    setStep({ kind: 'details' });
    setJumpHostKey(null);
    setError(null);
    setFieldErrors({});
  };

  const jumpProfile = (hostKey: string) => {
    const jump = parseJump(jumpText);
    return jump ? { ...jump, hostKey, ...(jumpIdentity ? { identityFile: jumpIdentity } : {}) } : undefined;
  };

  /** The device's key: directly, or through the jump host once its key is confirmed. */
  const probeDevice = async (confirmedJumpKey: string | null, mine: number) => {
    const asked = { host, port, jump: jumpText.trim() };
    const jump = confirmedJumpKey ? jumpProfile(confirmedJumpKey) : undefined;
    const via = jump ? { jump, auth, ...(auth === 'key' && identityFile ? { identityFile } : {}), ...(auth === 'key' && passphrase ? { passphrase } : {}), ...(auth === 'password' && password ? { password } : {}) } : undefined;
    const { fingerprint } = await api().devices.probeHostKey({ host, port, ...(via ? { via } : {}) });
    if (stillWanted(mine, asked)) setStep({ kind: 'confirm', fingerprint });
  };

  const checkHostKey = (event: FormEvent) => {
    event.preventDefault();
    const mine = ++attempt.current;
    const asked = { host, port, jump: jumpText.trim() };
    void run(async () => {
      // A name that is no name or is taken is said now, not after the fingerprint was compared and the login made.
      const named = NameSchema.safeParse(name);
      if (!named.success) {
        setFieldErrors({ name: named.error.issues[0]?.message ?? 'Not a device name' });
        return;
      }
      if ((await api().devices.list()).some((d) => d.name === name)) {
        setFieldErrors({ name: `A device named "${name}" already exists` });
        return;
      }
      if (jumpText.trim()) {
        const jump = parseJump(jumpText);
        if (!jump) {
          setFieldErrors({ jump: 'Expected USER@HOST or USER@HOST:PORT' });
          return;
        }
        const { fingerprint } = await api().devices.probeHostKey({ host: jump.host, port: jump.port });
        if (stillWanted(mine, asked)) setStep({ kind: 'confirm-jump', fingerprint });
        return;
      }
      await probeDevice(null, mine);
    });
  };

  const trustJump = (fingerprint: string) => {
    setJumpHostKey(fingerprint);
    const mine = ++attempt.current;
    void run(() => probeDevice(fingerprint, mine));
  };

  /** Logs in once with what was typed (the key just confirmed, pinned), and only then adds the device. */
  const add = (fingerprint: string) =>
    run(
      async () => {
        const jump = jumpHostKey ? jumpProfile(jumpHostKey) : undefined;
        const profile = { name, host, port, user, auth, site, hostKey: fingerprint, ...(auth === 'key' ? { identityFile } : {}), ...(sysroot ? { sysroot } : {}), ...(jump ? { jump } : {}) };
        const secrets = auth === 'password' ? { password } : auth === 'key' && passphrase ? { passphrase } : {};
        await api().devices.testLogin({ profile, ...secrets });
        await api().devices.add({ profile, ...secrets });
        onAdded(name);
        reset();
        onClose();
      },
      (e) => {
        const refusal = refused(e);
        // A login that failed: the credentials field says why (a key this laptop could not open is
        // its passphrase's fault, not the device's).
        if (e.code === 'AUTH_FAILED') {
          if (auth === 'key') setFieldErrors(/cannot be used/.test(e.message) ? { passphrase: passphrase ? 'Not the passphrase of this key' : 'This key needs its passphrase' } : { identityFile: 'The device refused this key' });
          else if (auth === 'password') setFieldErrors({ password: 'The device refused this password' });
        }
        setStep({ kind: 'details' });
        return refusal;
      },
    );

  return (
    <ModalOverlay className="modal-overlay" isOpen={isOpen} onOpenChange={(open) => (open ? undefined : (reset(), onClose()))} isDismissable>
      <Modal className="modal">
        <Dialog className="dialog" data-testid="add-device-dialog">
          <Heading slot="title">Add a device</Heading>
          {step.kind === 'details' ? (
            <Form className="form" onSubmit={(e) => void checkHostKey(e)} validationErrors={fieldErrors}>
              <TextField className="field" name="name" value={name} onChange={edited('name', setName)} isRequired autoFocus>
                <Label>Name</Label>
                <Input data-testid="device-name" placeholder="rvm-017" />
                <FieldError />
              </TextField>
              <div className="field-row">
                <TextField className="field grow" name="host" value={host} onChange={edited('host', setHost)} isRequired>
                  <Label>Host</Label>
                  <Input data-testid="device-host" placeholder="10.0.4.17" />
                  <FieldError />
                </TextField>
                <NumberField className="field narrow" name="port" value={port} onChange={edited('port', setPort)} minValue={1} maxValue={65535} formatOptions={{ useGrouping: false }}>
                  <Label>Port</Label>
                  <Input data-testid="device-port" />
                  <FieldError />
                </NumberField>
              </div>
              <TextField className="field" name="user" value={user} onChange={edited('user', setUser)} isRequired>
                <Label>User</Label>
                <Input data-testid="device-user" />
                <FieldError />
              </TextField>
              <RadioGroup className="field" value={auth} onChange={(v) => setAuth(v as Auth)}>
                <Label>Sign in with</Label>
                <div className="radio-row">
                  <Radio value="key">Key file</Radio>
                  <Radio value="agent">SSH agent</Radio>
                  <Radio value="password">Password</Radio>
                </div>
              </RadioGroup>
              {auth === 'key' ? (
                <TextField className="field" name="identityFile" value={identityFile} onChange={edited('identityFile', setIdentityFile)} isRequired>
                  <Label>Private key file on this laptop</Label>
                  <Input data-testid="device-identity" placeholder="/home/me/.ssh/id_ed25519" />
                  <FieldError />
                </TextField>
              ) : null}
              {auth === 'key' ? (
                <TextField className="field" name="passphrase" type="password" value={passphrase} onChange={edited('passphrase', setPassphrase)}>
                  <Label>Key passphrase (if the key has one)</Label>
                  <Input data-testid="device-passphrase" autoComplete="off" />
                  <Text slot="description" data-testid="secrets-note">{secretsNote}</Text>
                  <FieldError />
                </TextField>
              ) : null}
              {auth === 'password' ? (
                <TextField className="field" name="password" type="password" value={password} onChange={edited('password', setPassword)} isRequired>
                  <Label>Password</Label>
                  <Input data-testid="device-password" />
                  <Text slot="description" data-testid="secrets-note">{secretsNote}</Text>
                  <FieldError />
                </TextField>
              ) : null}
              <TextField className="field" name="site" value={site} onChange={edited('site', setSite)}>
                <Label>Site</Label>
                <Input data-testid="device-site" placeholder="Depot North" />
                <FieldError />
              </TextField>
              <details className="advanced" open={jumpText !== '' || undefined}>
                <summary>Advanced</summary>
                <TextField className="field" name="jump" value={jumpText} onChange={edited('jump', setJumpText)}>
                  <Label>Jump host</Label>
                  <Input data-testid="device-jump" placeholder="ops@bastion.example:22" />
                  <Text slot="description">When the device is reachable only through a bastion (as ssh -J). Leave empty otherwise.</Text>
                  <FieldError />
                </TextField>
                {jumpText ? (
                  <TextField className="field" name="jumpIdentity" value={jumpIdentity} onChange={edited('jumpIdentity', setJumpIdentity)}>
                    <Label>Jump host key file</Label>
                    <Input data-testid="device-jump-identity" placeholder="the device's key when empty" />
                    <FieldError />
                  </TextField>
                ) : null}
                <TextField className="field" name="sysroot" value={sysroot} onChange={edited('sysroot', setSysroot)}>
                  <Label>Device filesystem root</Label>
                  <Input data-testid="device-sysroot" placeholder="/" />
                  <Text slot="description">Leave empty for a Jetson. Set it when the device&apos;s files live below a folder (a mounted image, a test stand-in).</Text>
                  <FieldError />
                </TextField>
              </details>
              <ErrorBanner message={error} testId="add-device-error" />
              <div className="form-actions">
                <Button type="submit" className="button button-primary" isDisabled={busy} data-testid="device-check-key">
                  {busy ? 'Contacting device…' : 'Check host key'}
                </Button>
                <Button className="button" slot="close">
                  Cancel
                </Button>
              </div>
            </Form>
          ) : step.kind === 'confirm-jump' ? (
            <div className="form" data-testid="jump-host-key-confirm">
              <p>
                The jump host {jumpText.trim()} presents this host key. Compare it with the fingerprint shown on the jump
                host before you trust it; the device&apos;s own key is fetched through it next.
              </p>
              <p className="fingerprint" data-testid="jump-host-key-fingerprint">
                {step.fingerprint}
              </p>
              <ErrorBanner message={error} />
              <div className="form-actions">
                <Button className="button button-primary" isDisabled={busy} onPress={() => trustJump(step.fingerprint)} data-testid="jump-host-key-trust">
                  {busy ? 'Contacting device…' : 'The fingerprints match: continue'}
                </Button>
                <Button className="button" onPress={reset}>
                  Back
                </Button>
              </div>
            </div>
          ) : (
            <div className="form" data-testid="host-key-confirm">
              <p>
                {host}:{port}
                {jumpHostKey ? ` (through ${jumpText.trim()})` : ''} presents this host key. Compare it with the fingerprint shown on the device
                (<code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code>) before you trust it.
              </p>
              <p className="fingerprint" data-testid="host-key-fingerprint">
                {step.fingerprint}
              </p>
              <ErrorBanner message={error} />
              <div className="form-actions">
                <Button className="button button-primary" isDisabled={busy} onPress={() => void add(step.fingerprint)} data-testid="host-key-trust">
                  {busy ? 'Logging in…' : 'The fingerprints match: log in and add the device'}
                </Button>
                <Button className="button" onPress={reset}>
                  Back
                </Button>
              </div>
            </div>
          )}
        </Dialog>
      </Modal>
    </ModalOverlay>
  );
}
