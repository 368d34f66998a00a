import { useState } from 'react';
import type { FormEvent } from 'react';
import { Button, Input, Label, NumberField, TextField } from 'react-aria-components';
import { Form } from './Form';
import { toAppError } from '../../../shared/errors';
import type { DeviceProfile, Retention } from '../../../shared/schemas/devices';
import { api } from '../api';
import { useFleetStore } from '../stores/fleet-store';
import { ErrorBanner } from './ErrorBanner';
import { counted } from '../../../shared/plural';

type Preview = { runId: string; time: string; sources: string[]; keep: boolean; reasons: string[] }[];
const KEEPS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;

/** The device's retention policy (counted in runs, per source), with a preview of what it would forget before it is saved. Keyed by the stored policy, so a change elsewhere resets the form. */
export function RetentionCard({ profile }: { profile: DeviceProfile }) {
  const [draft, setDraftOnly] = useState<Retention>(profile.retention ?? {});
  const [preview, setPreview] = useState<Preview | null>(null);
  // A preview is of the values it was asked for: an edit after it drops it (it read as the new values').
  const setDraft = (next: Retention) => {
    setDraftOnly(next);
    setPreview(null);
  };
  const [error, setError] = useState<string | null>(null);
  const policy = Object.fromEntries(Object.entries(draft).filter(([, v]) => v !== undefined && v !== '' && !Number.isNaN(v))) as Retention;

  const showPreview = async () => {
    setError(null);
    try {
      setPreview(await api().retention.preview({ device: profile.name, policy }));
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  const save = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      const { retention: _old, ...rest } = profile;
      await useFleetStore.getState().updateProfile({ name: profile.name, profile: Object.keys(policy).length > 0 ? { ...rest, retention: policy } : rest });
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  const forgotten = preview?.filter((r) => !r.keep) ?? [];
  const inForce = Object.entries(profile.retention ?? {})
    .map(([k, v]) => (k === 'within' ? `all within ${String(v)}` : k === 'last' ? `the last ${String(v)}` : `${String(v)} ${k}`))
    .join(', ');
  return (
    <Form className="card form" aria-label="Retention" data-testid="retention" onSubmit={(e) => void save(e)}>
      <h2>Retention</h2>
      <p className="muted">How many runs to keep, applied after every backup of this device and counted for each source (a source on its own schedule does not push out the runs that hold the others). A run is kept or forgotten whole; the space is freed by the weekly prune.</p>
      <div className="retention-grid">
        {KEEPS.map((k) => (
          <NumberField key={k} className="field" value={draft[k] ?? Number.NaN} onChange={(v) => setDraft({ ...draft, [k]: Number.isNaN(v) ? undefined : v })} minValue={1}>
            <Label>Keep {k}</Label>
            <Input data-testid={`retention-${k}`} />
          </NumberField>
        ))}
        <TextField className="field" value={draft.within ?? ''} onChange={(v) => setDraft({ ...draft, within: v || undefined })}>
          <Label>Keep all within</Label>
          <Input data-testid="retention-within" placeholder="7d" />
        </TextField>
      </div>
      <ErrorBanner message={error} testId="retention-error" />
      {preview ? (
        <p data-testid="retention-preview">
          {Object.keys(policy).length === 0 ? 'Without a policy: ' : 'With these values, once saved: '}
          {forgotten.length === 0 ? `keeps all ${counted(preview.length, 'run')}.` : `would forget ${forgotten.length} of ${counted(preview.length, 'run')}: ${forgotten.slice(0, 5).map((r) => new Date(r.time).toLocaleString()).join(', ')}${forgotten.length > 5 ? ', …' : ''}`}
        </p>
      ) : null}
      <p className="muted" data-testid="retention-in-force">
        {inForce ? `In force: ${inForce}. It applies after each backup.` : 'No policy saved: every run is kept.'}
      </p>
      <div className="form-actions">
        <Button className="button" onPress={() => void showPreview()} data-testid="retention-preview-button">
          Preview
        </Button>
        <Button type="submit" className="button button-primary" data-testid="retention-save">
          Save policy
        </Button>
      </div>
    </Form>
  );
}
