import { describe, expect, it } from 'vitest';
import { authOf, DeviceProfileSchema, parseJump } from './devices';
import { z } from './zod';

const ISSUE_EXAMPLE = {
  name: 'rvm-017',
  host: '10.0.4.17',
  port: 22,
  user: 'jetson',
  identityFile: '/home/me/.ssh/id_ed25519',
  hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
  site: 'Depot North',
  tags: ['critical'],
  rpoMinutes: 15,
  sources: [
    { name: 'db', kind: 'postgres', database: 'myrvm', host: '/run/postgresql' },
    { name: 'local', kind: 'sqlite', path: '/opt/myrvm/data/local.db' },
    { name: 'config', kind: 'files', paths: ['/etc/myrvm', '/opt/myrvm/.env'] },
    { name: 'logs', kind: 'files', paths: ['/var/log/myrvm'] },
    { name: 'app', kind: 'files', paths: ['/opt/myrvm'], exclude: ['data/local.db*'] },
  ],
  comment: 'extra fields are allowed',
};

describe('device profile', () => {
  it('accepts the shared profile shape and drops unknown fields', () => {
    const profile = DeviceProfileSchema.parse(ISSUE_EXAMPLE);
    expect(profile.sources).toHaveLength(5);
    expect(profile).not.toHaveProperty('comment');
    expect(authOf(profile)).toBe('key');
  });

  it('keeps an address given in brackets without them (they only set an IPv6 address apart from a port)', () => {
    expect(DeviceProfileSchema.parse({ name: 'a', host: '[fd00::17]', user: 'jetson', jump: 'ops@[fd00::1]:2222' })).toMatchObject({ host: 'fd00::17', jump: { host: 'fd00::1', port: 2222 } });
    expect(DeviceProfileSchema.parse({ name: 'a', host: 'fd00::17', user: 'jetson' }).host).toBe('fd00::17');
  });

  it('fills defaults for a minimal profile', () => {
    const profile = DeviceProfileSchema.parse({ name: 'a', host: '127.0.0.2', user: 'jetson' });
    expect(profile).toMatchObject({ port: 22, site: '', tags: [], sources: [] });
    expect(authOf(profile)).toBe('agent');
  });

  it.each([
    [{ name: '../etc', host: 'h', user: 'u' }, 'name'],
    [{ name: 'ok', host: 'h; rm -rf /', user: 'u' }, 'host'],
    [{ name: 'ok', host: 'h', user: 'u', port: 70000 }, 'port'],
    [{ name: 'ok', host: 'h', user: '-oProxyCommand=x' }, 'user'],
    [{ name: 'ok', host: 'h', user: 'u', hostKey: 'MD5:aa:bb' }, 'hostKey'],
    [{ name: 'ok', host: 'h', user: 'u', sources: [{ name: 's', kind: 'files', paths: ['relative/path'] }] }, 'sources.0.paths.0'],
    [{ name: 'ok', host: 'h', user: 'u', sources: [{ name: 's', kind: 'ftp' }] }, 'sources.0.kind'],
    [{ name: 'ok', host: 'h', user: 'u', sources: [{ name: 's', kind: 'sqlite', path: '/a' }, { name: 's', kind: 'sqlite', path: '/b' }] }, 'sources.1.name'],
    [{ name: 'ok', host: 'h', user: 'u', jump: 'not a jump' }, 'jump'],
  ])('rejects %j at %s', (input, path) => {
    const result = DeviceProfileSchema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.path.join('.'))).toContain(path);
  });

  it('parses jump hosts written as USER@HOST[:PORT]', () => {
    expect(parseJump('ops@bastion.example:2222')).toEqual({ user: 'ops', host: 'bastion.example', port: 2222 });
    expect(parseJump('ops@10.0.0.1')).toEqual({ user: 'ops', host: '10.0.0.1', port: 22 });
    expect(DeviceProfileSchema.parse({ name: 'a', host: 'h', user: 'u', jump: 'ops@gw:22' }).jump).toEqual({ user: 'ops', host: 'gw', port: 22 });
    expect(parseJump('bastion')).toBeNull();
  });
});

describe('messages an operator reads', () => {
  it('says a wrong type, a bound and an empty value in words, and never repeats a number given where text belongs', () => {
    const messages = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error?.issues.map((i) => i.message);
    expect(messages(z.number().int().min(1).max(65535), 0)).toEqual(['At least 1']);
    expect(messages(z.number().int().min(1).max(65535), 70000)).toEqual(['At most 65535']);
    expect(messages(z.number().positive(), 0)).toEqual(['More than 0']);
    expect(messages(z.number(), 'abc')).toEqual(['Expected a number, not "abc"']);
    expect(messages(z.boolean(), 'yes')).toEqual(['Expected true or false, not "yes"']);
    expect(messages(z.number(), 'x'.repeat(41))).toEqual(['Expected a number, not a longer text']);
    // A PIN in the wrong field is not echoed into a log or the audit trail.
    expect(messages(z.string(), 482913)).toEqual(['Expected text, not a number']);
    expect(messages(z.string().max(64), 'x'.repeat(65))).toEqual(['At most 64 characters']);
    expect(messages(z.string().min(1), '')).toEqual(['Cannot be empty']);
    expect(messages(z.array(z.string()).min(1), [])).toEqual(['Needs at least one entry']);
    expect(messages(z.array(z.string()).max(2), ['a', 'b', 'c'])).toEqual(['At most 2 entries']);
    expect(messages(z.string(), undefined)).toEqual(['Required (text)']);
    // A schema's own message wins.
    expect(messages(z.number().max(10, { message: 'Ten at most, for this one' }), 11)).toEqual(['Ten at most, for this one']);
  });
});
