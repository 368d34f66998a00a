/**
 * A repository on an SSH server, over SFTP (ssh2). Objects map 1:1 to files under the location's
 * path (`data/ab/<id>` is a file in the folder `data/ab`).
 *
 * - Atomic put: the bytes go to a temp file `.tmp-<random>` in the repository's root folder (same
 *   file system as every object), are fsynced (`fsync@openssh.com`) and renamed over the target with
 *   `posix-rename@openssh.com`, which replaces an existing object atomically (plain SFTP rename
 *   refuses an existing target). Temp files are never listed; `removeStaged` (prune) deletes leftovers.
 * - Speed: ssh2's SFTP sends one 32 KiB request and waits for its answer unless asked otherwise, and
 *   Nagle delays each small reply. Reads and writes here go out as 128 KiB requests, 16 in flight per
 *   transfer, with TCP_NODELAY on (see decision 014 for the measurement).
 * - The connection is opened on first use, shared by every operation, given up after 20 s in which
 *   the server neither sent nor took a byte (so a dead link fails instead of hanging) and opened again on the next operation after it
 *   dropped. A dropped connection fails the operations in flight with an `unavailable` error, which the
 *   retry wrapper (retry-backend.ts) retries; a wrong host key or credentials are never retried.
 * - Trust: the host key must be pinned (`JETVAULT_SFTP_HOST_KEY`) or listed in OpenSSH's known_hosts
 *   (`JETVAULT_SFTP_KNOWN_HOSTS`, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts); an unknown key
 *   is refused with HOST_KEY_UNKNOWN naming the fingerprint to verify, a changed one with
 *   HOST_KEY_MISMATCH, both before anything is sent (the same check as for devices).
 *
 * Location: `sftp:USER@HOST[:PORT]:/PATH` (PATH absolute, or relative to the login folder).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import { AppError } from '../../../shared/errors';
import type { DeviceAuth, DeviceConnection } from '../../devices/ssh-connection';
import { RepositoryError } from '../errors';
import type { Backend, ObjectInfo, StagedObject } from './backend';
import { locationCredentialsError } from '../../../shared/schemas/repositories';
import { keyFileProblem } from '../../devices/key-file';

const TEMP_PREFIX = '.tmp-';
/** Bytes per SFTP read/write request (OpenSSH's sftp-server takes up to 255 KiB). */
const CHUNK = 128 * 1024;
/** Requests in flight per transfer. */
const WINDOW = 16;
/** Folders read at once while listing (data/ has up to 256; each folder costs three round trips). */
const LIST_PARALLEL = 32;

const STATUS = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4 } as const;

export interface SftpLocation {
  user: string;
  host: string;
  port: number;
  path: string;
}

/** Parses `sftp:USER@HOST[:PORT]:PATH` (an IPv6 HOST in brackets); throws with the expected shape. */
export function parseSftpLocation(location: string): SftpLocation {
  const credentials = locationCredentialsError(location);
  if (credentials) throw new RepositoryError('missing', credentials);
  const match = /^sftp:([^@\s/:]+)@(\[[0-9a-fA-F:.]+\]|[^:@\s/[\]]+)(?::(\d{1,5}))?:(.+)$/.exec(location);
  const port = match?.[3] ? Number(match[3]) : 22;
  if (!match || port < 1 || port > 65535) throw new RepositoryError('invalid', `"${location}" is not an SFTP location: expected sftp:USER@HOST[:PORT]:/PATH`);
  // sftp:USER@HOST:2222 is a port with the path left out, not a folder "2222" in the home on port 22.
  if (!match[3] && /^\d{1,5}$/.test(match[4]!)) throw new RepositoryError('invalid', `"${location}" has no path (${match[4]} looks like a port): expected sftp:USER@HOST[:PORT]:/PATH`);
  return { user: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ''), port, path: match[4]!.replace(/(.)\/+$/, '$1') };
}

