/**
 * The monitoring rules as one pure function: what the console knows now (devices, their runs and
 * facts, the repository's free space, the last verification, drills) in, the conditions that hold
 * out. The alert service turns conditions into alerts that are raised once, kept while the
 * condition holds, and resolved when it no longer does.
 */
import type { DiskUsage } from '../../shared/schemas/devices';
import type { RuleId, Rules, Severity } from '../../shared/schemas/monitoring';
import { formatAge } from '../../shared/format-duration';
import { FUTURE_RUN_TOLERANCE_MS } from '../../shared/job-runs';
import { median } from '../stats';

export interface RunSummary {
  status: 'succeeded' | 'failed' | 'cancelled';
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
  /** The sources a good run backed up (a source on its own schedule runs alone); absent when not known. */
  sources?: string[];
}

export interface DeviceState {
  id: string;
  name: string;
  /** The device's RPO target in minutes, as the overview shows it (its own, else its tier tag's, else the console default). */
  rpoMinutes: number;
  createdAt: string;
  lastSuccessAt: string | null;
  /** Finished backup runs, newest first (at least the last 11 when there are that many). */
  runs: RunSummary[];
  /** The disks the newest read saw (a discovery, or a backup's first command); null before any. */
  disks: DiskUsage[] | null;
  /** The last successful restore drill; undefined while the console records no drills. */
  lastDrillAt?: string | null;
  /** When the newest run held in an offsite repository was taken; null: none; undefined: no repository is offsite. */
  lastOffsiteAt?: string | null;
}

export interface MonitorInput {
  now: Date;
  devices: DeviceState[];
  repository: { location: string; freeBytes: number | null };
  /** The newest repository verification (check) job, if any. */
  lastCheck: RunSummary | null;
}

export interface Condition {
  rule: RuleId;
  /** One open alert per rule and subject. */
  subject: string;
  deviceId: string | null;
  severity: Severity;
  message: string;
}

const GiB = 1024 ** 3;
const DAY = 86_400_000;

const durationOf = (run: RunSummary): number | null => (run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.startedAt) : null);

/** Whether two runs backed up the same sources (a whole-device run and a source run alone are not alike). */
const sameSources = (a: RunSummary, b: RunSummary): boolean => [...(a.sources ?? [])].sort().join('\u0000') === [...(b.sources ?? [])].sort().join('\u0000');


/** Pseudo and read-only system filesystems never fill up in a way a technician can act on. */
const IGNORED_FILESYSTEMS = /^(proc|sysfs|devtmpfs|devpts|udev|none|overlay|squashfs|cgroup2?|tracefs|debugfs|securityfs|pstore|efivarfs)$/;

/**
 * Why a device is out of its RPO (`allowedMs`), or null while it is within it. A time ahead of this
 * clock (stamped while it ran ahead, set right since) protects nothing: counted, a device added then
 * raised no alert until the clock reached that time plus its RPO.
 */
function rpoBreach(device: DeviceState, allowedMs: number, now: number): string | null {
  const since = device.lastSuccessAt ?? device.createdAt;
  const age = now - Date.parse(since);
  const rpo = formatAge(device.rpoMinutes * 60_000);
  if (Date.parse(since) > now + FUTURE_RUN_TOLERANCE_MS) {
    return device.lastSuccessAt
      ? `${device.name}: the last good backup is dated ${since}, ahead of this computer's clock, and does not count (RPO ${rpo})`
      : `${device.name}: never backed up; added at ${since}, ahead of this computer's clock, so how long it has waited is not known (RPO ${rpo})`;
  }
  if (age <= allowedMs) return null;
  return device.lastSuccessAt
    ? `${device.name}: the last good backup is ${formatAge(age)} old, over its RPO of ${rpo}`
    : `${device.name}: never backed up in the ${formatAge(age)} since it was added (RPO ${rpo})`;
}

