/**
 * Device facts over SSH — L4T release, board, disks, tools, services — and discovery of what to
 * back up (PostgreSQL and MySQL/MariaDB databases, SQLite files, app/config/log folders). One fixed script, with
 * the only variable part (the device's sysroot) quoted by `sh`. A server's socket found again through
 * another path (/var/run is /run on Debian and Ubuntu) is listed once, and a database proposed once.
 */
import path from 'node:path';
import type { DeviceFacts, DiskUsage, Source } from '../../shared/schemas/devices';
import { DeviceFactsSchema, MAX_SOURCES } from '../../shared/schemas/devices';
import { sh } from './shell-quote';
import type { RawShell } from './shell-quote';
import { tagValue } from '../repository/snapshot/snapshot';

const TOOLS = ['pg_dump', 'psql', 'pg_restore', 'sqlite3', 'mysqldump', 'tar', 'sha256sum', 'gzip', 'zstd', 'systemctl'];

/**
 * How long discovery waits for one database server (and for df): a server that accepts connections
 * and never answers (wedged, stopped) is named as not listed, instead of holding discovery forever.
 */
const FACT_TIMEOUT_S = 8;

export function factsCommand(sysroot = '/'): RawShell {
  const root = sysroot === '/' ? '' : sysroot.replace(/\/+$/, '');
  return sh`R=${root}
t() { if command -v timeout >/dev/null 2>&1; then timeout ${FACT_TIMEOUT_S} "$@"; else "$@"; fi; }
echo @@hostname; hostname 2>/dev/null || cat /etc/hostname
echo @@kernel; uname -r
echo @@arch; uname -m
echo @@l4t; head -n 1 "$R/etc/nv_tegra_release" 2>/dev/null
echo @@model; if [ -r "$R/proc/device-tree/model" ]; then tr -d '\\000' < "$R/proc/device-tree/model"; echo; elif [ -r /proc/device-tree/model ] && [ -z "$R" ]; then tr -d '\\000' < /proc/device-tree/model; echo; fi
echo @@df; t df -P -k 2>/dev/null | tail -n +2
echo @@tools; for t in ${TOOLS}; do p=$(command -v "$t" 2>/dev/null) && echo "$t $p"; done
echo @@services; systemctl list-units --type=service --state=running --no-legend --plain 2>/dev/null | awk '{print $1}'
dberr=''; seen=' '
echo @@pg; for s in "$R"/run/postgresql/.s.PGSQL.* /run/postgresql/.s.PGSQL.* /var/run/postgresql/.s.PGSQL.*; do
  [ -S "$s" ] || continue; d=\${s%/.s.PGSQL.*}; p=\${s##*.}
  k="$(cd "$d" 2>/dev/null && pwd -P || printf '%s' "$d")/$p"; case "$seen" in *" $k "*) continue;; esac; seen="$seen$k "
  if out=$(PGCONNECT_TIMEOUT=${FACT_TIMEOUT_S} t psql -h "$d" -p "$p" -d postgres -AtX -c "select datname from pg_database where not datistemplate and datname <> 'postgres'" 2>&1); then
    printf '%s\\n' "$out" | while IFS= read -r db; do [ -n "$db" ] && printf '%s\\t%s\\t%s\\n' "$d" "$p" "$db"; done
  else [ $? -eq 124 ] && out="did not answer within ${FACT_TIMEOUT_S} s"; dberr="$dberr$(printf 'postgres\\t%s:%s\\t%s' "$d" "$p" "$(printf '%s' "$out" | head -n 1)")
"; fi
done
echo @@mysql; for s in "$R"/run/mysqld/*.sock /run/mysqld/*.sock /var/run/mysqld/*.sock; do
  [ -S "$s" ] || continue
  k="$(cd "\${s%/*}" 2>/dev/null && pwd -P || printf '%s' "\${s%/*}")/\${s##*/}"; case "$seen" in *" $k "*) continue;; esac; seen="$seen$k "
  if out=$(t mysql --socket="$s" --connect-timeout=${FACT_TIMEOUT_S} -N -B -e 'SHOW DATABASES' 2>&1); then
    printf '%s\\n' "$out" | while IFS= read -r db; do case "$db" in ''|information_schema|performance_schema|mysql|sys) ;; *) printf '%s\\t%s\\n' "$s" "$db";; esac; done
  else [ $? -eq 124 ] && out="did not answer within ${FACT_TIMEOUT_S} s"; dberr="$dberr$(printf 'mysql\\t%s\\t%s' "$s" "$(printf '%s' "$out" | head -n 1)")
"; fi
done
echo @@dberr; printf '%s' "$dberr"
echo @@sqlite; find "$R/opt" "$R/var/lib" "$R/srv" "$R/home" -xdev -maxdepth 6 -type f \\( -name '*.db' -o -name '*.sqlite' -o -name '*.sqlite3' \\) 2>/dev/null | head -n 200 | while IFS= read -r f; do [ "$(head -c 15 "$f" 2>/dev/null)" = "SQLite format 3" ] && printf '%s\\n' "$f"; done
echo @@apps; for d in "$R"/opt/*/; do [ -d "$d" ] && printf '%s\\n' "\${d%/}"; done
echo @@config; for d in "$R"/opt/*/; do n=$(basename "$d"); [ -d "$R/etc/$n" ] && printf '%s\\n' "$R/etc/$n"; [ -f "\${d}.env" ] && printf '%s\\n' "\${d}.env"; done
echo @@logs; for d in "$R"/opt/*/; do n=$(basename "$d"); [ -d "$R/var/log/$n" ] && printf '%s\\n' "$R/var/log/$n"; done
echo @@end`;
}

