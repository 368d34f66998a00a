/**
 * Opens SSH connections to inventory devices: a bounded number at once (so 8+ devices back up in
 * parallel without exhausting the laptop), and one piece of work per device at a time.
 */
import { Client } from 'ssh2';
import { AppError, toAppError } from '../../shared/errors';
import { unlessAborted } from '../unless-aborted';
import type { DeviceFacts, HostKeyCheck, KeyComparison, KeyTarget } from '../../shared/schemas/devices';
import { checkedFingerprint } from './device-service';
import type { DeviceRecord, DeviceService } from './device-service';
import { factsCommand, parseFacts } from './facts';
import { DeviceConnection, fingerprintOf } from './ssh-connection';
import type { ConnectOptions } from './ssh-connection';
import type { Duplex } from 'node:stream';

const cancelled = () => new AppError('CANCELLED', 'Cancelled');

/** Slots for device connections, as many as `limit()` says now (a setting that may change meanwhile). */
class Semaphore {
  #busy = 0;
  readonly #limit: () => number;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: () => number) {
    this.#limit = limit;
  }

  /** Waits for a free slot; a signal that fires meanwhile gives up the place in the queue at once. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw cancelled();
    if (this.#waiting.length === 0 && this.#busy < this.#limit()) this.#busy++;
    else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const at = this.#waiting.indexOf(waiter);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(cancelled());
        };
        // Called with the slot already taken for it (by wake).
        const waiter = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.#waiting.push(waiter);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#busy--;
      this.wake();
    };
  }

  /** Hands the free slots to the first waiters: after a release, or when the limit was raised. */
  wake(): void {
    while (this.#waiting.length > 0 && this.#busy < this.#limit()) {
      this.#busy++;
      this.#waiting.shift()!();
    }
  }
}

export class DeviceConnector {
  readonly #devices: DeviceService;
  readonly #slots: Semaphore;
  readonly #perDevice = new Map<string, Promise<unknown>>();
  readonly #rateLimit: (() => number) | undefined;
  readonly #silentMs: (() => number) | undefined;

  /**
   * `maxParallel`: devices connected at once — a function for a setting, read as each connection
   * waits for a slot (call `limitChanged` when it rises). `rateLimit`: bytes per second each way on
   * every device link (0: none), read as each command starts. `silentMs`: how long a device may stay
   * silent before its connection is given up (20 s when not given), read as each connection opens.
   */
  constructor(devices: DeviceService, maxParallel: number | (() => number), rateLimit?: () => number, silentMs?: () => number) {
    this.#devices = devices;
    this.#slots = new Semaphore(typeof maxParallel === 'number' ? () => maxParallel : maxParallel);
    this.#rateLimit = rateLimit;
    this.#silentMs = silentMs;
  }

  /** The limit of devices at once may have risen: work waiting for a slot starts in the new ones. */
  limitChanged(): void {
    this.#slots.wake();
  }

