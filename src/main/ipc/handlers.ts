/** Binds every channel of the contract to the services. One line per channel, no logic here. */
import type { Services } from '../services/index';
import type { Handlers, Sender } from './router';

const actor = (sender: Sender): string => `console:${sender.transport}`;

export function createHandlers(services: Services, transport: 'electron' | 'websocket'): Handlers {
  return {
    'app:info': () => ({
      name: 'Jetvault',
      version: services.version,
      transport,
      dataDir: services.dataDir,
      platform: process.platform,
      schemaVersion: services.history.schemaVersion,
    }),
    'app:openExternal': async ({ url }) => ({ opened: await services.links.open(url) }),

    'settings:get': () => services.settings.get(),
    'settings:update': (patch, sender) => services.settings.update(patch, actor(sender)),
    'settings:reset': (_input, sender) => services.settings.reset(actor(sender)),

    'jobs:list': (input) => services.jobs.list(input?.limit ?? 100, input?.status),
    'jobs:active': () => services.jobs.active(),
    'jobs:cancel': ({ jobId }) => ({ cancelled: services.jobs.cancel(jobId) }),
  };
}
