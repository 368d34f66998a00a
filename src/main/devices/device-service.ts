/**
 * The device inventory: profiles in the history store, pinned host keys, and secrets (passwords,
 * key passphrases) in the SecretStore — never in the profile, an export, or a log line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { access, constants, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import { DeviceProfileSchema, FilesSourceSchema, FingerprintSchema, JumpHostSchema, MysqlSourceSchema, NameSchema, PostgresSourceSchema, SqliteSourceSchema, authOf, isServerDatabase } from '../../shared/schemas/devices';
import type { DeviceDetail, DeviceDisks, DeviceFacts, DeviceProfile, DiskUsage, DeviceSummary, JumpHost, KeyTarget } from '../../shared/schemas/devices';
import type { HistoryStore } from '../history/history-store';
import { recordDiskSamples } from '../fleet/samples';
import type { DeviceRow } from '../history/statements';
import { issuesOf } from '../ipc/router';
import type { SecretStore } from '../secrets/secret-store';
import { databasePasswordError } from './sources/db-password';
import { patternIssues } from './sources/glob';
import { workFolderIssues } from './sources/listing';
import type { ConnectOptions, DeviceAuth } from './ssh-connection';
import { keyFileProblem } from './key-file';
import { counted } from '../../shared/plural';

export interface DeviceSecrets {
  password?: string | undefined;
  passphrase?: string | undefined;
  /** Database sources' passwords by source name; "" forgets one. */
  databasePasswords?: Record<string, string> | undefined;
}

export interface DeviceRecord {
  id: string;
  profile: DeviceProfile;
  hasPassword: boolean;
  hasPassphrase: boolean;
  /** Database sources with a stored password. */
  databasePasswords: string[];
  /** What the last discovery read; its `disks` are the newest read's (`disks`), kept once, in their own column. */
  facts: DeviceFacts | null;
  factsAt: string | null;
  /** The disks the newest read saw (a discovery, or any backup's first command — also of a device never discovered). */
  disks: DeviceDisks | null;
  createdAt: string;
  updatedAt: string;
}

/** The disks column as read (null before any read, or unreadable: nothing is shown rather than a failure). */
export function disksOf(row: Pick<DeviceRow, 'disks' | 'disks_at'>): DeviceDisks | null {
  if (!row.disks || !row.disks_at) return null;
  try {
    const disks = JSON.parse(row.disks) as unknown;
    return Array.isArray(disks) ? { disks: disks as DiskUsage[], at: row.disks_at } : null;
  } catch {
    return null;
  }
}

/**
 * Facts as the devices row keeps them: without their disks, which live in the row's own column
 * (newer: every backup reads them again), so the two cannot disagree.
 */
export function factsColumn(facts: DeviceFacts): string {
  const { disks: _disks, ...rest } = facts;
  return JSON.stringify(rest);
}

/**
 * What an edit changed, for the audit log: each changed profile field's value before and after, and
 * the sources by name (added, removed, edited); of the secrets only which were set or forgotten, never
 * a value. Empty when nothing changed. An audit entry of "device.update" had said nothing of what.
 */
export function profileChanges(before: DeviceProfile, after: DeviceProfile, secrets: DeviceSecrets = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)] as (keyof DeviceProfile)[])) {
    if (key === 'sources' || same(before[key], after[key])) continue;
    out[key] = { from: before[key] ?? null, to: after[key] ?? null };
  }
  const was = new Map(before.sources.map((s) => [s.name, s]));
  const is = new Map(after.sources.map((s) => [s.name, s]));
  const sources = {
    added: [...is.keys()].filter((n) => !was.has(n)),
    removed: [...was.keys()].filter((n) => !is.has(n)),
    edited: [...is.keys()].filter((n) => was.has(n) && !same(was.get(n), is.get(n))),
  };
  const listed = Object.fromEntries(Object.entries(sources).filter(([, names]) => names.length > 0));
  if (Object.keys(listed).length > 0) out.sources = listed;
  const how = (value: string) => (value === '' ? 'forgotten' : 'set');
  const set = [
    ...(['password', 'passphrase'] as const).flatMap((k) => (secrets[k] === undefined ? [] : [`${k} ${how(secrets[k])}`])),
    ...Object.entries(secrets.databasePasswords ?? {}).map(([source, value]) => `database password of ${source} ${how(value)}`),
  ];
  if (set.length > 0) out.secrets = set;
  return out;
}

