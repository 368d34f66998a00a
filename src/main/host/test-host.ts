/**
 * The test host: the console's services under plain Node, the built renderer over http on
 * 127.0.0.1, and the one IPC contract over a WebSocket guarded by a random token. It exists so
 * the real UI can be driven end to end where no Electron binary can run; it is not a product.
 *
 * The page gets the token in the URL fragment (never sent over http) and presents it as a
 * WebSocket subprotocol; the Origin must be the host's own.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { RawData, WebSocket } from 'ws';
import type { WireClientMessage, WireServerMessage } from '../../shared/api';
import { PROFILES_FILE_MAX_BYTES } from '../../shared/schemas/devices';
import { createHandlers } from '../ipc/handlers';
import { IpcRouter } from '../ipc/router';
import type { Sender } from '../ipc/router';
import type { Services } from '../services/index';
import { createStaticHandler } from './static-files';

export const TOKEN_PROTOCOL_PREFIX = 'jetvault-token.';
export const WIRE_PROTOCOL = 'jetvault.v1';
/**
 * The largest message a page may send: a profiles file the import takes (4 MiB) inside a call, its
 * quotes and backslashes escaped (twice its size at worst). At 1 MiB a larger import closed the
 * page's connection (1009) instead of being imported.
 */
const MAX_MESSAGE_BYTES = 2 * PROFILES_FILE_MAX_BYTES + (64 << 10);
const MAX_QUEUED_EVENTS = 1000;

export interface TestHost {
  url: string;
  origin: string;
  token: string;
  port: number;
  close(): Promise<void>;
}

export interface TestHostOptions {
  services: Services;
  rendererDir: string;
  port?: number;
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(new Uint8Array(data)).toString('utf8');
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startTestHost({ services, rendererDir, port = 0 }: TestHostOptions): Promise<TestHost> {
  const token = randomBytes(32).toString('base64url');
  const serveStatic = createStaticHandler(rendererDir);
  const server = createServer((req, res) => {
    serveStatic(req, res).catch((error: unknown) => {
      services.log.error('test host: static file failed', error);
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actualPort = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${actualPort}`;

  const router = new IpcRouter(createHandlers(services, 'websocket'), {
    log: services.log,
    isTrustedSender: (sender) => sender.transport === 'websocket' && sender.authenticated && sender.url === origin,
  });

  const wss = new WebSocketServer({
    server,
    path: '/ipc',
    maxPayload: MAX_MESSAGE_BYTES,
    handleProtocols: (protocols) => (protocols.has(WIRE_PROTOCOL) ? WIRE_PROTOCOL : false),
    verifyClient: ({ req }, done) => {
      const offered = String(req.headers['sec-websocket-protocol'] ?? '')
        .split(',')
        .map((p) => p.trim());
      const presented = offered.find((p) => p.startsWith(TOKEN_PROTOCOL_PREFIX))?.slice(TOKEN_PROTOCOL_PREFIX.length) ?? '';
      if (req.headers.origin !== origin || !sameSecret(presented, token)) {
        services.log.warn('test host: refused a WebSocket without our origin and token', { origin: req.headers.origin });
        done(false, 403, 'Forbidden');
        return;
      }
      done(true);
    },
  });

  const clients = new Set<WebSocket>();
  let queued: WireServerMessage[] = [];
  const send = (socket: WebSocket, message: WireServerMessage): void => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  };
  // Events are queued until a page is connected, as the Electron binding queues until the renderer is ready.
  const unsubscribe = services.bus.subscribe((event, payload) => {
    const message: WireServerMessage = { type: 'event', event, payload };
    if (clients.size === 0) {
      queued.push(message);
      if (queued.length > MAX_QUEUED_EVENTS) queued = queued.slice(-MAX_QUEUED_EVENTS);
      return;
    }
    for (const socket of clients) send(socket, message);
  });

  wss.on('connection', (socket, req) => {
    const sender: Sender = { transport: 'websocket', url: req.headers.origin ?? null, authenticated: true };
    clients.add(socket);
    for (const message of queued) send(socket, message);
    queued = [];
    socket.on('close', () => clients.delete(socket));
    socket.on('message', (data, isBinary) => {
      let message: Partial<WireClientMessage>;
      try {
        message = isBinary ? {} : (JSON.parse(rawText(data)) as Partial<WireClientMessage>);
      } catch {
        message = {};
      }
      const id = typeof message.id === 'number' && Number.isSafeInteger(message.id) ? message.id : -1;
      if (message.type !== 'invoke' || id < 0) {
        send(socket, { type: 'result', id, result: { ok: false, error: { code: 'VALIDATION', message: 'Malformed message: expected {type:"invoke", id, channel, input}' } } });
        return;
      }
      void router.handle(message.channel, message.input, sender).then((result) => send(socket, { type: 'result', id, result }));
    });
  });

  return {
    url: `${origin}/#token=${token}`,
    origin,
    token,
    port: actualPort,
    async close() {
      unsubscribe();
      for (const socket of clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
