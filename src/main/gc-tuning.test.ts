import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { gcFlagsFor, SERIAL_SCAVENGE_MAX_CORES, tuneGarbageCollection } from './gc-tuning';

const MODULE = fileURLToPath(new URL('./gc-tuning.ts', import.meta.url));

/** Runs a process that churns young objects, tuned for `cores` after start-up; helper-thread ms of each scavenge. */
function helperTimes(cores: number): { flags: string; helperMs: number[] } {
  const script = `
    const { tuneGarbageCollection } = await import(${JSON.stringify(MODULE)});
    const flags = tuneGarbageCollection(${cores});
    console.log('@@churn');
    let keep = [];
    for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i }); if (keep.length > 5e4) keep = []; }
    console.log('@@flags' + JSON.stringify(flags));`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--trace-gc-nvp', '--input-type=module', '-e', script], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  // tsx's loader hooks run in an isolate of their own, whose scavenges (begun before the tuning, or
  // printed from its thread after the marker) share the trace: only the main isolate's count, the
  // one that ran the churn and so printed most of the lines after the marker.
  const scavenges = [...r.stdout.slice(r.stdout.indexOf('@@churn')).matchAll(/^\[\d+:(0x[\da-f]+)\].*?gc=s .*?background\.scavenge\.parallel=([\d.]+)/gm)];
  const perIsolate = new Map<string, number>();
  for (const [, isolate] of scavenges) perIsolate.set(isolate!, (perIsolate.get(isolate!) ?? 0) + 1);
  const main = [...perIsolate].sort((a, b) => b[1] - a[1])[0]?.[0];
  const helperMs = scavenges.filter(([, isolate]) => isolate === main).map((m) => Number(m[2]));
  return { flags: /@@flags(\S+)/.exec(r.stdout)?.[1] ?? '', helperMs };
}

describe('garbage collection tuning', () => {
  it('scavenges on the main thread alone on machines with at most two cores, and keeps V8 defaults above', () => {
    expect(gcFlagsFor(1)).toEqual(['--no-parallel-scavenge']);
    expect(gcFlagsFor(SERIAL_SCAVENGE_MAX_CORES)).toEqual(['--no-parallel-scavenge']);
    expect(gcFlagsFor(SERIAL_SCAVENGE_MAX_CORES + 1)).toEqual([]);
    expect(gcFlagsFor(16)).toEqual([]);
    expect(tuneGarbageCollection(64)).toEqual([]);
  });

  it('takes effect when set after start-up: no scavenge then uses a helper thread', () => {
    const tuned = helperTimes(SERIAL_SCAVENGE_MAX_CORES);
    expect(tuned.flags).toBe('["--no-parallel-scavenge"]');
    expect(tuned.helperMs.length).toBeGreaterThan(10);
    expect(tuned.helperMs.every((ms) => ms === 0)).toBe(true);
    // The same churn with V8's defaults: helpers take part (the measure can tell the two apart).
    // A one-core machine has no helper to show.
    const defaults = helperTimes(64);
    expect(defaults.flags).toBe('[]');
    expect(defaults.helperMs.length).toBeGreaterThan(10);
    if (availableParallelism() > 1) expect(defaults.helperMs.some((ms) => ms > 0)).toBe(true);
  });
});
