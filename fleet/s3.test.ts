/**
 * The S3 store's start on a busy machine: its ports are picked free seconds before the daemons bind
 * them, and another process can take one meanwhile (an outgoing connection's local port comes from the
 * same range; a CI run lost its S3 tests so). A port taken is started again on new ones.
 */
import net from 'node:net';
import { expect, it, vi } from 'vitest';
import type * as Sshd from './sshd';

/** The first port the store is given is one a server here already listens on. */
const ports = { taken: 0, handedOut: 0 };
vi.mock('./sshd', async (original) => {
  const sshd = await original<typeof Sshd>();
  return { ...sshd, freePort: async (host: string) => (ports.handedOut++ === 0 ? ports.taken : sshd.freePort(host)) };
});
const { s3Missing, startS3Store } = await import('./s3');

const why = s3Missing();
it.skipIf(why)(`starts again on new ports when one it was given is taken before its monitor binds it${why ? ` (skipped: ${why})` : ''}`, async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    ports.taken = (server.address() as net.AddressInfo).port;
    const store = await startS3Store();
    try {
      expect(store.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await fetch(store.endpoint).then((r) => r.ok)).toBe(true);
      expect(ports.handedOut).toBeGreaterThan(3); // three for the failed start, three more for this one
    } finally {
      await store.stop();
    }
  } finally {
    server.close();
  }
}, 300_000);
