/**
 * The device's own settings, as the inventory keeps them: where it is (site, tags), how it is reached
 * (address, account, key file and a new passphrase, or a new password), what is promised for it (RPO, a fixed schedule,
 * RTO), what a restore stops and starts, the health command, and compression on the wire. Saved
 * whole through `devices.update`; the pinned host key is never changed here (a device at a new
 * address must present the same key, or nothing is sent to it). When the stored profile changes
 * (this card's save, the retention card's, another window's), an untouched form follows it; one
 * being edited keeps what was typed.
 */
import { useState } from 'react';
import type { FormEvent } from 'react';
import { Button, FieldError, Input, Label, NumberField, Radio, RadioGroup, Text, TextArea, TextField } from 'react-aria-components';
import { Form } from './Form';
import { authOf } from '../../../shared/schemas/devices';
import type { DeviceProfile } from '../../../shared/schemas/devices';
import { useSecretsNote } from '../secrets-note';
import { useFleetStore } from '../stores/fleet-store';
import { lines } from '../format';
import { useFieldErrors } from '../field-errors';
import { useAction } from '../use-action';
import { ErrorBanner } from './ErrorBanner';

type WireCompression = 'auto' | 'on' | 'off';

/** The fields that show a refused save's reason; the profile's other reasons (its sources') go to the banner. */
const FIELDS = ['site', 'tags', 'host', 'port', 'user', 'identityFile', 'passphrase', 'password', 'rpoMinutes', 'schedule', 'rtoMinutes', 'healthCommand', 'services.stop', 'services.start', 'silentLinkSeconds'];

interface Draft {
  site: string;
  tags: string;
  host: string;
  port: number;
  user: string;
  identityFile: string;
  password: string;
  passphrase: string;
  rpoMinutes: number;
  schedule: string;
  rtoMinutes: number;
  stop: string;
  start: string;
  healthCommand: string;
  wireCompression: WireCompression;
  silentLinkSeconds: number;
}

function draftOf(profile: DeviceProfile): Draft {
  return {
    site: profile.site,
    tags: profile.tags.join(', '),
    host: profile.host,
    port: profile.port,
    user: profile.user,
    identityFile: profile.identityFile ?? '',
    password: '',
    passphrase: '',
    rpoMinutes: profile.rpoMinutes ?? Number.NaN,
    schedule: profile.schedule ?? '',
    rtoMinutes: profile.rtoMinutes ?? Number.NaN,
    stop: (profile.services?.stop ?? []).join('\n'),
    start: (profile.services?.start ?? []).join('\n'),
    healthCommand: profile.healthCommand ?? '',
    wireCompression: profile.wireCompression ?? 'auto',
    silentLinkSeconds: profile.silentLinkSeconds ?? Number.NaN,
  };
}

/** The profile with the draft applied: a blank optional setting is removed, not stored empty. */
function profileOf(profile: DeviceProfile, draft: Draft): Record<string, unknown> {
  const next: Record<string, unknown> = {
    ...profile,
    site: draft.site.trim(),
    tags: draft.tags
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    host: draft.host.trim(),
    port: draft.port,
    user: draft.user.trim(),
  };
  const optional: [string, unknown][] = [
    ['rpoMinutes', Number.isNaN(draft.rpoMinutes) ? undefined : draft.rpoMinutes],
    ['schedule', draft.schedule.trim() || undefined],
    ['rtoMinutes', Number.isNaN(draft.rtoMinutes) ? undefined : draft.rtoMinutes],
    ['services', lines(draft.stop).length + lines(draft.start).length > 0 ? { stop: lines(draft.stop), start: lines(draft.start) } : undefined],
    ['healthCommand', draft.healthCommand.trim() || undefined],
    ['wireCompression', draft.wireCompression === 'auto' ? undefined : draft.wireCompression],
    ['silentLinkSeconds', Number.isNaN(draft.silentLinkSeconds) ? undefined : draft.silentLinkSeconds],
  ];
  // Said outright: a profile that names only its key file would, without it, log in through the agent.
  if (authOf(profile) === 'key') optional.push(['auth', 'key'], ['identityFile', draft.identityFile.trim() || undefined]);
  for (const [key, value] of optional) {
    if (value === undefined) delete next[key];
    else next[key] = value;
  }
  return next;
}

