import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheEnabled, cacheEntry, lookup } from './template-cache';

describe('template cache', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('keys entries by PostgreSQL version, template SQL and load settings', () => {
    const a = cacheEntry('15', 'CREATE TABLE a();', { fsync: 'off' });
    expect(cacheEntry('15', 'CREATE TABLE a();', { fsync: 'off' })).toBe(a);
    expect(cacheEntry('16', 'CREATE TABLE a();', { fsync: 'off' })).not.toBe(a);
    expect(cacheEntry('15', 'CREATE TABLE b();', { fsync: 'off' })).not.toBe(a);
    expect(cacheEntry('15', 'CREATE TABLE a();', { fsync: 'on' })).not.toBe(a);
  });

  it('uses only complete, cleanly stopped data dirs', () => {
    const entry = mkdtempSync('/tmp/jvt-cache-');
    dirs.push(entry);
    expect(lookup(entry)).toBeNull(); // no PG_VERSION: not a data dir (or not finished)
    writeFileSync(path.join(entry, 'PG_VERSION'), '15\n');
    expect(lookup(entry)).toBe(entry);
    writeFileSync(path.join(entry, 'postmaster.pid'), '123\n'); // a cluster that was not shut down cleanly
    expect(lookup(entry)).toBeNull();
    expect(lookup(path.join(entry, 'missing'))).toBeNull();
  });

  it('can be turned off per fleet or with JVF_NO_CACHE', () => {
    const saved = process.env.JVF_NO_CACHE;
    try {
      delete process.env.JVF_NO_CACHE;
      expect(cacheEnabled(undefined)).toBe(true);
      expect(cacheEnabled(false)).toBe(false);
      process.env.JVF_NO_CACHE = '1';
      expect(cacheEnabled(true)).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.JVF_NO_CACHE;
      else process.env.JVF_NO_CACHE = saved;
    }
  });
});
