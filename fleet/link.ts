/**
 * Field links: a device in its own network namespace behind a veth pair, addressed with a
 * link-local /30 (169.254.X.Y) that belongs only to this fleet. The host side can be shaped with
 * `tc tbf` (rate), lossy with nftables `numgen random` (inside the namespace, so it disappears with
 * it), cut with `ip link set down`, and delayed by the loopback DelayProxy (no netem on this kernel).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { run } from './exec';
import type { DelayProxy } from './proxy';
import type { ResourceLog } from './registry';

export interface NetnsSupport {
  ok: boolean;
  reason: string;
}

let support: NetnsSupport | undefined;

/** Whether this machine can give devices their own namespaces; the reason when not. */
export function netnsSupport(): NetnsSupport {
  if (support) return support;
  const fail = (reason: string) => (support = { ok: false, reason });
  if (process.getuid?.() !== 0) return fail('network namespaces need root (run the tests as root, as CI does)');
  for (const tool of ['/usr/sbin/ip', '/usr/sbin/tc', '/usr/sbin/nft', '/usr/bin/nsenter']) {
    if (!existsSync(tool) && !existsSync(tool.replace('/usr', ''))) return fail(`${tool} is missing (apt-get install iproute2 nftables util-linux)`);
  }
  const probe = `jvf-probe${process.pid}`;
  const veth = `jvp${process.pid % 10_000_000}`; // interface names: at most 15 bytes, unique per process
  const steps = [
    ['ip', 'netns', 'add', probe],
    ['ip', 'link', 'add', `${veth}a`, 'type', 'veth', 'peer', 'name', `${veth}b`, 'netns', probe],
    ['tc', 'qdisc', 'add', 'dev', `${veth}a`, 'root', 'tbf', 'rate', '1mbit', 'burst', '16kb', 'latency', '100ms'],
    ['ip', 'netns', 'exec', probe, 'nft', 'add', 'table', 'inet', 'jvfprobe'],
  ];
  let failure = '';
  for (const [cmd, ...args] of steps) {
    const r = spawnSync(cmd!, args, { encoding: 'utf8' });
    if (r.status !== 0) {
      failure = `\`${[cmd, ...args].join(' ')}\` failed: ${(r.stderr || r.error?.message || '').trim()}`;
      break;
    }
  }
  spawnSync('ip', ['link', 'del', `${veth}a`]);
  spawnSync('ip', ['netns', 'del', probe]);
  return failure ? fail(failure) : (support = { ok: true, reason: '' });
}

export interface Netns {
  name: string;
  hostIf: string;
  deviceIf: string;
  hostAddress: string;
  deviceAddress: string;
}

function pickSubnet(): { host: string; device: string } {
  const used = spawnSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (let attempt = 0; attempt < 200; attempt++) {
    const x = 1 + Math.floor(Math.random() * 254);
    const y = Math.floor(Math.random() * 64) * 4;
    const host = `169.254.${x}.${y + 1}`;
    if (!used.includes(`169.254.${x}.${y + 1}/`) && !used.includes(`169.254.${x}.${y + 2}/`)) return { host, device: `169.254.${x}.${y + 2}` };
  }
  throw new Error('No free 169.254.x.y/30 subnet found');
}

export async function createNetns(name: string, ifBase: string, registry: ResourceLog): Promise<Netns> {
  registry.add({ kind: 'netns', name });
  await run('ip', ['netns', 'add', name]);
  const hostIf = `${ifBase}h`;
  const deviceIf = `${ifBase}d`;
  const { host, device } = pickSubnet();
  const steps: string[][] = [
    ['ip', '-n', name, 'link', 'set', 'lo', 'up'],
    ['ip', 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', deviceIf, 'netns', name],
    ['ip', 'addr', 'add', `${host}/30`, 'dev', hostIf],
    ['ip', '-n', name, 'addr', 'add', `${device}/30`, 'dev', deviceIf],
    ['ip', 'link', 'set', hostIf, 'up'],
    ['ip', '-n', name, 'link', 'set', deviceIf, 'up'],
    ['ip', '-n', name, 'route', 'add', 'default', 'via', host],
    // Without offloads one "packet" is one MTU-sized frame, so a drop percentage means packets.
    ['ethtool', '-K', hostIf, 'tso', 'off', 'gso', 'off', 'gro', 'off'],
    ['ip', 'netns', 'exec', name, 'ethtool', '-K', deviceIf, 'tso', 'off', 'gso', 'off', 'gro', 'off'],
  ];
  for (const [cmd, ...args] of steps) await run(cmd!, args);
  return { name, hostIf, deviceIf, hostAddress: host, deviceAddress: device };
}

/** Shaping and cutting one device's link. */
export class Link {
  constructor(
    readonly netns: Netns,
    private readonly proxy: DelayProxy,
  ) {}

  /** Takes the link down: packets stop in both directions; established TCP connections stall. */
  async cut(): Promise<void> {
    await run('ip', ['link', 'set', this.netns.hostIf, 'down']);
  }

  async restore(): Promise<void> {
    await run('ip', ['link', 'set', this.netns.hostIf, 'up']);
  }

  /** Limits both directions to `kbit` kbit/s with a token bucket (tbf). */
  async rate(kbit: number): Promise<void> {
    const burst = Math.max(16_000, Math.round((kbit * 1000) / 8 / 50)); // ~20 ms of traffic, at least a few frames
    const tbf = ['root', 'tbf', 'rate', `${kbit}kbit`, 'burst', String(burst), 'latency', '400ms'];
    await run('tc', ['qdisc', 'replace', 'dev', this.netns.hostIf, ...tbf]);
    await run('ip', ['netns', 'exec', this.netns.name, 'tc', 'qdisc', 'replace', 'dev', this.netns.deviceIf, ...tbf]);
  }

  /** Drops about `percent`% of packets in each direction (nftables inside the namespace); 0 removes it. */
  async dropPercent(percent: number): Promise<void> {
    await run('ip', ['netns', 'exec', this.netns.name, 'nft', 'delete', 'table', 'inet', 'jvf_loss'], { allowFail: true });
    if (percent <= 0) return;
    const p = Math.min(100, Math.round(percent));
    const rules = `table inet jvf_loss {
  chain in { type filter hook input priority 0; policy accept; iifname "${this.netns.deviceIf}" numgen random mod 100 < ${p} drop; }
  chain out { type filter hook output priority 0; policy accept; oifname "${this.netns.deviceIf}" numgen random mod 100 < ${p} drop; }
}`;
    await run('ip', ['netns', 'exec', this.netns.name, 'nft', '-f', '-'], { input: rules });
  }

  /** Adds `ms` of latency in each direction on the device's loopback endpoint (the DelayProxy). */
  delayMs(ms: number): void {
    this.proxy.delayMs = ms;
  }

  /** Back to an unshaped, lossless, connected link. */
  async clear(): Promise<void> {
    this.proxy.delayMs = 0;
    await this.restore();
    await this.dropPercent(0);
    await run('tc', ['qdisc', 'del', 'dev', this.netns.hostIf, 'root'], { allowFail: true });
    await run('ip', ['netns', 'exec', this.netns.name, 'tc', 'qdisc', 'del', 'dev', this.netns.deviceIf, 'root'], { allowFail: true });
  }
}
