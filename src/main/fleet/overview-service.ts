/**
 * The fleet overview, computed in main from one indexed statement (no query per device): every
 * device's protection against its RPO (with tiers, see src/shared/tiers.ts), reachability, RTO
 * from its last drill, last verification, health from its facts, and open alerts.
 */
import { isServerDatabase } from '../../shared/schemas/devices';
import type { DeviceFacts, DeviceProfile, DiskUsage } from '../../shared/schemas/devices';
import type { FleetStatus, Overview, OverviewRow } from '../../shared/schemas/fleet';
import { runCutoff } from '../../shared/job-runs';
import { effectiveRpo } from '../../shared/tiers';
import type { HistoryStore } from '../history/history-store';
import type { OverviewDbRow } from '../history/statements';
import type { DeviceCopies } from '../../shared/schemas/repositories';
import type { SettingsService } from '../services/settings-service';
import { rtoStateOf } from '../restore/rto-state';

/** Error codes of a job that mean the device was not reached at all. */
const UNREACHED = new Set(['UNAVAILABLE', 'TIMEOUT']);

function parse<T>(text: string | null): T | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

const errorOf = (text: string | null) => parse<{ code?: string; message?: string }>(text);

/** Disks that hold data: real block devices (or, without any, whatever has a size). */
export function diskFree(disks: DiskUsage[] | null): { bytes: number; fraction: number } | null {
  if (!disks) return null;
  const sized = disks.filter((d) => d.sizeBytes > 0);
  const real = sized.filter((d) => d.filesystem.startsWith('/dev/') || d.mount === '/');
  const data = real.length > 0 ? real : sized;
  if (data.length === 0) return null;
  const worst = data.reduce((a, b) => (b.availableBytes / b.sizeBytes < a.availableBytes / a.sizeBytes ? b : a));
  return { bytes: worst.availableBytes, fraction: worst.availableBytes / worst.sizeBytes };
}

/**
 * Database up: each database source's server answered when facts were last read (its database was
 * listed). Null when the device has no database server sources or no facts.
 */
export function databaseUp(profile: DeviceProfile, facts: Pick<DeviceFacts, 'postgresDatabases' | 'mysqlDatabases'> | null): boolean | null {
  const servers = profile.sources.filter((s) => isServerDatabase(s.kind));
  if (!facts || servers.length === 0) return null;
  return servers.every((s) =>
    s.kind === 'postgres' ? facts.postgresDatabases.includes(s.database) : s.kind === 'mysql' ? (facts.mysqlDatabases ?? []).some((d) => d.split('\t').at(-1) === s.database) : true,
  );
}

/**
 * Whether the device answered the last time anything tried: its facts read, its last job (failed
 * for a connection that could not be made, or not), or the scheduler's probe of its address —
 * the newest of the three decides.
 */
export function reachabilityOf(row: Pick<OverviewDbRow, 'facts_at' | 'probe_at' | 'probe_reachable' | 'last_job_at' | 'last_job_status' | 'last_job_error'>): {
  reachability: OverviewRow['reachability'];
  lastContactAt: string | null;
} {
  const seen: { at: string; reachable: boolean }[] = [];
  if (row.facts_at) seen.push({ at: row.facts_at, reachable: true });
  if (row.last_job_at) seen.push({ at: row.last_job_at, reachable: !(row.last_job_status === 'failed' && UNREACHED.has(errorOf(row.last_job_error)?.code ?? '')) });
  if (row.probe_at && row.probe_reachable !== null) seen.push({ at: row.probe_at, reachable: row.probe_reachable === 1 });
  if (seen.length === 0) return { reachability: 'unknown', lastContactAt: null };
  const newest = seen.reduce((a, b) => (b.at > a.at ? b : a));
  return { reachability: newest.reachable ? 'reachable' : 'unreachable', lastContactAt: newest.at };
}

/** Open (unresolved) alerts per device, from the monitoring rules' alerts table (one grouped read). */
export function openAlertCounts(store: HistoryStore): { available: boolean; counts: Map<string, number> } {
  return { available: true, counts: new Map(store.sql.alertsOpenByDevice.all().map((r) => [r.device_id, r.open])) };
}

export class OverviewService {
  readonly #store: HistoryStore;
  readonly #settings: SettingsService;
  readonly #now: () => number;
  readonly #copies: () => Map<string, DeviceCopies>;

