/**
 * Measures the fleet itself: time to start 1 and 5 devices (default sizes: 40 MB shared + 20 MB
 * unique models) without and with the machine's template cache, time to stop, and memory per
 * device (sshd + all postgres processes). Usage: npx tsx fleet/measure.ts [runs]
 */
import { execFileSync } from 'node:child_process';
import { startFleet } from './fleet';

const runs = Number(process.argv[2] ?? 2);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const cache of [false, true]) {
  if (cache) await (await startFleet({ devices: 1, sharedModelMB: 1, uniqueModelMB: 1 })).stop(); // warm the cache
  for (const devices of [1, 5]) {
    const starts: number[] = [];
    const stops: number[] = [];
    const rss: number[] = [];
    const pss: number[] = [];
    let disk = '';
    for (let run = 0; run < runs; run++) {
      const fleet = await startFleet({ devices, cache });
      starts.push(fleet.startMs);
      for (const d of fleet.devices) {
        const m = d.memory();
        rss.push(m.rssKiB);
        pss.push(m.pssKiB);
      }
      disk = execFileSync('du', ['-sh', '--apparent-size', fleet.devices[0]!.root], { encoding: 'utf8' }).split('\t')[0]!;
      const t = Date.now();
      await fleet.stop();
      stops.push(Date.now() - t);
    }
    console.log(
      `${devices} device(s), ${cache ? 'cached template' : 'no cache      '}: start ${starts.map((s) => (s / 1000).toFixed(1)).join(' / ')} s (median ${(median(starts) / 1000).toFixed(1)} s), ` +
        `stop median ${median(stops)} ms, per device RSS ${(median(rss) / 1024).toFixed(1)} MiB, PSS ${(median(pss) / 1024).toFixed(1)} MiB, disk ${disk}`,
    );
  }
}
