import type { EventPayload } from '../../shared/contract';
import { formatAge } from '../../shared/format-duration';
import { RULE_LABELS } from '../../shared/schemas/monitoring';
import type { Command } from '../command';
import { UsageError } from '../command';
import { withServices } from '../services';
import type { Services } from '../../main/services/index';

/** One row per device: the console's fleet overview (the same computation), plus what the scheduler runs next. */
export function fleetStatus(services: Services) {
  const queue = new Map(services.scheduler.queue().map((e) => [e.device, e]));
  return services.overview.overview().devices.map((d) => {
    const next = queue.get(d.name);
    return {
      name: d.name,
      site: d.site,
      tags: d.tags,
      tier: d.tier,
      status: d.status,
      rpoState: d.rpoState,
      lastBackupAt: d.lastGoodAt,
      ageMinutes: d.ageMinutes === null ? null : Math.round(d.ageMinutes),
      rpoMinutes: d.rpoMinutes,
      lastAttempt: d.lastAttemptStatus,
      lastAttemptError: d.lastAttemptErrorCode === null ? null : { code: d.lastAttemptErrorCode, message: d.lastAttemptError },
      rtoEstimateMs: d.rtoEstimateMs,
      rtoObjectiveMinutes: d.rtoObjectiveMinutes,
      openAlerts: d.openAlerts,
      next: next ? { state: next.state, at: next.dueAt, reason: next.reason } : null,
    };
  });
}

/** A time today as the clock shows it, another day's with its date. */
function when(iso: string): string {
  const at = new Date(iso);
  return at.toDateString() === new Date().toDateString() ? at.toLocaleTimeString() : at.toLocaleString();
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'the fleet at a glance: protection against each device RPO, alerts, next backup',
  usage: 'Usage: jetvault status [--json]\n\nThe Fleet page as a table. Exit status 0 when every device is protected, 1 when one is at risk (never backed up, RPO breached) or unreachable.',
  options: { json: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError('status takes no arguments');
    return withServices(io, (services) => {
      const rows = fleetStatus(services);
      if (values.json) io.out(JSON.stringify(rows, null, 2));
      else if (rows.length === 0) io.out('No devices. Add one with: jetvault device add NAME --host HOST');
      else {
        // STATUS as wide as its longest value ("never backed up"), or the columns after it slip.
        io.out(`${'DEVICE'.padEnd(16)} ${'SITE'.padEnd(14)} ${'STATUS'.padEnd(15)} ${'LAST GOOD'.padEnd(10)} ${'RPO'.padEnd(8)} ${'ALERTS'.padEnd(6)} NEXT`);
        for (const r of rows) {
          const last = r.ageMinutes === null ? '—' : formatAge(r.ageMinutes * 60_000);
          // What runs next and why, as the Fleet page's queue says it: "waiting until 14:05:00: RPO of 30 min".
          const next = r.next ? `${r.next.state}${r.next.at && r.next.state === 'waiting' ? ` until ${when(r.next.at)}` : ''}: ${r.next.reason}` : '';
          const status = r.rpoState === 'never' ? 'never backed up' : r.status;
          io.out(`${r.name.padEnd(16)} ${r.site.slice(0, 14).padEnd(14)} ${status.padEnd(15)} ${last.padEnd(10)} ${formatAge(r.rpoMinutes * 60_000).padEnd(8)} ${String(r.openAlerts).padEnd(6)} ${next}`);
        }
        // Its backups are refused until someone compares the new key: say so beside the table.
        for (const r of rows.filter((row) => row.lastAttemptError?.code === 'HOST_KEY_MISMATCH')) {
          io.out(`${r.name}: its host key changed since it was pinned; nothing is sent to it until the new key is compared and pinned: jetvault device trust ${r.name}`);
        }
        const bad = rows.filter((r) => r.status !== 'protected').length;
        io.out(`${rows.length - bad} protected, ${bad} at risk`);
      }
      return rows.every((r) => r.status === 'protected') ? 0 : 1;
    });
  },
};

