import { describe, expect, it } from 'vitest';
import { createApi } from './api';
import type { ApiTransport } from './api';
import { CHANNELS, EVENTS } from './contract';
import { AppError, toAppError } from './errors';

function fakeTransport() {
  const invoked: [string, unknown][] = [];
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const transport: ApiTransport = {
    invoke: (channel, input) => {
      invoked.push([channel, input]);
      return Promise.resolve(channel === 'jobs:cancel' ? { ok: false, error: { code: 'NOT_FOUND', message: 'gone' } } : { ok: true, value: channel });
    },
    subscribe: (event, cb) => {
      const set = listeners.get(event) ?? new Set();
      listeners.set(event, set.add(cb));
      return () => set.delete(cb);
    },
  };
  return { transport, invoked, listeners };
}

describe('createApi', () => {
  it('exposes one method per channel and one listener per event, grouped by domain', () => {
    const api = createApi(fakeTransport().transport) as unknown as Record<string, Record<string, unknown>>;
    for (const channel of CHANNELS) {
      const [domain, action] = channel.split(':') as [string, string];
      expect(typeof api[domain]![action]).toBe('function');
    }
    for (const event of EVENTS) {
      const [domain, name] = event.split(':') as [string, string];
      expect(typeof api[domain]![`on${name[0]!.toUpperCase()}${name.slice(1)}`]).toBe('function');
    }
    expect(Object.isFrozen(api)).toBe(true);
    expect(Object.isFrozen(api.settings)).toBe(true);
  });

  it('maps calls to channels and rebuilds errors with their code', async () => {
    const { transport, invoked } = fakeTransport();
    const api = createApi(transport);
    await expect(api.settings.get()).resolves.toBe('settings:get');
    await api.settings.update({ theme: 'dark' });
    expect(invoked).toEqual([
      ['settings:get', undefined],
      ['settings:update', { theme: 'dark' }],
    ]);
    const error = await api.jobs.cancel({ jobId: 'job_abcdef' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('NOT_FOUND');
  });

  it('with plainErrors rejects with a cloneable object that toAppError restores', async () => {
    const api = createApi(fakeTransport().transport, { plainErrors: true });
    const error = await api.jobs.cancel({ jobId: 'job_abcdef' }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(Error);
    expect(structuredClone(error)).toEqual({ name: 'AppError', code: 'NOT_FOUND', message: 'gone' });
    expect(toAppError(error)).toMatchObject({ code: 'NOT_FOUND', message: 'gone' });
  });

  it('subscribes listeners and returns a working unsubscribe', () => {
    const { transport, listeners } = fakeTransport();
    const api = createApi(transport);
    const seen: unknown[] = [];
    const off = api.jobs.onProgress((p) => seen.push(p));
    listeners.get('jobs:progress')!.forEach((cb) => cb(1));
    off();
    listeners.get('jobs:progress')!.forEach((cb) => cb(2));
    expect(seen).toEqual([1]);
  });
});