const secretRef = (id: string, kind: 'password' | 'passphrase') => `device:${id}:${kind}`;
const databaseRef = (id: string, source: string) => `device:${id}:db:${source}`;

/**
 * Where in an imported file a problem is: the profile's name when it has a usable one (a file of forty
 * devices reads "rvm-031.sources.2.paths", not "30.sources.2.paths"), else its place counted from 1
 * ("#3"). A name the profile schema refuses is not echoed (it may hold anything).
 */
function profileLabel(candidate: unknown, index: number): string {
  const name = candidate && typeof candidate === 'object' ? (candidate as { name?: unknown }).name : undefined;
  return typeof name === 'string' && NameSchema.safeParse(name).success ? name : `#${index + 1}`;
}

/** Accepts one profile, an array, or `{devices:[…]}` (what `export` writes). */
function profilesIn(json: unknown): unknown[] {
  if (Array.isArray(json)) return json;
  if (json && typeof json === 'object' && Array.isArray((json as { devices?: unknown }).devices)) return (json as { devices: unknown[] }).devices;
  return [json];
}

/** A fingerprint as OpenSSH prints it (SHA256:…), or a VALIDATION error saying why not. */
export function checkedFingerprint(fingerprint: string): string {
  const checked = FingerprintSchema.safeParse(fingerprint);
  if (!checked.success) throw new AppError('VALIDATION', `Not a SHA256 fingerprint: ${fingerprint}`, issuesOf(checked.error));
  return checked.data;
}

/**
 * A key file as a profile names it: `~/…` is in the home folder of whoever runs Jetvault (as in
 * ssh_config), so one shared profile serves every technician's laptop.
 */
export function keyFilePath(file: string): string {
  return file === '~' || file.startsWith('~/') ? path.join(homedir(), file.slice(1)) : file;
}

/**
 * What a profile's key files would fail on at its first backup, said at once: a profile exported on
 * another laptop names its key files there. One line per file this machine cannot read (the key file
 * of a key login, the jump host's), for `device import` and the console's Import profiles.
 */
export async function unreadableKeyFiles(profile: DeviceProfile): Promise<string[]> {
  const warnings: string[] = [];
  for (const [what, file] of [['key file', profile.identityFile], ['jump host key file', profile.jump?.identityFile]] as const) {
    if (!file || (what === 'key file' && authOf(profile) !== 'key')) continue;
    const unreadable = await access(keyFilePath(file), constants.R_OK).then(
      () => null,
      (error: NodeJS.ErrnoException) => error.code ?? 'unreadable',
    );
    if (unreadable) warnings.push(`${profile.name}: its ${what} ${file} cannot be read on this machine (${unreadable}): put it there, or import a profile naming where it is, before its first backup`);
  }
  return warnings;
}

/**
 * A key login without its key file (refused on save, not at the next backup), and key files named
 * relative to a folder: the console, the scheduler and the CLI each start in a folder of their own,
 * so such a file would be found by one and not by the others. A value kept from `previous` (stored
 * before this was checked) is let be.
 */
function keyFileIssues(profile: DeviceProfile, previous?: DeviceProfile): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const check = (file: string | undefined, before: string | undefined, at: string) => {
    if (file === undefined || file === before || path.isAbsolute(file) || file === '~' || file.startsWith('~/')) return;
    issues.push({ path: at, message: `"${file}" is relative to the folder Jetvault happens to start in: give the key file's full path (/home/me/.ssh/id_ed25519, or ~/.ssh/id_ed25519)` });
  };
  if (profile.auth === 'key' && !profile.identityFile) issues.push({ path: 'identityFile', message: 'Signing in with a key needs its key file' });
  check(profile.identityFile, previous?.identityFile, 'identityFile');
  check(profile.jump?.identityFile, previous?.jump?.identityFile, 'jump.identityFile');
  return issues;
}

/**
 * A profile replacing a device's (import --replace) keeps the host keys pinned for it when it names
 * none: a profiles file written before the keys were confirmed would otherwise unpin every device it
 * lists, and each one's next backup would stop at 'confirm its host key'. A key the file names is
 * taken, as for a device imported anew.
 */
function keptHostKeys(profile: DeviceProfile, current: DeviceProfile): DeviceProfile {
  let next = profile;
  if (current.hostKey && !profile.hostKey) next = { ...next, hostKey: current.hostKey };
  const { jump } = profile;
  const before = current.jump;
  if (jump && !jump.hostKey && before?.hostKey && jump.host === before.host && jump.port === before.port) next = { ...next, jump: { ...jump, hostKey: before.hostKey } };
  return next;
}

