/**
 * A trusted SSH connection to one device, on ssh2. The host key is checked before authentication:
 * an unknown key fails with HOST_KEY_UNKNOWN (carrying the fingerprint to confirm) unless the caller
 * confirms it; a key other than the pinned one fails with HOST_KEY_MISMATCH and nothing is sent.
 * A device that goes silent is given up (`silence-watch.ts`): without that ssh2 waits forever on a
 * dead link.
 */
import { createHash } from 'node:crypto';
import { Duplex, finished, pipeline } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Readable, Writable } from 'node:stream';
import ssh2, { Client } from 'ssh2';
import type { ClientChannel, ConnectConfig, SFTPWrapper } from 'ssh2';
import { AppError } from '../../shared/errors';
import { commandText } from './shell-quote';
import { RateLimiter, throttled } from './rate-limit';
import { watchSilence } from './silence-watch';
import type { RawShell } from './shell-quote';

export type DeviceAuth =
  | { kind: 'key'; privateKey: Buffer | string; passphrase?: string }
  | { kind: 'password'; password: string }
  | { kind: 'agent'; agentSocket: string };

export interface ConnectOptions {
  host: string;
  port: number;
  user: string;
  auth: DeviceAuth;
  /** The pinned fingerprint (`SHA256:…`). Without it, `confirmHostKey` decides. */
  hostKey?: string;
  /** Asked only on first contact (no pinned key); returning false refuses the connection. */
  confirmHostKey?: (fingerprint: string) => boolean;
  /** Already-open connection to a jump host to tunnel through. */
  via?: DeviceConnection;
  /** A jump host to open first and tunnel through (closed with this connection). */
  jump?: ConnectOptions;
  /** What is connected to, in messages and in the host-key issue path: a device (default), its jump host, or a repository's SFTP server. */
  role?: 'device' | 'jump' | 'repository';
  readyTimeoutMs?: number;
  /** Host key algorithms to offer, in order (the types a trust store knows for this host); ssh2's defaults otherwise. */
  hostKeyAlgorithms?: string[];
  /**
   * How long the peer may stay silent — nothing from it, and nothing of ours taken by it — before
   * the connection is given up (the console's `silentLinkSeconds`; 20 s by default). Keepalives go
   * out every quarter of it. A jump host gets the same.
   */
  silentMs?: number;
  /** Where `silentMs` comes from, for the message that gives the connection up: the device's own profile, or (default) the console's setting. */
  silentFrom?: 'device' | 'console';
  /** Bytes per second each way for commands' stdout and stdin (0: unlimited), read as each command starts. */
  rateLimit?: () => number;
  /** The device's database passwords by source name, for the commands of those sources. */
  databasePassword?: (source: string) => string | undefined;
  /** Gives up connecting at once when it fires (a cancelled job), with a CANCELLED error. */
  signal?: AbortSignal;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stderr: string;
}

export interface RunningCommand {
  /** Must be read (or resumed): an SSH channel does not close while output is waiting. */
  stdout: Readable;
  stdin: Writable;
  /** Settles when the channel closes, with the exit status from the `close` event. */
  done: Promise<ExecResult>;
}

const STDERR_LIMIT = 64 * 1024;
/**
 * How long a channel that failed to open waits for the connection to close: a link that died says
 * so within a tick or two (the reset, then the close); a refusal on a live link waits this long.
 */
const LOST_GRACE_MS = 1000;

/**
 * How long a command waits for a session of its connection when the device's sshd refused one
 * because it allows no more at once (MaxSessions, 10 by default): the sessions open then are the
 * job's own and end as their commands do (a database loading for minutes holds one that long).
 */
const SESSION_WAIT_MS = 5 * 60_000;
/** How often a refused session is asked for again while none of this connection's has ended (sshd frees one a moment after its close). */
const SESSION_RETRY_MS = 100;
/**
 * Tries at a connection whose server closes it before the SSH handshake is done. sshd drops new
 * connections past MaxStartups (10 unauthenticated at once on a stock sshd, then 30% of new ones) before
 * it sends a byte — a jump host that many devices' backups log in through at once does — and a flaky
 * link drops a handshake now and then. Asked again after 0.2, 0.4, 0.8, 1.6 s, each ±50% (the
 * connections a bastion dropped together must not come back together).
 */
