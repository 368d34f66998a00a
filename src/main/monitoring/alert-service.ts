/**
 * Alerts: the monitoring rules evaluated against the history store, after every finished job, on
 * inventory changes and once a minute (time alone breaches an RPO). A condition raises one alert
 * (rule + subject), keeps it while it holds and resolves it when it clears; a technician can
 * acknowledge an open alert. New and resolved alerts go to the webhook outbox and, when enabled,
 * to a desktop notification.
 */
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import { runCutoff } from '../../shared/job-runs';
import { effectiveRpo } from '../../shared/tiers';
import type { Alert, RuleId, Severity } from '../../shared/schemas/monitoring';
import type { DeviceService } from '../devices/device-service';
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { AlertRow, JobRow } from '../history/statements';
import type { Logger } from '../log';
import { WEBHOOK_URL_REF } from '../services/settings-service';
import type { SettingsService } from '../services/settings-service';
import { evaluateRules } from './rules';
import type { Condition, DeviceState, MonitorInput, RunSummary } from './rules';
import type { WebhookOutbox } from './webhook';

export interface AlertServiceDeps {
  store: HistoryStore;
  devices: DeviceService;
  settings: SettingsService;
  bus: EventBus;
  outbox: WebhookOutbox;
  log: Logger;
  /** Where the repository lives (its free space is watched). */
  repositoryLocation: () => string;
  /** A desktop notification, where the platform has them (Electron). */
  notify?: (title: string, body: string) => void;
  /** When the device's last restore drill was; undefined while drills are not recorded. */
  lastDrillAt?: (deviceId: string) => string | null | undefined;
  /** Per device name, the newest run held offsite (null: none); undefined while no repository is offsite. */
  offsiteCopies?: () => Map<string, string | null> | undefined;
  clock?: () => Date;
}

/** Free bytes for unprivileged writes on the filesystem holding `location` (or its nearest existing parent). */
export function freeBytesAt(location: string): number | null {
  for (let dir = path.resolve(location); ; dir = path.dirname(dir)) {
    try {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    } catch {
      if (dir === path.dirname(dir)) return null;
    }
  }
}

function runOf(row: JobRow): RunSummary {
  let error: string | null = null;
  if (row.error) {
    try {
      error = (JSON.parse(row.error) as { message?: string }).message ?? null;
    } catch {
      error = row.error;
    }
  }
  const run: RunSummary = { status: row.status as RunSummary['status'], startedAt: row.started_at, finishedAt: row.finished_at, error };
  if (row.kind === 'backup' && row.status === 'succeeded') {
    try {
      run.sources = ((JSON.parse(row.result ?? 'null') as { snapshots?: { source: string }[] } | null)?.snapshots ?? []).map((x) => x.source);
    } catch {
      // an unreadable result: compared with runs whose sources are not known either
    }
  }
  return run;
}

export class AlertService {
  readonly #deps: AlertServiceDeps;
  readonly #clock: () => Date;
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  /** The open alerts as this process last told the console about them (ids, severities, acknowledgements). */
  #told: string | null = null;

  constructor(deps: AlertServiceDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? (() => new Date());
  }

