/** Binds every channel of the contract to the services. One line per channel, no logic here. */
import { planDeviceRetention } from '../maintenance/device-retention';
import { AppError, toAppError } from '../../shared/errors';
import { startDeviceBackup } from '../devices/device-backup';
import { DeviceConnector } from '../devices/device-connector';
import { unreadableKeyFiles } from '../devices/device-service';
import { proposeSources } from '../devices/facts';
import { deviceReport, openDeviceReport } from '../fleet/report';
import type { PendingRestore } from '../restore/restore-service';
import type { Services } from '../services/index';
import type { Handlers, Sender } from './router';

const actor = (sender: Sender): string => `console:${sender.transport}`;

/** A job a person started here: a desktop notification when it ends (JobNotices). */
function announced<T extends { jobId: string }>(services: Services, started: T): T {
  services.jobNotices.watch(started.jobId);
  return started;
}

/**
 * Runs an audited operation. Its success is recorded by the service that did it (in the same
 * transaction); a failure is recorded here, with its message, so the audit log has every result.
 */
function audited<T>(services: Services, who: string, action: string, target: string | null, work: () => T): T {
  const failed = (error: unknown): void => {
    try {
      services.history.audit(who, action, target, null, { result: 'failed', message: toAppError(error).message });
    } catch (caught) {
      services.log.warn(`could not record a failed ${action} in the audit log: ${(caught as Error).message}`);
    }
  };
  try {
    const value = work();
    if (value instanceof Promise) {
      return value.catch((error: unknown) => {
        failed(error);
        throw error;
      }) as T;
    }
    return value;
  } catch (error) {
    failed(error);
    throw error;
  }
}

const nameOf = (profile: unknown): string | null => (typeof profile === 'object' && profile !== null && typeof (profile as { name?: unknown }).name === 'string' ? (profile as { name: string }).name : null);

const pendingView = (p: PendingRestore) => ({
  restoreId: p.restoreId,
  device: p.device,
  snapshotId: p.snapshotId,
  finishedAt: p.finishedAt,
  targets: p.targets,
  databases: p.databases.map((d) => d.target),
  pointInTime: p.pointInTime,
  seconds: p.seconds,
  wireCompression: p.wireCompression,
});

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new AppError('VALIDATION', `The file is not valid JSON: ${(error as Error).message}`);
  }
}

