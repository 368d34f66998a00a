/**
 * Restores as jobs: plan (a dry run), then preflight → stage → verify → stop services → swap →
 * start services → validate (the device's health command); a failed validation rolls back by
 * itself. A completed restore keeps the previous state on the device until the technician
 * confirms it or rolls it back.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import type { RestorePlanSummary, RestoreRequest } from '../../shared/schemas/restore';
import type { DeviceConnector } from '../devices/device-connector';
import type { DeviceService } from '../devices/device-service';
import { raw } from '../devices/shell-quote';
import type { CommandRunner } from '../devices/ssh-connection';
import { runToString } from '../devices/ssh-connection';
import type { JobManager } from '../jobs/job-manager';
import { findSnapshot } from '../repository/snapshot/snapshot';
import type { RepositoryService } from '../services/repository-service';
import { confirmRestore, executeFilesRestore, planFilesRestore, recoverRestores, rollbackRestore } from './files-restore';
import type { FilesRestoreOptions, FilesRestorePlan } from './files-restore';

export const RESTORE_PHASES = ['preflight', 'stage', 'verify', 'swap', 'validate'] as const;
const SAMPLE = 20;

export interface PendingRestore {
  restoreId: string;
  device: string;
  snapshotId: string;
  plan: FilesRestorePlan;
  finishedAt: string;
}

function summarize(device: string, plan: FilesRestorePlan, warnings: string[]): RestorePlanSummary {
  return {
    restoreId: plan.restoreId,
    device,
    snapshotId: plan.snapshotId,
    bytesToSend: plan.bytesToSend,
    freeBytes: plan.freeBytes,
    spaceNeeded: plan.spaceNeeded,
    warnings,
    roots: plan.roots.map((r) => ({
      target: r.target,
      targetExists: r.targetExists,
      add: r.add.length,
      replace: r.replace.length,
      remove: r.remove.length,
      unchanged: r.unchanged,
      samples: [...r.replace.slice(0, SAMPLE).map((p) => `~ ${p}`), ...r.add.slice(0, SAMPLE).map((p) => `+ ${p}`), ...r.remove.slice(0, SAMPLE).map((p) => `- ${p}`)],
    })),
  };
}

/** Runs the device's own service commands (its configuration, run by its shell as written). */
async function runDeviceCommands(runner: CommandRunner, commands: string[], what: string): Promise<void> {
  for (const command of commands) {
    await runToString(runner, raw(command)).catch((error: unknown) => {
      throw new AppError('REMOTE_COMMAND_FAILED', `${what} command "${command}" failed: ${(error as Error).message}`);
    });
  }
}

export class RestoreService {
  readonly #pending = new Map<string, PendingRestore>();

  constructor(
    private readonly devices: DeviceService,
    private readonly connector: DeviceConnector,
    private readonly repository: RepositoryService,
    private readonly jobs: JobManager,
  ) {}