  /** What the rules look at, read from the history store in a handful of queries. */
  input(): MonitorInput {
    const { store, devices, settings } = this.#deps;
    const now = this.#clock();
    const defaultRpo = settings.get().defaultRpoMinutes;
    // A good backup is a run that covered every source and was not stamped in the future (as the overview and the scheduler count it).
    const lastSuccess = new Map(store.sql.overview.all(runCutoff(now.getTime())).map((row) => [row.id, row.last_good_at]));
    const offsite = this.#deps.offsiteCopies?.();
    const states: DeviceState[] = devices.list().map((record) => {
      const state: DeviceState = {
        id: record.id,
        name: record.profile.name,
        // The RPO the overview shows: the device's own, else its tier tag's, else the default.
        rpoMinutes: effectiveRpo({ rpoMinutes: record.profile.rpoMinutes, tags: record.profile.tags ?? [] }, defaultRpo).rpoMinutes,
        createdAt: record.createdAt,
        lastSuccessAt: lastSuccess.get(record.id) ?? null,
        runs: store.sql.backupsOfDevice.all(record.id, 11).map(runOf),
        disks: record.disks?.disks ?? null,
      };
      const drill = this.#deps.lastDrillAt?.(record.id);
      if (drill !== undefined) state.lastDrillAt = drill;
      if (offsite) state.lastOffsiteAt = offsite.get(record.profile.name) ?? null;
      return state;
    });
    const check = store.sql.lastJobOfKind.get('verify');
    const location = this.#deps.repositoryLocation();
    return { now, devices: states, repository: { location, freeBytes: freeBytesAt(location) }, lastCheck: check ? runOf(check) : null };
  }

