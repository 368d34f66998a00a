import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { rolesNote } from '../../restore/db-restore';
import { splitPgReport } from './dump-source';
import { createRolesCommand, parsePgRoles, roleAttributes } from './pg-roles';

const app = { login: true, createdb: true, createrole: false, inherit: true, connlimit: 5, superuser: false, replication: false, bypassrls: false };

describe('recorded PostgreSQL roles', () => {
  it('are read from the report after the row counts; a report from before roles were recorded has none', () => {
    const record = JSON.stringify({ roles: { myrvm: app }, memberships: [['readers', 'myrvm', false]] });
    const { counts, roles } = splitPgReport(`{"public.t": 3}\n@@roles\n${record}\n`);
    expect(JSON.parse(counts)).toEqual({ 'public.t': 3 });
    expect(parsePgRoles(roles)).toEqual({ roles: { myrvm: app }, memberships: [['readers', 'myrvm', false]] });
    expect(splitPgReport('{"public.t": 3}\n')).toEqual({ counts: '{"public.t": 3}\n', roles: '' });
  });

  it('are refused when they are not such a record (damaged, or a future shape): the restore falls back to NOLOGIN roles', () => {
    for (const text of ['', 'not json', '{"roles": {"x": {"login": "yes"}}, "memberships": []}', '{"roles": {}}', '[]']) expect(parsePgRoles(text)).toBeNull();
    expect(roleAttributes(undefined)).toEqual({ sql: 'NOLOGIN', withheld: [] });
  });

  it('become keywords and a number only, without what only a superuser may give', () => {
    expect(roleAttributes(app)).toEqual({ sql: 'LOGIN CREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT 5', withheld: [] });
    const admin = { ...app, login: false, createdb: false, createrole: true, inherit: false, connlimit: -1, superuser: true, replication: true, bypassrls: true };
    expect(roleAttributes(admin)).toEqual({ sql: 'NOLOGIN NOCREATEDB CREATEROLE NOINHERIT CONNECTION LIMIT -1', withheld: ['SUPERUSER', 'REPLICATION', 'BYPASSRLS'] });
  });

  it("are named in the restore's result, with what was not given and how to let the app log in", () => {
    const recorded = rolesNote({ names: ['myrvm'], withheld: ['"myrvm": REPLICATION'], memberships: ['"myrvm" in "readers"'] }, 'rvm-017', 'db', true);
    expect(recorded).toMatch(/no role "myrvm", .*created as the snapshot recorded them, with "myrvm" in "readers", but without a password .*Not given, as only a superuser may: "myrvm": REPLICATION\. .*ALTER ROLE/);
    expect(rolesNote({ names: ['myrvm'], withheld: [], memberships: [] }, 'rvm-017', 'db', false)).toMatch(/created without login and without a password \(the snapshot predates recorded roles\)/);
  });

  it('make the command a technician runs where the login may not create them: as recorded, quoted for the shell and for SQL', () => {
    const odd = `it's "odd"; $(rm -rf /)`;
    const recorded = { roles: { myrvm: app, [odd]: { ...app, login: false, replication: true } }, memberships: [[odd, 'myrvm', true], ['elsewhere', 'other', false]] as [string, string, boolean][] };
    const command = createRolesCommand(['myrvm', odd, 'unrecorded'], recorded);
    expect(command.startsWith('sudo -u postgres psql -c ')).toBe(true);
    // What psql would be given, as the shell reads the command (printf stands in for psql).
    const sql = execFileSync('sh', ['-c', command.replace('sudo -u postgres psql -c ', "printf '%s' ")], { encoding: 'utf8' });
    expect(sql).toBe(
      'CREATE ROLE "myrvm" LOGIN CREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT 5; ' +
        `CREATE ROLE "it's ""odd""; $(rm -rf /)" NOLOGIN CREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT 5 REPLICATION; ` +
        'CREATE ROLE "unrecorded" NOLOGIN; ' +
        `GRANT "it's ""odd""; $(rm -rf /)" TO "myrvm" WITH ADMIN OPTION`,
    );
  });
});