/**
 * A site or tag holding control characters: printed by `device list` and `status`, an escape
 * sequence or a line break from a profiles file would clear or rewrite the terminal of whoever lists
 * the fleet (e.g. a row for a device that is not there).
 */
function controlCharacterIssues(profile: DeviceProfile, previous?: DeviceProfile): { path: string; message: string }[] {
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  const control = /[\u0000-\u001f\u007f-\u009f]/;
  // What was stored before this was checked is let be, so other edits of the device still save.
  const bad = (text: string, before: readonly string[]) => control.test(text) && !before.includes(text);
  const message = 'Holds a control character (an escape sequence, a tab or a line break): use plain text';
  return [
    ...(bad(profile.site, previous ? [previous.site] : []) ? [{ path: 'site', message }] : []),
    ...profile.tags.flatMap((tag, i) => (bad(tag, previous?.tags ?? []) ? [{ path: `tags.${i}`, message }] : [])),
  ];
}

/** What a profile the schema takes may still not hold (`previous`: the profile it replaces, on a save). */
function profileIssues(profile: DeviceProfile, previous?: DeviceProfile): { path: string; message: string }[] {
  return [...patternIssues(profile.sources), ...workFolderIssues(profile.sources), ...keyFileIssues(profile, previous), ...controlCharacterIssues(profile, previous)];
}

/** `profile` with the host keys pinned in `current`: the device's, and its jump host's while it goes through the same one. */
function withPinnedKeys(profile: DeviceProfile, current: DeviceProfile): DeviceProfile {
  const { hostKey: _edited, ...rest } = profile;
  const next: DeviceProfile = current.hostKey ? { ...rest, hostKey: current.hostKey } : rest;
  if (!profile.jump) return next;
  const { hostKey: _editedJump, ...jump } = profile.jump;
  const before = current.jump;
  const same = before?.hostKey && before.host === jump.host && before.port === jump.port;
  return { ...next, jump: same ? { ...jump, hostKey: before.hostKey } : jump };
}

const SOURCE_FIELDS: Record<string, string[]> = Object.fromEntries(
  [PostgresSourceSchema, SqliteSourceSchema, MysqlSourceSchema, FilesSourceSchema].map((schema) => [schema.shape.kind.value, Object.keys(schema.shape)]),
);

/**
 * Fields of a profiles file that no profile has: a misspelt setting (`hostkey`, `identity_file`)
 * would otherwise be dropped without a word — no pinned key, the agent instead of the key — and a
 * password written into the file would be dropped while the technician thinks it imported.
 */
function unknownFieldIssues(candidate: unknown): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const fold = (key: string) => key.toLowerCase().replace(/[^a-z0-9]/g, '');
  const check = (value: unknown, known: readonly string[], at: string, what: string) => {
    if (!value || typeof value !== 'object' || Array.isArray(value)) return;
    for (const key of Object.keys(value)) {
      if (known.includes(key)) continue;
      const like = known.find((k) => fold(k) === fold(key)) ?? known.find((k) => fold(key).length >= 4 && (fold(k).startsWith(fold(key)) || fold(key).startsWith(fold(k))));
      const message = /pass|secret|token/i.test(key)
        ? 'Passwords and passphrases are never imported (nor exported): enter them on the device page after the import'
        : `"${key}" is not a ${what} setting${like ? ` (${like}?)` : ''}`;
      issues.push({ path: `${at}${key}`, message });
    }
  };
  check(candidate, Object.keys(DeviceProfileSchema.shape), '', 'profile');
  if (!candidate || typeof candidate !== 'object') return issues;
  const { jump, sources, services } = candidate as { jump?: unknown; sources?: unknown; services?: unknown };
  check(jump, Object.keys(JumpHostSchema.shape), 'jump.', 'jump host');
  if (Array.isArray(sources)) {
    sources.forEach((source: unknown, i) => {
      const known = SOURCE_FIELDS[(source as { kind?: unknown } | null)?.kind as string];
      if (known) check(source, known, `sources.${i}.`, 'source');
    });
  }
  check(services, ['stop', 'start'], 'services.', 'services');
  return issues;
}

/**
 * A profile's new `updatedAt`: now, or a millisecond past the previous one when the clock has not
 * moved on (two saves in one millisecond, a clock set back) — an edit made on the earlier save must
 * not pass for one made on the later (`update`'s `ifUpdatedAt`).
 */