export function DeviceSettingsCard({ profile }: { profile: DeviceProfile }) {
  const secretsNote = useSecretsNote();
  const [draft, setDraft] = useState<Draft>(() => draftOf(profile));
  const [basis, setBasis] = useState(profile);
  const [saved, setSaved] = useState(false);
  if (JSON.stringify(basis) !== JSON.stringify(profile)) {
    setBasis(profile);
    if (JSON.stringify(draft) === JSON.stringify(draftOf(basis))) setDraft(draftOf(profile));
  }
  const { busy, error, run } = useAction();
  const { errors, refused, edited } = useFieldErrors(FIELDS);
  const auth = authOf(profile);
  /** `field`: the form field's name, which is the profile's path for it. */
  const set =
    <K extends keyof Draft>(key: K, field: string = key) =>
    (value: Draft[K]) => {
      setDraft((d) => ({ ...d, [key]: value }));
      setSaved(false);
      edited(field);
    };

  const save = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      const secrets = auth === 'password' && draft.password ? { password: draft.password } : auth === 'key' && draft.passphrase ? { passphrase: draft.passphrase } : {};
      await useFleetStore.getState().updateProfile({ name: profile.name, profile: profileOf(profile, draft), ...secrets });
      setDraft((d) => ({ ...d, password: '', passphrase: '' }));
      setSaved(true);
    }, refused);
  };

  const text = (key: 'site' | 'host' | 'user' | 'identityFile' | 'schedule' | 'healthCommand', label: string, options: { placeholder?: string; description?: string; required?: boolean } = {}) => (
    <TextField className="field" name={key} value={draft[key]} onChange={set(key)} isRequired={options.required ?? false}>
      <Label>{label}</Label>
      <Input data-testid={`device-setting-${key}`} placeholder={options.placeholder} />
      {options.description ? <Text slot="description">{options.description}</Text> : null}
      <FieldError />
    </TextField>
  );
  const minutes = (key: 'rpoMinutes' | 'rtoMinutes', label: string, description: string) => (
    <NumberField className="field" name={key} value={draft[key]} onChange={set(key)} minValue={1} maxValue={60 * 24 * 31}>
      <Label>{label}</Label>
      <Input data-testid={`device-setting-${key}`} />
      <Text slot="description">{description}</Text>
      <FieldError />
    </NumberField>
  );

  return (
    <Form className="card form" aria-label="Device settings" data-testid="device-settings" onSubmit={save} validationErrors={errors}>
      <h2>Settings</h2>
      <div className="grid-2">
        {text('site', 'Site', { placeholder: 'Depot North' })}
        <TextField className="field" name="tags" value={draft.tags} onChange={set('tags')}>
          <Label>Tags</Label>
          <Input data-testid="device-setting-tags" placeholder="critical, north" />
          <Text slot="description">Separated by commas; the fleet page filters by them.</Text>
          <FieldError />
        </TextField>
        {text('host', 'Host', { required: true, description: 'A new address must present the pinned host key.' })}
        <NumberField className="field" name="port" value={draft.port} onChange={set('port')} minValue={1} maxValue={65535} formatOptions={{ useGrouping: false }} isRequired>
          <Label>Port</Label>
          <Input data-testid="device-setting-port" />
          <FieldError />
        </NumberField>
        {text('user', 'User', { required: true })}
        {auth === 'key' ? text('identityFile', 'Private key file on this laptop', { placeholder: '/home/me/.ssh/id_ed25519' }) : null}
        {auth === 'key' ? (
          <TextField className="field" name="passphrase" type="password" value={draft.passphrase} onChange={set('passphrase')}>
            <Label>New key passphrase</Label>
            <Input data-testid="device-setting-passphrase" autoComplete="off" />
            <Text slot="description" data-testid="secrets-note">Empty keeps the stored one (never shown). {secretsNote}</Text>
            <FieldError />
          </TextField>
        ) : null}
        {auth === 'password' ? (
          <TextField className="field" name="password" type="password" value={draft.password} onChange={set('password')}>
            <Label>New password</Label>
            <Input data-testid="device-setting-password" autoComplete="new-password" />
            <Text slot="description" data-testid="secrets-note">Empty keeps the stored one (never shown). {secretsNote}</Text>
            <FieldError />
          </TextField>
        ) : null}
        {minutes('rpoMinutes', 'RPO target (minutes)', 'How old the newest backup may get; empty: its tier tag’s (critical, important, standard) or the console’s default.')}
        {text('schedule', 'Schedule (optional)', { placeholder: '0 2 * * *', description: 'Cron, local time: backed up at these times as well.' })}
        {minutes('rtoMinutes', 'RTO target (minutes)', 'How long a full recovery may take; restore drills measure against it.')}
        {text('healthCommand', 'Health command (optional)', { placeholder: 'systemctl is-active myrvm', description: 'Run on the device after an in-place restore: unless it exits 0, the restore is rolled back.' })}
        <TextField className="field" name="services.stop" value={draft.stop} onChange={set('stop', 'services.stop')}>
          <Label>Before a restore, stop (one command per line)</Label>
          <TextArea data-testid="device-setting-stop" rows={2} placeholder="sudo systemctl stop myrvm" />
          <FieldError />
        </TextField>
        <TextField className="field" name="services.start" value={draft.start} onChange={set('start', 'services.start')}>
          <Label>After a restore, start (one command per line)</Label>
          <TextArea data-testid="device-setting-start" rows={2} placeholder="sudo systemctl start myrvm" />
          <FieldError />
        </TextField>
      </div>
      <RadioGroup className="field" value={draft.wireCompression} onChange={(v) => set('wireCompression')(v as WireCompression)} orientation="horizontal" data-testid="device-setting-wireCompression">
        <Label>Compress on the wire</Label>
        <div className="radio-row">
          <Radio value="auto">When the link is slow</Radio>
          <Radio value="on">Always</Radio>
          <Radio value="off">Never</Radio>
        </div>
      </RadioGroup>
      <NumberField className="field" name="silentLinkSeconds" value={draft.silentLinkSeconds} onChange={set('silentLinkSeconds')} minValue={10} maxValue={600}>
        <Label>Give up when silent for (seconds, optional)</Label>
        <Input data-testid="device-setting-silentLinkSeconds" placeholder="as in Settings" />
        <Text slot="description">For a link that drops for longer than the others (satellite, cellular): how long this device may send nothing before a job gives it up. Empty: the console&apos;s setting.</Text>
        <FieldError />
      </NumberField>
      <ErrorBanner message={error} testId="device-settings-error" />
      {saved ? (
        <p role="status" className="form-status form-status-saved" data-testid="device-settings-saved">
          Settings saved.
        </p>
      ) : null}
      <div className="form-actions">
        <Button type="submit" className="button button-primary" isDisabled={busy} data-testid="device-settings-save">
          Save settings
        </Button>
      </div>
    </Form>
  );
}