export interface SftpOptions {
  /** The pinned host key fingerprint (`SHA256:…`); without it, `knownHosts` decides. */
  hostKey?: string;
  /** The keys a known_hosts file lists for the server, read when the connection opens; none: the server is refused as unknown. */
  knownHosts?: () => KnownHostKey[];
  /** Credentials, resolved when the connection opens (a key file is read then). */
  auth: () => DeviceAuth;
  /** How long the server may stay silent before the connection is given up (20 s; decision 028). */
  silentMs?: number;
  readyTimeoutMs?: number;
  /** Bytes per read/write request (default 128 KiB) and requests in flight per transfer (default 16): for benchmarks. */
  requestBytes?: number;
  inFlight?: number;
}

/**
 * The pinned fingerprint for a location from `JETVAULT_SFTP_HOST_KEY`: one `SHA256:…`, or a
 * comma-separated list of `HOST[:PORT]=SHA256:…` entries (several servers, e.g. for copies).
 */
export function hostKeyFor(setting: string | undefined, where: Pick<SftpLocation, 'host' | 'port'>): string | undefined {
  let any: string | undefined;
  let host: string | undefined;
  for (const entry of (setting ?? '').split(/[\s,]+/).filter(Boolean)) {
    const at = entry.lastIndexOf('=');
    if (at < 0) {
      any = entry;
      continue;
    }
    const name = entry.slice(0, at);
    const fingerprint = entry.slice(at + 1);
    if (name === `${where.host}:${where.port}` || name === `[${where.host}]:${where.port}`) return fingerprint;
    if (name === where.host) host = fingerprint;
  }
  return host ?? any;
}

export interface KnownHostKey {
  type: string;
  fingerprint: string;
}

/**
 * The keys an OpenSSH known_hosts text lists for HOST (port 22) or `[HOST]:PORT`, hashed
 * (`|1|salt|hmac`) or plain names; `@revoked` and `@cert-authority` lines, negated and wildcard
 * patterns are not used.
 */
export function knownHostKeys(text: string, host: string, port: number): KnownHostKey[] {
  const name = port === 22 ? host : `[${host}]:${port}`;
  const matches = (pattern: string): boolean => {
    if (!pattern.startsWith('|1|')) return pattern === name;
    const [, , salt, hash] = pattern.split('|');
    return createHmac('sha1', Buffer.from(salt ?? '', 'base64')).update(name).digest('base64') === hash;
  };
  const out: KnownHostKey[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 3 || fields[0]!.startsWith('#') || fields[0]!.startsWith('@')) continue;
    const [hosts, type, key] = fields as [string, string, string];
    if (!hosts.split(',').some(matches)) continue;
    out.push({ type, fingerprint: `SHA256:${createHash('sha256').update(Buffer.from(key, 'base64')).digest('base64').replace(/=+$/, '')}` });
  }
  return out;
}

/** ssh2's algorithm names for a known_hosts key type (an RSA key is offered with SHA-2 signatures first). */
function algorithmsFor(types: string[]): string[] {
  return [...new Set(types.flatMap((t) => (t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t])))];
}

/**
 * Credentials from the environment, in this order: `JETVAULT_SFTP_IDENTITY` (a private key file,
 * `JETVAULT_SFTP_IDENTITY_PASSPHRASE` if it is encrypted), `JETVAULT_SFTP_PASSWORD`, the ssh-agent
 * (`SSH_AUTH_SOCK`), then `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` as OpenSSH would try them.
 */