  /**
   * Runs `work` with an open connection to the device; waits for the device's previous work and for
   * a free slot. The connection is closed afterwards whatever happens. `signal` (a job's cancel)
   * ends the wait for the device, for a slot and for the login at once, with a CANCELLED error:
   * a backup queued behind other devices, or connecting to one that does not answer, is not held
   * until they are done.
   */
  withDevice<T>(name: string, work: (connection: DeviceConnection) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const previous = (this.#perDevice.get(name) ?? Promise.resolve()).catch(() => undefined);
    const run = (async () => {
      await unlessAborted(previous, signal);
      const release = await this.#slots.acquire(signal);
      let connection: DeviceConnection | null = null;
      try {
        const options = await this.#devices.connectOptions(name);
        connection = await DeviceConnection.open({
          ...options,
          ...(this.#rateLimit ? { rateLimit: this.#rateLimit } : {}),
          ...(this.#silentMs && options.silentMs === undefined ? { silentMs: this.#silentMs() } : {}),
          ...(signal ? { signal } : {}),
        });
        return await work(connection);
      } finally {
        connection?.close();
        release();
      }
    })();
    // The device's next work waits for this one and for the one before it: a wait cancelled early
    // must not let the next one start while the previous work still runs on the device.
    const turn = Promise.allSettled([previous, run]);
    this.#perDevice.set(name, turn);
    void turn.then(() => {
      if (this.#perDevice.get(name) === turn) this.#perDevice.delete(name);
    });
    return run;
  }

  /** Reads facts over SSH and keeps them with the device. */
  async refreshFacts(name: string): Promise<DeviceFacts> {
    const sysroot = this.#devices.get(name).profile.sysroot;
    const facts = await this.withDevice(name, async (connection) => parseFacts(await connection.run(factsCommand(sysroot))));
    this.#devices.setFacts(name, facts);
    return facts;
  }

  /**
   * The host keys the device presents now, and its jump host first when it has one, beside the
   * pinned ones: what the device page shows to confirm a key or to replace it after a reinstall.
   * Nothing is sent to the device; only a jump host whose key matches is logged in to.
   */
  async checkHostKey(name: string): Promise<HostKeyCheck> {
    const { profile } = this.#devices.get(name);
    const compare = (pinned: string | undefined, presented: string): KeyComparison => ({ pinned: pinned ?? null, presented, matches: presented === pinned });
    if (!profile.jump) return { device: compare(profile.hostKey, await DeviceConnector.probeHostKey(profile.host, profile.port)), jump: null };
    const jumpKey = await DeviceConnector.probeHostKey(profile.jump.host, profile.jump.port).catch((error: unknown) => {
      const failure = toAppError(error);
      throw new AppError(failure.code, `The jump host ${failure.message}`);
    });
    const jump = compare(profile.jump.hostKey, jumpKey);
    if (!jump.matches) return { device: null, jump };
    const options = await this.#devices.connectOptions(name);
    return { device: compare(profile.hostKey, await DeviceConnector.probeHostKeyVia(profile.host, profile.port, options.jump!)), jump };
  }

  /**
   * Pins the key the user compared with the device (or its jump host), only if that host presents
   * that very key now: a fingerprint typed or read wrongly, or a host answering with another key
   * since it was shown, pins nothing.
   */
  async pinPresentedHostKey(name: string, fingerprint: string, actor: string, target: KeyTarget = 'device'): Promise<DeviceRecord> {
    checkedFingerprint(fingerprint); // before any probe: a malformed value never reaches the network
    const check = await this.checkHostKey(name);
    const host = target === 'jump' ? `The jump host of ${name}` : name;
    const seen = check[target];
    if (!seen) {
      throw new AppError('VALIDATION', target === 'jump' ? `${name} has no jump host` : `The key of ${name} is read through its jump host: confirm the jump host's key first`, [{ path: 'target', message: target }]);
    }
    if (seen.presented !== fingerprint) {
      throw new AppError('HOST_KEY_MISMATCH', `${host} presents ${seen.presented}, not the ${fingerprint} that was confirmed. Nothing was pinned: check the key again.`, [{ path: 'fingerprint', message: seen.presented }]);
    }
    return this.#devices.pinHostKey(name, fingerprint, actor, target);
  }

  /**
   * Logs in with options not taken from the inventory (a device about to be added) and reads its
   * facts: what the add dialog shows before it saves anything. Outside the pool: one short login.
   */
  static async testLogin(options: ConnectOptions, sysroot?: string): Promise<DeviceFacts> {
    const connection = await DeviceConnection.open(options);
    try {
      return parseFacts(await connection.run(factsCommand(sysroot)));
    } finally {
      connection.close();
    }
  }

  /**
   * First contact with a device behind a jump host: logs in to the jump host (its key pinned) and
   * fetches the device's host key through the tunnel, still without authenticating to the device.
   */
  static async probeHostKeyVia(host: string, port: number, jump: ConnectOptions, timeoutMs = 15_000): Promise<string> {
    const via = await DeviceConnection.open({ ...jump, role: 'jump', readyTimeoutMs: timeoutMs });
    try {
      return await DeviceConnector.probeHostKey(host, port, timeoutMs, await via.forwardTo(host, port));
    } finally {
      via.close();
    }
  }

  /**
   * First contact: fetches the host key's fingerprint without authenticating or sending anything,
   * for the user to compare with the one shown on the device.
   */
  static probeHostKey(host: string, port: number, timeoutMs = 15_000, sock?: Duplex): Promise<string> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let fingerprint: string | null = null;
      const finish = (error?: Error) => {
        client.end();
        if (fingerprint) resolve(fingerprint);
        else reject(error ?? new AppError('UNAVAILABLE', `${host}:${port} did not present a host key`));
      };
      client.once('error', (error: Error & { code?: string; level?: string }) => {
        if (fingerprint) return finish();
        if (error.level === 'client-timeout') return finish(new AppError('TIMEOUT', `${host}:${port} did not answer within ${timeoutMs / 1000} s`));
        finish(new AppError('UNAVAILABLE', `${host}:${port} is unreachable (${error.code ?? error.message})`));
      });
      client.once('ready', () => finish());
      client.connect({
        host,
        port,
        ...(sock ? { sock } : {}),
        username: 'jetvault-probe',
        readyTimeout: timeoutMs,
        // Refusing the key ends the handshake before any authentication is attempted.
        hostVerifier: (key: Buffer) => {
          fingerprint = fingerprintOf(key);
          return false;
        },
      });
    });
  }
}
