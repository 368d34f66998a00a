/**
 * The benchmark dataset (~1 GiB by default, BENCH_SCALE scales it): large incompressible model
 * files, ~20k small text files (configs, logs), and a large SQL dump; plus a 1% change to it.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface DatasetSpec {
  models: number;
  modelBytes: number;
  smallFiles: number;
  dumpBytes: number;
}

export function spec(scale: number): DatasetSpec {
  return { models: 3, modelBytes: Math.round(200 * 1024 * 1024 * scale), smallFiles: Math.round(20_000 * scale), dumpBytes: Math.round(250 * 1024 * 1024 * scale) };
}

export function sqlLines(start: number, bytes: number): string {
  const out: string[] = [];
  let size = 0;
  for (let i = start; size < bytes; i++) {
    const line = `INSERT INTO telemetry (id, device, ts, temp_c, gpu_load, status) VALUES (${i}, 'jetson-${i % 50}', '2026-0${(i % 9) + 1}-1${i % 10} 0${i % 10}:${String(i % 60).padStart(2, '0')}:00', ${(40 + (i % 37) / 3).toFixed(2)}, ${(i * 7) % 100}, '${i % 13 === 0 ? 'throttled' : 'ok'}');\n`;
    out.push(line);
    size += line.length;
  }
  return out.join('');
}

export async function generate(root: string, s: DatasetSpec): Promise<void> {
  await mkdir(join(root, 'models'), { recursive: true });
  for (let m = 0; m < s.models; m++) {
    const handle = await open(join(root, 'models', `model-${m}.engine`), 'w');
    for (let done = 0; done < s.modelBytes; done += 16 << 20) await handle.write(randomBytes(Math.min(16 << 20, s.modelBytes - done)));
    await handle.close();
  }
  for (let i = 0; i < s.smallFiles; i++) {
    const dir = join(root, 'app', `svc${i % 40}`, `d${Math.floor(i / 40) % 25}`);
    if (i < 1000) await mkdir(dir, { recursive: true });
    const body = `# config ${i}\n${Array.from({ length: 20 + (i % 80) }, (_, k) => `option_${k} = ${(i * 31 + k) % 997} # ${'x'.repeat(k % 30)}`).join('\n')}\n`;
    await writeFile(join(dir, `file-${i}.conf`), body);
  }
  await mkdir(join(root, 'db'), { recursive: true });
  const dump = await open(join(root, 'db', 'telemetry.sql'), 'w');
  for (let done = 0, i = 0; done < s.dumpBytes; i += 100_000) {
    const text = sqlLines(i, Math.min(8 << 20, s.dumpBytes - done));
    await dump.write(text);
    done += Buffer.byteLength(text);
  }
  await dump.close();
}

/** Changes ~1% of the bytes: eight regions of each model, 1% of the small files, rows appended to the dump. */
export async function changeOnePercent(root: string, s: DatasetSpec): Promise<void> {
  const total = s.models * s.modelBytes + s.dumpBytes + s.smallFiles * 2000;
  const budget = total * 0.01;
  // Eight regions per model: with one region, where the repository's keyed chunk boundaries fall
  // around it decided the added size (7.8 to 29.4 MiB over four runs); eight average that out.
  const REGIONS = 8;
  for (let m = 0; m < s.models; m++) {
    const handle = await open(join(root, 'models', `model-${m}.engine`), 'r+');
    for (let r = 0; r < REGIONS; r++) {
      await handle.write(randomBytes(Math.floor(budget / 2 / s.models / REGIONS)), 0, undefined, Math.floor((s.modelBytes * (2 * r + 1)) / (2 * REGIONS)));
    }
    await handle.close();
  }
  for (let i = 0; i < s.smallFiles; i += 100) {
    await appendFile(join(root, 'app', `svc${i % 40}`, `d${Math.floor(i / 40) % 25}`, `file-${i}.conf`), `changed = ${Date.now()}\n`);
  }
  await appendFile(join(root, 'db', 'telemetry.sql'), sqlLines(10_000_000, budget / 2));
}
