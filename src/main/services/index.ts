/**
 * The services container: everything the console does, created once per process and shared by
 * the Electron app, the test host and the CLI. Plain Node; platform abilities that only Electron
 * has (opening a browser, safe storage) come in through `PlatformAdapter`.
 */
import { DeviceConnector } from '../devices/device-connector';
import { DeviceService } from '../devices/device-service';
import { EventBus } from '../event-bus';
import { HistoryStore } from '../history/history-store';
import { JobManager } from '../jobs/job-manager';
import { JobNotices } from '../jobs/job-notices';
import type { Notify } from '../jobs/job-notices';
import type { Logger } from '../log';
import { packageVersion } from '../version';
import type { SecretCipher } from '../secrets/secret-cipher';
import { SecretStore } from '../secrets/secret-store';
import { AlertService } from '../monitoring/alert-service';
import { WebhookOutbox } from '../monitoring/webhook';
import { DownloadService } from '../restore/download-service';
import { DrillService } from '../restore/drill-service';
import { FileVersionsService } from '../restore/file-versions';
import { RestoreService, restoreInterruptedNote } from '../restore/restore-service';
import { toAppError } from '../../shared/errors';
import { startDeviceBackup } from '../devices/device-backup';
import { Scheduler } from '../scheduler/scheduler';
import { Maintenance } from '../maintenance/maintenance';
import { AuditService } from '../fleet/audit-service';
import { DashboardService } from '../fleet/dashboard-service';
import { OverviewService } from '../fleet/overview-service';
import { sampleStorageAfterBackups } from '../fleet/samples';
import { CatalogService } from './catalog-service';
import { CopyService } from './copy-service';
import { ExternalLinks } from './external-links';
import { RepositoriesService } from './repositories-service';
import { CopyPolicy } from './copy-policy';
import { RepositoryService } from './repository-service';
import { SettingsService } from './settings-service';
import { ExternalChanges } from './external-changes';

export { packageVersion };

export interface PlatformAdapter {
  transport: 'electron' | 'websocket' | 'cli';
  /** Opens an already-allowlisted https URL outside the console. */
  openExternal(url: string): Promise<void>;
  /** The OS-backed cipher for secrets (Electron safeStorage); elsewhere a passphrase cipher is used. */
  secretCipher?: SecretCipher;
  /** A desktop notification (Electron); elsewhere alerts show in the console only. `onlyInBackground`: not while a console window is in front. */
  notify?: Notify;
  /** Asks the user for a folder on this computer (a native dialog); null when they cancel. */
  chooseFolder?: () => Promise<string | null>;
  /** Opens a file of the console's own with the system's default application (a report in the PDF viewer). */
  openPath?: (file: string) => Promise<void>;
  /** Prints a local self-contained HTML file to PDF with its print CSS (Chromium's print engine, in the app). */
  printToPdf?: (htmlFile: string, pdfFile: string) => Promise<void>;
}

export interface ServicesOptions {
  dataDir: string;
  log: Logger;
  platform: PlatformAdapter;
  /** Environment for JETVAULT_PASSWORD, JETVAULT_REPOSITORY, JETVAULT_SECRETS_PASSPHRASE (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

export interface Services {
  readonly dataDir: string;
  readonly version: string;
  readonly log: Logger;
  readonly platform: PlatformAdapter;
  readonly bus: EventBus;
  readonly history: HistoryStore;
  readonly settings: SettingsService;
  readonly jobs: JobManager;
  readonly links: ExternalLinks;
  readonly secrets: SecretStore;
  readonly devices: DeviceService;
  readonly connector: DeviceConnector;
  readonly repository: RepositoryService;
  /** Primary and secondary repositories (3-2-1 copies), and which device runs each holds. */
  readonly repositories: RepositoriesService;
  readonly catalog: CatalogService;
  /** Copies of the repository's snapshots into other repositories, as jobs. */
  readonly copies: CopyService;
  /** "Copy to offsite when reachable": after backups and every few minutes while the console runs. */
  readonly copyPolicy: CopyPolicy;
  readonly restores: RestoreService;
  readonly outbox: WebhookOutbox;
  readonly alerts: AlertService;
  readonly scheduler: Scheduler;
  readonly maintenance: Maintenance;
  /** Desktop notifications for jobs started from the console, when they end. */
  readonly jobNotices: JobNotices;
  /**
   * Starts what runs by itself while a console is open (monitoring, webhook retries, and the
   * scheduler unless `scheduler: false`); not for one-shot CLI commands. The copy policy runs with
   * the scheduler unless `copyPolicy` says otherwise (the test host's e2e switch for it).
   */
  start(options?: { scheduler?: boolean; copyPolicy?: boolean }): void;
  readonly versions: FileVersionsService;
  readonly downloads: DownloadService;
  readonly drills: DrillService;
  readonly overview: OverviewService;
  readonly dashboards: DashboardService;
  readonly audit: AuditService;
  /** Resolves once the work finished jobs set off in the background (storage samples) is recorded. */
  settled(): Promise<void>;
  /**
   * Stops a process cleanly (the app quitting, the test host or a CLI command ending): the scheduler
   * and copy policy stop starting work, running jobs are cancelled and seen to their end (at most
   * `timeoutMs`) — clean-up done, recorded *cancelled* — and then everything is disposed. `dispose`
   * alone closes the history under running jobs, and the next start took them for a crash
   * ("interrupted").
   */
  shutdown(timeoutMs?: number): Promise<void>;
  dispose(): void;
}


