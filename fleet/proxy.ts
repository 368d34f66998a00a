/**
 * A loopback TCP proxy in front of a device that can add latency: every chunk is held for `delayMs`
 * in each direction, in order. This kernel has no netem, so this is how a "slow field link" gets its
 * round-trip time; it needs no root. It can also cut every connection (and refuse new ones).
 */
import net from 'node:net';

export interface Endpoint {
  host: string;
  port: number;
}

/** `dead`: the link died under this connection (DelayProxy.stall): nothing more crosses, not even an end. */
function delayedPipe(from: net.Socket, to: net.Socket, delayOf: () => number, held: () => boolean, count: (bytes: number) => void, dead: () => boolean): void {
  const queue: { at: number; chunk: Buffer }[] = [];
  let queued = 0;
  let ended = false;
  let timer: NodeJS.Timeout | null = null;
  const HIGH = 1024 * 1024;

  const flush = () => {
    timer = null;
    const now = Date.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { chunk } = queue.shift()!;
      queued -= chunk.length;
      if (!to.destroyed) to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(flush, Math.max(1, queue[0]!.at - Date.now()));
    else if (ended) to.end();
    if (queued < HIGH / 4 && !to.writableNeedDrain && !held()) from.resume();
  };

  from.on('data', (chunk: Buffer) => {
    if (dead()) return;
    count(chunk.length);
    const delay = delayOf();
    if (delay <= 0 && queue.length === 0) {
      if (!to.write(chunk)) from.pause();
      return;
    }
    queue.push({ at: Date.now() + delay, chunk });
    queued += chunk.length;
    if (queued > HIGH) from.pause();
    if (!timer) timer = setTimeout(flush, Math.max(1, delay));
  });
  to.on('drain', () => {
    if (queued < HIGH / 4 && !held()) from.resume();
  });
  from.on('end', () => {
    if (dead()) return;
    ended = true;
    if (queue.length === 0) to.end();
  });
  from.on('close', () => {
    if (timer && to.destroyed) clearTimeout(timer);
  });
}

export class DelayProxy {
  delayMs = 0;
  /** Bytes forwarded so far in each direction (what a link's meter would show). */
  readonly carried = { toDevice: 0, fromDevice: 0 };
  private server: net.Server;
  private sockets = new Set<net.Socket>();
  private refusing = false;
  private stalled = false;
  /** Connections a dead link took (see `stall`): both sides, held open and silent. */
  private dead = new Set<net.Socket>();
  address: Endpoint = { host: '', port: 0 };

  constructor(private readonly target: Endpoint) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(host: string, port = 0): Promise<Endpoint> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    this.address = { host, port: (this.server.address() as net.AddressInfo).port };
    return this.address;
  }

  private accept(client: net.Socket): void {
    if (this.refusing) return void client.resetAndDestroy();
    const upstream = net.connect(this.target);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        if (this.dead.has(s)) return; // a dead link carries no close either
        client.destroy();
        upstream.destroy();
      });
    }
    const dead = () => this.dead.has(client);
    delayedPipe(client, upstream, () => this.delayMs, () => this.stalled, (n) => (this.carried.toDevice += n), dead);
    delayedPipe(upstream, client, () => this.delayMs, () => this.stalled, (n) => (this.carried.fromDevice += n), dead);
    if (this.stalled) for (const s of [client, upstream]) s.pause();
  }

  /**
   * Forwards nothing more, closing nothing: a link gone silent (only keepalives notice). `restore()`
   * lets the bytes through. `deviceHearsNothing`: the link died — the connections open now never
   * carry another byte, not even the console's close when it gives them up, so the device's side
   * stays open (as its TCP keeps a session with unacknowledged data for ~15 minutes), its commands
   * blocked on their output, until `releaseDead()` or `close()`. New connections after `restore()` work.
   */
  stall({ deviceHearsNothing = false } = {}): void {
    this.stalled = true;
    for (const s of this.sockets) {
      s.pause();
      if (deviceHearsNothing) this.dead.add(s);
    }
  }

  /** Drops every connection through the proxy and refuses new ones until `restore()`. */
  cut(): void {
    this.refusing = true;
    for (const s of this.sockets) s.resetAndDestroy(); // RST, as a peer that vanished mid-stream
  }

  restore(): void {
    this.refusing = false;
    if (this.stalled) {
      this.stalled = false;
      for (const s of this.sockets) if (!this.dead.has(s)) s.resume();
    }
  }

  /** Closes the connections a dead link took (see `stall`): what the device's TCP does when it gives up. */
  releaseDead(): void {
    for (const s of this.dead) s.destroy();
    this.dead.clear();
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  async close(): Promise<void> {
    this.releaseDead();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