  /** Evaluates every rule now: raises, refreshes and resolves alerts. */
  evaluate(input: MonitorInput = this.input()): { raised: Alert[]; resolved: Alert[]; escalated: Alert[] } {
    const { store } = this.#deps;
    const conditions = evaluateRules(input, this.#deps.settings.get().monitoringRules);
    const now = input.now.toISOString();
    const raisedIds: number[] = [];
    const resolvedIds: number[] = [];
    const escalatedIds: number[] = [];
    // The open alerts are read in the same write transaction (IMMEDIATE) that raises and resolves: the
    // app, `run-scheduler` and `jetvault alerts` evaluate the same history, and one that read before
    // another's commit raised the alert again (UNIQUE failure) or resolved it again (a second webhook).
    store.db.transaction(() => {
      const open = new Map(store.sql.alertsOpen.all().map((row) => [`${row.rule}\u0000${row.subject}`, row]));
      for (const c of conditions) {
        const key = `${c.rule}\u0000${c.subject}`;
        const existing = open.get(key);
        if (existing) {
          // Grown worse (storage low: warning → critical): acknowledged as a warning, it stayed quiet
          // while the disk went on filling. Unacknowledged again and announced as escalated.
          if (c.severity === 'critical' && existing.severity !== 'critical') {
            store.sql.alertEscalate.run(c.severity, c.message, now, existing.id);
            escalatedIds.push(existing.id);
          } else {
            store.sql.alertSeen.run(c.severity, c.message, now, existing.id);
          }
          open.delete(key);
        } else {
          raisedIds.push(Number(store.sql.alertInsert.run(c.rule, c.deviceId, c.subject, c.severity, c.message, now, now).lastInsertRowid));
        }
      }
      // What is still open but no longer holds has cleared.
      for (const row of open.values()) {
        store.sql.alertResolve.run(now, row.id);
        resolvedIds.push(row.id);
      }
    }).immediate();
    const raised = raisedIds.map((id) => this.#alert(store.sql.alertGet.get(id)!));
    const resolved = resolvedIds.map((id) => this.#alert(store.sql.alertGet.get(id)!));
    const escalated = escalatedIds.map((id) => this.#alert(store.sql.alertGet.get(id)!));
    if (raised.length + resolved.length + escalated.length > 0) this.#announce(raised, resolved, escalated);
    else this.#changedElsewhere();
    return { raised, resolved, escalated };
  }

  list(status: 'open' | 'all' = 'open', limit = 500): Alert[] {
    const rows = status === 'open' ? this.#deps.store.sql.alertsOpen.all() : this.#deps.store.sql.alertsRecent.all(limit);
    return rows.map((row) => this.#alert(row));
  }

  acknowledge(id: number, actor: string): Alert {
    const { store } = this.#deps;
    const row = store.sql.alertGet.get(id);
    if (!row) throw new AppError('NOT_FOUND', `No alert ${id}`);
    if (row.acknowledged_at === null) {
      store.sql.alertAcknowledge.run(this.#clock().toISOString(), actor, id);
      store.audit(actor, 'alert.acknowledge', row.subject, { alert: id, rule: row.rule });
      const { open, state } = this.#openState();
      this.#told = state;
      this.#deps.bus.emit('alerts:changed', { open });
    }
    return this.#alert(store.sql.alertGet.get(id)!);
  }

  /** Re-evaluates after jobs and inventory changes, and every `intervalMs` while the console runs. */
  start(intervalMs = 60_000): void {
    if (this.#timer) return;
    const run = () => {
      try {
        this.evaluate();
      } catch (error) {
        this.#deps.log.error(`monitoring: ${(error as Error).message}`);
      }
    };
    this.#unsubscribe = this.#deps.bus.subscribe((event) => {
      if (event === 'jobs:finished' || event === 'devices:changed') setImmediate(run);
    });
    this.#timer = setInterval(run, intervalMs);
    this.#timer.unref();
    setImmediate(run);
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** What the console shows of the open alerts; changed also by other processes (run-scheduler, jetvault alerts ack). */
  #openState(): { open: number; state: string } {
    const rows = this.#deps.store.sql.alertsOpen.all();
    return { open: rows.length, state: rows.map((r) => `${r.id}:${r.severity}:${r.acknowledged_at ?? ''}`).join(',') };
  }

  /**
   * Tells the console when the open alerts changed in another process: run-scheduler raised an alert
   * (and sent it), or `jetvault alerts ack` acknowledged one. Only the process that raised an alert
   * said so, and the console's evaluation found it open already — its badge and page showed none
   * until the window was reloaded.
   */
  #changedElsewhere(): void {
    const { open, state } = this.#openState();
    if (this.#told !== null && state !== this.#told) this.#deps.bus.emit('alerts:changed', { open });
    this.#told = state;
  }

  #announce(raised: Alert[], resolved: Alert[], escalated: Alert[] = []): void {
    const { bus, outbox, settings, notify } = this.#deps;
    const current = settings.get();
    const { open, state } = this.#openState();
    this.#told = state;
    bus.emit('alerts:changed', { open });
    // The row names the secret store's entry, not the URL (it can carry a token): the URL is read as it is sent.
    if (settings.webhookConfigured()) {
      for (const alert of raised) outbox.enqueue(WEBHOOK_URL_REF, { event: 'alert.raised', alert });
      for (const alert of escalated) outbox.enqueue(WEBHOOK_URL_REF, { event: 'alert.escalated', alert });
      for (const alert of resolved) outbox.enqueue(WEBHOOK_URL_REF, { event: 'alert.resolved', alert });
    }
    if (current.desktopNotifications && notify) {
      // One notification per alert when it is raised or grows critical (never again while it stays open), at or above the chosen level.
      const wanted = (a: Alert) => a.severity === 'critical' || (a.severity === 'warning' && current.desktopNotificationLevel === 'warning');
      for (const alert of [...raised, ...escalated].filter(wanted)) {
        try {
          notify(`Jetvault: ${alert.severity}${alert.device ? ` — ${alert.device}` : ''}`, alert.message);
        } catch (error) {
          this.#deps.log.warn(`desktop notification failed: ${(error as Error).message}`);
        }
      }
    }
  }

  #alert(row: AlertRow): Alert {
    const device = row.device_id ? this.#deps.store.sql.deviceById.get(row.device_id) : undefined;
    return {
      id: row.id,
      rule: row.rule as RuleId,
      device: device?.name ?? row.device_name ?? null,
      severity: row.severity as Severity,
      message: row.message,
      raisedAt: row.raised_at,
      lastSeenAt: row.last_seen_at,
      acknowledgedAt: row.acknowledged_at,
      acknowledgedBy: row.acknowledged_by,
      resolvedAt: row.resolved_at,
    };
  }
}

export type { Condition };