  /** `copies`: per device name, the copies of its latest run across the console's repositories (cached holdings). */
  constructor(store: HistoryStore, settings: SettingsService, now: () => number = Date.now, copies: () => Map<string, DeviceCopies> = () => new Map()) {
    this.#store = store;
    this.#settings = settings;
    this.#now = now;
    this.#copies = copies;
  }

  overview(): Overview {
    const now = this.#now();
    const { defaultRpoMinutes, defaultRtoMinutes } = this.#settings.get();
    const repoVerify = this.#store.sql.lastRepositoryVerify.get();
    const alerts = openAlertCounts(this.#store);
    const copies = this.#copies();
    const devices = this.#store.sql.overview.all(runCutoff(now)).map((row) => this.#row(row, now, defaultRpoMinutes, defaultRtoMinutes, repoVerify ?? null, alerts.counts, copies));
    const count = (status: FleetStatus) => devices.filter((d) => d.status === status).length;
    return {
      generatedAt: new Date(now).toISOString(),
      alertsAvailable: alerts.available,
      summary: { total: devices.length, protected: count('protected'), atRisk: count('at-risk'), unreachable: count('unreachable') },
      devices,
    };
  }

  #row(
    row: OverviewDbRow,
    now: number,
    defaultRpo: number,
    defaultRto: number,
    repoVerify: { finished_at: string | null; status: string } | null,
    alerts: Map<string, number>,
    copies: Map<string, DeviceCopies>,
  ): OverviewRow {
    const profile = JSON.parse(row.profile) as DeviceProfile;
    // Without their disks (factsColumn): those are `row.disks`.
    const facts = parse<Omit<DeviceFacts, 'disks'>>(row.facts);
    const tags = profile.tags ?? [];
    const rpo = effectiveRpo({ rpoMinutes: profile.rpoMinutes, tags }, defaultRpo);
    const ageMinutes = row.last_good_at ? Math.max(0, (now - Date.parse(row.last_good_at)) / 60_000) : null;
    const rpoState = ageMinutes === null ? 'never' : ageMinutes <= rpo.rpoMinutes ? 'ok' : 'breached';
    const { reachability, lastContactAt } = reachabilityOf(row);
    const rtoObjectiveMinutes = profile.rtoMinutes ?? defaultRto;
    const rtoState = rtoStateOf(row.last_drill_result, { ms: row.measured_ms, result: row.measured_result }, rtoObjectiveMinutes);
    // A repository-wide check verifies every device's snapshots: the newer of the two counts.
    const verify = repoVerify?.finished_at && (!row.last_verify_at || repoVerify.finished_at > row.last_verify_at) ? { at: repoVerify.finished_at, status: repoVerify.status } : { at: row.last_verify_at, status: row.last_verify_status };
    // Read by every backup too: also for a device imported and never discovered.
    const disk = diskFree(parse<DiskUsage[]>(row.disks));
    const status: FleetStatus = reachability === 'unreachable' ? 'unreachable' : rpoState === 'ok' ? 'protected' : 'at-risk';
    return {
      id: row.id,
      name: row.name,
      site: profile.site ?? '',
      tags,
      hostKeyPinned: row.host_key !== null,
      tier: rpo.tier,
      rpoMinutes: rpo.rpoMinutes,
      rpoFrom: rpo.from,
      rpoState,
      lastGoodAt: row.last_good_at,
      ageMinutes,
      lastAttemptAt: row.last_attempt_at,
      lastAttemptStatus: row.last_attempt_status,
      lastAttemptError: errorOf(row.last_attempt_error)?.message ?? null,
      lastAttemptErrorCode: errorOf(row.last_attempt_error)?.code ?? null,
      reachability,
      lastContactAt,
      rtoObjectiveMinutes,
      rtoEstimateMs: row.measured_ms,
      rtoState,
      lastDrillAt: row.last_drill_at,
      lastVerifyAt: verify.at,
      lastVerifyStatus: verify.status,
      diskFreeBytes: disk?.bytes ?? null,
      diskFreeFraction: disk?.fraction ?? null,
      databaseUp: databaseUp(profile, facts),
      openAlerts: alerts.get(row.id) ?? 0,
      // Before any holdings are recorded, a complete good backup is one copy: in the primary.
      copies: copies.get(row.name)?.copies ?? (row.last_good_at ? 1 : 0),
      offsiteCopy: copies.get(row.name)?.offsite ?? false,
      lastOffsiteAt: copies.get(row.name)?.lastOffsiteAt ?? null,
      status,
    };
  }
}
