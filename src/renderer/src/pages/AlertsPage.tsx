import { useEffect, useState } from 'react';
import type { FormEvent } from 'react';
import { Button, Input, Label, NumberField, Switch, Text, TextField } from 'react-aria-components';
import { Form } from '../components/Form';
import { toAppError } from '../../../shared/errors';
import { RULE_IDS, RULE_LABELS } from '../../../shared/schemas/monitoring';
import type { Alert, Rules } from '../../../shared/schemas/monitoring';
import { api } from '../api';
import { EmptyState } from '../components/EmptyState';
import { ErrorBanner } from '../components/ErrorBanner';
import { PageHeader } from '../components/PageHeader';
import { useAlertsStore } from '../stores/alerts-store';
import { useSettingsStore } from '../stores/settings-store';

const SEVERITY_CLASS: Record<Alert['severity'], string> = { critical: 'status-bad', warning: 'status-warn', info: 'muted' };

function AlertsTable({ alerts, testId }: { alerts: Alert[]; testId: string }) {
  const acknowledge = useAlertsStore((s) => s.acknowledge);
  const [error, setError] = useState<string | null>(null);
  return (
    <>
      <ErrorBanner message={error} />
      <table className="table card" data-testid={testId}>
        <thead>
          <tr>
            <th scope="col">Severity</th>
            <th scope="col">Device</th>
            <th scope="col">What</th>
            <th scope="col">Raised</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {alerts.map((a) => (
            <tr key={a.id} data-testid={`alert-${a.rule}-${a.device ?? 'console'}`}>
              <td className={SEVERITY_CLASS[a.severity]}>{a.severity}</td>
              <td className="nowrap">{a.device ? <a href={`#/fleet/${encodeURIComponent(a.device)}`}>{a.device}</a> : <span className="muted">this laptop</span>}</td>
              <td>
                <strong>{RULE_LABELS[a.rule].title}</strong>
                <div className="muted">{a.message}</div>
              </td>
              <td className="nowrap">{new Date(a.raisedAt).toLocaleString()}</td>
              <td>
                {a.resolvedAt ? (
                  <span className="status-ok">resolved {new Date(a.resolvedAt).toLocaleString()}</span>
                ) : a.acknowledgedAt ? (
                  <span className="muted">acknowledged{a.acknowledgedBy ? ` (${a.acknowledgedBy})` : ''}</span>
                ) : (
                  <Button className="button" onPress={() => void acknowledge(a.id).catch((e: unknown) => setError(toAppError(e).message))} data-testid={`acknowledge-${a.id}`}>
                    Acknowledge
                  </Button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function RulesForm() {
  const settings = useSettingsStore((s) => s.settings);
  const save = useSettingsStore((s) => s.save);
  const [draft, setDraft] = useState<Rules | null>(null);
  const [webhook, setWebhook] = useState<string | null>(null);
  const [queue, setQueue] = useState<{ pending: number; nextAttemptAt: string | null; lastError: string | null } | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Raised and resolved alerts enqueue deliveries: refresh the queue's state with them.
  const alerts = useAlertsStore((s) => s.open);
  const waiting = queue?.pending ?? 0;
  useEffect(() => {
    const refresh = () =>
      void api()
        .alerts.webhookQueue()
        .then(setQueue)
        .catch(() => undefined);
    refresh();
    // While deliveries wait, read again every few seconds: the try that fails (and why) comes after the
    // event that made the page ask, and the page said "waiting" with no reason until it was reopened.
    const timer = waiting > 0 ? setInterval(refresh, 3_000) : undefined;
    return () => clearInterval(timer);
  }, [settings, alerts, waiting]);
  if (!settings) return null;
  const rules = draft ?? settings.monitoringRules;
  const url = webhook ?? settings.webhookUrl;
  const dirty = draft !== null || (webhook !== null && webhook !== settings.webhookUrl);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await save({ monitoringRules: rules, webhookUrl: url.trim() });
      setDraft(null);
      setWebhook(null);
      setMessage('Rules saved; they apply from the next evaluation (now).');
      await api().alerts.evaluate();
    } catch (caught) {
      setError(toAppError(caught).message);
    }
  };
  return (
    <Form className="card form" onSubmit={(e) => void submit(e)} data-testid="rules-form">
      <h2>Monitoring rules</h2>
      <p className="muted">Each rule raises an alert when its threshold is crossed and resolves it when the condition clears.</p>
      {RULE_IDS.map((id) => (
        <div className="rule-row" key={id}>
          <Switch className="switch" isSelected={rules[id].enabled} onChange={(enabled) => setDraft({ ...rules, [id]: { ...rules[id], enabled } })} data-testid={`rule-${id}-enabled`}>
            <div className="switch-indicator" />
            {RULE_LABELS[id].title}
          </Switch>
          <NumberField value={rules[id].threshold} onChange={(threshold) => setDraft({ ...rules, [id]: { ...rules[id], threshold: Number.isFinite(threshold) ? threshold : 0 } })} minValue={0} isDisabled={!rules[id].enabled} aria-label={`${RULE_LABELS[id].title}: threshold in ${RULE_LABELS[id].unit}`}>
            <Input data-testid={`rule-${id}-threshold`} />
          </NumberField>
          <span className="muted">{RULE_LABELS[id].unit}</span>
        </div>
      ))}
      <TextField className="field" value={url} onChange={setWebhook} type="url">
        <Label>Webhook</Label>
        <Input data-testid="webhook-url" placeholder="https://chat.example/hooks/…" />
        <Text slot="description">
          Alerts are POSTed here as JSON; while it cannot be reached they wait and are retried.
          {queue && queue.pending > 0 ? ` ${queue.pending} waiting, next try ${queue.nextAttemptAt ? new Date(queue.nextAttemptAt).toLocaleTimeString() : 'soon'}${queue.lastError ? ` — the last try failed: ${queue.lastError}` : ''}.` : ''}
        </Text>
      </TextField>
      <ErrorBanner message={error} testId="rules-error" />
      {message && !dirty ? <p className="status-ok">{message}</p> : null}
      <div className="form-actions">
        <Button type="submit" className="button button-primary" isDisabled={!dirty} data-testid="rules-save">
          Save rules
        </Button>
      </div>
    </Form>
  );
}

export function AlertsPage() {
  const { open, recent, loaded, load, loadRecent } = useAlertsStore();
  const [showHistory, setShowHistory] = useState(false);
  // A list that could not be read says why: the page showed nothing at all (or the history nothing).
  const [error, setError] = useState<string | null>(null);
  const [historyError, setHistoryError] = useState<string | null>(null);
  useEffect(() => {
    load()
      .then(() => setError(null))
      .catch((caught: unknown) => setError(toAppError(caught).message));
  }, [load]);
  useEffect(() => {
    if (showHistory)
      loadRecent()
        .then(() => setHistoryError(null))
        .catch((caught: unknown) => setHistoryError(toAppError(caught).message));
  }, [showHistory, loadRecent]);
  return (
    <>
      <PageHeader title="Alerts" subtitle="Failed backups, breached RPOs, low storage, overdue drills" />
      <ErrorBanner message={error ? `Open alerts could not be read: ${error}` : null} testId="alerts-error" />
      {!loaded ? (
        error ? null : <p>Loading…</p>
      ) : open.length === 0 ? (
        <EmptyState title="No open alerts" testId="alerts-empty">
          <p>No monitoring rule holds right now. Rules are checked after every job and once a minute.</p>
        </EmptyState>
      ) : (
        <>
          <p className="summary-strip" data-testid="alerts-summary">
            <span className="status-bad">{open.filter((a) => a.severity === 'critical').length} critical</span>
            <span className="status-warn">{open.filter((a) => a.severity === 'warning').length} warning</span>
            <span className="muted">{open.filter((a) => a.acknowledgedAt).length} acknowledged</span>
          </p>
          <AlertsTable alerts={open} testId="alerts-open" />
        </>
      )}
      <p>
        <Button className="button button-quiet" onPress={() => setShowHistory(!showHistory)} data-testid="alerts-history-toggle">
          {showHistory ? 'Hide history' : 'Show history (resolved alerts)'}
        </Button>
      </p>
      {showHistory ? (
        historyError ? (
          <ErrorBanner message={`The history could not be read: ${historyError}`} testId="alerts-history-error" />
        ) : (
          <AlertsTable alerts={recent} testId="alerts-history" />
        )
      ) : null}
      <RulesForm />
    </>
  );
}