/** The output of a command that writes `@@name` lines, by section: each section's non-empty lines. */
export function sections(output: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of output.split('\n')) {
    const marker = /^@@(\w+)$/.exec(line);
    if (marker) map.set(marker[1]!, (current = []));
    else if (current && line.trim() !== '') current.push(line);
  }
  return map;
}

/** `# R36 (release), REVISION: 4.0, GCID: …, BOARD: generic, EABI: aarch64, DATE: …` */
export function parseL4t(line: string | undefined): DeviceFacts['l4t'] {
  if (!line) return null;
  const release = /#\s*(R\d+)\s*\(release\)/.exec(line)?.[1];
  const revision = /REVISION:\s*([\d.]+)/.exec(line)?.[1];
  if (!release || !revision) return null;
  return { release, revision, board: /BOARD:\s*([^,]+)/.exec(line)?.[1]?.trim() ?? null, line: line.trim() };
}

/** `df -P -k` lines (without the header) as the mounts that hold data. */
function parseDisks(lines: string[]): DiskUsage[] {
  return lines.flatMap((line) => {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || !/^\d+$/.test(f[1]!)) return [];
    const mount = f.slice(5).join(' ');
    // Kernel and memory file systems say nothing about room for data.
    if (/^(tmpfs|devtmpfs|udev|none|shm|cgroup2?|proc|sysfs)$/.test(f[0]!) || /^\/(dev|proc|sys|run)(\/|$)/.test(mount) || f[1] === '0') return [];
    return [{ filesystem: f[0]!, sizeBytes: Number(f[1]) * 1024, usedBytes: Number(f[2]) * 1024, availableBytes: Number(f[3]) * 1024, mount }];
  });
}

/** The disks a backup's first command read (see platformCommand), or null if it said nothing of them. */
export function disksOfProbe(output: string): DiskUsage[] | null {
  // df -P prints its header (localised) first.
  const df = sections(output).get('df')?.slice(1);
  return df && df.length > 0 ? parseDisks(df) : null;
}

export function parseFacts(output: string, now = new Date()): DeviceFacts {
  const s = sections(output);
  const one = (key: string) => s.get(key)?.[0]?.trim() ?? '';
  const apps = (s.get('apps') ?? []).filter((dir) => !/\/(nvidia|ota|containerd)$/.test(dir));
  return DeviceFactsSchema.parse({
    collectedAt: now.toISOString(),
    hostname: one('hostname'),
    kernel: one('kernel'),
    arch: one('arch'),
    l4t: parseL4t(s.get('l4t')?.[0]),
    model: one('model') || null,
    disks: parseDisks(s.get('df') ?? []),
    tools: Object.fromEntries((s.get('tools') ?? []).map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)])),
    services: s.get('services') ?? [],
    postgresDatabases: (s.get('pg') ?? []).map((line) => line),
    mysqlDatabases: s.get('mysql') ?? [],
    databaseErrors: (s.get('dberr') ?? []).flatMap((line) => {
      const [engine, where, ...message] = line.split('\t');
      return engine === 'postgres' || engine === 'mysql' ? [{ engine, where: where ?? '', message: message.join('\t').trim() || 'no error output' }] : [];
    }),
    sqliteFiles: s.get('sqlite') ?? [],
    appDirs: apps,
    configPaths: s.get('config') ?? [],
    logDirs: s.get('logs') ?? [],
  });
}

const sourceName = (text: string) => text.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64) || 'source';

/**
 * Sources a technician can accept: databases first, then config, logs and the app itself — never
 * more than the profile has room for (MAX_SOURCES): SQLite files fill what the others leave, and
 * those left out are copied with their app's folder instead of excluded from it.
 */