export const HANDSHAKE_ATTEMPTS = 5;
const HANDSHAKE_RETRY_MS = 200;
/** Errors of `#connect` that another try may not meet: the server closed before the handshake was done. */
const cutHandshakes = new WeakSet<Error>();

/** How a connection is named in its errors: `jump host user@host:port (via …)`. */
const targetOf = (options: ConnectOptions) =>
  `${options.role === 'jump' ? 'jump host ' : options.role === 'repository' ? 'repository server ' : ''}${options.user}@${options.host}:${options.port}${options.via ? ` (via ${options.via.target})` : ''}`;

/** sshd refused the session itself — its MaxSessions reached ("open failed"), not the link or the command. */
const sessionRefused = (error: Error & { reason?: unknown }) => typeof error.reason === 'number' && /Channel open failure/.test(error.message);

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the key blob's SHA-256. */
export function fingerprintOf(hostKey: Buffer): string {
  return `SHA256:${createHash('sha256').update(hostKey).digest('base64').replace(/=+$/, '')}`;
}

/**
 * What keeps a private key file from being used for a login, or null when it opens: as ssh2 would
 * find it at the handshake, but told apart (a .pub or a text file picked by mistake is not a missing
 * passphrase). `utils` is read from the default export: Node does not find it among ssh2's names.
 */
export function privateKeyProblem(key: Buffer, passphrase?: string): 'needs-passphrase' | 'wrong-passphrase' | 'public-key' | { notAKey: string } | null {
  const parsed = ssh2.utils.parseKey(key, passphrase);
  if (parsed instanceof Error) {
    if (/no passphrase given/i.test(parsed.message)) return 'needs-passphrase';
    if (/bad passphrase|integrity check failed|decrypt/i.test(parsed.message)) return 'wrong-passphrase';
    return { notAKey: parsed.message };
  }
  return parsed.isPrivateKey() ? null : 'public-key';
}

/** A pinned key the host does not present: which host it was, and the key it presented instead. */
export class HostKeyMismatch extends AppError {
  readonly role: NonNullable<ConnectOptions['role']>;
  readonly presented: string;

  constructor(message: string, { role, presented }: { role: NonNullable<ConnectOptions['role']>; presented: string }) {
    super('HOST_KEY_MISMATCH', message);
    this.role = role;
    this.presented = presented;
  }
}

function classify(error: Error & { level?: string; code?: string }, target: string): AppError {
  if (error instanceof AppError) return error;
  if (error.level === 'client-authentication') return new AppError('AUTH_FAILED', `${target} refused the credentials (all authentication methods failed)`);
  if (error.level === 'client-timeout' || /Timed out/i.test(error.message)) return new AppError('TIMEOUT', `${target} did not answer in time`);
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET'].includes(error.code ?? '')) {
    return new AppError('UNAVAILABLE', `${target} is unreachable (${error.code})`);
  }
  if (/passphrase|Encrypted private key|Cannot parse privateKey/i.test(error.message)) {
    return new AppError('AUTH_FAILED', `The private key for ${target} cannot be used: ${error.message}`);
  }
  return new AppError('UNAVAILABLE', `SSH to ${target} failed: ${error.message}`);
}

/** Where commands run: a device over SSH, or this machine (local folders, tests of the scripts). */
export interface CommandRunner {
  readonly target: string;
  exec(command: RawShell, signal?: AbortSignal): Promise<RunningCommand>;
  run(command: RawShell, options?: { signal?: AbortSignal; maxBytes?: number }): Promise<string>;
  /** A database source's stored password, by source name (see sources/db-password.ts). */
  readonly databasePassword?: ((source: string) => string | undefined) | undefined;
}

/**
 * A command whose connection died under it — the device stopped answering (silence-watch.ts) or the link
 * dropped — as UNAVAILABLE, saying why: not "failed (exit null)", as if the command itself had
 * failed on the device. Null when the command ran to its end.
 */