export function evaluateRules(input: MonitorInput, rules: Rules): Condition[] {
  const out: Condition[] = [];
  const now = input.now.getTime();
  for (const device of input.devices) {
    if (rules.backupFailed.enabled) {
      let failures = 0;
      for (const run of device.runs) {
        if (run.status === 'cancelled') continue;
        if (run.status !== 'failed') break;
        failures++;
      }
      if (failures >= Math.max(1, rules.backupFailed.threshold)) {
        const last = device.runs.find((r) => r.status === 'failed')!;
        out.push({
          rule: 'backupFailed',
          subject: device.id,
          deviceId: device.id,
          severity: 'critical',
          message: `${device.name}: ${failures === 1 ? 'the last backup failed' : `the last ${failures} backups failed`}${last.error ? `: ${last.error}` : ''}`,
        });
      }
    }

    if (rules.rpoBreached.enabled) {
      const message = rpoBreach(device, device.rpoMinutes * 60_000 * rules.rpoBreached.threshold, now);
      if (message) out.push({ rule: 'rpoBreached', subject: device.id, deviceId: device.id, severity: 'critical', message });
    }

    if (rules.deviceDiskLow.enabled && device.disks) {
      const low = device.disks.filter((d) => d.sizeBytes > 0 && !IGNORED_FILESYSTEMS.test(d.filesystem) && (d.availableBytes / d.sizeBytes) * 100 < rules.deviceDiskLow.threshold);
      if (low.length > 0) {
        out.push({
          rule: 'deviceDiskLow',
          subject: device.id,
          deviceId: device.id,
          severity: 'warning',
          message: `${device.name}: little free space on ${low.map((d) => `${d.mount} (${((d.availableBytes / d.sizeBytes) * 100).toFixed(1)}% free)`).join(', ')}`,
        });
      }
    }

    if (rules.backupSlower.enabled) {
      const done = device.runs.filter((r) => r.status === 'succeeded');
      const latest = done[0];
      // Against runs of the same sources: a whole-device run is not slow next to the logs backed up alone.
      const previous = done
        .slice(1)
        .filter((r) => latest && sameSources(r, latest))
        .slice(0, 10)
        .map(durationOf)
        .filter((d): d is number => d !== null);
      const latestMs = latest ? durationOf(latest) : null;
      // Only the newest run counts (a slow run long ago is history), and only against a real baseline.
      if (latest && latest === device.runs[0] && latestMs !== null && previous.length >= 3) {
        const usual = median(previous);
        if (usual > 0 && latestMs > usual * rules.backupSlower.threshold) {
          out.push({
            rule: 'backupSlower',
            subject: device.id,
            deviceId: device.id,
            severity: 'warning',
            message: `${device.name}: the last backup took ${(latestMs / 1000).toFixed(1)} s, ${(latestMs / usual).toFixed(1)}× its usual ${(usual / 1000).toFixed(1)} s`,
          });
        }
      }
    }

    if (rules.drillOverdue.enabled && device.lastDrillAt !== undefined && device.lastSuccessAt) {
      const limit = rules.drillOverdue.threshold * DAY;
      const since = device.lastDrillAt ?? device.createdAt;
      // A time ahead of this clock does not postpone the reminder (as for the RPO above).
      const ahead = Date.parse(since) > now + FUTURE_RUN_TOLERANCE_MS;
      if (now - Date.parse(since) > limit || ahead) {
        out.push({
          rule: 'drillOverdue',
          subject: device.id,
          deviceId: device.id,
          severity: 'warning',
          message: ahead
            ? `${device.name}: ${device.lastDrillAt ? 'the last restore drill is dated' : 'no restore drill since it was added at'} ${since}, ahead of this computer's clock`
            : device.lastDrillAt
              ? `${device.name}: the last restore drill was ${formatAge(now - Date.parse(device.lastDrillAt))} ago`
              : `${device.name}: no restore drill in the ${formatAge(now - Date.parse(since))} since it was added`,
        });
      }
    }

    // 3-2-1: once a repository is marked offsite, every backed-up device needs a recent copy there.
    if (rules.offsiteCopyMissing.enabled && device.lastOffsiteAt !== undefined && device.lastSuccessAt) {
      const limit = rules.offsiteCopyMissing.threshold * DAY;
      const newest = device.lastOffsiteAt;
      // A run dated ahead of this clock (taken while it ran ahead) is no recent copy either.
      const ahead = newest !== null && Date.parse(newest) > now + FUTURE_RUN_TOLERANCE_MS;
      if (newest === null || now - Date.parse(newest) > limit || ahead) {
        out.push({
          rule: 'offsiteCopyMissing',
          subject: device.id,
          deviceId: device.id,
          severity: 'warning',
          message:
            newest === null
              ? `${device.name}: no copy in an offsite repository yet`
              : ahead
                ? `${device.name}: the newest offsite copy is of a run dated ${newest}, ahead of this computer's clock, so how old it is is not known`
                : `${device.name}: the newest offsite copy is ${formatAge(now - Date.parse(newest))} old (over ${formatAge(limit)})`,
        });
      }
    }
  }

  if (rules.repositoryStorageLow.enabled && input.repository.freeBytes !== null && input.repository.freeBytes < rules.repositoryStorageLow.threshold * GiB) {
    out.push({
      rule: 'repositoryStorageLow',
      subject: 'repository',
      deviceId: null,
      severity: input.repository.freeBytes < (rules.repositoryStorageLow.threshold * GiB) / 4 ? 'critical' : 'warning',
      message: `Only ${(input.repository.freeBytes / GiB).toFixed(1)} GiB free where the repository is (${input.repository.location})`,
    });
  }

  if (rules.verificationFailed.enabled && input.lastCheck?.status === 'failed') {
    out.push({
      rule: 'verificationFailed',
      subject: 'repository',
      deviceId: null,
      severity: 'critical',
      message: `The last repository verification failed${input.lastCheck.error ? `: ${input.lastCheck.error}` : ''}`,
    });
  }
  return out;
}
