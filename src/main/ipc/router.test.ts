import { describe, expect, it } from 'vitest';
import { AppError } from '../../shared/errors';
import { silentLogger } from '../log';
import { IpcRouter } from './router';
import type { Handlers, Sender } from './router';

const trusted: Sender = { transport: 'websocket', url: 'http://127.0.0.1:1', authenticated: true };

function router(overrides: Partial<Handlers> = {}) {
  const calls: unknown[] = [];
  const base = {
    'settings:get': () => ({ theme: 'dark', repositoryPath: '', defaultRpoMinutes: 60, defaultRtoMinutes: 60, maxParallelDevices: 8, bandwidthLimitKiBps: 0, desktopNotifications: true, logLevel: 'info' }),
    'settings:update': (patch: unknown) => {
      calls.push(patch);
      return { theme: 'light', repositoryPath: '', defaultRpoMinutes: 60, defaultRtoMinutes: 60, maxParallelDevices: 8, bandwidthLimitKiBps: 0, desktopNotifications: true, logLevel: 'info' };
    },
    'jobs:cancel': () => {
      throw new AppError('NOT_FOUND', 'no such job');
    },
    'jobs:list': () => {
      throw new Error('disk on fire');
    },
    'jobs:active': () => [{ not: 'a progress' }],
    ...overrides,
  } as unknown as Handlers;
  return { calls, router: new IpcRouter(base, { log: silentLogger, isTrustedSender: (s) => s.authenticated && s.url === trusted.url }) };
}

describe('IpcRouter.handle', () => {
  it('passes valid input to the handler and returns its value', async () => {
    const { router: r, calls } = router();
    const result = await r.handle('settings:update', { theme: 'light' }, trusted);
    expect(result).toMatchObject({ ok: true, value: { theme: 'light' } });
    expect(calls).toEqual([{ theme: 'light' }]);
  });

  it('rejects invalid input with VALIDATION and field issues, without calling the handler', async () => {
    const { router: r, calls } = router();
    const result = await r.handle('settings:update', { theme: 'neon', defaultRpoMinutes: 'soon' }, trusted);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('VALIDATION');
    expect(result.error.issues?.map((i) => i.path).sort()).toEqual(['defaultRpoMinutes', 'theme']);
    expect(calls).toEqual([]);
  });

  it('rejects unknown keys and empty updates', async () => {
    const { router: r } = router();
    expect(await r.handle('settings:update', { sql: 'DROP TABLE x' }, trusted)).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(await r.handle('settings:update', {}, trusted)).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
  });

  it('refuses untrusted senders before looking at anything else', async () => {
    const { router: r, calls } = router();
    for (const sender of [
      { ...trusted, authenticated: false },
      { ...trusted, url: 'https://evil.example' },
      { ...trusted, url: null },
    ]) {
      expect(await r.handle('settings:update', { theme: 'light' }, sender)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    expect(calls).toEqual([]);
  });

  it('answers unknown and non-string channels with UNKNOWN_CHANNEL', async () => {
    const { router: r } = router();
    expect(await r.handle('settings:drop', {}, trusted)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
    expect(await r.handle({ toString: () => 'x' }, {}, trusted)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
    expect(await r.handle('__proto__', {}, trusted)).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
  });

  it('keeps the code of an AppError and hides nothing else', async () => {
    const { router: r } = router();
    expect(await r.handle('jobs:cancel', { jobId: 'job_abcdef123' }, trusted)).toEqual({ ok: false, error: { code: 'NOT_FOUND', message: 'no such job' } });
  });

  it('turns unexpected exceptions into INTERNAL', async () => {
    const { router: r } = router();
    const result = await r.handle('jobs:list', undefined, trusted);
    expect(result).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
    expect(result.ok ? '' : result.error.message).toContain('disk on fire');
  });

  it('catches a handler answering outside its contract', async () => {
    const { router: r } = router();
    expect(await r.handle('jobs:active', undefined, trusted)).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
  });

  it('applies input defaults before the handler sees it', async () => {
    let seen: unknown;
    const { router: r } = router({ 'jobs:list': (input) => ((seen = input), []) });
    await r.handle('jobs:list', {}, trusted);
    expect(seen).toEqual({ limit: 100 });
  });
});
