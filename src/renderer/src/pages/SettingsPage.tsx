import { useState } from 'react';
import { ErrorBanner } from '../components/ErrorBanner';
import type { FormEvent, ReactNode } from 'react';
import { Button, FieldError, Input, Label, NumberField, Radio, RadioGroup, Switch, Text, TextField } from 'react-aria-components';
import { Form } from '../components/Form';
import { toAppError } from '../../../shared/errors';
import { refusalText } from '../../../shared/refusal';
import type { Settings, SettingsPatch } from '../../../shared/schemas/settings';
import { PageHeader } from '../components/PageHeader';
import { RepositoriesPanel } from '../components/RepositoriesPanel';
import { RepositoryLeases } from '../components/RepositoryLeases';
import { useSettingsStore } from '../stores/settings-store';
import { useFieldErrors } from '../field-errors';
import { useSecondPress } from '../use-second-press';


function changedFields(saved: Settings, draft: Settings): SettingsPatch {
  const patch: Record<string, unknown> = {};
  // By value: a settings push after a save hands over equal objects (monitoring rules) that are not the draft's.
  for (const key of Object.keys(draft) as (keyof Settings)[]) if (JSON.stringify(draft[key]) !== JSON.stringify(saved[key])) patch[key] = draft[key];
  return patch;
}

/** The fields that show a refused save's reason (the rest are said in the status line). */
const FIELDS = ['repositoryPath', 'defaultRpoMinutes', 'defaultRtoMinutes', 'maxParallelDevices', 'bandwidthLimitKiBps', 'silentLinkSeconds'] satisfies (keyof Settings)[];

type Status = { kind: 'saved' | 'error'; text: string } | null;

/** The settings that are whole numbers. */
type NumberKey = { [K in keyof Settings]: Settings[K] extends number ? K : never }[keyof Settings];

/** One number setting: its field (committed on blur), its label, and what it does when given. */
function NumberSetting({ name, draft, set, label, min, max, step = 1, children }: {
  name: NumberKey;
  draft: Settings;
  set: (key: NumberKey, value: number) => void;
  label: string;
  min: number;
  max?: number;
  step?: number;
  children?: ReactNode;
}) {
  return (
    <NumberField className="field" name={name} value={draft[name]} onChange={(v) => set(name, v)} minValue={min} {...(max === undefined ? {} : { maxValue: max })} step={step}>
      <Label>{label}</Label>
      <Input data-testid={`setting-${name}`} />
      {children ? <Text slot="description">{children}</Text> : null}
      <FieldError />
    </NumberField>
  );
}

