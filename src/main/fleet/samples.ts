/**
 * Measurements that have no other home in the history store, kept as samples for the dashboards'
 * trends: device disk use (each time facts are read), and after every backup the laptop's free
 * space where the repository lives and the repository's size on disk.
 */
import { readdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { DeviceFacts } from '../../shared/schemas/devices';
import type { EventBus } from '../event-bus';
import type { HistoryStore } from '../history/history-store';
import type { Logger } from '../log';
import { isRemoteLocation } from '../repository/backend/open-backend';

/** Used and total bytes over the device's real disks (block devices, or the root), as facts report them. */
export function diskTotals(facts: Pick<DeviceFacts, 'disks'>): { used: number; size: number } | null {
  const sized = facts.disks.filter((d) => d.sizeBytes > 0);
  const real = sized.filter((d) => d.filesystem.startsWith('/dev/') || d.mount === '/');
  const disks = real.length > 0 ? real : sized;
  if (disks.length === 0) return null;
  return { used: disks.reduce((n, d) => n + d.usedBytes, 0), size: disks.reduce((n, d) => n + d.sizeBytes, 0) };
}

export function recordDiskSamples(store: HistoryStore, deviceId: string, facts: Pick<DeviceFacts, 'disks'>, at = new Date()): void {
  const totals = diskTotals(facts);
  if (!totals) return;
  const seconds = Math.floor(at.getTime() / 1000);
  store.sql.sampleInsert.run(at.toISOString(), seconds, 'device_disk_used', deviceId, totals.used);
  store.sql.sampleInsert.run(at.toISOString(), seconds, 'device_disk_permille', deviceId, Math.round((totals.used / totals.size) * 1000));
}

/** Bytes of the files under `folder`; null when the folder itself cannot be read (not there: a disk unplugged). */
async function folderBytes(folder: string): Promise<number | null> {
  let total = 0;
  const pending = [folder];
  let first = true;
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
    if (entries === null && first) return null;
    first = false;
    for (const entry of entries ?? []) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) pending.push(full);
      else if (entry.isFile()) total += (await stat(full).catch(() => ({ size: 0 }))).size;
    }
  }
  return total;
}

/**
 * A repository on S3 or an SFTP server is not on this laptop: nothing of it can be measured here
 * (read as a folder, it was a repository of 0 B after every backup). A local folder that cannot be
 * read (its disk unplugged) is not sampled either, rather than recorded as empty.
 */
export async function recordStorageSamples(store: HistoryStore, repositoryLocation: string, at = new Date()): Promise<void> {
  if (isRemoteLocation(repositoryLocation)) return;
  const seconds = Math.floor(at.getTime() / 1000);
  const fs = await statfs(repositoryLocation).catch(() => null);
  const bytes = await folderBytes(repositoryLocation);
  // Closed meanwhile (the process is shutting down): there is nowhere to record it.
  if (!store.db.open) return;
  if (fs) store.sql.sampleInsert.run(at.toISOString(), seconds, 'laptop_free', null, fs.bavail * fs.bsize);
  if (bytes !== null) store.sql.sampleInsert.run(at.toISOString(), seconds, 'repository_bytes', null, bytes);
}

/**
 * Samples storage after each finished backup. `stop` unsubscribes; `settled` resolves once the
 * samples under way are recorded — a one-shot CLI command awaits it before it closes the history
 * store, or its backups would never be sampled.
 */
export function sampleStorageAfterBackups(bus: EventBus, store: HistoryStore, location: () => string, log: Logger): { stop: () => void; settled: () => Promise<void> } {
  const pending = new Set<Promise<void>>();
  const stop = bus.subscribe((event, payload) => {
    if (event !== 'jobs:finished') return;
    const { job } = payload as { job: { kind: string } };
    if (job.kind !== 'backup' || !store.db.open) return;
    const sample = recordStorageSamples(store, location())
      .catch((error: unknown) => log.warn(`storage sample failed: ${(error as Error).message}`))
      .finally(() => pending.delete(sample));
    pending.add(sample);
  });
  return {
    stop,
    settled: async () => {
      while (pending.size > 0) await Promise.all(pending);
    },
  };
}