export function createHandlers(services: Services, transport: 'electron' | 'websocket'): Handlers {
  const { devices } = services;
  const changed = <T>(names: string[], value: T): T => {
    services.bus.emit('devices:changed', { names });
    return value;
  };
  return {
    'app:info': () => ({
      name: 'Jetvault',
      version: services.version,
      transport,
      dataDir: services.dataDir,
      platform: process.platform,
      schemaVersion: services.history.schemaVersion,
      secrets: services.secrets.protection,
    }),
    'app:openExternal': async ({ url }) => ({ opened: await services.links.open(url) }),

    'settings:get': () => services.settings.get(),
    'settings:update': (patch, sender) => audited(services, actor(sender), 'settings.update', null, () => services.settings.update(patch, actor(sender))),
    'settings:reset': (_input, sender) => audited(services, actor(sender), 'settings.reset', null, () => services.settings.reset(actor(sender))),

    'jobs:list': (input) => services.jobs.list(input?.limit ?? 100, input?.status),
    'jobs:ofDevice': ({ device, kind, limit }) => services.jobs.listOfDevice(devices.get(device).id, kind, limit),
    'jobs:active': () => services.jobs.active(),
    'jobs:cancel': ({ jobId }) => ({ cancelled: services.jobs.cancel(jobId) }),

    'devices:list': () => devices.summaries(),
    'devices:get': ({ name }) => devices.detail(devices.get(name)),
    'devices:add': ({ profile, password, passphrase, databasePasswords }, sender) =>
      audited(services, actor(sender), 'device.add', nameOf(profile), () => {
        const added = devices.add(profile, { password, passphrase, databasePasswords }, actor(sender));
        return changed([added.profile.name], devices.detail(added));
      }),
    'devices:update': ({ name, profile, password, passphrase, databasePasswords, ifUpdatedAt }, sender) =>
      audited(services, actor(sender), 'device.update', name, () => {
        const updated = devices.update(name, profile, { password, passphrase, databasePasswords }, actor(sender), { ifUpdatedAt });
        return changed([name, updated.profile.name], devices.detail(updated));
      }),
    'devices:remove': ({ name }, sender) => audited(services, actor(sender), 'device.remove', name, () => (devices.remove(name, actor(sender)), changed([name], { removed: true as const }))),
    'devices:import': ({ json, replace }, sender) =>
      audited(services, actor(sender), 'device.import', null, () => {
        const imported = devices.import(parseJson(json), actor(sender), { replace });
        return changed(imported.map((d) => d.profile.name), imported.map((d) => devices.summary(d)));
      }),
    'devices:keyFileWarnings': async ({ names }) => (await Promise.all(names.map((name) => unreadableKeyFiles(devices.get(name).profile)))).flat(),
    'devices:export': ({ names }) => ({ json: JSON.stringify(devices.export(names), null, 2) }),
    'devices:probeHostKey': async ({ host, port, via }) => ({
      fingerprint: via ? await DeviceConnector.probeHostKeyVia(host, port, await services.devices.jumpOptions(via.jump, via)) : await DeviceConnector.probeHostKey(host, port),
    }),
    'devices:testLogin': async ({ profile, password, passphrase }) => {
      const draft = await devices.draftConnectOptions(profile, { password, passphrase });
      return DeviceConnector.testLogin(draft.options, draft.profile.sysroot);
    },
    'devices:checkHostKey': ({ name }) => services.connector.checkHostKey(name),
    'devices:pinHostKey': ({ name, fingerprint, target }, sender) =>
      audited(services, actor(sender), 'device.pin-host-key', name, async () => changed([name], devices.detail(await services.connector.pinPresentedHostKey(name, fingerprint, actor(sender), target)))),
    'devices:discover': async ({ name }) => {
      const facts = await services.connector.refreshFacts(name);
      return changed([name], { facts, proposals: proposeSources(facts, devices.get(name).profile.sources) });
    },

    'repository:status': () => services.repository.status(),
    'repository:init': ({ password, createFolder }) => services.repository.init(password, undefined, { createFolder: createFolder === true }),
    'repository:unlock': ({ password }) => services.repository.unlock(password),
    'repository:lock': () => (services.repository.lock(), services.repository.status()),
    'repository:leases': () => services.repository.leases(),
    'repository:breakLease': ({ id, force }) => services.repository.breakLease(id, force === true),
    'repository:copy': async (request) => announced(services, { jobId: (await services.copies.copyToRepository(request)).id }),

    'repositories:list': () => services.repositories.list(),
    'repositories:add': (input, sender) => audited(services, actor(sender), 'repository.add', input.name ?? input.location, () => services.repositories.add(input, actor(sender))),
    'repositories:update': (input, sender) => audited(services, actor(sender), 'repository.update', input.id, () => services.repositories.update(input, actor(sender))),
    'repositories:remove': ({ id }, sender) => audited(services, actor(sender), 'repository.remove', id, () => (services.repositories.remove(id, actor(sender)), { removed: true as const })),
    'repositories:copies': ({ device }) => services.repositories.copiesOf(device),
    'repositories:test': ({ id }, sender) => services.repositories.test(id, actor(sender)),
    'repositories:setPrimary': ({ id }, sender) => audited(services, actor(sender), 'repository.set-primary', id, () => services.repositories.setPrimary(id, actor(sender))),

    'backups:start': ({ device, sources }, sender) => audited(services, actor(sender), 'job.backup', device, () => announced(services, { jobId: startDeviceBackup(services, device, sources, actor(sender)).id })),
    'backups:startMany': ({ devices }, sender) => {
      const who = actor(sender);
      const started: { device: string; jobId: string }[] = [];
      const skipped: { device: string; reason: string }[] = [];
      for (const device of new Set(devices)) {
        try {
          // Each start or refusal is audited as a device page's button's is.
          const job = audited(services, who, 'job.backup', device, () => {
            // A second run queued behind one already going would back the device up twice in a row
            // (a job of another process is refused by the start itself, naming that process).
            const running = services.jobs.runningHereOn(services.devices.get(device).id);
            if (running) throw new AppError('CONFLICT', `${device} is busy: "${running}" runs on it now`);
            return announced(services, { jobId: startDeviceBackup(services, device, [], who).id });
          });
          started.push({ device, ...job });
        } catch (error) {
          skipped.push({ device, reason: toAppError(error).message });
        }
      }
      return { started, skipped };
    },

    'snapshots:list': (input) => services.catalog.list(input?.device),
    'snapshots:browse': ({ id, path }) => services.catalog.browse(id, path),

    'restore:plan': (request) => services.restores.plan(request),
    'restore:start': (request) => announced(services, services.restores.start(request)),
    'restore:pending': () => services.restores.pending().map(pendingView),
    'restore:recover': async ({ device }) => {
      const { pending, settled } = await services.restores.recoverReport(device);
      return { pending: pending.map(pendingView), settled };
    },
    'restore:confirm': async ({ restoreId }) => ({ done: true as const, ...(await services.restores.confirm(restoreId)) }),
    'restore:rollback': async ({ restoreId }) => ({ done: true as const, ...(await services.restores.rollback(restoreId)) }),
    'alerts:list': ({ status }) => services.alerts.list(status),
    'alerts:acknowledge': ({ id }, sender) => audited(services, actor(sender), 'alert.acknowledge', String(id), () => services.alerts.acknowledge(id, transport)),
    'alerts:evaluate': () => {
      const { raised, resolved } = services.alerts.evaluate();
      return { raised: raised.length, resolved: resolved.length, open: services.alerts.list('open').length };
    },
    'alerts:webhookQueue': () => services.outbox.pending(),
    'retention:preview': async ({ device, policy }) => {
      const profile = services.devices.get(device).profile;
      const decisions = await planDeviceRetention(await services.repository.fresh(), device, policy ?? profile.retention ?? {});
      return decisions.map(({ runId, time, sources, keep, reasons }) => ({ runId, time, sources, keep, reasons }));
    },
    'scheduler:queue': () => ({ enabled: services.scheduler.active, entries: services.scheduler.queue() }),
    'scheduler:tick': async () => ({ started: await services.scheduler.runDue() }),

    'files:versions': ({ snapshotId, path }) => services.versions.versions(snapshotId, path),
    'files:diff': ({ from, to, path }) => services.versions.diff(from, to, path),
    'files:restoreRequest': ({ snapshotId, path }) => services.versions.restoreRequest(snapshotId, path),

    'downloads:start': async (request) => announced(services, await services.downloads.start(request)),
    'downloads:chooseFolder': async () => {
      const choose = services.platform.chooseFolder;
      return choose ? { supported: true, folder: await choose() } : { supported: false, folder: null };
    },

    'drills:start': ({ device }) => {
      const { id, drillId } = services.drills.start(device);
      return announced(services, { jobId: id, drillId });
    },
    'drills:list': (input) => services.drills.list(input?.device, input?.limit ?? 50),
    'drills:rto': ({ device }) => services.drills.rto(device),

    'overview:get': () => services.overview.overview(),
    'dashboards:get': (request) => services.dashboards.dashboard(request),
    'audit:list': (query) => ({ entries: services.audit.list(query), total: services.audit.count(query), actions: services.audit.actions() }),
    'audit:exportCsv': (query, sender) => {
      const file = services.audit.csv(query);
      services.history.audit(actor(sender), 'audit.export', null, { lines: file.text.split('\r\n').length - 2 });
      return file;
    },
    'reports:device': ({ name }, sender) => {
      const file = deviceReport(services.history, services.overview, name);
      services.history.audit(actor(sender), 'report.device', name);
      return file;
    },
    'reports:open': (input, sender) =>
      audited(services, actor(sender), 'report.open', input.name, async () => {
        const opened = await openDeviceReport({ store: services.history, overview: services.overview, platform: services.platform, dataDir: services.dataDir }, input.name);
        services.history.audit(actor(sender), 'report.open', input.name, { format: opened.format, opened: opened.opened });
        return opened;
      }),
  };
}