  async #options(request: RestoreRequest, runner: CommandRunner, restoreId: string): Promise<FilesRestoreOptions> {
    const device = this.devices.get(request.device);
    const repo = await this.repository.fresh();
    const snapshot = await findSnapshot(repo, request.snapshotId);
    if (snapshot.device !== request.device) throw new AppError('VALIDATION', `Snapshot ${request.snapshotId.slice(0, 12)} is of ${snapshot.device}, not ${request.device}`);
    if (!snapshot.tags.includes('kind:files')) throw new AppError('VALIDATION', 'Only files snapshots can be restored onto a device by this version (databases: download the dump)');
    const sourceName = snapshot.tags.find((t) => t.startsWith('source:'))?.slice('source:'.length);
    const source = device.profile.sources.find((s) => s.name === sourceName);
    const exclude = source?.kind === 'files' ? (source.exclude ?? []) : [];
    return {
      repo,
      runner,
      snapshot,
      restoreId,
      ...(device.profile.sysroot ? { sysroot: device.profile.sysroot } : {}),
      ...(request.targetRoot ? { targetRoot: request.targetRoot } : {}),
      ...(request.include && request.include.length > 0 ? { include: request.include } : {}),
      ...(exclude.length > 0 ? { exclude } : {}),
    };
  }

  #warnings(request: RestoreRequest): string[] {
    const device = this.devices.get(request.device);
    const warnings: string[] = [];
    if (!request.targetRoot && (device.profile.services?.stop.length ?? 0) === 0) warnings.push('No services are configured to stop around the swap: the app keeps running while its files change.');
    if (!device.facts) warnings.push('The device has no recorded facts: its L4T release could not be compared with the snapshot.');
    return warnings;
  }

  /** The dry run: what would change, and whether it fits. Changes nothing on the device. */
  plan(request: RestoreRequest): Promise<RestorePlanSummary> {
    return this.connector.withDevice(request.device, async (connection) => {
      const plan = await planFilesRestore(await this.#options(request, connection, 'plan'));
      return summarize(request.device, plan, this.#warnings(request));
    });
  }

  start(request: RestoreRequest): { jobId: string; restoreId: string } {
    const device = this.devices.get(request.device);
    const restoreId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const job = this.jobs.start({ kind: 'restore', title: `Restore ${request.device}`, phases: [...RESTORE_PHASES], deviceId: device.id }, (ctx) =>
      this.connector.withDevice(request.device, async (connection) => {
        const options = await this.#options(request, connection, restoreId);
        // Whatever an earlier, interrupted restore left beside these targets is settled first.
        const plan = await planFilesRestore(options);
        await recoverRestores(connection, [...new Set(plan.roots.map((r) => path.posix.dirname(r.target)))]);
        ctx.setTotals({ bytes: plan.bytesToSend });
        const inPlace = !request.targetRoot;
        const services = device.profile.services;
        await executeFilesRestore(options, plan, {
          phase: (name) => {
            ctx.throwIfCancelled();
            ctx.phase(name);
          },
          advance: (delta) => ctx.advance(delta),
          ...(inPlace && services
            ? { beforeSwap: () => runDeviceCommands(connection, services.stop, 'Stop'), afterSwap: () => runDeviceCommands(connection, services.start, 'Start') }
            : {}),
        });
        if (inPlace && device.profile.healthCommand) {
          const healthy = await runToString(connection, raw(device.profile.healthCommand)).then(() => null, (error: unknown) => (error as Error).message);
          if (healthy !== null) {
            await rollbackRestore(connection, plan);
            if (services) await runDeviceCommands(connection, services.start, 'Start');
            throw new AppError('REMOTE_COMMAND_FAILED', `The device was unhealthy after the restore (${healthy}); it was rolled back to its previous state`);
          }
        }
        this.#pending.set(restoreId, { restoreId, device: request.device, snapshotId: request.snapshotId, plan, finishedAt: new Date().toISOString() });
        return summarize(request.device, plan, []);
      }),
    );
    return { jobId: job.id, restoreId };
  }

  pending(): PendingRestore[] {
    return [...this.#pending.values()];
  }

  async confirm(restoreId: string): Promise<void> {
    const pending = this.#get(restoreId);
    await this.connector.withDevice(pending.device, (connection) => confirmRestore(connection, pending.plan));
    this.#pending.delete(restoreId);
  }

  async rollback(restoreId: string): Promise<void> {
    const pending = this.#get(restoreId);
    const services = this.devices.get(pending.device).profile.services;
    await this.connector.withDevice(pending.device, async (connection) => {
      if (services) await runDeviceCommands(connection, services.stop, 'Stop');
      await rollbackRestore(connection, pending.plan);
      if (services) await runDeviceCommands(connection, services.start, 'Start');
    });
    this.#pending.delete(restoreId);
  }

  #get(restoreId: string): PendingRestore {
    const pending = this.#pending.get(restoreId);
    if (!pending) throw new AppError('NOT_FOUND', `No restore ${restoreId} is waiting for confirmation`);
    return pending;
  }
}