export const alertsCommand: Command = {
  name: 'alerts',
  summary: 'open alerts (monitoring rules evaluated now); --all for recent ones, ack ID to acknowledge',
  usage: 'Usage: jetvault alerts [--all] [--json]\n       jetvault alerts ack ID\n\nExit status 0 when no alert is open, 1 otherwise.',
  options: { json: { type: 'boolean' }, all: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    return withServices(io, async (services) => {
      if (positionals[0] === 'ack') {
        // Digits only: Number() would read "0x1f", "1e2" or " 7" as another alert's id.
        const text = positionals[1] ?? '';
        const id = /^[0-9]{1,15}$/.test(text) ? Number(text) : Number.NaN;
        if (!(id > 0) || positionals.length !== 2) throw new UsageError(positionals.length === 2 ? `"${text}" is not an alert ID (the number in the first column of jetvault alerts)` : 'ack needs one alert ID');
        const alert = services.alerts.acknowledge(id, 'cli');
        io.out(`acknowledged ${alert.id}: ${alert.message}${alert.resolvedAt ? ` (it had cleared already, ${alert.resolvedAt})` : ''}`);
        return 0;
      }
      if (positionals.length > 0) throw new UsageError(`unknown action "${positionals[0]}"`);
      services.alerts.evaluate();
      // What that raised or resolved goes out now (as after run-scheduler --once): left to the next
      // console or scheduler, it waited — and was never tried where only the CLI runs.
      await services.outbox.deliverDue();
      const list = services.alerts.list(values.all ? 'all' : 'open');
      if (values.json) io.out(JSON.stringify(list, null, 2));
      else if (list.length === 0) io.out('No open alerts.');
      else for (const a of list) io.out(`${String(a.id).padStart(5)} ${a.severity.padEnd(8)} ${RULE_LABELS[a.rule].title.padEnd(26)} ${a.resolvedAt ? 'resolved ' : a.acknowledgedAt ? 'acked    ' : '         '}${a.message}`);
      // Alerts the webhook has not taken yet, and why: a receiver down or moved is otherwise found out by the silence.
      const queue = services.outbox.pending();
      if (queue.pending > 0) io.err(`webhook: ${queue.pending} alert event${queue.pending === 1 ? '' : 's'} not delivered yet (next try ${queue.nextAttemptAt ?? 'soon'})${queue.lastError ? `: ${queue.lastError}` : ''}`);
      return services.alerts.list('open').length === 0 ? 0 : 1;
    });
  },
};

/** Signals that stop run-scheduler (and --once): the backups it runs are cancelled first, and recorded so. */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export const runSchedulerCommand: Command = {
  name: 'run-scheduler',
  summary: 'back devices up by their RPO and schedules, watch alerts and deliver webhooks, headless (Ctrl-C stops)',
  usage: [
    'Usage: jetvault run-scheduler [--once]',
    '',
    'Runs what the console runs in the background, without a window: the scheduler (RPO-driven and cron',
    'backups, verification, prune), the monitoring rules and the webhook queue. The repository password',
    'comes from JETVAULT_PASSWORD. --once runs one scheduler tick, waits for what it started (however long',
    'it runs), and exits: 1 when a backup it started failed.',
  ].join('\n'),
  options: { once: { type: 'boolean' } },
  async run({ values, positionals }, io) {
    // "run-scheduler once" (no dashes) would otherwise run the scheduler until it is stopped.
    if (positionals.length > 0) throw new UsageError(`run-scheduler takes no arguments ("${positionals[0]}"${positionals[0] === 'once' ? '; did you mean --once?' : ''})`);
    return withServices(io, async (services) => {
      await services.repository.open(); // fails clearly when the repository is missing or locked
      if (values.once) {
        const started = await services.scheduler.tickJobs();
        io.out(started.length === 0 ? 'nothing due' : `started: ${started.map((s) => s.device).join(', ')}`);
        // However long it takes (a first backup over a field link, the weekly data check): leaving after
        // an hour, as it did, cancelled the job as the services closed and exited 0.
        // Stopped meanwhile (a systemd timer's stop, Ctrl-C): what it started is cancelled and
        // recorded so — the signal's default ended the process, and the next start called the
        // backups interrupted, as if it had crashed.
        let stopped = false;
        const stop = () => {
          stopped = true;
        };
        for (const signal of STOP_SIGNALS) process.once(signal, stop);
        try {
          while (services.jobs.active().length > 0 && !stopped) await new Promise((r) => setTimeout(r, 100));
          if (stopped) await services.jobs.stopAll();
        } finally {
          for (const signal of STOP_SIGNALS) process.off(signal, stop);
        }
        services.alerts.evaluate();
        await services.outbox.deliverDue();
        // The jobs this tick started, by id: the newest jobs in the history may be another process's.
        const ended = started.flatMap((s) => {
          const job = services.jobs.get(s.jobId);
          return job?.status === 'failed' || job?.status === 'cancelled' ? [job] : [];
        });
        for (const j of ended) io.err(`${j.title}: ${j.status === 'cancelled' ? 'cancelled' : (j.error?.message ?? 'failed')}`);
        return ended.length === 0 ? 0 : 1;
      }
      // Each job's end on a line of its own: what a server's journal keeps of the backups it ran.
      services.bus.subscribe((event, payload) => {
        if (event !== 'jobs:finished') return;
        const { job } = payload as EventPayload<'jobs:finished'>;
        if (job.status === 'failed') io.err(`${job.title}: ${job.error?.message ?? 'failed'}`);
        else io.out(`${job.title}: ${job.status}`);
      });
      services.start({ scheduler: true });
      io.out(`scheduler running (data: ${services.dataDir}); Ctrl-C stops`);
      await new Promise<void>((resolve) => {
        // The scheduler's and monitor's timers do not hold a process open (the app's window does):
        // without this one, run-scheduler exited (status 13) once its first tick's work was done.
        const keepAlive = setInterval(() => {}, 60_000);
        // SIGHUP too (the terminal or ssh session it was started from closed): its default ended the
        // process mid-backup, and the backup was left to be called interrupted.
        const stop = () => {
          clearInterval(keepAlive);
          for (const signal of STOP_SIGNALS) process.off(signal, stop);
          resolve();
        };
        for (const signal of STOP_SIGNALS) process.once(signal, stop);
      });
      // Let running jobs stop cleanly: dispose cancels them.
      return 0;
    });
  },
};
