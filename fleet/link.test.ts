import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFleet } from './fleet';
import type { Fleet } from './fleet';
import { netnsSupport } from './link';
import { connect, execOn } from './ssh';
import type { SshOptions } from './ssh';
import { leftovers, skipReason, tracesOf } from './test-support';
import type { FleetTraces } from './test-support';
import type { Device } from './device';

const support = netnsSupport();
const skip = skipReason('field links', support.ok ? null : support.reason);

/** Streams `bytes` bytes of a model file from the device; resolves with time taken and bytes seen. */
async function transfer(d: Device, bytes: number, options: SshOptions & { direct?: boolean; onProgress?: (n: number) => void } = {}) {
  const endpoint = options.direct ? d.direct : d.endpoint;
  const client = await connect({ ...endpoint, user: d.user, identityFile: d.identityFile, hostKeyFingerprint: d.hostKeyFingerprint }, options);
  let seen = 0;
  const started = Date.now();
  try {
    const r = await execOn(client, `head -c ${bytes} '${d.root}/opt/myrvm/models/detector-v7.onnx'`, {
      ...options,
      onData: (b) => {
        seen += b.length;
        options.onProgress?.(seen);
      },
    });
    return { ms: Date.now() - started, bytes: seen, code: r.code };
  } finally {
    client.end();
  }
}

describe.skipIf(skip)('devices in network namespaces (field links)', () => {
  let fleet: Fleet;
  let traces: FleetTraces;

  beforeAll(async () => {
    fleet = await startFleet({ devices: 2, netns: true, sharedModelMB: 12, uniqueModelMB: 2 });
    traces = tracesOf(fleet);
  });

  afterAll(async () => {
    await fleet?.stop();
    if (traces) expect(await leftovers(traces, 3_000)).toEqual([]);
  });

  it('listens on port 22 inside its namespace, on its own link-local address', async () => {
    const d = fleet.devices[0]!;
    expect(d.direct.port).toBe(22);
    expect(d.direct.host).toMatch(/^169\.254\.\d+\.\d+$/);
    const inside = execFileSync('ip', ['netns', 'exec', d.netns!.name, 'ip', '-o', '-4', 'addr'], { encoding: 'utf8' });
    expect(inside).toContain(d.direct.host);
    const r = await transfer(d, 1024, { direct: true });
    expect(r).toMatchObject({ bytes: 1024, code: 0 });
  });

  it('a rate-limited link is measurably slower', async () => {
    const d = fleet.devices[0]!;
    const bytes = 1024 * 1024;
    const free = await transfer(d, bytes);
    await d.link!.rate(4000);
    try {
      const shaped = await transfer(d, bytes);
      const expectedMs = ((bytes * 8) / 4_000_000) * 1000;
      console.info(`1 MiB: unshaped ${free.ms} ms, at 4 Mbit/s ${shaped.ms} ms (ideal ${expectedMs.toFixed(0)} ms)`);
      expect(shaped.bytes).toBe(bytes);
      expect(shaped.ms).toBeGreaterThanOrEqual(0.7 * expectedMs);
      expect(shaped.ms).toBeGreaterThan(free.ms);
    } finally {
      await d.link!.clear();
    }
  });

  it('a lossy link still delivers every byte (TCP retransmits), and the loss rule goes away with clear()', async () => {
    const d = fleet.devices[1]!;
    await d.link!.dropPercent(5);
    try {
      const rules = execFileSync('ip', ['netns', 'exec', d.netns!.name, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });
      expect(rules).toMatch(/numgen random mod 100 < 5 drop/);
      const r = await transfer(d, 512 * 1024);
      expect(r).toMatchObject({ bytes: 512 * 1024, code: 0 });
    } finally {
      await d.link!.clear();
    }
    expect(execFileSync('ip', ['netns', 'exec', d.netns!.name, 'nft', 'list', 'ruleset'], { encoding: 'utf8' })).not.toContain('jvf_loss');
  });

  it('a cut link drops the transfer mid-way; restored, the device answers again', async () => {
    const d = fleet.devices[1]!;
    const bytes = 8 * 1024 * 1024;
    await d.link!.rate(8000); // ~8 s for 8 MiB: the cut lands mid-transfer
    let cutDone: Promise<void> | undefined;
    let seenAtCut = 0;
    try {
      const outcome = await transfer(d, bytes, {
        keepaliveIntervalMs: 500,
        keepaliveCountMax: 3,
        timeoutMs: 30_000,
        onProgress: (n) => {
          if (!cutDone && n > 512 * 1024) {
            seenAtCut = n;
            cutDone = d.link!.cut();
          }
        },
      }).then(
        (r) => ({ ok: true as const, ...r }),
        (error: Error) => ({ ok: false as const, error }),
      );
      await cutDone;
      expect(outcome.ok, 'the transfer should fail once the link is cut').toBe(false);
      expect(seenAtCut).toBeGreaterThan(0);
    } finally {
      await d.link!.clear();
    }
    const after = await transfer(d, 4096);
    expect(after).toMatchObject({ bytes: 4096, code: 0 });
  }, 60_000);
});