function SettingsForm({ saved, status, setStatus }: { saved: Settings; status: Status; setStatus: (status: Status) => void }) {
  const save = useSettingsStore((s) => s.save);
  const reset = useSettingsStore((s) => s.reset);
  // Every setting goes back, the repository's path, the monitoring rules and the webhook with them:
  // one stray press did it at once.
  const resetting = useSecondPress<true>();
  // A save or reset on its way: on a slow link Save looked untouched for seconds, so it was pressed
  // again, or Discard changes was — and the save then landed anyway, under a form showing the old values.
  const [pending, setPending] = useState<'save' | 'reset' | null>(null);
  const [draft, setDraft] = useState<Settings>(saved);
  // The settings the draft was made on. When they change — saved here, in another window, reset —
  // what was not edited here follows them and what was edited stays: the form was re-mounted on
  // every change, so a push from another window (or a save answered late on a slow link) threw
  // away whatever was typed and not saved yet.
  const [basis, setBasis] = useState<Settings>(saved);
  if (JSON.stringify(basis) !== JSON.stringify(saved)) {
    setBasis(saved);
    setDraft((d) => {
      const next: Record<string, unknown> = { ...saved };
      for (const key of Object.keys(d) as (keyof Settings)[]) if (JSON.stringify(d[key]) !== JSON.stringify(basis[key])) next[key] = d[key];
      return next as Settings;
    });
  }
  const { errors, refused, set: setErrors, edited } = useFieldErrors(FIELDS);
  const patch = changedFields(saved, draft);
  const dirty = Object.keys(patch).length > 0;
  const set = <K extends keyof Settings>(key: K, value: Settings[K]) => {
    setDraft((d) => ({ ...d, [key]: value }));
    edited(key);
    setStatus(null);
  };

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (!dirty || pending) return;
    // A number field left empty holds NaN, which would reach main as null and come back as a schema
    // message ("expected number, received null"): say it here, and send nothing.
    const empty = (Object.keys(patch) as (keyof Settings)[]).filter((key) => typeof draft[key] === 'number' && Number.isNaN(draft[key]));
    if (empty.length > 0) {
      setErrors(Object.fromEntries(empty.map((key) => [key, 'Enter a number'])));
      setStatus({ kind: 'error', text: 'Not saved: a number field is empty.' });
      return;
    }
    setPending('save');
    try {
      // What was typed while the save was on its way stays (the new basis takes the rest).
      await save(patch);
      setErrors({});
      setStatus({ kind: 'saved', text: 'Settings saved.' });
    } catch (caught) {
      const error = toAppError(caught);
      setStatus({ kind: 'error', text: refusalText(error.message, refused(error)) });
    } finally {
      setPending(null);
    }
  };

  const onReset = async () => {
    setPending('reset');
    try {
      setDraft(await reset());
      setErrors({});
      setStatus({ kind: 'saved', text: 'Settings reset to defaults.' });
    } catch (caught) {
      setStatus({ kind: 'error', text: toAppError(caught).message });
    } finally {
      setPending(null);
    }
  };

  return (
    <Form className="card form" onSubmit={(e) => void onSubmit(e)} validationErrors={errors} data-testid="settings-form">
      <RadioGroup className="field" value={draft.theme} onChange={(v) => set('theme', v as Settings['theme'])} data-testid="setting-theme">
        <Label>Theme</Label>
        <div className="radio-row">
          <Radio value="system">System</Radio>
          <Radio value="light">Light</Radio>
          <Radio value="dark">Dark</Radio>
        </div>
      </RadioGroup>

      <TextField className="field" name="repositoryPath" value={draft.repositoryPath} onChange={(v) => set('repositoryPath', v)}>
        <Label>Repository folder</Label>
        <Input data-testid="setting-repositoryPath" placeholder="Default: the repository folder inside Jetvault's data folder" />
        <Text slot="description">Where backups are stored on this laptop.</Text>
        <FieldError />
      </TextField>

      <NumberSetting name="defaultRpoMinutes" draft={draft} set={set} min={1} label="Default RPO target (minutes)">
        The longest acceptable gap between good backups, for devices without their own target.
      </NumberSetting>

      <NumberSetting name="defaultRtoMinutes" draft={draft} set={set} min={1} label="Default RTO objective (minutes)">
        How long a full recovery may take, for devices without their own objective; restore drills measure against it.
      </NumberSetting>

      <NumberSetting name="maxParallelDevices" draft={draft} set={set} min={1} max={64} label="Devices backed up in parallel" />

      <NumberSetting name="bandwidthLimitKiBps" draft={draft} set={set} min={0} step={64} label="Bandwidth limit per device (KiB/s)">
        0 means unlimited. Holds each direction of a device&apos;s link (backups, restores, drills) to this rate, from the next transfer on; useful on metered or shared field links.
      </NumberSetting>

      <NumberSetting name="silentLinkSeconds" draft={draft} set={set} min={10} max={600} label="Give up on a silent device after (seconds)">
        A backup, restore or drill ends when nothing has been heard from its device for this long (10 to 600). Raise it for links that drop for a while (cellular, satellite): a cut backup is taken up where it stopped, and a cut restore never leaves the device half-written. From the next connection on.
      </NumberSetting>

      <Switch className="switch" isSelected={draft.schedulerEnabled} onChange={(v) => set('schedulerEnabled', v)} data-testid="setting-schedulerEnabled">
        <div className="switch-indicator" />
        Back devices up automatically before their RPO runs out (while the console runs)
      </Switch>

      <Switch className="switch" isSelected={draft.desktopNotifications} onChange={(v) => set('desktopNotifications', v)} data-testid="setting-desktopNotifications">
        <div className="switch-indicator" />
        Desktop notifications for alerts, and when a job you started ends (while the console is not in front)
      </Switch>

      <RadioGroup
        className="field"
        value={draft.desktopNotificationLevel}
        onChange={(v) => set('desktopNotificationLevel', v as Settings['desktopNotificationLevel'])}
        isDisabled={!draft.desktopNotifications}
        data-testid="setting-desktopNotificationLevel"
      >
        <Label>Notify for new alerts that are</Label>
        <div className="radio-row">
          <Radio value="critical">Critical only</Radio>
          <Radio value="warning">Critical or warning</Radio>
        </div>
      </RadioGroup>

      <RadioGroup className="field" value={draft.logLevel} onChange={(v) => set('logLevel', v as Settings['logLevel'])}>
        <Label>Log level</Label>
        <div className="radio-row">
          <Radio value="error">Error</Radio>
          <Radio value="warn">Warn</Radio>
          <Radio value="info">Info</Radio>
          <Radio value="debug">Debug</Radio>
        </div>
      </RadioGroup>

      <div className="form-actions">
        <Button type="submit" className="button button-primary" isDisabled={!dirty || pending !== null} data-testid="settings-save">
          {pending === 'save' ? 'Saving…' : 'Save'}
        </Button>
        {/* The refused save's reasons and status go with the values they were about: a reason left on a
            restored field would keep the browser from sending the form again, without a word. */}
        <Button
          className="button"
          isDisabled={!dirty || pending !== null}
          onPress={() => {
            setDraft(saved);
            setErrors({});
            setStatus(null);
          }}
          data-testid="settings-discard"
        >
          Discard changes
        </Button>
        <Button
          className={resetting.armed ? 'button button-danger' : 'button button-quiet'}
          onPress={() => (resetting.armed ? (resetting.disarm(), void onReset()) : resetting.arm(true))}
          onBlur={resetting.disarm}
          isDisabled={pending !== null}
          data-testid="settings-reset"
        >
          {pending === 'reset' ? 'Resetting…' : resetting.armed ? 'Press again to reset every setting' : 'Reset to defaults'}
        </Button>
        {status ? (
          <p role="status" className={`form-status form-status-${status.kind}`} data-testid="settings-status">
            {status.text}
          </p>
        ) : null}
      </div>
    </Form>
  );
}

export function SettingsPage() {
  const saved = useSettingsStore((s) => s.settings);
  const loadError = useSettingsStore((s) => s.loadError);
  // Kept here, not in the form: the form re-mounts after a save and the confirmation must stay.
  const [status, setStatus] = useState<Status>(null);
  return (
    <>
      <PageHeader title="Settings" subtitle="How this console stores, schedules and reports" />
      {loadError ? (
        <ErrorBanner message={`Settings could not be loaded: ${loadError}`} />
      ) : saved ? (
        // Settings changed elsewhere (another window, a reset) reach the form's fields not edited here.
        <SettingsForm saved={saved} status={status} setStatus={setStatus} />
      ) : (
        <p>Loading settings…</p>
      )}
      <RepositoriesPanel />
      <RepositoryLeases />
    </>
  );
}