export function createServices({ dataDir, log, platform, env = process.env }: ServicesOptions): Services {
  const bus = new EventBus();
  const history = new HistoryStore(dataDir);
  const secrets = new SecretStore(history, platform.secretCipher ?? SecretStore.passphraseCipher(history, env.JETVAULT_SECRETS_PASSPHRASE));
  const settings = new SettingsService(history, bus, log, secrets);
  try {
    settings.protectWebhookUrl();
  } catch (error) {
    log.warn(`the webhook URL stays where an earlier version kept it: ${(error as Error).message}`);
  }
  const jobs = new JobManager(history, bus, log, Date.now, restoreInterruptedNote);
  const links = new ExternalLinks(platform);
  // A removed or renamed source's resume checkpoints go with it (the repository service keeps them).
  const devices = new DeviceService(history, secrets, (device, sources) => {
    repository.resume.forget(device, sources).catch((error: unknown) => log.warn('Could not remove the resume checkpoints of removed sources', { device, error: String(error) }));
  }, (deviceId) => jobs.busyDevices().has(deviceId));
  // Read as they are needed: a changed setting holds from the next connection (or command) on.
  const connector = new DeviceConnector(
    devices,
    () => settings.get().maxParallelDevices,
    () => settings.get().bandwidthLimitKiBps * 1024,
    () => settings.get().silentLinkSeconds * 1000,
  );
  bus.subscribe((event) => {
    if (event === 'settings:changed') connector.limitChanged();
  });
  const repository = new RepositoryService(dataDir, settings, env);
  const repositories = new RepositoriesService({ store: history, secrets, settings, repository, bus, log, env });
  const catalog = new CatalogService(repository);
  const copies = new CopyService(dataDir, repository, jobs, env);
  const copyPolicy = new CopyPolicy({ store: history, repositories, copies, bus, log });
  const restores = new RestoreService(devices, connector, repository, jobs, history);
  const outbox = new WebhookOutbox(history, log, undefined, (stored) => settings.webhookTarget(stored));
  const drills = new DrillService(devices, connector, repository, catalog, jobs, history, settings);
  const alerts = new AlertService({
    store: history,
    lastDrillAt: (deviceId) => drills.lastGoodAt(deviceId),
    devices,
    settings,
    bus,
    outbox,
    log,
    repositoryLocation: () => repository.location(),
    offsiteCopies: () => (repositories.anyOffsite() ? new Map([...repositories.copiesByDevice()].map(([device, c]) => [device, c.lastOffsiteAt])) : undefined),
    ...(platform.notify ? { notify: platform.notify } : {}),
  });
  const maintenance = new Maintenance({ store: history, jobs, repository, log });
  const jobNotices = new JobNotices(jobs, bus, settings, platform.notify);
  const scheduler = new Scheduler({
    store: history,
    devices,
    jobs,
    settings,
    log,
    maintenance,
    startBackup: (name, only) => startDeviceBackup({ devices, connector, repository, jobs }, name, only, 'scheduler'),
    // Opened with JETVAULT_PASSWORD where it is set (run-scheduler); in the app, once the technician unlocks it.
    repositoryUnready: () =>
      repository.open().then(
        () => null,
        (error: unknown) => toAppError(error).message,
      ),
  });
  const versions = new FileVersionsService(repository, catalog);
  const downloads = new DownloadService(repository, jobs);
  const overview = new OverviewService(history, settings, Date.now, () => repositories.copiesByDevice());
  const dashboards = new DashboardService(history, settings);
  const audit = new AuditService(history);
  const sampling = sampleStorageAfterBackups(bus, history, () => repository.location(), log);
  const external = new ExternalChanges(history, bus, settings, jobs, log);
  return {
    dataDir,
    version: packageVersion(),
    log,
    platform,
    bus,
    history,
    settings,
    jobs,
    links,
    secrets,
    devices,
    connector,
    repository,
    repositories,
    catalog,
    copies,
    copyPolicy,
    restores,
    outbox,
    alerts,
    scheduler,
    maintenance,
    jobNotices,
    start({ scheduler: withScheduler = true, copyPolicy: withCopyPolicy = withScheduler } = {}) {
      alerts.start();
      outbox.start();
      external.start();
      if (withScheduler) scheduler.start();
      if (withCopyPolicy) copyPolicy.start();
    },
    versions,
    downloads,
    drills,
    overview,
    dashboards,
    audit,
    settled: sampling.settled,
    async shutdown(timeoutMs) {
      scheduler.stop();
      copyPolicy.stop();
      await jobs.stopAll(timeoutMs);
      // A backup's storage sample is still being taken as its job returns: recorded before closing.
      await sampling.settled();
      this.dispose();
    },
    dispose() {
      scheduler.stop();
      copyPolicy.stop();
      alerts.stop();
      external.stop();
      jobNotices.stop();
      outbox.stop();
      sampling.stop();
      repositories.dispose();
      jobs.dispose();
      repository.lock(); // closes a remote repository's connection
      history.close();
    },
  };
}