function savedAfter(previous: string): string {
  const now = Date.now();
  const before = Date.parse(previous);
  return new Date(Number.isNaN(before) || now > before ? now : before + 1).toISOString();
}

export class DeviceService {
  readonly #store: HistoryStore;
  readonly #secrets: SecretStore;

  /** Told when a device's sources go (removed, renamed, the device removed or renamed): their resume checkpoints are dropped. */
  readonly #sourcesGone: (device: string, sources: string[]) => void;

  /** Whether a job (a backup, a restore, a drill) runs on the device now, in this process or another. */
  readonly #busy: (deviceId: string) => boolean;

  constructor(
    store: HistoryStore,
    secrets: SecretStore,
    sourcesGone: (device: string, sources: string[]) => void = () => undefined,
    busy: (deviceId: string) => boolean = () => false,
  ) {
    this.#store = store;
    this.#secrets = secrets;
    this.#sourcesGone = sourcesGone;
    this.#busy = busy;
  }

  list(): DeviceRecord[] {
    return this.#store.sql.devicesAll.all().map((row) => this.#record(row));
  }

  /**
   * This console's id on its devices (16 hex digits): the folder its backup and drill commands mark
   * themselves in there (leftovers.ts). Made once, at random, and kept in the history store, so the
   * app and the CLI on one data folder — one console, one job per device between them — share it.
   */
  consoleId(): string {
    const key = 'console.id';
    const kept = this.#store.sql.metaGet.get(key)?.value;
    if (kept) return kept;
    // Immediate: of two processes making it at once, the second reads the first's.
    return this.#store.db
      .transaction(() => {
        const made = this.#store.sql.metaGet.get(key)?.value ?? randomBytes(8).toString('hex');
        this.#store.sql.metaSet.run(key, made);
        return made;
      })
      .immediate();
  }

  /**
   * The folder name (16 hex digits) a device's backup and drill commands mark themselves under on
   * the device (leftovers.ts): this console's, and this device's. A job stops every marked command
   * still alive as left by a cut run, which holds only while nothing else marks there — and one job
   * per device is per inventory device, not per login: two devices of the inventory on one Jetson
   * (its LAN and its VPN address), backed up together, stopped each other's pg_dump.
   */
  marksScope(name: string): string {
    return createHash('sha256').update(`${this.consoleId()}:${this.get(name).id}`).digest('hex').slice(0, 16);
  }

  /** Summaries of every device with its backup state, for the fleet overview. */
  summaries(): DeviceSummary[] {
    const backups = new Map(this.#store.sql.backupsByDevice.all().map((row) => [row.device_id, row]));
    return this.list().map((record) => this.summary(record, backups.get(record.id)));
  }

  get(name: string): DeviceRecord {
    const row = this.#store.sql.deviceByName.get(name);
    if (!row) throw new AppError('NOT_FOUND', `No device named "${name}"`);
    return this.#record(row);
  }

  add(input: unknown, secrets: DeviceSecrets, actor: string): DeviceRecord {
    const profile = this.#parse(input);
    if (this.#store.sql.deviceByName.get(profile.name)) throw new AppError('CONFLICT', `A device named "${profile.name}" already exists`);
    const id = `dev_${randomBytes(8).toString('hex')}`;
    const now = new Date().toISOString();
    this.#store.db.transaction(() => {
      this.#store.sql.deviceInsert.run(id, profile.name, JSON.stringify(profile), profile.hostKey ?? null, now, now);
      this.#storeSecrets(id, secrets, profile);
      this.#store.audit(actor, 'device.add', profile.name, { host: profile.host, port: profile.port, user: profile.user });
    })();
    return this.get(profile.name);
  }