export function proposeSources(facts: DeviceFacts, existing: readonly Source[] = []): Source[] {
  const taken = new Set(existing.map((s) => s.name));
  const name = (wanted: string) => {
    let candidate = sourceName(wanted);
    for (let i = 2; taken.has(candidate); i++) candidate = `${sourceName(wanted).slice(0, 60)}-${i}`;
    taken.add(candidate);
    return candidate;
  };
  const databases: Source[] = [];
  for (const line of facts.postgresDatabases) {
    const [host, port, database] = line.split('\t') as [string, string, string];
    if (![...existing, ...databases].some((s) => s.kind === 'postgres' && s.database === database)) {
      databases.push({ name: name(`db-${database}`), kind: 'postgres', database, host, port: Number(port) });
    }
  }
  for (const line of facts.mysqlDatabases) {
    const [socket, database] = line.split('\t') as [string, string];
    if (![...existing, ...databases].some((s) => s.kind === 'mysql' && s.database === database)) databases.push({ name: name(`mysql-${database}`), kind: 'mysql', database, socket });
  }
  const filesAlready = new Set(existing.flatMap((s) => (s.kind === 'files' ? s.paths : [])));
  const fresh = (paths: string[]) => paths.filter((p) => !filesAlready.has(p));
  const config = fresh(facts.configPaths);
  const logs = fresh(facts.logDirs);
  const apps = fresh(facts.appDirs);
  const folders = (config.length > 0 ? 1 : 0) + (logs.length > 0 ? 1 : 0) + apps.length;
  const room = Math.max(0, MAX_SOURCES - existing.length - databases.length - folders);
  const sqlite = facts.sqliteFiles.filter((file) => !existing.some((s) => s.kind === 'sqlite' && s.path === file)).slice(0, room);
  const proposals: Source[] = [...databases];
  for (const file of sqlite) proposals.push({ name: name(`sqlite-${path.posix.basename(file).replace(/\.(db|sqlite3?)$/, '')}`), kind: 'sqlite', path: file });
  if (config.length > 0) proposals.push({ name: name('config'), kind: 'files', paths: config });
  if (logs.length > 0) proposals.push({ name: name('logs'), kind: 'files', paths: logs });
  // The app's live databases are backed up consistently by their own sources, not copied mid-write.
  const ownSources = new Set([...sqlite, ...existing.flatMap((s) => (s.kind === 'sqlite' ? [s.path] : []))]);
  for (const dir of apps) {
    const exclude = facts.sqliteFiles.filter((f) => f.startsWith(`${dir}/`) && ownSources.has(f)).map((f) => `${f.slice(dir.length + 1)}*`);
    proposals.push({ name: name(`app-${path.posix.basename(dir)}`), kind: 'files', paths: [dir], ...(exclude.length > 0 ? { exclude } : {}) });
  }
  return proposals.slice(0, Math.max(0, MAX_SOURCES - existing.length));
}

/**
 * The platform a backup or restore runs on — the L4T release line and the board model — and the local
 * disks' usage (`df -l`, never a network mount that could hang, at most 5 s): the first command of a
 * run, so fast — every backup and restore runs it, and each program it starts is a fork and exec on
 * the device (the release line is read by the shell, df's header dropped here; a Jetson's model needs
 * `tr` for its NUL).
 */
export function platformCommand(sysroot = '/'): RawShell {
  const root = sysroot === '/' ? '' : sysroot.replace(/\/+$/, '');
  return sh`R=${root}
echo @@l4t; if [ -r "$R/etc/nv_tegra_release" ]; then IFS= read -r l < "$R/etc/nv_tegra_release"; printf '%s\n' "$l"; fi
echo @@model; if [ -r "$R/proc/device-tree/model" ]; then tr -d '\\000' < "$R/proc/device-tree/model"; echo; elif [ -r /proc/device-tree/model ] && [ -z "$R" ]; then tr -d '\\000' < /proc/device-tree/model; echo; fi
echo @@df; if command -v timeout >/dev/null 2>&1; then timeout 5 df -P -k -l; else df -P -k -l; fi 2>/dev/null
echo @@end`;
}

export interface Platform {
  /** `R36.4.0` (release and revision), or null off a Jetson. */
  l4t: string | null;
  board: string | null;
}

export function parsePlatform(output: string): Platform {
  const s = sections(output);
  const l4t = parseL4t(s.get('l4t')?.[0]);
  return { l4t: l4t ? `${l4t.release}.${l4t.revision}` : null, board: s.get('model')?.[0]?.trim() || l4t?.board || null };
}

/** Snapshot tags recording the platform a backup was taken on. */
export const platformTags = (p: Platform): string[] => [...(p.l4t ? [`l4t:${p.l4t}`] : []), ...(p.board ? [`board:${p.board}`] : [])];

export function platformOfTags(tags: readonly string[]): Platform {
  return { l4t: tagValue(tags, 'l4t'), board: tagValue(tags, 'board') };
}