export function sftpOptionsFromEnv(location: string, env: NodeJS.ProcessEnv): SftpOptions {
  const where = parseSftpLocation(location);
  const hostKey = hostKeyFor(env.JETVAULT_SFTP_HOST_KEY, where);
  const keyFile = (file: string): DeviceAuth => {
    const open = keyFileProblem(file);
    if (open) throw new AppError('AUTH_FAILED', `Cannot use the SSH key for ${location}: ${open}`);
    let privateKey: Buffer;
    try {
      privateKey = readFileSync(file);
    } catch (error) {
      throw new AppError('AUTH_FAILED', `Cannot read the SSH key ${file} for ${location}: ${(error as Error).message}`);
    }
    return env.JETVAULT_SFTP_IDENTITY_PASSPHRASE ? { kind: 'key', privateKey, passphrase: env.JETVAULT_SFTP_IDENTITY_PASSPHRASE } : { kind: 'key', privateKey };
  };
  const auth = (): DeviceAuth => {
    if (env.JETVAULT_SFTP_IDENTITY) return keyFile(env.JETVAULT_SFTP_IDENTITY);
    if (env.JETVAULT_SFTP_PASSWORD !== undefined) return { kind: 'password', password: env.JETVAULT_SFTP_PASSWORD };
    if (env.SSH_AUTH_SOCK) return { kind: 'agent', agentSocket: env.SSH_AUTH_SOCK };
    const home = env.HOME || homedir();
    const found = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => posix.join(home, '.ssh', f)).find((f) => existsSync(f));
    if (found) return keyFile(found);
    throw new AppError('AUTH_FAILED', `No credentials for ${location}: set JETVAULT_SFTP_IDENTITY (a private key file) or JETVAULT_SFTP_PASSWORD, or run an ssh-agent`);
  };
  const home = env.HOME || homedir();
  const files = env.JETVAULT_SFTP_KNOWN_HOSTS ? [env.JETVAULT_SFTP_KNOWN_HOSTS] : [posix.join(home, '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
  const knownHosts = (): KnownHostKey[] => files.flatMap((file) => (existsSync(file) ? knownHostKeys(readFileSync(file, 'utf8'), where.host, where.port) : []));
  return { ...(hostKey ? { hostKey } : {}), knownHosts, auth };
}

interface Session {
  connection: DeviceConnection;
  sftp: SFTPWrapper;
  /** Rejects when the connection ends: every request races it, so none waits on a dead link. */
  lost: Promise<never>;
}

type Callback<T> = (error: Error | null | undefined, value: T) => void;

function call<T>(start: (done: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))));
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

/** Pieces regrouped into request-sized buffers (a pack arrives as thousands of small pieces). */
function* requests(parts: readonly Buffer[], size = CHUNK): Generator<Buffer> {
  let group: Buffer[] = [];
  let bytes = 0;
  for (let part of parts) {
    while (part.length > 0) {
      const take = Math.min(part.length, size - bytes);
      group.push(part.subarray(0, take));
      bytes += take;
      part = part.subarray(take);
      if (bytes === size) {
        yield group.length === 1 ? group[0]! : Buffer.concat(group, bytes);
        group = [];
        bytes = 0;
      }
    }
  }
  if (bytes > 0) yield group.length === 1 ? group[0]! : Buffer.concat(group, bytes);
}

