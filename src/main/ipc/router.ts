/**
 * The IPC router: one `handle()` for every channel, shared by both transports (Electron and the
 * test host's WebSocket). It checks the sender, validates the input against the contract, runs the
 * handler, checks the output, and encodes failures as `{ok:false, error:{code, message}}`.
 * Plain Node: never imports `electron`.
 */
import { z } from '../../shared/schemas/zod';
import { channels, events, isChannel } from '../../shared/contract';
import type { Channel, ChannelOutput, EventName, EventPayload, ParsedInput } from '../../shared/contract';
import { AppError } from '../../shared/errors';
import type { IpcErrorShape, IpcResult } from '../../shared/errors';
import type { Logger } from '../log';

/** Who is calling. Each transport fills it in from what it can observe. */
export interface Sender {
  transport: 'electron' | 'websocket';
  /** The calling page's URL (Electron frame URL / WebSocket Origin header). */
  url: string | null;
  /** Electron: the call comes from a top-level frame. WebSocket: the token was presented. */
  authenticated: boolean;
}

export type Handlers = {
  [C in Channel]: (input: ParsedInput<C>, sender: Sender) => Promise<ChannelOutput<C>> | ChannelOutput<C>;
};

export interface RouterOptions {
  /** Decides whether a sender may call at all (our own page, authenticated). */
  isTrustedSender: (sender: Sender) => boolean;
  log: Logger;
}

export function issuesOf(error: z.ZodError): NonNullable<IpcErrorShape['issues']> {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.') || '(input)', message: issue.message }));
}

/**
 * A refused input's message, as a form shows it above the fields that say why (the issues): plain
 * words, not the channel's name.
 */
export function refusedInput(error: z.ZodError): AppError {
  const issues = issuesOf(error);
  return new AppError('VALIDATION', issues.length === 1 ? 'One value was not accepted' : `${issues.length} values were not accepted`, issues);
}

function toErrorShape(error: unknown, channel: string, log: Logger): IpcErrorShape {
  if (error instanceof AppError) return error.toShape();
  if (error instanceof z.ZodError) return refusedInput(error).toShape();
  // Unexpected failures are logged in full here and reach the renderer without internals.
  log.error(`ipc ${channel} failed`, error);
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message: `${channel} failed: ${message}` };
}

export class IpcRouter {
  readonly #handlers: Handlers;
  readonly #options: RouterOptions;

  constructor(handlers: Handlers, options: RouterOptions) {
    this.#handlers = handlers;
    this.#options = options;
  }

  /** The single entry point for a request from any transport. Never throws. */
  async handle(channel: unknown, rawInput: unknown, sender: Sender): Promise<IpcResult<unknown>> {
    const name = typeof channel === 'string' ? channel.slice(0, 100) : typeof channel;
    try {
      if (!this.#options.isTrustedSender(sender)) {
        this.#options.log.warn(`ipc ${name} refused: untrusted sender`, { transport: sender.transport, url: sender.url });
        throw new AppError('FORBIDDEN', 'This caller is not allowed to use the console API');
      }
      if (!isChannel(channel)) throw new AppError('UNKNOWN_CHANNEL', `No such channel: ${name}`);
      const spec = channels[channel];
      const parsed = spec.input.safeParse(rawInput);
      if (!parsed.success) throw refusedInput(parsed.error);
      const handler = this.#handlers[channel] as (input: unknown, sender: Sender) => unknown;
      const value = await handler(parsed.data, sender);
      // A handler returning something outside its contract is our bug; catch it here, not in the UI.
      const checked = spec.output.safeParse(value);
      if (!checked.success) {
        this.#options.log.error(`ipc ${channel} returned data outside its contract`, checked.error.issues);
        throw new AppError('INTERNAL', `${channel} produced an invalid response`);
      }
      return { ok: true, value: checked.data };
    } catch (error) {
      return { ok: false, error: toErrorShape(error, name, this.#options.log) };
    }
  }
}

/** Checks a pushed event against the contract before any transport sends it. */
export function checkEvent<E extends EventName>(event: E, payload: EventPayload<E>): EventPayload<E> {
  return events[event].parse(payload) as EventPayload<E>;
}
