/**
 * Adds a source to a device or edits one: what a discovery proposed is rarely exactly what a site
 * needs (another exclude, one more config path, a database on another socket). The profile is saved
 * whole through `devices.update`, so the service's schema decides; what it refuses comes back at
 * the field. An existing source keeps its name: its snapshots are a series under that name.
 */
import { useState } from 'react';
import type { FormEvent } from 'react';
import { Button, Dialog, FieldError, Heading, Input, Label, Modal, ModalOverlay, NumberField, Radio, RadioGroup, Switch, Text, TextArea, TextField } from 'react-aria-components';
import { Form } from './Form';
import { isServerDatabase } from '../../../shared/schemas/devices';
import type { DeviceProfile, Source } from '../../../shared/schemas/devices';
import { useFleetStore } from '../stores/fleet-store';
import { lines } from '../format';
import { useFieldErrors } from '../field-errors';
import { useAction } from '../use-action';
import { ErrorBanner } from './ErrorBanner';

type Kind = Source['kind'];

/** The form's text for every kind at once, so switching kinds while adding keeps what was typed. */
interface Draft {
  kind: Kind;
  name: string;
  schedule: string;
  paths: string;
  include: string;
  exclude: string;
  rotateAfterBackup: boolean;
  database: string;
  host: string;
  port: number;
  user: string;
  socket: string;
  path: string;
  /** A database login's password: sent once with the save, kept by the main process, never shown again. */
  password: string;
  forgetPassword: boolean;
}

/** The fields that show a refused save's reason, over every kind (a kind's schema names only its own). */
const FIELDS = ['name', 'schedule', 'paths', 'include', 'exclude', 'path', 'database', 'host', 'port', 'socket', 'user', 'password'];

const KINDS: { kind: Kind; label: string }[] = [
  { kind: 'files', label: 'Files' },
  { kind: 'postgres', label: 'PostgreSQL' },
  { kind: 'sqlite', label: 'SQLite' },
  { kind: 'mysql', label: 'MySQL' },
];

function draftOf(source: Source | null): Draft {
  const draft: Draft = { kind: 'files', name: '', schedule: '', paths: '', include: '', exclude: '', rotateAfterBackup: false, database: '', host: '', port: Number.NaN, user: '', socket: '', path: '', password: '', forgetPassword: false };
  if (!source) return draft;
  Object.assign(draft, { kind: source.kind, name: source.name, schedule: source.schedule ?? '' });
  if (source.kind === 'files') {
    return { ...draft, paths: source.paths.join('\n'), include: (source.include ?? []).join('\n'), exclude: (source.exclude ?? []).join('\n'), rotateAfterBackup: source.rotateAfterBackup ?? false };
  }
  if (source.kind === 'sqlite') return { ...draft, path: source.path };
  const socket = source.kind === 'mysql' ? (source.socket ?? '') : '';
  return { ...draft, database: source.database, host: source.host ?? '', port: source.port ?? Number.NaN, user: source.user ?? '', socket };
}

/** The source as the schema takes it: blank optional fields left out, lists one entry per line. */
function sourceOf(draft: Draft): Record<string, unknown> {
  const optional = (entries: Record<string, string | number | boolean | string[]>) =>
    Object.fromEntries(Object.entries(entries).filter(([, v]) => v !== '' && v !== false && !(typeof v === 'number' && Number.isNaN(v)) && !(Array.isArray(v) && v.length === 0)));
  const common = { name: draft.name.trim(), kind: draft.kind, ...optional({ schedule: draft.schedule.trim() }) };
  switch (draft.kind) {
    case 'files':
      return { ...common, paths: lines(draft.paths), ...optional({ include: lines(draft.include), exclude: lines(draft.exclude), rotateAfterBackup: draft.rotateAfterBackup }) };
    case 'sqlite':
      return { ...common, path: draft.path.trim() };
    case 'postgres':
      return { ...common, database: draft.database.trim(), ...optional({ host: draft.host.trim(), port: draft.port, user: draft.user.trim() }) };
    case 'mysql':
      return { ...common, database: draft.database.trim(), ...optional({ host: draft.host.trim(), socket: draft.socket.trim(), port: draft.port, user: draft.user.trim() }) };
  }
}

/**
 * `index`: the source edited, or null to add one. Mounted while open, so each opening starts from
 * the stored source. `passwords`: the database sources whose password is stored.
 */
