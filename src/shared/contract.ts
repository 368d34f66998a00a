/**
 * The one IPC contract between the renderer and the main process.
 *
 * Every request channel is `domain:action` with a zod schema for its input and its output; every
 * event the main side pushes is `domain:event` with a schema for its payload. The router, the
 * preload, the test host's WebSocket bridge and the renderer all derive their types from this file.
 * Adding a channel here is the only way to add a channel.
 */
import { z } from 'zod';
import { SettingsPatchSchema, SettingsSchema } from './schemas/settings';
import { JobFinishedSchema, JobIdSchema, JobProgressSchema, JobRecordSchema, JobStatusSchema } from './schemas/jobs';

// No `new Function` probing: the renderer's CSP forbids eval, and a blocked probe is noise.
z.config({ jitless: true });

const none = z.undefined();

export const AppInfoSchema = z.object({
  name: z.string(),
  version: z.string(),
  /** Which binding carries this contract: the Electron app or the plain-Node test host. */
  transport: z.enum(['electron', 'websocket']),
  dataDir: z.string(),
  platform: z.string(),
  schemaVersion: z.number().int(),
});
export type AppInfo = z.infer<typeof AppInfoSchema>;

export const channels = {
  'app:info': { input: none, output: AppInfoSchema },
  /** Opens an https link in the system browser if its origin is on the allowlist. */
  'app:openExternal': { input: z.object({ url: z.string().max(2048) }).strict(), output: z.object({ opened: z.boolean() }) },

  'settings:get': { input: none, output: SettingsSchema },
  'settings:update': { input: SettingsPatchSchema, output: SettingsSchema },
  'settings:reset': { input: none, output: SettingsSchema },

  'jobs:list': {
    input: z
      .object({ limit: z.number().int().min(1).max(1000).default(100), status: JobStatusSchema.optional() })
      .strict()
      .optional(),
    output: z.array(JobRecordSchema),
  },
  'jobs:active': { input: none, output: z.array(JobProgressSchema) },
  'jobs:cancel': { input: z.object({ jobId: JobIdSchema }).strict(), output: z.object({ cancelled: z.boolean() }) },
} as const satisfies Record<`${string}:${string}`, { input: z.ZodType; output: z.ZodType }>;

export const events = {
  'jobs:progress': JobProgressSchema,
  'jobs:finished': JobFinishedSchema,
  /** Settings changed by another window, the CLI, or a reset. */
  'settings:changed': SettingsSchema,
} as const satisfies Record<`${string}:${string}`, z.ZodType>;

export type Channel = keyof typeof channels;
export type EventName = keyof typeof events;
/** What a caller passes (defaults not yet applied). */
export type ChannelInput<C extends Channel> = z.input<(typeof channels)[C]['input']>;
/** What a handler receives (after parsing: defaults applied). */
export type ParsedInput<C extends Channel> = z.output<(typeof channels)[C]['input']>;
export type ChannelOutput<C extends Channel> = z.output<(typeof channels)[C]['output']>;
export type EventPayload<E extends EventName> = z.output<(typeof events)[E]>;

export const CHANNELS = Object.keys(channels) as Channel[];
export const EVENTS = Object.keys(events) as EventName[];

export function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && Object.hasOwn(channels, value);
}
export function isEventName(value: unknown): value is EventName {
  return typeof value === 'string' && Object.hasOwn(events, value);
}