export function connectionLost(result: ExecResult, what: string): AppError | null {
  return result.signal === 'CONNECTION_LOST' ? new AppError('UNAVAILABLE', `${what} was cut off: ${result.stderr}`) : null;
}

/** Collects a command's stdout; a non-zero exit is an error carrying stderr. */
export async function runToString(runner: CommandRunner, command: RawShell, { signal, maxBytes = 16 * 1024 * 1024 }: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<string> {
  const running = await runner.exec(command, signal);
  const chunks: Buffer[] = [];
  let size = 0;
  running.stdout.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  });
  running.stdin.end();
  const result = await running.done;
  if (signal?.aborted) throw new AppError('CANCELLED', 'Cancelled');
  const lost = connectionLost(result, `A command on ${runner.target}`);
  if (lost) throw lost;
  if (result.code !== 0) {
    throw new AppError('REMOTE_COMMAND_FAILED', `A command on ${runner.target} failed (exit ${result.code ?? result.signal}): ${result.stderr.trim() || 'no error output'}`);
  }
  if (size > maxBytes) throw new AppError('INTERNAL', `Output of a command on ${runner.target} exceeded ${maxBytes} bytes`);
  return Buffer.concat(chunks).toString('utf8');
}

export class DeviceConnection implements CommandRunner {
  readonly target: string;
  readonly fingerprint: string;
  readonly #client: Client;
  #closed = false;
  /** Why the connection died ("the connection to … was lost (ECONNRESET)"), once it has. */
  #lostWhy: string | null = null;
  /** Why the connection is dying, once it was found silent or failed (its `close` may be still to come); null before. */
  #ending: () => string | null = () => null;
  /** Commands still running: settled by hand if the connection dies under them. */
  readonly #open = new Set<(lost: string) => void>();
  /** Commands waiting for a session: woken when one of this connection's sessions ends (or it dies). */
  readonly #sessionWaiters = new Set<() => void>();

  /** The jump host connection this one tunnels through, when it opened it itself. */
  readonly #jump: DeviceConnection | null;
  /** The link's bandwidth limit, one limiter per direction shared by the commands running at once. */
  readonly #rate: (() => number) | null;
  readonly #down: RateLimiter | null;
  readonly #up: RateLimiter | null;

  readonly databasePassword: ((source: string) => string | undefined) | undefined;

