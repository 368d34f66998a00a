/**
 * Compression on the wire for slow links. A field link of 20 Mbit/s moves ~2.3 MB/s, while the
 * device's `gzip -1` packs a database dump or a folder of JSON several times smaller at tens of
 * MB/s: on such a link the dumps and the small files cross in a fraction of the time. On loopback or
 * a LAN the link is faster than gzip, so it would only cost CPU on both sides. Hence `auto`: the
 * console compresses when the run's first command took long enough to say the link is a WAN (its
 * round trips, not its bandwidth, are what one short command can measure), and only where the
 * device has gzip. A profile can force it on or off (`wireCompression`).
 *
 * The compressed stream is decompressed here before anything reads it, so sources, snapshots and
 * the repository see the same bytes either way. The command's own exit status is kept (a failed
 * pg_dump still fails the snapshot); a cut or corrupt stream is an error, never a short file.
 */
import { PassThrough, Writable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { AppError } from '../../shared/errors';
import type { DeviceProfile } from '../../shared/schemas/devices';
import { raw, sh } from './shell-quote';
import type { RawShell } from './shell-quote';
import type { CommandRunner, RunningCommand } from './ssh-connection';
import { runToString } from './ssh-connection';
import { platformCommand } from './facts';

/** A profile's `wireCompression` (absent: auto). */
export type WireCompression = NonNullable<DeviceProfile['wireCompression']>;

/**
 * An exec (channel open, exec request, output, exit) takes ~2.5 round trips: 2–5 ms on loopback,
 * ~5–20 ms on a LAN (the device forks a shell), 120 ms with 40 ms of latency, ~300 ms on a 100 ms
 * field link. Above this a link is treated as slow.
 */
export const SLOW_EXEC_MS = 60;

/** What the run's first command said about the link and the device. */
export interface LinkProbe {
  /** Wall time of one short exec on this connection. */
  execMs: number;
  /** The device has `gzip` on its PATH. */
  gzip: boolean;
}

/** Appended to the run's first command: reports whether the device has gzip (`@@gzip` then its path). */
export const GZIP_PROBE = sh`echo @@gzip; command -v gzip 2>/dev/null || true`;

/**
 * The platform facts command with GZIP_PROBE, timed: a run's first command, which also says what
 * the link is like (`text` is empty when the command failed). `also`: more for the same round trip,
 * after them (stopLeftovers, for a backup, drill or restore).
 */
export async function probeDevice(runner: CommandRunner, sysroot: string | undefined, signal?: AbortSignal, also: RawShell = raw('')): Promise<{ text: string; probe: LinkProbe }> {
  const started = performance.now();
  const text = await runToString(runner, sh`${platformCommand(sysroot)}
${GZIP_PROBE}
${also}`, signal ? { signal } : {}).catch(() => '');
  return { text, probe: { execMs: performance.now() - started, gzip: hasGzip(text) } };
}

/** Whether the probe's output names a gzip (the line after `@@gzip`). */
export function hasGzip(output: string): boolean {
  const lines = output.split('\n');
  const at = lines.indexOf('@@gzip');
  return at >= 0 && (lines[at + 1] ?? '').trim().startsWith('/');
}

/** Whether this run compresses its transfers. */
export function useCompression(setting: WireCompression | undefined, probe: LinkProbe): boolean {
  if (!probe.gzip || setting === 'off') return false;
  return setting === 'on' || probe.execMs >= SLOW_EXEC_MS;
}

/** Short commands that time the link again when the first command was slow (the fastest counts). */
export const LINK_CONFIRMS = 2;

/**
 * Whether this run compresses, from the timing of its first command. That timing shared the
 * console's thread with the repository's start-up (loading a large index holds it for ~100 ms), so
 * a slow answer is confirmed with up to LINK_CONFIRMS more short commands, stopping at the first
 * fast one: a machine busy for a moment (CI running a browser beside the devices made one loopback
 * restore take two answers of over 60 ms) is not taken for a slow link. Two round trips more on a
 * slow link, against seconds saved.
 */
export async function chooseCompression(runner: CommandRunner, setting: WireCompression | undefined, first: LinkProbe, signal?: AbortSignal): Promise<boolean> {
  if (setting === 'on' || !useCompression(setting, first)) return useCompression(setting, first);
  let fastest = first.execMs;
  for (let i = 0; i < LINK_CONFIRMS && useCompression(setting, { ...first, execMs: fastest }) && !signal?.aborted; i++) {
    const started = performance.now();
    await runner.run(sh`true`, signal ? { signal } : {}).catch(() => '');
    fastest = Math.min(fastest, performance.now() - started);
  }
  return useCompression(setting, { ...first, execMs: fastest });
}

/**
 * `command` with its stdout piped through `gzip -1`, exiting with the command's own status. It runs
 * in a subshell (its `exit`, traps and `set -e` stay its own) with the channel's stdin; fds 7 and 8
 * carry the status and the original stdout around the pipe.
 */
export function gzipped(command: RawShell): RawShell {
  return sh`{ { { (
${command}
) 7>&- 8>&-; echo $? >&7; } | gzip -1 >&8; } 7>&1 | (read -r st; exit "$st"); } 8>&1`;
}

/**
 * Runs `command` with its output compressed on the device and decompressed here; `onWire` hears
 * of each compressed chunk's size. The returned stdout errors (with a clear message) if the
 * compressed stream ends early or is corrupt.
 */
export async function execCompressed(runner: CommandRunner, command: RawShell, signal?: AbortSignal, onWire?: (bytes: number) => void): Promise<RunningCommand> {
  const running = await runner.exec(gzipped(command), signal);
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  const stdout = new PassThrough({ highWaterMark: 1024 * 1024 });
  if (onWire) running.stdout.on('data', (chunk: Buffer) => onWire(chunk.length));
  running.stdout.on('error', (error) => gunzip.destroy(error));
  running.stdout.pipe(gunzip).pipe(stdout);
  // zlib's "unexpected end of file" says nothing to an operator: name the host and the likely cause.
  gunzip.on('error', (error) => {
    stdout.destroy(new AppError('REMOTE_COMMAND_FAILED', `The compressed output from ${runner.target} was cut off or corrupt (${error.message}): the link dropped or the command failed.`));
  });
  return { stdout, stdin: running.stdin, done: running.done };
}

/**
 * What to write to for sending to `stdin` of a device command: `stdin` itself, or (`compress`) a
 * `gzip -1` stream piped into it, the device side unpacking. A cut transfer surfaces as the
 * command's end, so the gzip stream's own errors are only absorbed here.
 */
export function wireSink(stdin: NodeJS.WritableStream, compress: boolean | undefined): NodeJS.WritableStream {
  if (!compress) return stdin;
  const gzip = createGzip({ level: 1 });
  gzip.on('error', () => undefined);
  gzip.pipe(stdin);
  return gzip;
}

/** What `writeCounted` hands to a sink at a time: the unit in which a transfer's progress moves. */
const COUNTED_SLICE = 64 * 1024;

/**
 * Writes `data` to `sink` in 64 KiB slices, each counted (`onSent`) once the sink has taken it
 * without going over its buffer — so under a bandwidth limit progress follows what the link
 * carries, not what was queued for it (a 4 MiB blob counted at once read "1 s left", then 50 s).
 * Stops early, returning false, if `ended` settles first (the command ended: a cut link).
 */
export async function writeCounted(sink: NodeJS.WritableStream, data: Buffer, onSent: (bytes: number) => void, ended: Promise<unknown>): Promise<boolean> {
  let over = false;
  const stop = ended.then(
    () => (over = true),
    () => (over = true),
  );
  for (let at = 0; at < data.length; at += COUNTED_SLICE) {
    if (over) return false;
    const slice = data.subarray(at, at + COUNTED_SLICE);
    if (!sink.write(slice)) await Promise.race([new Promise<void>((resolve) => sink.once('drain', () => resolve())), stop]);
    if (over) return false;
    onSent(slice.length);
  }
  return true;
}

/** A stream to pipe into instead of `sink`: what it passes on is counted as `writeCounted` counts. */
export function countedSink(sink: NodeJS.WritableStream, onSent: (bytes: number) => void): Writable {
  const closed = new Promise<void>((resolve) => {
    sink.once('close', () => resolve());
    sink.once('error', () => resolve());
  });
  return new Writable({
    highWaterMark: COUNTED_SLICE,
    write(chunk: Buffer, _encoding, callback) {
      writeCounted(sink, chunk, onSent, closed).then(() => callback(), callback);
    },
    final(callback) {
      sink.end();
      callback();
    },
  });
}
