/**
 * The PostgreSQL roles a database snapshot was taken among, recorded with it so that a restore onto
 * a reflashed device recreates the roles the dump needs as they were (login, create rights, group
 * memberships) rather than bare NOLOGIN roles. Read from `pg_roles` and `pg_auth_members`, which
 * every login may read; password hashes live in `pg_authid`, which only a superuser may, so a
 * recreated role has no password. Stored in the snapshot as `<source>.roles.json`.
 */
import { z } from '../../../shared/schemas/zod';
import { commandText, sh } from '../shell-quote';

/** The file a PostgreSQL snapshot keeps its roles in. */
export const rolesFileName = (source: string) => `${source}.roles.json`;

const RoleSchema = z.object({
  login: z.boolean(),
  createdb: z.boolean(),
  createrole: z.boolean(),
  inherit: z.boolean(),
  connlimit: z.number().int().min(-1),
  superuser: z.boolean(),
  replication: z.boolean(),
  bypassrls: z.boolean(),
});

const PgRolesSchema = z.object({
  roles: z.record(z.string(), RoleSchema),
  /** [group, member, member may administer the group]. */
  memberships: z.array(z.tuple([z.string(), z.string(), z.boolean()])),
});

export type PgRoles = z.infer<typeof PgRolesSchema>;
export type PgRole = z.infer<typeof RoleSchema>;

/** One JSON object of every role that is not PostgreSQL's own (`pg_*`), and who is a member of whom. */
export const PG_ROLES_SQL =
  "SELECT json_build_object('roles', coalesce((SELECT json_object_agg(rolname, json_build_object('login', rolcanlogin, 'createdb', rolcreatedb, " +
  "'createrole', rolcreaterole, 'inherit', rolinherit, 'connlimit', rolconnlimit, 'superuser', rolsuper, 'replication', rolreplication, " +
  "'bypassrls', rolbypassrls) ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'), '{}'), " +
  "'memberships', coalesce((SELECT json_agg(json_build_array(g.rolname, m.rolname, a.admin_option) ORDER BY g.rolname, m.rolname) " +
  "FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member " +
  "WHERE g.rolname !~ '^pg_' AND m.rolname !~ '^pg_'), '[]'))";

/** The recorded roles, or null when the text is not such a record (an older or damaged snapshot). */
export function parsePgRoles(text: string): PgRoles | null {
  try {
    const parsed = PgRolesSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The attributes a restore gives a role it recreates: what the snapshot recorded, except what only
 * a superuser may grant (SUPERUSER, REPLICATION, BYPASSRLS), which `withheld` names. Keywords and a
 * number only, so the text may go into SQL as it is. Without a record: NOLOGIN, as pg_dump says nothing.
 */
export function roleAttributes(role: PgRole | undefined): { sql: string; withheld: string[] } {
  if (!role) return { sql: 'NOLOGIN', withheld: [] };
  const sql = [
    role.login ? 'LOGIN' : 'NOLOGIN',
    role.createdb ? 'CREATEDB' : 'NOCREATEDB',
    role.createrole ? 'CREATEROLE' : 'NOCREATEROLE',
    role.inherit ? 'INHERIT' : 'NOINHERIT',
    `CONNECTION LIMIT ${Math.max(-1, Math.trunc(role.connlimit))}`,
  ].join(' ');
  const withheld = [role.superuser && 'SUPERUSER', role.replication && 'REPLICATION', role.bypassrls && 'BYPASSRLS'].filter((a): a is string => typeof a === 'string');
  return { sql, withheld };
}

/** The recorded memberships in which one of `roles` (roles a restore creates) is group or member; none of a role in itself. */
export function membershipsOf(recorded: PgRoles | null, roles: ReadonlySet<string>): PgRoles['memberships'] {
  return (recorded?.memberships ?? []).filter(([group, member]) => (roles.has(group) || roles.has(member)) && group !== member);
}

/** A name as a PostgreSQL identifier: double-quoted, inner quotes doubled (any character survives). */
const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * What a technician runs on the device when the restore's login may not create the roles a dump
 * needs: one `psql` as the database superuser creating them as the snapshot recorded them — every
 * attribute, those only a superuser may give too — with the recorded memberships among them (NOLOGIN
 * without a record). Shell- and SQL-quoted, since role names may hold any character.
 */
export function createRolesCommand(names: string[], recorded: PgRoles | null): string {
  const roles = names.map((name) => {
    const { sql, withheld } = roleAttributes(recorded?.roles[name]);
    return `CREATE ROLE ${ident(name)} ${[sql, ...withheld].join(' ')}`;
  });
  const grants = membershipsOf(recorded, new Set(names)).map(([group, member, admin]) => `GRANT ${ident(group)} TO ${ident(member)}${admin ? ' WITH ADMIN OPTION' : ''}`);
  return commandText(sh`sudo -u postgres psql -c ${[...roles, ...grants].join('; ')}`);
}
