/**
 * Seeds a history store with a synthetic fleet and a stretch of its history, in one transaction:
 * devices (site, tags, tier, facts), backup runs at each tier's pace with failures and unreachable
 * spells, weekly drills, verifications and daily storage samples. For tests and benchmarks.
 */
import type { DeviceFacts, DeviceProfileInput } from '../../shared/schemas/devices';
import type { Tier } from '../../shared/tiers';
import type { HistoryStore } from '../history/history-store';
import { prepareSeedStatements } from '../history/statements';
import { factsColumn } from '../devices/device-service';

export interface SeedOptions {
  devices: number;
  days: number;
  /** The seeded history ends here (ms since the epoch). */
  now: number;
  /** Minutes between runs per tier (default: 10 / 40 / 360, so a healthy device stays within its tier's RPO). */
  intervalMinutes?: Partial<Record<Tier, number>>;
  /** Share of devices per tier (default: 2 % critical, 10 % important, the rest standard). */
  mix?: { critical: number; important: number };
  /** Share of runs that fail (default 3 %); a third of failures are "unreachable". */
  failureRate?: number;
  /** Every n-th device (from the 8th) went off the network 12 hours ago: its runs since failed to reach it (default 50; 0: none). */
  unreachableEvery?: number;
  /** Every n-th device (from the 4th) stopped backing up 2 days ago (default 25; 0: none). */
  staleEvery?: number;
  /** Deterministic pseudo-random source. */
  seed?: number;
}

export interface SeededDevice {
  id: string;
  name: string;
  tier: Tier;
  site: string;
}

export interface SeedResult {
  devices: SeededDevice[];
  runs: number;
  drills: number;
  samples: number;
}

const SITES = ['lyon-plant', 'oslo-depot', 'austin-lab', 'osaka-line', 'porto-yard'];
const TAGS = ['camera', 'lidar', 'gateway', 'kiosk', 'agv'];
const PHASES = JSON.stringify(['connect', 'list', 'transfer', 'commit']);
const GIB = 1024 ** 3;

function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

export function seedDeviceName(i: number): string {
  return `jet-${String(i).padStart(4, '0')}`;
}