/** Runs `work` on each item with at most `limit` running. */
async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export class SftpBackend implements Backend {
  readonly location: string;
  readonly #where: SftpLocation;
  readonly #options: SftpOptions;
  #session: Promise<Session> | null = null;
  #closed = false;
  readonly #madeDirs = new Set<string>();
  readonly #chunk: number;
  readonly #window: number;

  constructor(location: string, options: SftpOptions) {
    this.location = location;
    this.#where = parseSftpLocation(location);
    this.#options = options;
    this.#chunk = options.requestBytes ?? CHUNK;
    this.#window = options.inFlight ?? WINDOW;
  }

  /** Connections opened so far (the first, and one per reconnect). */
  connections = 0;

  #path(name: string): string {
    if (name.includes('..') || name.startsWith('/')) throw new Error(`bad object name ${name}`);
    return name === '' ? this.#where.path : posix.join(this.#where.path, name);
  }

  #connect(): Promise<Session> {
    if (this.#closed) return Promise.reject(new RepositoryError('cancelled', `${this.location} was closed`)); // not worth a retry
    if (this.#session) return this.#session;
    const { user, host, port } = this.#where;
    const opening = (async (): Promise<Session> => {
      let connection: DeviceConnection;
      const known = this.#options.hostKey ? [] : (this.#options.knownHosts?.() ?? []);
      try {
        // ssh2 is loaded on first use, like the S3 SDK: a local backup should not pay for it.
        const { DeviceConnection } = await import('../../devices/ssh-connection');
        connection = await DeviceConnection.open({
          host,
          port,
          user,
          auth: this.#options.auth(),
          ...(this.#options.hostKey
            ? { hostKey: this.#options.hostKey }
            : { confirmHostKey: (seen: string) => known.some((k) => k.fingerprint === seen), hostKeyAlgorithms: algorithmsFor(known.map((k) => k.type)) }),
          role: 'repository',
          readyTimeoutMs: this.#options.readyTimeoutMs ?? 20_000,
          ...(this.#options.silentMs ? { silentMs: this.#options.silentMs } : {}),
        });
      } catch (error) {
        throw this.#connectError(error, known);
      }
      let sftp: SFTPWrapper;
      try {
        sftp = await connection.sftp();
      } catch (error) {
        connection.close();
        throw this.#connectError(error);
      }
      this.connections++;
      let markLost: (error: Error) => void = () => undefined;
      const lost = new Promise<never>((_, reject) => (markLost = reject));
      lost.catch(() => undefined);
      const end = (): void => {
        if (this.#session === opening) this.#session = null;
        markLost(new RepositoryError('unavailable', `the SFTP connection to ${user}@${host}:${port} was lost`));
        connection.close();
      };
      connection.onClose(end);
      sftp.on('close', end);
      sftp.on('error', () => undefined);
      return { connection, sftp, lost };
    })();
    this.#session = opening;
    opening.catch(() => {
      if (this.#session === opening) this.#session = null;
    });
    return opening;
  }

  /** Unreachable or timed out: worth retrying. Host key and credential refusals stay as they are. */
  #connectError(error: unknown, known: KnownHostKey[] = []): Error {
    if (!(error instanceof AppError)) return error as Error;
    if (error.code === 'UNAVAILABLE' || error.code === 'TIMEOUT') return new RepositoryError('unavailable', `Cannot reach ${this.location}: ${error.message}`);
    if (error.code === 'HOST_KEY_UNKNOWN' && known.length > 0) {
      return new AppError(
        'HOST_KEY_MISMATCH',
        `The host key of ${this.#where.host}:${this.#where.port} has CHANGED: known_hosts lists ${known.map((k) => k.fingerprint).join(', ')}, the server presented ${error.issues?.[0]?.message ?? 'another'}. Nothing was sent. ` +
          'If the server was reinstalled, verify its new key on the server and update known_hosts (ssh-keygen -R) or set JETVAULT_SFTP_HOST_KEY; otherwise this may be an attack.',
        error.issues,
      );
    }
    if (error.code === 'HOST_KEY_UNKNOWN') {
      const fingerprint = error.issues?.[0]?.message ?? '';
      return new AppError(
        'HOST_KEY_UNKNOWN',
        `The host key of ${this.#where.host}:${this.#where.port} (${fingerprint}) is not pinned for ${this.location}. Nothing was sent. ` +
          `Verify it on the server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and set JETVAULT_SFTP_HOST_KEY=${fingerprint} (or add the key to known_hosts)`,
        error.issues,
      );
    }
    return error;
  }

  /** Runs `work` on the live session; a connection that drops meanwhile fails it as `unavailable`. */
  async #run<T>(what: string, name: string, work: (s: Session) => Promise<T>): Promise<T> {
    const session = await this.#connect();
    try {
      return await Promise.race([work(session), session.lost]);
    } catch (error) {
      throw this.#fail(what, name, error);
    }
  }

  #fail(what: string, name: string, error: unknown): Error {
    if (error instanceof AppError) return error;
    const status = statusOf(error);
    const message = (error as Error).message ?? String(error);
    if (status === STATUS.NO_SUCH_FILE) return new RepositoryError('not-found', `${name} not found in ${this.location}`);
    if (status === STATUS.PERMISSION_DENIED) return new RepositoryError('denied', `SFTP ${what} of ${name} in ${this.location}: permission denied`);
    if (status === undefined && /No response from server|closed|reset|ECONN|EPIPE|timed out|not connected/i.test(message)) return new RepositoryError('unavailable', `SFTP ${what} of ${name} in ${this.location} failed: ${message}`);
    // SFTP v3 has no "disk full": OpenSSH's server answers a write that hit ENOSPC or a quota with a bare "Failure".
    const why = status === STATUS.FAILURE ? ' (the server gives no reason; for a write, a full disk or a quota on the server is the usual cause)' : '';
    return new RepositoryError('corrupt', `SFTP ${what} of ${name} in ${this.location} failed: ${message}${why}`);
  }

  /** One request on a session, failing as soon as the connection drops. */
  #request<T>(s: Session, start: (done: Callback<T>) => void): Promise<T> {
    return Promise.race([call(start), s.lost]);
  }

  async #writeAll(s: Session, handle: Buffer, chunks: Iterable<Buffer>, start = 0): Promise<number> {
    let position = start;
    const inFlight = new Set<Promise<unknown>>();
    for (const chunk of chunks) {
      const at = position;
      position += chunk.length;
      const written = this.#request<void>(s, (done) => s.sftp.write(handle, chunk, 0, chunk.length, at, (e) => done(e, undefined)));
      inFlight.add(written);
      void written.then(
        () => inFlight.delete(written),
        () => undefined,
      );
      if (inFlight.size >= this.#window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    return position - start;
  }

  /** Reads exactly `length` bytes at `position` (a server may answer a read short). */
  async #readExactly(s: Session, handle: Buffer, into: Buffer, offset: number, length: number, position: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const n = await this.#request<number>(s, (cb) => s.sftp.read(handle, into, offset + done, length - done, position + done, (e, bytes) => cb(e, bytes)));
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  async #fsync(s: Session, handle: Buffer): Promise<void> {
    try {
      await this.#request<void>(s, (done) => s.sftp.ext_openssh_fsync(handle, (e) => done(e, undefined)));
    } catch (error) {
      if (!/does not support/.test((error as Error).message)) throw error; // no fsync@openssh.com: close is all there is
    }
  }

  async #rename(s: Session, from: string, to: string): Promise<void> {
    try {
      await this.#request<void>(s, (done) => s.sftp.ext_openssh_rename(from, to, (e) => done(e, undefined)));
      return;
    } catch (error) {
      if (!/does not support/.test((error as Error).message)) throw error;
    }
    // Without posix-rename@openssh.com, SFTP's rename refuses an existing target: the only objects
    // rewritten under the same name are small (locks, keys), so remove then rename (not atomic).
    await this.#request<void>(s, (done) => s.sftp.unlink(to, (e) => done(e && statusOf(e) !== STATUS.NO_SUCH_FILE ? e : undefined, undefined)));
    await this.#request<void>(s, (done) => s.sftp.rename(from, to, (e) => done(e, undefined)));
  }

  async #ensureDir(s: Session, dir: string): Promise<void> {
    if (this.#madeDirs.has(dir)) return;
    try {
      await this.#request<void>(s, (done) => s.sftp.mkdir(dir, (e) => done(e, undefined)));
    } catch (error) {
      if (statusOf(error) === STATUS.NO_SUCH_FILE && dir !== posix.dirname(dir)) {
        await this.#ensureDir(s, posix.dirname(dir));
        return this.#ensureDir(s, dir);
      }
      // OpenSSH answers a plain "Failure" for an existing folder: check it is one.
      const stats = await this.#request<Stats>(s, (done) => s.sftp.stat(dir, done)).catch(() => null);
      if (!stats?.isDirectory()) throw error;
    }
    this.#madeDirs.add(dir);
  }

  async #open(s: Session, path: string, flags: 'r' | 'wx'): Promise<Buffer> {
    return this.#request<Buffer>(s, (done) => s.sftp.open(path, flags, { mode: 0o600 }, done));
  }

  #close(s: Session, handle: Buffer): Promise<void> {
    return this.#request<void>(s, (done) => s.sftp.close(handle, (e) => done(e, undefined)));
  }

  #unlinkQuietly(s: Session, path: string): Promise<void> {
    return this.#request<void>(s, (done) => s.sftp.unlink(path, () => done(undefined, undefined))).catch(() => undefined);
  }

  /** A folder's entries: open, read until EOF, close without waiting (ssh2's own readdir waits for the close). */
  async #readdir(s: Session, path: string): Promise<{ filename: string; attrs: Stats }[]> {
    const handle = await this.#request<Buffer>(s, (done) => s.sftp.opendir(path, done));
    const entries: { filename: string; attrs: Stats }[] = [];
    try {
      for (;;) {
        const batch = await this.#request<{ filename: string; attrs: Stats }[] | null>(s, (done) =>
          s.sftp.readdir(handle, (e, list) => (e && statusOf(e) === STATUS.EOF ? done(undefined, null) : done(e, list))),
        );
        if (!batch) return entries;
        entries.push(...batch);
      }
    } finally {
      this.#close(s, handle).catch(() => undefined);
    }
  }

  #tempName(): string {
    return this.#path(`${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  }

  async put(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    const target = this.#path(name);
    await this.#run('upload', name, async (s) => {
      const temp = this.#tempName();
      const handle = await this.#open(s, temp, 'wx');
      try {
        await this.#writeAll(s, handle, requests(Buffer.isBuffer(data) ? [data] : data, this.#chunk));
        await this.#fsync(s, handle);
        await this.#close(s, handle);
        await this.#ensureDir(s, posix.dirname(target));
        await this.#rename(s, temp, target);
      } catch (error) {
        await this.#close(s, handle).catch(() => undefined);
        await this.#unlinkQuietly(s, temp);
        throw error;
      }
    });
  }

  /**
   * Create-only put (leases): the bytes go to a temp file, then `hardlink@openssh.com` links it under
   * the name — link(2) on the server, which fails if the name exists, so of two racing writers exactly
   * one wins. False when the name already existed (nothing was changed).
   */
  async putIfAbsent(name: string, data: Buffer): Promise<boolean> {
    const target = this.#path(name);
    return this.#run('create-only upload', name, async (s) => {
      const temp = this.#tempName();
      const handle = await this.#open(s, temp, 'wx');
      try {
        await this.#writeAll(s, handle, requests([data], this.#chunk));
        await this.#fsync(s, handle);
        await this.#close(s, handle);
        await this.#ensureDir(s, posix.dirname(target));
        try {
          await this.#request<void>(s, (done) => s.sftp.ext_openssh_hardlink(temp, target, (e) => done(e, undefined)));
          return true;
        } catch (error) {
          if (/does not support/.test((error as Error).message)) throw new RepositoryError('denied', `${this.location}: the server has no hardlink@openssh.com, so no create-only writes`);
          // OpenSSH answers EEXIST with a plain "Failure": the name is taken if it is there now.
          const there = await this.#request<Stats>(s, (done) => s.sftp.stat(target, done)).catch(() => null);
          if (there) return false;
          throw error;
        }
      } finally {
        await this.#close(s, handle).catch(() => undefined);
        await this.#unlinkQuietly(s, temp);
      }
    });
  }

  /**
   * A temp file in the root written as pieces arrive (128 KiB requests, as many in flight as the
   * uploader queues); commit = fsync, close, rename into place. Bound to the connection it started
   * on: if that drops, every later call fails `unavailable` (the retry wrapper then puts the pack whole).
   */
  stage(): StagedObject {
    const temp = this.#tempName();
    const opened = this.#connect().then(async (s) => ({ s, handle: await this.#open(s, temp, 'wx') }));
    opened.catch(() => undefined);
    let position = 0;
    let pending = 0;
    let failure: Error | null = null;
    let group: Buffer[] = [];
    let groupBytes = 0;
    const inFlight = new Set<Promise<void>>();
    const send = (final: boolean): void => {
      if (groupBytes === 0 || (!final && groupBytes < this.#chunk)) return;
      const pieces = group;
      group = [];
      groupBytes = 0;
      for (const chunk of requests(pieces, this.#chunk)) {
        const at = position;
        position += chunk.length;
        const written = opened
          .then(({ s, handle }) => (failure ? undefined : this.#request<void>(s, (done) => s.sftp.write(handle, chunk, 0, chunk.length, at, (e) => done(e, undefined)))))
          .catch((error: unknown) => {
            failure ??= this.#fail('upload', 'a staged pack', error);
          })
          .finally(() => {
            pending -= chunk.length;
            inFlight.delete(written);
          });
        inFlight.add(written);
      }
    };
    const settle = async (): Promise<void> => {
      send(true);
      while (inFlight.size > 0) await Promise.all(inFlight);
    };
    const cleanup = async (): Promise<void> => {
      const o = await opened.catch(() => null);
      if (!o) return;
      await this.#close(o.s, o.handle).catch(() => undefined);
      await this.#unlinkQuietly(o.s, temp);
    };
    return {
      write: (piece) => {
        if (failure) return; // the commit reports it
        pending += piece.length;
        group.push(piece);
        groupBytes += piece.length;
        if (groupBytes >= this.#chunk) send(false);
      },
      get pending() {
        return pending;
      },
      drained: async () => {
        await settle();
        await opened.catch((error: unknown) => {
          failure ??= this.#fail('upload', 'a staged pack', error);
        });
        if (failure) throw failure;
      },
      commit: async (name) => {
        await settle();
        const o = await opened.catch((error: unknown) => {
          failure ??= this.#fail('upload', name, error);
          return null;
        });
        if (failure || !o) {
          await cleanup();
          throw failure ?? new RepositoryError('unavailable', `upload of ${name} to ${this.location} failed`);
        }
        const target = this.#path(name);
        try {
          await Promise.race([
            (async () => {
              await this.#fsync(o.s, o.handle);
              await this.#close(o.s, o.handle);
              await this.#ensureDir(o.s, posix.dirname(target));
              await this.#rename(o.s, temp, target);
            })(),
            o.s.lost,
          ]);
        } catch (error) {
          await cleanup();
          throw this.#fail('upload', name, error);
        }
      },
      discard: async () => {
        failure ??= new RepositoryError('cancelled', 'discarded');
        await settle();
        await cleanup();
      },
    };
  }

  async removeStaged(): Promise<number> {
    return this.#run('cleanup', TEMP_PREFIX, async (s) => {
      const entries = await this.#readdir(s, this.#where.path).catch((error: unknown) => {
        if (statusOf(error) === STATUS.NO_SUCH_FILE) return [];
        throw error;
      });
      const stale = entries.filter((e) => e.filename.startsWith(TEMP_PREFIX));
      await inParallel(stale, LIST_PARALLEL, (e) => this.#unlinkQuietly(s, posix.join(this.#where.path, e.filename)));
      return stale.length;
    });
  }

  /**
   * Two round trips for a small object (open; then its size and first 128 KiB asked for at once),
   * then the rest in parallel requests; the handle is closed without waiting for the answer.
   */
  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    if (range && range.length === 0) return Buffer.alloc(0);
    return this.#run('download', name, async (s) => {
      const handle = await this.#open(s, this.#path(name), 'r');
      try {
        const start = range?.offset ?? 0;
        let out: Buffer;
        let got = 0;
        if (range) {
          out = Buffer.allocUnsafe(range.length);
        } else {
          const head = Buffer.allocUnsafe(this.#chunk);
          const [stats, n] = await Promise.all([
            this.#request<Stats>(s, (done) => s.sftp.fstat(handle, done)),
            this.#request<number>(s, (done) => s.sftp.read(handle, head, 0, head.length, 0, (e, bytes) => done(e, bytes))),
          ]);
          out = Buffer.allocUnsafe(stats.size);
          got = head.copy(out, 0, 0, Math.min(n, stats.size));
        }
        const size = out.length;
        const offsets: number[] = [];
        for (let at = got; at < size; at += this.#chunk) offsets.push(at);
        await inParallel(offsets, this.#window, async (at) => {
          const n = await this.#readExactly(s, handle, out, at, Math.min(this.#chunk, size - at), start + at);
          got += n;
        });
        if (got < size) throw new RepositoryError('corrupt', `${name} in ${this.location}: asked for ${size} bytes at ${start}, got ${got}`);
        return out;
      } finally {
        this.#close(s, handle).catch(() => undefined);
      }
    });
  }

  async stat(name: string): Promise<number | null> {
    return this.#run('stat', name, async (s) => {
      try {
        return (await this.#request<Stats>(s, (done) => s.sftp.stat(this.#path(name), done))).size;
      } catch (error) {
        if (statusOf(error) === STATUS.NO_SUCH_FILE) return null;
        throw error;
      }
    });
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const start = prefix.endsWith('/') ? prefix.slice(0, -1) : posix.dirname(prefix) === '.' ? '' : posix.dirname(prefix);
    await this.#run('listing', prefix, async (s) => {
      const walk = async (rel: string): Promise<void> => {
        let entries: { filename: string; attrs: Stats }[];
        try {
          entries = await this.#readdir(s, this.#path(rel));
        } catch (error) {
          if (statusOf(error) === STATUS.NO_SUCH_FILE) return;
          throw error;
        }
        const dirs: string[] = [];
        for (const entry of entries) {
          if (entry.filename.startsWith(TEMP_PREFIX) || entry.filename === '.' || entry.filename === '..') continue;
          const name = rel === '' ? entry.filename : `${rel}/${entry.filename}`;
          if (entry.attrs.isDirectory()) dirs.push(name);
          else if (entry.attrs.isFile() && name.startsWith(prefix)) out.push({ name, size: entry.attrs.size });
        }
        await inParallel(dirs, LIST_PARALLEL, walk);
      };
      await walk(start);
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async delete(name: string): Promise<void> {
    await this.#run('delete', name, async (s) => {
      try {
        await this.#request<void>(s, (done) => s.sftp.unlink(this.#path(name), (e) => done(e, undefined)));
      } catch (error) {
        if (statusOf(error) !== STATUS.NO_SUCH_FILE) throw error;
      }
    });
  }

  /** The repository exists when its folder holds a config object. */
  async exists(): Promise<boolean> {
    return (await this.stat('config')) !== null;
  }

  /** Creates the repository's folder (and its parents) if it is not there yet (`init`). */
  async ensureRoot(): Promise<void> {
    await this.#run('folder creation', this.#where.path, (s) => this.#ensureDir(s, this.#where.path));
  }

  /** Closes the connection (a CLI command that ends must, or the process waits on it). */
  close(): void {
    this.#closed = true;
    void this.#session?.then((s) => s.connection.close()).catch(() => undefined);
    this.#session = null;
  }
}
