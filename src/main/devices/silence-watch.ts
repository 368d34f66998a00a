/**
 * When is a device silent? When nothing has come from it *and* nothing of ours has left for it
 * for the whole allowed time — not merely when a keepalive went unanswered.
 *
 * ssh2's own rule (give up after N keepalives without a reply) misreads a slow link: ssh2 queues a
 * channel's whole window (2 MiB) on the socket ahead of its keepalive, so on a 1 Mbit/s uplink a
 * restore's keepalive waits ~17 s behind the restore's own data, and a device that was taking
 * every byte "stopped answering" after 20 s. Here, progress either way counts: a byte read from the
 * transport — the device's data, keepalive replies, and while we send, the window adjusts its sshd
 * returns as it takes our data (every ~1–3 s at 400 kbit/s) — or our own queue on the socket
 * shrinking. Keepalives are still sent (ssh2's, every quarter of the allowed time), so an idle but
 * live link keeps bringing replies.
 */
import type { Duplex } from 'node:stream';

export interface SilenceWatch {
  stop(): void;
}

/**
 * Calls `onSilent` once when `transport` has made no progress for `silentMs` (checked every quarter
 * of it). Stops by itself when the transport closes.
 */
export function watchSilence(transport: Duplex, silentMs: number, onSilent: () => void): SilenceWatch {
  // Never given up before `silentMs` without a sign of life: a read counts from when it came, our
  // queue shrinking from the check that saw it (it shrank before); so it ends 0–2 checks after that.
  let lastProgress = Date.now();
  const onData = () => {
    lastProgress = Date.now();
  };
  transport.on('data', onData);
  let queued = transport.writableLength;
  const timer = setInterval(() => {
    const now = Date.now();
    const nowQueued = transport.writableLength;
    if (nowQueued < queued) lastProgress = now;
    queued = nowQueued;
    if (now - lastProgress >= silentMs) {
      stop();
      onSilent();
    }
  }, Math.max(50, Math.round(silentMs / 4)));
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    transport.off('data', onData);
    transport.off('close', stop);
  };
  transport.once('close', stop);
  return { stop };
}