  /**
   * Saves an edited profile. Its host keys stay as pinned whatever the edit says — a page opened
   * before a re-pin (`device trust`, another window) would otherwise bring the old key back with
   * any setting it saves; pins change only through the key check (decision 021) or an import
   * (`hostKeys: 'given'`).
   *
   * `ifUpdatedAt`: the `updatedAt` of the profile the edit was made on. An editor sends the whole
   * profile, so one opened before another save (`device import --replace`, a second window) would
   * silently undo that save's changes; it is refused (CONFLICT) instead, to be made again on the
   * profile as it is now.
   */
  update(name: string, input: unknown, secrets: DeviceSecrets, actor: string, { hostKeys = 'pinned', ifUpdatedAt }: { hostKeys?: 'pinned' | 'given'; ifUpdatedAt?: string } = {}): DeviceRecord {
    const current = this.get(name);
    if (ifUpdatedAt !== undefined && ifUpdatedAt !== current.updatedAt) {
      throw new AppError(
        'CONFLICT',
        `${name}'s profile was changed since it was opened here (saved ${current.updatedAt} from another window or the CLI): this save would have undone that change, so nothing was saved — the page now shows the profile as it is; make the edit again on it`,
      );
    }
    const edited = this.#parse(input, current.profile);
    const profile = hostKeys === 'given' ? edited : withPinnedKeys(edited, current.profile);
    if (profile.name !== name && this.#store.sql.deviceByName.get(profile.name)) {
      throw new AppError('CONFLICT', `A device named "${profile.name}" already exists`);
    }
    this.#store.db.transaction(() => {
      this.#store.sql.deviceUpdateProfile.run(profile.name, JSON.stringify(profile), profile.hostKey ?? null, savedAfter(current.updatedAt), current.id);
      this.#storeSecrets(current.id, secrets, profile);
      const changes = { ...(name === profile.name ? {} : { renamedFrom: name }), ...profileChanges(current.profile, profile, secrets) };
      this.#store.audit(actor, 'device.update', profile.name, Object.keys(changes).length > 0 ? changes : null);
    })();
    const kept = new Set(profile.name === name ? profile.sources.map((s) => s.name) : []);
    const gone = current.profile.sources.map((s) => s.name).filter((source) => !kept.has(source));
    if (gone.length > 0) this.#sourcesGone(name, gone);
    return this.get(profile.name);
  }

  /** Pins the host key the user confirmed, of the device or of its jump host (or replaces it after a verified reinstall). */
  pinHostKey(name: string, fingerprint: string, actor: string, target: KeyTarget = 'device'): DeviceRecord {
    const pinned = checkedFingerprint(fingerprint);
    const device = this.get(name);
    const { jump } = device.profile;
    if (target === 'jump' && !jump) throw new AppError('VALIDATION', `${name} has no jump host`, [{ path: 'target', message: target }]);
    const profile = target === 'jump' ? { ...device.profile, jump: { ...jump!, hostKey: pinned } } : { ...device.profile, hostKey: pinned };
    const previous = (target === 'jump' ? jump!.hostKey : device.profile.hostKey) ?? null;
    this.#store.db.transaction(() => {
      this.#store.sql.deviceUpdateProfile.run(name, JSON.stringify(profile), profile.hostKey ?? null, savedAfter(device.updatedAt), device.id);
      this.#store.audit(actor, 'device.pin-host-key', name, { ...(target === 'jump' ? { target } : {}), previous, fingerprint: pinned });
    })();
    return this.get(name);
  }

  /** Refused (CONFLICT) while a job runs on the device: its snapshots would outlive the device's record. */
  remove(name: string, actor: string): void {
    const device = this.get(name);
    if (this.#busy(device.id)) {
      throw new AppError('CONFLICT', `${name} has a backup, restore or drill running (here or in another Jetvault process): wait for it to finish or cancel it, then remove the device`);
    }
    this.#store.db.transaction(() => {
      this.#store.sql.deviceDelete.run(device.id);
      this.#secrets.deletePrefix(`device:${device.id}:`);
      this.#store.audit(actor, 'device.remove', name);
    })();
    this.#sourcesGone(name, device.profile.sources.map((s) => s.name));
  }

  /**
   * Disk usage a backup read on its way (its first command): the device page, the disk samples and
   * the low-disk alert follow the device between discoveries. The rest of the facts stay as read.
   */
  setDisks(name: string, disks: DiskUsage[]): void {
    const device = this.get(name);
    const at = new Date();
    this.#store.db.transaction(() => {
      this.#store.sql.deviceSetDisks.run(JSON.stringify(disks), at.toISOString(), device.id);
      recordDiskSamples(this.#store, device.id, { disks }, at);
    })();
  }

  setFacts(name: string, facts: DeviceFacts): void {
    const id = this.get(name).id;
    const at = new Date();
    this.#store.db.transaction(() => {
      this.#store.sql.deviceSetFacts.run(factsColumn(facts), at.toISOString(), id);
      this.#store.sql.deviceSetDisks.run(JSON.stringify(facts.disks), at.toISOString(), id);
      recordDiskSamples(this.#store, id, facts, at);
    })();
  }

  /**
   * Imports profiles (one, an array, or an export file). Everything is validated first; one bad
   * profile or a name clash rejects the whole import, so nothing is half-imported.
   */
  import(json: unknown, actor: string, { replace = false } = {}): DeviceRecord[] {
    const candidates = profilesIn(json);
    if (candidates.length === 0) throw new AppError('VALIDATION', 'The file holds no device profiles');
    const issues: { path: string; message: string }[] = [];
    const profiles: DeviceProfile[] = [];
    candidates.forEach((candidate, index) => {
      const at = profileLabel(candidate, index);
      for (const issue of unknownFieldIssues(candidate)) issues.push({ path: `${at}.${issue.path}`, message: issue.message });
      const parsed = DeviceProfileSchema.safeParse(candidate);
      if (!parsed.success) {
        for (const issue of issuesOf(parsed.error)) issues.push({ path: `${at}.${issue.path}`, message: issue.message });
        return;
      }
      for (const issue of profileIssues(parsed.data)) issues.push({ path: `${at}.${issue.path}`, message: issue.message });
      const current = this.#store.sql.deviceByName.get(parsed.data.name);
      if (profiles.some((p) => p.name === parsed.data.name)) issues.push({ path: `${at}.name`, message: `"${parsed.data.name}" appears twice in the file` });
      else if (!replace && current) issues.push({ path: `${at}.name`, message: `A device named "${parsed.data.name}" already exists` });
      profiles.push(current ? keptHostKeys(parsed.data, this.#record(current).profile) : parsed.data);
    });
    if (issues.length > 0) throw new AppError('VALIDATION', `Nothing was imported: ${counted(issues.length, 'problem')} in the profiles`, issues);
    this.#store.db.transaction(() => {
      for (const profile of profiles) {
        if (this.#store.sql.deviceByName.get(profile.name)) this.update(profile.name, profile, {}, actor, { hostKeys: 'given' });
        else this.add(profile, {}, actor);
      }
    })();
    return profiles.map((p) => this.get(p.name));
  }

  /** Profiles as technicians share them: with pinned host keys, without any secret. */
  export(names?: string[]): { devices: DeviceProfile[] } {
    // A device named twice is written once: two profiles of one name are refused by the import the file is for.
    const devices = names && names.length > 0 ? [...new Set(names)].map((n) => this.get(n)) : this.list();
    return { devices: devices.map((d) => d.profile) };
  }

  /** Everything needed to open an SSH connection to this device (and to its jump host, if any). */
  async connectOptions(name: string, overrides: Partial<ConnectOptions> = {}): Promise<ConnectOptions> {
    const device = this.get(name);
    const stored = (kind: 'password' | 'passphrase') => this.#secrets.get(secretRef(device.id, kind), `${name}'s ${kind === 'password' ? 'password' : 'key passphrase'}`) ?? undefined;
    const databasePassword = (source: string) => this.#secrets.get(databaseRef(device.id, source), `The database password of ${name}/${source}`) ?? undefined;
    return { ...(await this.#optionsFor(device.profile, stored, 'stored')), databasePassword, ...overrides };
  }

  /**
   * Connection options for a profile that is not stored yet, with its secrets as typed: the add
   * dialog logs in once before the device is added. Its host key must be confirmed already.
   */
  async draftConnectOptions(input: unknown, secrets: DeviceSecrets): Promise<{ profile: DeviceProfile; options: ConnectOptions }> {
    const profile = this.#parse(input);
    if (!profile.hostKey) throw new AppError('VALIDATION', `Confirm the host key of ${profile.host}:${profile.port} first`, [{ path: 'hostKey', message: 'Required' }]);
    return { profile, options: await this.#optionsFor(profile, (kind) => secrets[kind] || undefined, 'given') };
  }

  async #optionsFor(profile: DeviceProfile, secret: (kind: 'password' | 'passphrase') => string | undefined, secrets: 'stored' | 'given'): Promise<ConnectOptions> {
    const auth = await this.#auth(profile, secret, secrets);
    let jump: ConnectOptions | undefined;
    if (profile.jump) {
      const j = profile.jump;
      // The bastion's own key when the profile names one, else the device's credentials (as `ssh -J`).
      jump = { host: j.host, port: j.port, user: j.user, auth: j.identityFile ? await this.#keyAuth(profile.name, j.identityFile, 'jump host key') : auth, ...(j.hostKey ? { hostKey: j.hostKey } : {}) };
    }
    // A device's own silence limit (a satellite or cellular link that drops for longer) over the console's.
    const silent = profile.silentLinkSeconds ? { silentMs: profile.silentLinkSeconds * 1000, silentFrom: 'device' as const } : {};
    return { host: profile.host, port: profile.port, user: profile.user, auth, ...(profile.hostKey ? { hostKey: profile.hostKey } : {}), ...(jump ? { jump } : {}), ...silent };
  }

  /**
   * Connection options for a jump host given outside the inventory (adding a device): its own key
   * file when given, else the credentials typed for the device.
   */
  async jumpOptions(jump: JumpHost, device: { auth: 'key' | 'password' | 'agent'; identityFile?: string | undefined; passphrase?: string | undefined; password?: string | undefined }): Promise<ConnectOptions> {
    if (!jump.hostKey) throw new AppError('VALIDATION', `Confirm the host key of the jump host ${jump.host}:${jump.port} first`, [{ path: 'jump.hostKey', message: 'Required' }]);
    let auth: DeviceAuth;
    if (jump.identityFile) auth = await this.#keyAuth(jump.host, jump.identityFile, 'jump host key');
    else if (device.auth === 'key') {
      if (!device.identityFile) throw new AppError('VALIDATION', 'Key authentication needs a key file', [{ path: 'identityFile', message: 'Required' }]);
      auth = await this.#keyAuth(jump.host, device.identityFile, 'key', device.passphrase || undefined);
    } else if (device.auth === 'password') {
      if (!device.password) throw new AppError('VALIDATION', 'Password authentication needs a password', [{ path: 'password', message: 'Required' }]);
      auth = { kind: 'password', password: device.password };
    } else {
      const agentSocket = process.env.SSH_AUTH_SOCK;
      if (!agentSocket) throw new AppError('UNAVAILABLE', 'No SSH agent is running (SSH_AUTH_SOCK is not set)');
      auth = { kind: 'agent', agentSocket };
    }
    return { host: jump.host, port: jump.port, user: jump.user, auth, hostKey: jump.hostKey };
  }

  /**
   * A key file read and opened here, so what is wrong with it is said as that, at its field — not
   * as the device refusing a login, nor as a missing passphrase (a .pub or a text file picked by
   * mistake, or a passphrase that does not open the key). A key other users can read is refused, as ssh refuses it.
   */
  async #keyAuth(name: string, file: string, what: 'key' | 'jump host key', passphrase?: string): Promise<DeviceAuth> {
    const field = what === 'key' ? 'identityFile' : 'jump.identityFile';
    let privateKey: Buffer;
    try {
      privateKey = await readFile(keyFilePath(file));
    } catch (error) {
      throw new AppError('NOT_FOUND', `${name}: cannot read the ${what} file ${file} (${(error as NodeJS.ErrnoException).code})`);
    }
    // Loaded on use: commands that never log in to a device do not load SSH.
    const { privateKeyProblem } = await import('./ssh-connection');
    const problem = privateKeyProblem(privateKey, passphrase);
    if (problem === 'needs-passphrase') {
      throw new AppError('AUTH_FAILED', `${name}: the ${what} ${file} cannot be used: it is locked with a passphrase, and none was given`, [{ path: 'passphrase', message: 'This key needs its passphrase' }]);
    }
    if (problem === 'wrong-passphrase') {
      throw new AppError('AUTH_FAILED', `${name}: the ${what} ${file} cannot be used: the passphrase given does not open it`, [{ path: 'passphrase', message: 'Not the passphrase of this key' }]);
    }
    if (problem === 'public-key') {
      throw new AppError('VALIDATION', `${name}: ${file} is a public key: name its private key${file.endsWith('.pub') ? ` (${file.slice(0, -'.pub'.length)})` : ''}`, [{ path: field, message: 'A public key: name its private key' }]);
    }
    if (problem) throw new AppError('VALIDATION', `${name}: ${file} is not an SSH private key (${problem.notAKey})`, [{ path: field, message: 'Not an SSH private key' }]);
    // A private key, then: one other users can read is refused, as ssh refuses it (a .pub is readable by design).
    const exposed = keyFileProblem(keyFilePath(file));
    if (exposed) throw new AppError('VALIDATION', `${name}: ${exposed}`, [{ path: field, message: exposed }]);
    return passphrase ? { kind: 'key', privateKey, passphrase } : { kind: 'key', privateKey };
  }

  async #auth(profile: DeviceProfile, secret: (kind: 'password' | 'passphrase') => string | undefined, secrets: 'stored' | 'given'): Promise<DeviceAuth> {
    const { name, identityFile } = profile;
    switch (authOf(profile)) {
      case 'key': {
        if (!identityFile) throw new AppError('VALIDATION', `${name}: key authentication needs an identityFile`, [{ path: 'identityFile', message: 'Required' }]);
        return this.#keyAuth(name, identityFile, 'key', secret('passphrase'));
      }
      case 'password': {
        const password = secret('password');
        if (password === undefined) throw new AppError('VALIDATION', `${name}: password authentication is set but no password is ${secrets}`, [{ path: 'password', message: 'Required' }]);
        return { kind: 'password', password };
      }
      case 'agent': {
        const agentSocket = process.env.SSH_AUTH_SOCK;
        if (!agentSocket) throw new AppError('UNAVAILABLE', `${name}: uses the SSH agent, but no agent is running (SSH_AUTH_SOCK is not set)`);
        return { kind: 'agent', agentSocket };
      }
    }
  }

  summary(record: DeviceRecord, backups?: { last_success: string | null; last_status: string }): DeviceSummary {
    const { profile } = record;
    return {
      id: record.id,
      name: profile.name,
      host: profile.host,
      port: profile.port,
      user: profile.user,
      auth: authOf(profile),
      site: profile.site,
      tags: profile.tags,
      rpoMinutes: profile.rpoMinutes ?? null,
      hostKey: profile.hostKey ?? null,
      sourceCount: profile.sources.length,
      factsAt: record.factsAt,
      lastBackupAt: backups?.last_success ?? null,
      lastAttemptStatus: (backups?.last_status as DeviceSummary['lastAttemptStatus'] | undefined) ?? null,
    };
  }

  detail(record: DeviceRecord): DeviceDetail {
    return {
      id: record.id,
      profile: record.profile,
      hasPassword: record.hasPassword,
      hasPassphrase: record.hasPassphrase,
      databasePasswords: record.databasePasswords,
      facts: record.facts,
      factsAt: record.factsAt,
      disks: record.disks,
      updatedAt: record.updatedAt,
    };
  }

  #parse(input: unknown, previous?: DeviceProfile): DeviceProfile {
    const parsed = DeviceProfileSchema.safeParse(input);
    if (!parsed.success) throw new AppError('VALIDATION', 'Invalid device profile', issuesOf(parsed.error));
    const issues = profileIssues(parsed.data, previous);
    if (issues.length > 0) throw new AppError('VALIDATION', 'Invalid device profile', issues);
    return parsed.data;
  }

  /**
   * Stores the secrets given (an empty string forgets one). A database password belongs to a
   * postgres or mysql source of the profile; those of sources the profile no longer has are
   * forgotten with them.
   */
  #storeSecrets(id: string, secrets: DeviceSecrets, profile: DeviceProfile): void {
    for (const kind of ['password', 'passphrase'] as const) {
      const value = secrets[kind];
      if (value !== undefined) {
        if (value === '') this.#secrets.delete(secretRef(id, kind));
        else this.#secrets.set(secretRef(id, kind), value);
      }
    }
    const databases = new Set(profile.sources.filter((s) => isServerDatabase(s.kind)).map((s) => s.name));
    for (const [source, value] of Object.entries(secrets.databasePasswords ?? {})) {
      const path = `databasePasswords.${source}`;
      if (!databases.has(source)) throw new AppError('VALIDATION', `${profile.name} has no PostgreSQL or MySQL source named "${source}"`, [{ path, message: 'No such database source' }]);
      const error = databasePasswordError(value);
      if (error) throw new AppError('VALIDATION', error, [{ path, message: error }]);
      if (value === '') this.#secrets.delete(databaseRef(id, source));
      else this.#secrets.set(databaseRef(id, source), value);
    }
    for (const source of this.#secrets.refs(`device:${id}:db:`)) if (!databases.has(source)) this.#secrets.delete(databaseRef(id, source));
  }

  #record(row: DeviceRow): DeviceRecord {
    const profile = DeviceProfileSchema.parse(JSON.parse(row.profile));
    const disks = disksOf(row);
    return {
      id: row.id,
      profile,
      hasPassword: this.#secrets.has(secretRef(row.id, 'password')),
      hasPassphrase: this.#secrets.has(secretRef(row.id, 'passphrase')),
      databasePasswords: profile.sources.filter((s) => isServerDatabase(s.kind) && this.#secrets.has(databaseRef(row.id, s.name))).map((s) => s.name),
      facts: row.facts ? { ...(JSON.parse(row.facts) as Omit<DeviceFacts, 'disks'>), disks: disks?.disks ?? [] } : null,
      factsAt: row.facts_at,
      disks,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}