export function SourceEditor({ profile, index, passwords, onClose }: { profile: DeviceProfile; index: number | null; passwords: string[]; onClose: () => void }) {
  const editing = index === null ? null : (profile.sources[index] ?? null);
  const stored = editing !== null && passwords.includes(editing.name);
  const [draft, setDraft] = useState<Draft>(() => draftOf(editing));
  const { busy, error, run } = useAction();
  const { errors, refused, edited } = useFieldErrors(FIELDS);
  const set = <K extends keyof Draft>(key: K) => (value: Draft[K]) => {
    setDraft((d) => ({ ...d, [key]: value }));
    edited(key);
  };
  const at = index ?? profile.sources.length;

  const save = (event: FormEvent) => {
    event.preventDefault();
    void run(
      async () => {
        const source = sourceOf(draft);
        const sources = index === null ? [...profile.sources, source] : profile.sources.map((s, i) => (i === index ? source : s));
        const database = isServerDatabase(draft.kind);
        const password = !database ? undefined : draft.password !== '' ? draft.password : draft.forgetPassword ? '' : undefined;
        await useFleetStore.getState().updateProfile({ name: profile.name, profile: { ...profile, sources }, ...(password !== undefined ? { databasePasswords: { [draft.name.trim()]: password } } : {}) });
        onClose();
      },
      (e) => refused(e, `sources.${at}.`),
    );
  };

  const text = (key: 'name' | 'schedule' | 'database' | 'host' | 'user' | 'socket' | 'path', label: string, options: { placeholder?: string; description?: string; required?: boolean } = {}) => (
    <TextField className="field" name={key} value={draft[key]} onChange={set(key)} isRequired={options.required ?? false} isReadOnly={key === 'name' && editing !== null}>
      <Label>{label}</Label>
      <Input data-testid={`source-field-${key}`} placeholder={options.placeholder} />
      {options.description ? <Text slot="description">{options.description}</Text> : null}
      <FieldError />
    </TextField>
  );
  const list = (key: 'paths' | 'include' | 'exclude', label: string, placeholder: string, required = false) => (
    <TextField className="field" name={key} value={draft[key]} onChange={set(key)} isRequired={required}>
      <Label>{label}</Label>
      <TextArea data-testid={`source-field-${key}`} rows={3} placeholder={placeholder} />
      <FieldError />
    </TextField>
  );

  return (
    <ModalOverlay className="modal-overlay" isOpen onOpenChange={(open) => (open ? undefined : onClose())} isDismissable>
      <Modal className="modal">
        <Dialog className="dialog" data-testid="source-editor">
          <Heading slot="title">{editing ? `Source ${editing.name}` : 'Add a source'}</Heading>
          <Form className="form" onSubmit={save} validationErrors={errors}>
            {editing ? null : (
              <RadioGroup className="field" value={draft.kind} onChange={(v) => set('kind')(v as Kind)} orientation="horizontal" data-testid="source-kind">
                <Label>Kind</Label>
                <div className="radio-row">
                  {KINDS.map((k) => (
                    <Radio key={k.kind} value={k.kind} data-testid={`source-kind-${k.kind}`}>
                      {k.label}
                    </Radio>
                  ))}
                </div>
              </RadioGroup>
            )}
            {text('name', 'Name', { required: true, placeholder: 'config', ...(editing ? { description: 'A source keeps its name: its snapshots are one series under it.' } : {}) })}
            {draft.kind === 'files' ? (
              <>
                {list('paths', 'Paths on the device (one per line)', '/etc/myrvm\n/opt/myrvm/.env', true)}
                {list('exclude', 'Leave out (globs below those paths, one per line)', 'data/local.db*\n*.tmp')}
                {list('include', 'Only these (globs, one per line; empty: everything)', '*.conf')}
                <Switch className="switch" isSelected={draft.rotateAfterBackup} onChange={set('rotateAfterBackup')} data-testid="source-field-rotate">
                  <div className="switch-indicator" />
                  Rotate (truncate) these logs on the device once their snapshot is committed
                </Switch>
              </>
            ) : null}
            {draft.kind === 'sqlite' ? text('path', 'Database file on the device', { required: true, placeholder: '/opt/myrvm/data/local.db' }) : null}
            {isServerDatabase(draft.kind) ? (
              <>
                {text('database', 'Database', { required: true, placeholder: 'myrvm' })}
                <div className="field-row">
                  <div className="grow">{text('host', draft.kind === 'postgres' ? 'Host or socket folder' : 'Host', { placeholder: draft.kind === 'postgres' ? '/run/postgresql' : 'localhost' })}</div>
                  <NumberField className="field narrow" name="port" value={draft.port} onChange={set('port')} minValue={1} maxValue={65535} formatOptions={{ useGrouping: false }}>
                    <Label>Port</Label>
                    <Input data-testid="source-field-port" />
                    <FieldError />
                  </NumberField>
                </div>
                {draft.kind === 'mysql' ? text('socket', 'Socket', { placeholder: '/run/mysqld/mysqld.sock' }) : null}
                {text('user', 'User', { description: "Empty: the device account's default." })}
                <TextField className="field" name="password" type="password" value={draft.password} onChange={set('password')} autoComplete="new-password">
                  <Label>Password</Label>
                  <Input data-testid="source-field-password" placeholder={stored ? '••••••••  (stored)' : ''} />
                  <Text slot="description">
                    {stored
                      ? 'Stored encrypted with the device. Type a new one to replace it.'
                      : "Empty: the login needs none (peer or unix-socket login, or the device account's ~/.pgpass or ~/.my.cnf). Kept encrypted; the device receives it on each command's input, never on a command line."}
                  </Text>
                  <FieldError />
                </TextField>
                {stored ? (
                  <Switch className="switch" isSelected={draft.forgetPassword} onChange={set('forgetPassword')} data-testid="source-field-forget-password">
                    <div className="switch-indicator" />
                    Forget the stored password
                  </Switch>
                ) : null}
              </>
            ) : null}
            {text('schedule', 'Own schedule (optional)', { placeholder: '0 */6 * * *', description: 'Cron, local time: this source is also backed up alone at these times.' })}
            <ErrorBanner message={error} testId="source-error" />
            <div className="form-actions">
              <Button type="submit" className="button button-primary" isDisabled={busy} data-testid="source-save">
                {editing ? 'Save source' : 'Add source'}
              </Button>
              <Button className="button" onPress={onClose}>
                Cancel
              </Button>
            </div>
          </Form>
        </Dialog>
      </Modal>
    </ModalOverlay>
  );
}
