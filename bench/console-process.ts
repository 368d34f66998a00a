/**
 * Jetvault's side of the device benchmarks (backup, restore), in a process of its own as in the app
 * (the console's main process). The benchmark's process starts the fleet, the baselines (rsync, ssh,
 * pg_dump), `sync` and the memory warm-up, and each of those is a fork. A fork write-protects every
 * page of the forking process, so the first write to each page afterwards faults — ~20 µs a page on
 * this benchmark's VM. A console never forks between backups; with Jetvault in the forking process,
 * an incremental run took 15,000–20,000 more faults: 1.70 s instead of 1.40 s (decision 005, eighteenth pass).
 *
 * `startConsole()` (in the benchmark) forks this file once; it answers requests over the IPC channel
 * and starts no process itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Request =
  | { op: 'open'; dataDir: string; password: string; profile: unknown }
  | { op: 'reopen'; dataDir: string; password: string }
  | { op: 'import'; profile: unknown }
  | { op: 'backup'; device: string }
  | { op: 'restoreDevice'; device: string }
  | { op: 'confirmRestore'; restoreId: string }
  | { op: 'closeIdleWorkers' }
  | { op: 'dispose' };

export interface BackupResult {
  seconds: number;
  /** CPU seconds of the console process (every thread: the main one and the chunk workers). */
  cpuSeconds: number;
  /** Minor page faults the console process took during the run (first touches of memory, copy-on-write). */
  pageFaults: number;
  bytes: number;
  wire: number;
  compressed: boolean;
}

export interface RestoreResult {
  seconds: number;
  restoreId: string;
  /** The restore's steps and their milliseconds, as its job records them. */
  timings: { step: string; ms: number }[];
  /** What the restore noted for the operator (e.g. large files sent as the blocks that differed). */
  notes: string[];
}

type Reply = { id: number; ok: true; value?: unknown } | { id: number; ok: false; error: string };

/** The console process: one repository at a time (`open` replaces the previous one). */
export interface ConsoleProcess {
  /** A fresh console on `dataDir`: an initialised repository and the device imported. */
  open(dataDir: string, profile: unknown): Promise<void>;
  /** The console on a data folder an earlier console process left (its repository unlocked again), as the app after a restart. */
  reopen(dataDir: string): Promise<void>;
  /** Adds another device to the open console. */
  importDevice(profile: unknown): Promise<void>;
  /** One backup of every source of the device, timed inside the console process. */
  backup(device: string): Promise<BackupResult>;
  /** The whole device restored to its latest run (on-device: stage, verify, swap, check), timed; kept until confirmed. */
  restoreDevice(device: string): Promise<RestoreResult>;
  confirmRestore(restoreId: string): Promise<void>;
  closeIdleWorkers(): Promise<void>;
  /** Disposes of the services (the caller removes the data folder). */
  dispose(): Promise<void>;
  /** Ends the process. */
  stop(): Promise<void>;
  /** Ends the process at once (SIGKILL), whatever it is doing: a console closed mid-job. */
  kill(): Promise<void>;
}