export function seedFleet(store: HistoryStore, options: SeedOptions): SeedResult {
  const rnd = random(options.seed ?? 7);
  const interval = { critical: 10, important: 40, standard: 360, ...options.intervalMinutes };
  const mix = options.mix ?? { critical: 0.02, important: 0.1 };
  const failureRate = options.failureRate ?? 0.03;
  const unreachableEvery = options.unreachableEvery ?? 50;
  const staleEvery = options.staleEvery ?? 25;
  const sql = prepareSeedStatements(store.db);
  const start = options.now - options.days * 86_400_000;
  const iso = (ms: number) => new Date(ms).toISOString();
  const result: SeedResult = { devices: [], runs: 0, drills: 0, samples: 0 };

  store.db.transaction(() => {
    for (let i = 0; i < options.devices; i++) {
      const tier: Tier = i < options.devices * mix.critical ? 'critical' : i < options.devices * (mix.critical + mix.important) ? 'important' : 'standard';
      const key = i.toString(36).padStart(4, '0');
      const id = `dev_seed${key}`;
      const name = seedDeviceName(i);
      const site = SITES[i % SITES.length]!;
      const profile: DeviceProfileInput = {
        name,
        host: `10.${(i >> 8) & 255}.${i & 255}.10`,
        port: 22,
        user: 'jetson',
        site,
        tags: [`tier:${tier}`, TAGS[i % TAGS.length]!],
        sources: [
          { name: 'db', kind: 'postgres', database: 'app' },
          { name: 'config', kind: 'files', paths: ['/etc/app'] },
        ],
      };
      const diskSize = 64 * GIB;
      let used = (0.3 + 0.2 * rnd()) * diskSize;
      const offline = unreachableEvery > 0 && i % unreachableEvery === 7 % unreachableEvery;
      const stale = staleEvery > 0 && i % staleEvery === 3 % staleEvery;
      const facts: DeviceFacts = {
        collectedAt: iso(options.now - (offline ? 86_400_000 : 3_600_000)),
        hostname: name,
        kernel: '5.15.148-tegra',
        arch: 'aarch64',
        l4t: { release: 'R36', revision: '4.3', board: 'p3768-0000+p3767-0005', line: 'R36 (release), REVISION: 4.3' },
        model: 'NVIDIA Jetson Orin Nano Developer Kit',
        disks: [{ mount: '/', filesystem: '/dev/nvme0n1p1', sizeBytes: diskSize, usedBytes: Math.round(used), availableBytes: Math.round(diskSize - used) }],
        tools: { pg_dump: '16' },
        services: ['postgresql.service'],
        postgresDatabases: ['app'],
        mysqlDatabases: [],
        databaseErrors: [],
        sqliteFiles: [],
        appDirs: ['/opt/app'],
        configPaths: ['/etc/app'],
        logDirs: ['/var/log/app'],
      };
      // A pinned host key, as every device that has been backed up has.
      const hostKey = `SHA256:${Buffer.from(name.padEnd(32, '.')).toString('base64').replace(/=+$/, '').slice(0, 43).padEnd(43, 'A')}`;
      sql.device.run(id, name, JSON.stringify({ ...profile, hostKey }), hostKey, factsColumn(facts), facts.collectedAt, iso(start), iso(start), JSON.stringify(facts.disks), facts.collectedAt);
      result.devices.push({ id, name, tier, site });

      // Backup runs at the tier's pace, with jitter, occasional failures and unreachable spells.
      const step = interval[tier] * 60_000;
      const baseBytes = (20 + 200 * rnd()) * 1024 * 1024;
      let n = 0;
      const end = stale ? options.now - 2 * 86_400_000 : options.now - 60_000;
      for (let t = start + rnd() * step; t < end; t += step * (0.9 + 0.2 * rnd())) {
        const cut = offline && t > options.now - 12 * 3_600_000;
        const fail = cut || rnd() < failureRate;
        const unreachable = cut || (fail && rnd() < 1 / 3);
        const duration = unreachable ? 15_000 : Math.round((20_000 + 40_000 * rnd()) * (baseBytes / (100 * 1024 * 1024)));
        const transferred = unreachable ? 0 : Math.round(baseBytes * (0.8 + 0.4 * rnd()));
        const added = fail ? 0 : Math.round(transferred * (0.02 + 0.08 * rnd()));
        const error = fail ? JSON.stringify(unreachable ? { code: 'UNAVAILABLE', message: `${profile.host}:22 is unreachable (EHOSTUNREACH)` } : { code: 'REMOTE_COMMAND_FAILED', message: 'pg_dump exited with 1' }) : null;
        const resultJson = fail ? null : `{"bytesTransferred":${transferred},"bytesAdded":${added},"snapshots":[{"source":"db"},{"source":"config"}]}`;
        sql.job.run(`job_seed${key}${(n++).toString(36).padStart(6, '0')}`, 'backup', `Back up ${name}`, id, fail ? 'failed' : 'succeeded', PHASES, fail ? 'transfer' : 'commit', iso(t), iso(t + duration), transferred, 40, error, resultJson);
      }
      result.runs += n;

      // Weekly drills, daily disk samples, monthly device verifications.
      for (let t = start + 86_400_000 * 3; t < options.now; t += 7 * 86_400_000) {
        const failed = rnd() < 0.05;
        const total = failed ? null : Math.round((4 + 10 * rnd()) * 60_000);
        sql.drill.run(`drl_seed${key}${result.drills.toString(36).padStart(6, '0')}`, id, name, iso(t), iso(t + (total ?? 120_000)), failed ? 'failed' : 'passed', total, failed ? 'validation failed' : null);
        result.drills++;
      }
      for (let t = start; t < options.now; t += 86_400_000) {
        used = Math.min(diskSize * 0.97, used + diskSize * 0.0008 * rnd());
        sql.sample.run(iso(t), Math.floor(t / 1000), 'device_disk_used', id, Math.round(used));
        sql.sample.run(iso(t), Math.floor(t / 1000), 'device_disk_permille', id, Math.round((used / diskSize) * 1000));
        result.samples += 2;
      }
      for (let t = start + 86_400_000; t < options.now; t += 30 * 86_400_000) {
        sql.job.run(`job_seedv${key}${Math.floor(t / 1000).toString(36)}`, 'verify', `Verify ${name}`, id, 'succeeded', '["check"]', 'check', iso(t), iso(t + 30_000), 0, 0, null, null);
      }
    }
    // Laptop storage: the repository grows, free space shrinks.
    let repo = 50 * GIB;
    for (let t = start; t < options.now; t += 86_400_000) {
      repo += options.devices * 30 * 1024 * 1024 * (0.5 + rnd());
      sql.sample.run(iso(t), Math.floor(t / 1000), 'repository_bytes', null, Math.round(repo));
      sql.sample.run(iso(t), Math.floor(t / 1000), 'laptop_free', null, Math.round(4096 * GIB - repo));
      result.samples += 2;
    }
  })();
  return result;
}