  private constructor(
    client: Client,
    target: string,
    fingerprint: string,
    jump: DeviceConnection | null,
    rate: (() => number) | undefined,
    databasePassword: ((source: string) => string | undefined) | undefined,
    /** The stream the SSH session runs over (a TCP socket, or a jump host's tunnel), watched for silence. */
    transport: Duplex,
    /** How long the device may stay silent before it is given up. */
    silentMs: number,
    /** What decides `silentMs`, said when it gives up (a device's profile, the console's setting; nothing to say of a repository server's). */
    setBy: 'device' | 'console' | null,
  ) {
    this.#client = client;
    this.databasePassword = databasePassword;
    this.target = target;
    this.fingerprint = fingerprint;
    this.#jump = jump;
    this.#rate = rate ?? null;
    this.#down = rate ? new RateLimiter() : null;
    this.#up = rate ? new RateLimiter() : null;
    // Why the connection died, for the commands it cuts off.
    let died: (Error & { code?: string }) | null = null;
    client.on('error', (error: Error & { code?: string }) => {
      died ??= error;
    });
    let silent = false;
    const watch = watchSilence(transport, silentMs, () => {
      silent = true;
      transport.destroy();
    });
    const describe = () =>
      silent
        ? `${target} stopped answering (nothing heard from it for ${Math.round(silentMs / 1000)} s: the link went silent, or the device hung${setBy ? `; on a link that drops for longer, raise ${setBy === 'device' ? `"Give up when silent for" in the device's settings (silentLinkSeconds in its profile)` : '"Give up on a silent device after" in Settings, or silentLinkSeconds with jetvault settings set'}` : ''})`
        : `the connection to ${target} was lost${died ? ` (${died.code ?? died.message})` : ''}`;
    this.#ending = () => (silent || died ? describe() : null);
    client.on('close', () => {
      watch.stop();
      this.#closed = true;
      // A tunnel closes when its jump host's connection dies (silent, reset) — before this one can
      // tell: say what happened there, not only that this connection was lost.
      const jumpHost = this.#jump;
      const viaJump = silent || !jumpHost ? null : jumpHost.#ending();
      this.#jump?.close();
      const why = viaJump ? `the connection to ${target} was lost: ${viaJump}` : describe();
      this.#lostWhy = why;
      // ssh2 does not close channels whose connection died (silent, reset): do it here,
      // so nobody waits forever on a command that can no longer finish.
      for (const lose of [...this.#open]) lose(why);
      for (const wake of [...this.#sessionWaiters]) wake();
    });
  }

  /** A session of this connection ended: one more may be granted. */
  #sessionEnded(): void {
    for (const wake of [...this.#sessionWaiters]) wake();
  }

  /** Resolves once a session of this connection has ended, after `ms` at most, or when the connection dies or `signal` aborts. */
  #sessionFreed(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#sessionWaiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#sessionWaiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Opens a session for `exec`. When the device's sshd refuses one because it allows no more at once
   * (MaxSessions, 10 by default) the command waits until one of this connection's sessions ends, or
   * SESSION_RETRY_MS (sshd frees a session a moment after its close reaches us), and asks again —
   * for SESSION_WAIT_MS at most — instead of failing with "open failed": a whole-device restore asks
   * for more than a stock sshd's 10 at once while it plans. No limit is learnt: the number open when
   * sshd refused can be lower than its limit (sessions it has not freed yet, others granted but not
   * yet answered), and a limit learnt too low would hold back the command a job's long-running
   * sessions wait for.
   */
  async #openSession(command: RawShell, signal: AbortSignal | undefined): Promise<ClientChannel> {
    const deadline = Date.now() + SESSION_WAIT_MS;
    for (;;) {
      if (this.#closed) throw await this.#notOpened(new Error('Not connected'));
      if (signal?.aborted) throw new AppError('CANCELLED', 'Cancelled');
      const outcome = await new Promise<{ channel: ClientChannel } | { error: Error }>((resolve) => {
        this.#request(
          () => this.#client.exec(commandText(command), (error, channel) => resolve(error ? { error } : { channel })),
          (error) => resolve({ error }),
        );
      });
      if ('channel' in outcome) return outcome.channel;
      if (!sessionRefused(outcome.error) || this.#closed) throw outcome.error;
      if (Date.now() > deadline) throw this.#noSession();
      await this.#sessionFreed(SESSION_RETRY_MS, signal);
    }
  }

  #noSession(): AppError {
    return new AppError(
      'UNAVAILABLE',
      `${this.target} refused another SSH session: its sshd allows no more at once on a connection (MaxSessions) and none of this job's ended within ${SESSION_WAIT_MS / 60_000} minutes. Nothing more was started on the device.`,
    );
  }

  static async open(options: ConnectOptions): Promise<DeviceConnection> {
    if (options.jump && !options.via) {
      const jump = await DeviceConnection.open({ ...options.jump, role: 'jump', ...(options.silentMs ? { silentMs: options.silentMs } : {}), ...(options.silentFrom ? { silentFrom: options.silentFrom } : {}), ...(options.signal ? { signal: options.signal } : {}) });
      try {
        const connection = await DeviceConnection.#connectTrying({ ...options, via: jump }, jump);
        return connection;
      } catch (error) {
        jump.close();
        throw error;
      }
    }
    return DeviceConnection.#connectTrying(options, null);
  }

  /** #connect, tried again while the server closes the connection before the handshake (HANDSHAKE_ATTEMPTS). */
  static async #connectTrying(options: ConnectOptions, jump: DeviceConnection | null): Promise<DeviceConnection> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await DeviceConnection.#connect(options, jump);
      } catch (error) {
        if (!(error instanceof AppError) || !cutHandshakes.has(error)) throw error;
        if (attempt >= HANDSHAKE_ATTEMPTS) {
          throw new AppError(
            'UNAVAILABLE',
            `${targetOf(options)} closed the connection before the SSH handshake was done, ${attempt} times in a row: its sshd may be refusing new connections (too many at once: MaxStartups, on a jump host many devices are reached through), or the link drops them (${error.message})`,
          );
        }
        await delay(HANDSHAKE_RETRY_MS * 2 ** (attempt - 1) * (0.5 + Math.random()), undefined, options.signal ? { signal: options.signal } : {}).catch(() => {
          throw new AppError('CANCELLED', `Connecting to ${targetOf(options)} was cancelled`);
        });
      }
    }
  }

  static async #connect(options: ConnectOptions, jump: DeviceConnection | null): Promise<DeviceConnection> {
    const isJump = options.role === 'jump';
    const isRepository = options.role === 'repository';
    const target = targetOf(options);
    const client = new Client();
    const silentMs = options.silentMs ?? 20_000;
    let seen: string | null = null;
    let refusal: AppError | null = null;
    const config: ConnectConfig = {
      host: options.host,
      port: options.port,
      username: options.user,
      readyTimeout: options.readyTimeoutMs ?? 20_000,
      // Keepalives bring replies over an idle link; whether the device went silent is `watchSilence`'s
      // call (it counts our own data leaving too), so ssh2 never gives up on unanswered ones itself.
      keepaliveInterval: Math.max(50, Math.round(silentMs / 4)),
      keepaliveCountMax: Number.MAX_SAFE_INTEGER,
      hostVerifier: (key: Buffer) => {
        seen = fingerprintOf(key);
        if (options.hostKey) {
          if (seen === options.hostKey) return true;
          refusal = new HostKeyMismatch(
            `The host key of ${target} has CHANGED: expected ${options.hostKey}, got ${seen}. Nothing was sent. ` +
              (isRepository
                ? 'If the server was reinstalled, verify its new fingerprint on the server (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and update JETVAULT_SFTP_HOST_KEY; otherwise this may be an attack.'
                : 'If it was reinstalled, verify the new fingerprint on it, then pin it (Host key on the device page, or jetvault device trust); otherwise this may be an attack.'),
            { role: options.role ?? 'device', presented: seen },
          );
          return false;
        }
        if (options.confirmHostKey?.(seen)) return true;
        refusal = new AppError('HOST_KEY_UNKNOWN', `First connection to ${target}: confirm its host key fingerprint ${seen}`, [{ path: isJump ? 'jump.hostKey' : 'hostKey', message: seen }]);
        return false;
      },
    };
    if (options.hostKeyAlgorithms?.length) config.algorithms = { serverHostKey: options.hostKeyAlgorithms as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> };
    if (options.auth.kind === 'key') {
      config.privateKey = options.auth.privateKey;
      if (options.auth.passphrase) config.passphrase = options.auth.passphrase;
    } else if (options.auth.kind === 'password') {
      config.password = options.auth.password;
    } else {
      config.agent = options.auth.agentSocket;
    }
    const { signal } = options;
    if (signal?.aborted) throw new AppError('CANCELLED', `Connecting to ${target} was cancelled`);
    if (options.via) config.sock = await options.via.forwardTo(options.host, options.port);

    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error & { code?: string }) => {
        signal?.removeEventListener('abort', onAbort);
        client.removeListener('ready', onReady);
        client.on('error', () => {}); // the socket may still report its reset after we gave up
        client.end();
        const classified = refusal ?? classify(error, target);
        // Closed by the server (or the link) before the handshake was done: worth another try.
        if (!refusal && !(error instanceof AppError) && (/Connection lost before handshake/.test(error.message) || error.code === 'ECONNRESET' || error.code === 'EPIPE')) cutHandshakes.add(classified);
        reject(classified);
      };
      // Cancelled during the handshake (a device that does not answer holds it for readyTimeout):
      // the socket is dropped now, not closed politely over a link that may be silent.
      const onAbort = () => {
        fail(new AppError('CANCELLED', `Connecting to ${target} was cancelled`));
        client.destroy();
      };
      const onReady = () => {
        signal?.removeEventListener('abort', onAbort);
        client.removeListener('error', fail);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      client.once('ready', onReady);
      client.once('error', fail);
      try {
        client.connect(config);
        // Nagle off, from the handshake on: a channel open or a command's exec request is a small
        // write right after another, which Nagle holds until the device's delayed ACK — ~40 ms per
        // command (45 → 2 ms per exec on loopback; a restore runs a dozen in sequence). Bulk data is
        // unaffected: it fills whole segments either way.
        client.setNoDelay(true);
      } catch (error) {
        fail(error as Error);
      }
    });
    // A connection that later dies (silent, reset) must not crash the process.
    client.on('error', () => {});
    // ssh2 keeps the stream it runs over (its own TCP socket, or the `sock` given) as `_sock`.
    const transport = (client as unknown as { _sock?: Duplex })._sock;
    if (!transport) {
      client.destroy();
      throw new Error(`ssh2 no longer exposes the stream of its connection to ${target}: a silent link could not be told (see silence-watch.ts)`);
    }
    return new DeviceConnection(client, target, seen!, jump, options.rateLimit, options.databasePassword, transport, silentMs, isRepository ? null : (options.silentFrom ?? 'console'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts a command; stdout streams, stderr is kept (bounded) for the error message. */
  exec(command: RawShell, signal?: AbortSignal): Promise<RunningCommand> {
    if (this.#closed) return Promise.reject(new AppError('UNAVAILABLE', `The connection to ${this.target} is closed`));
    if (signal?.aborted) return Promise.reject(new AppError('CANCELLED', 'Cancelled'));
    return new Promise((resolve, reject) => {
      // The channel is opened by a round trip: cancelled meanwhile, the caller need not wait for
      // it (on a stalled link it would come when keepalives give up), and a late channel is closed.
      let cancelled = false;
      const onEarlyAbort = () => {
        cancelled = true;
        reject(new AppError('CANCELLED', 'Cancelled'));
      };
      signal?.addEventListener('abort', onEarlyAbort, { once: true });
      const failed = (error: Error) => {
        signal?.removeEventListener('abort', onEarlyAbort);
        if (cancelled) return;
        if (error instanceof AppError) reject(error);
        else void this.#notOpened(error).then(reject);
      };
      const opened = (channel: ClientChannel) => {
        signal?.removeEventListener('abort', onEarlyAbort);
        // A command waiting for a session (the device's MaxSessions) asks again as this one ends.
        const release = () => this.#sessionEnded();
        if (cancelled) {
          channel.once('close', release);
          channel.close();
          return;
        }
        let stderr = '';
        channel.stderr.on('data', (chunk: Buffer) => {
          if (stderr.length < STDERR_LIMIT) stderr += chunk.toString('utf8');
        });
        // Readers listen for errors while they read; this one keeps a cancel between reads from
        // becoming an uncaught 'error' event.
        channel.on('error', () => undefined);
        let settle!: (result: ExecResult) => void;
        const done = new Promise<ExecResult>((resolve) => (settle = resolve));
        const lose = (why: string) => {
          this.#open.delete(lose);
          release();
          channel.destroy();
          settle({ code: null, signal: 'CONNECTION_LOST', stderr: why });
        };
        // Cancelled: the device is asked to close the channel, and our side ends now — on a stalled
        // or dead link its answer would come only when keepalives give up on the connection. Node's
        // own destroy (ssh2's Channel#destroy only asks the peer) ends stdout with the error, so a
        // reader stops at once.
        const onAbort = () => {
          this.#open.delete(lose);
          release();
          channel.close();
          settle({ code: null, signal: 'CANCELLED', stderr: stderr.slice(0, STDERR_LIMIT) });
          Duplex.prototype.destroy.call(channel, new AppError('CANCELLED', 'Cancelled'));
        };
        this.#open.add(lose);
        signal?.addEventListener('abort', onAbort, { once: true });
        channel.once('close', (code: number | null, sig: string | null) => {
          this.#open.delete(lose);
          release();
          signal?.removeEventListener('abort', onAbort);
          settle({ code: code ?? null, signal: sig ?? null, stderr: stderr.slice(0, STDERR_LIMIT) });
        });
        const rate = this.#rate?.() ?? 0;
        if (rate > 0) {
          // Under a bandwidth limit: the command's output and input pass through the link's limiters.
          const stdout = pipeline(channel, throttled(this.#down!, rate), () => undefined);
          const stdin = throttled(this.#up!, rate);
          pipeline(stdin, channel, () => undefined);
          // As for the channel above: a cancel or a lost link between reads or writes is not uncaught.
          stdout.on('error', () => undefined);
          stdin.on('error', () => undefined);
          // The limiter still holds output back when the channel closes: `done` waits until the
          // reader has had all of it (or the stream was destroyed), or `runToString` and every
          // reader that stops at `done` would lose the held-back tail (a restore's `df`, read as
          // "0 bytes free", refused the restore).
          const delivered = new Promise<void>((resolveDelivered) => finished(stdout, () => resolveDelivered()));
          resolve({ stdout, stdin, done: Promise.all([done, delivered]).then(([result]) => result) });
          return;
        }
        resolve({ stdout: channel, stdin: channel, done });
      };
      this.#openSession(command, signal).then(opened, failed);
    });
  }

  /**
   * Makes an ssh2 request (`open` calls the client). ssh2 throws "Not connected" once its socket has
   * ended, which can be a turn of the event loop before the connection's own close says the link is
   * gone: that request was refused by the lost link, as #notOpened says.
   */
  #request(open: () => void, refused: (error: AppError) => void, what?: string, target?: string): void {
    try {
      open();
    } catch (error) {
      void this.#notOpened(error as Error, what, target).then(refused);
    }
  }

  /**
   * Why a channel could not be opened. The link died as it was being opened: ssh2 says "Unable to
   * exec", passes the socket's ECONNRESET, or throws "Not connected", before the connection's own
   * close. Once that comes, the command reads as cut off by the lost link, as one already running
   * does — not as an unreachable device or a failed SSH, which sent a restore's report down the
   * wrong branch ("Not connected … may hold the restored state" when nothing had been swapped).
   */
  async #notOpened(error: Error, what = `A command on ${this.target}`, target = this.target): Promise<AppError> {
    const why = await this.#lostWithin(LOST_GRACE_MS);
    return why === null ? classify(error, target) : new AppError('UNAVAILABLE', `${what} was cut off: ${why}`);
  }

  /** Runs a command to completion and returns its stdout; a non-zero exit is an error with stderr. */
  run(command: RawShell, options: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<string> {
    return runToString(this, command, options);
  }

  /**
   * An SFTP session on this connection. Nagle is off for every connection (see #connect): SFTP is
   * request/response, and a request longer than one TCP segment would otherwise hold its last
   * segment until the peer's delayed ACK (decisions 005 and 014).
   */
  sftp(): Promise<SFTPWrapper> {
    if (this.#closed) return Promise.reject(new AppError('UNAVAILABLE', `The connection to ${this.target} is closed`));
    return new Promise((resolve, reject) => {
      this.#request(() => this.#client.sftp((error, sftp) => (error ? reject(classify(error, this.target)) : resolve(sftp))), reject, `The SFTP session on ${this.target}`);
    });
  }

  /** Why the connection died, if it does within `ms` (null if it is still up then). */
  #lostWithin(ms: number): Promise<string | null> {
    if (this.#closed) return Promise.resolve(this.#lostWhy);
    return new Promise((resolve) => {
      const closed = () => {
        clearTimeout(timer);
        resolve(this.#lostWhy);
      };
      const timer = setTimeout(() => {
        this.#client.off('close', closed);
        resolve(null);
      }, ms);
      this.#client.once('close', closed);
    });
  }

  /** Called once when the connection ends, whatever ended it. */
  onClose(listener: () => void): void {
    if (this.#closed) queueMicrotask(listener);
    else this.#client.once('close', listener);
  }

  /** A TCP stream to host:port from the device's side (for jump hosts). */
  forwardTo(host: string, port: number): Promise<ClientChannel> {
    const target = `${host}:${port} via ${this.target}`;
    return new Promise((resolve, reject) => {
      this.#request(() => this.#client.forwardOut('127.0.0.1', 0, host, port, (error, channel) => (error ? reject(classify(error, target)) : resolve(channel))), reject, `The tunnel to ${target}`, target);
    });
  }

  close(): void {
    if (!this.#closed) this.#client.end();
    this.#closed = true;
    this.#jump?.close();
  }
}