export function startConsole(): ConsoleProcess {
  // process.execArgv carries tsx's loader, so the child runs this TypeScript file as the parent does.
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let seq = 0;
  let exited: Error | null = null;
  child.on('message', (reply: Reply) => {
    const entry = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) entry?.resolve(reply.value);
    else entry?.reject(new Error(reply.error));
  });
  child.on('exit', (code, signal) => {
    exited = new Error(`the console process exited (${signal ?? `code ${code}`})`);
    for (const entry of pending.values()) entry.reject(exited);
    pending.clear();
  });
  const call = (request: Request): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(exited);
      const id = seq++;
      pending.set(id, { resolve, reject });
      child.send({ id, ...request });
    });
  return {
    open: async (dataDir, profile) => void (await call({ op: 'open', dataDir, password: 'bench repository password', profile })),
    reopen: async (dataDir) => void (await call({ op: 'reopen', dataDir, password: 'bench repository password' })),
    importDevice: async (profile) => void (await call({ op: 'import', profile })),
    backup: async (device) => (await call({ op: 'backup', device })) as BackupResult,
    restoreDevice: async (device) => (await call({ op: 'restoreDevice', device })) as RestoreResult,
    confirmRestore: async (restoreId) => void (await call({ op: 'confirmRestore', restoreId })),
    closeIdleWorkers: async () => void (await call({ op: 'closeIdleWorkers' })),
    dispose: async () => void (await call({ op: 'dispose' })),
    stop: () =>
      new Promise((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.disconnect();
      }),
    kill: () =>
      new Promise((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** The process's minor page faults so far (/proc/self/stat, field 10). */
function minorFaults(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

async function serve(): Promise<void> {
  const { startDeviceBackup } = await import('../src/main/devices/device-backup');
  const { silentLogger } = await import('../src/main/log');
  const { createServices } = await import('../src/main/services/index');
  // As every entry point of the app does (src/main/gc-tuning.ts).
  (await import('../src/main/gc-tuning')).tuneGarbageCollection();
  let services: ReturnType<typeof createServices> | null = null;
  const open = () => {
    if (!services) throw new Error('no console open');
    return services;
  };
  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'open':
        services?.dispose();
        services = createServices({ dataDir: request.dataDir, log: silentLogger, platform: { transport: 'cli', openExternal: () => Promise.resolve() } });
        await services.repository.init(request.password);
        services.devices.import(request.profile, 'bench');
        return undefined;
      case 'reopen':
        services?.dispose();
        services = createServices({ dataDir: request.dataDir, log: silentLogger, platform: { transport: 'cli', openExternal: () => Promise.resolve() } });
        await services.repository.unlock(request.password);
        return undefined;
      case 'import':
        open().devices.import(request.profile, 'bench');
        return undefined;
      case 'backup': {
        const faults = minorFaults();
        const cpu = process.cpuUsage();
        const started = process.hrtime.bigint();
        const run = await startDeviceBackup(open(), request.device).done;
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const used = process.cpuUsage(cpu);
        if (run.record.status !== 'succeeded') throw new Error(`backup failed: ${JSON.stringify(run.record.error)}`);
        const result = run.value!;
        return { seconds, cpuSeconds: (used.user + used.system) / 1e6, pageFaults: minorFaults() - faults, bytes: result.bytesTransferred, wire: result.bytesOnWire, compressed: result.wireCompression };
      }
      case 'restoreDevice': {
        const started = process.hrtime.bigint();
        const { jobId, restoreId } = open().restores.start({ device: request.device, at: new Date().toISOString(), scope: 'device' });
        for (;;) {
          const job = open().jobs.get(jobId);
          if (job && job.status !== 'running') {
            if (job.status !== 'succeeded') throw new Error(`restore ${job.status}: ${job.error?.message}`);
            const result = job.result as { timings?: { step: string; ms: number }[]; notes?: string[] } | null;
            return { seconds: Number(process.hrtime.bigint() - started) / 1e9, restoreId, timings: result?.timings ?? [], notes: result?.notes ?? [] } satisfies RestoreResult;
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      case 'confirmRestore':
        await open().restores.confirm(request.restoreId);
        return undefined;
      case 'closeIdleWorkers':
        await (await open().repository.open()).closeIdleWorkers();
        return undefined;
      case 'dispose':
        services?.dispose();
        services = null;
        return undefined;
    }
  };
  process.on('message', (message: Request & { id: number }) => {
    handle(message).then(
      (value) => process.send!({ id: message.id, ok: true, value } satisfies Reply),
      (error: unknown) => process.send!({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies Reply),
    );
  });
  process.on('disconnect', () => {
    services?.dispose();
    process.exit(0);
  });
}

if (process.argv.includes('--serve')) await serve();
