import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { AppError } from '../../shared/errors';
import { formatBytes } from '../../shared/format-bytes';
import type { Command } from '../command';
import { UsageError } from '../command';
import { withServices } from '../services';
import { DeviceProfileSchema, MAX_SOURCES, NameSchema, parseJump, profilesFileTooLarge } from '../../shared/schemas/devices';
import { unreadableKeyFiles } from '../../main/devices/device-service';
import type { JumpHost } from '../../shared/schemas/devices';
import type { HostKeyMismatch } from '../../main/devices/ssh-connection';
import { counted } from '../../shared/plural';

const USAGE = `Usage:
  jetvault device add NAME --host HOST [--port P] [--user U] [--identity FILE [--passphrase-file FILE] | --password-file FILE]
                          [--host-key SHA256:…]
                          [--jump USER@HOST[:PORT] [--jump-host-key SHA256:…] [--jump-identity FILE]]
                          [--site SITE] [--tag TAG]... [--rpo MINUTES] [--rto MINUTES] [--offline]
  jetvault device import FILE.json [--replace]
  jetvault device export [NAME]...
  jetvault device list [--json]
  jetvault device facts NAME [--accept] [--json]
  jetvault device trust NAME [--host-key SHA256:… | --jump-host-key SHA256:…]
  jetvault device db-password NAME SOURCE (--password-file FILE | --clear)
  jetvault device remove NAME

Without --host-key, "add" prints the device's host key fingerprint and exits with status 3:
compare it with the one shown on the device (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub),
then run the same command again with --host-key. "add" logs in once to check the key and the
credentials unless --offline is given. A key locked with a passphrase: --passphrase-file names a
file whose first line is it; a device that logs in with a password (a stock JetPack image):
--password-file, the same way. Either is kept encrypted with the device, as the console keeps
secrets, and never taken on the command line. Without --identity or --password-file the SSH agent
(SSH_AUTH_SOCK) logs in.

"trust" compares the key the device presents now with the pinned one (exit 0: the same; exit 3:
none pinned yet, or it CHANGED — printed for you to compare with the device). After a reinstall,
"trust NAME --host-key SHA256:…" pins the new key, only if the device presents exactly that key; a
device behind a jump host whose key changed: --jump-host-key first (the device's key is read through it).

"facts" reads the device (L4T release, board, disks, tools, databases) and lists the sources it
proposes; --accept adds them to the device, as "Accept" does on the device page.

"db-password" keeps the password a PostgreSQL or MySQL source's database login needs (the first
line of FILE), encrypted with the device; --clear forgets it. Each command of that source receives
it on its input, never on a command line or in a file on the device.

A device reached through a jump host (bastion, as ssh -J): without --jump-host-key, "add" prints the
jump host's fingerprint first (exit 3); with it, it logs in to the jump host (with --jump-identity,
else the device's key) and prints the device's fingerprint, fetched through the tunnel.`;

const EXIT_CONFIRM_HOST_KEY = 3;

/**
 * A key given with --host-key or --jump-host-key that the host does not present, said as that: at
 * `add` nothing was pinned yet, so it is a fingerprint mistyped or taken from elsewhere, not a key
 * that CHANGED with advice to re-pin a device that does not exist.
 */
function givenKeyRefused(error: unknown, name: string, device: { host: string; port: number; hostKey?: string | undefined }, jump: JumpHost | undefined): unknown {
  if (!(error instanceof AppError) || error.code !== 'HOST_KEY_MISMATCH' || !('presented' in error)) return error;
  const { role, presented } = error as HostKeyMismatch;
  const target = role === 'jump' ? jump : role === 'device' ? device : undefined;
  if (!target?.hostKey) return error;
  const isJump = role === 'jump';
  return new AppError(
    'HOST_KEY_MISMATCH',
    `${isJump ? 'The jump host ' : ''}${target.host}:${target.port} presents the host key ${presented}, not the ${target.hostKey} given with --${isJump ? 'jump-host-key' : 'host-key'}. ` +
      `Nothing was sent and ${name} was not added: compare the key with the one shown on the ${isJump ? 'jump host' : 'device'} (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run the command again with it.`,
  );
}

/** A secret given as a file (not on the command line, where other users' `ps` would see it). */
async function firstLine(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new AppError('NOT_FOUND', `Cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line === '') throw new UsageError(`${file} is empty: its first line should be ${what}`);
  return line;
}

/** A disk of `device facts` as one line: its mount and its room in the unit that fits ("0.0 GiB free of 0.0 GiB" said nothing of a small one). */
export function diskLine(disk: { mount: string; availableBytes: number; sizeBytes: number }): string {
  return `${disk.mount.padEnd(24)} ${formatBytes(disk.availableBytes)} free of ${formatBytes(disk.sizeBytes)}`;
}

export const deviceCommand: Command = {
  name: 'device',
  summary: 'add, import, export, list, inspect, trust and remove devices; database passwords',
  usage: USAGE,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    user: { type: 'string' },
    identity: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'password-file': { type: 'string' },
    jump: { type: 'string' },
    'jump-host-key': { type: 'string' },
    'jump-identity': { type: 'string' },
    'host-key': { type: 'string' },
    site: { type: 'string' },
    tag: { type: 'string', multiple: true },
    rpo: { type: 'string' },
    rto: { type: 'string' },
    offline: { type: 'boolean' },
    replace: { type: 'boolean' },
    accept: { type: 'boolean' },
    clear: { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    const [action, ...args] = positionals;
    const one = () => {
      if (args.length !== 1) throw new UsageError(`${action} needs exactly one device NAME`);
      return args[0]!;
    };
    const number = (flag: string) => {
      const raw = values[flag] as string | undefined;
      if (raw === undefined) return undefined;
      if (!/^\d+$/.test(raw)) throw new UsageError(`--${flag} must be a whole number`);
      return Number(raw);
    };
    // Loaded on use: SSH and the device modules are not needed to start other commands.
    const [{ DeviceConnector }, { proposeSources }, { DeviceConnection }] = await Promise.all([
      import('../../main/devices/device-connector'),
      import('../../main/devices/facts'),
      import('../../main/devices/ssh-connection'),
    ]);
    return withServices(io, async ({ devices, connector }) => {
      switch (action) {
        case 'add': {
          // Key files as `ssh -i` takes them, relative to this folder; kept as full paths, so the
          // scheduler and the console, started elsewhere, find them too.
          for (const flag of ['identity', 'jump-identity']) if (typeof values[flag] === 'string' && !values[flag].startsWith('~')) values[flag] = path.resolve(values[flag]);
          const name = one();
          // Brackets only set an IPv6 address apart from a port: the address inside them is contacted.
          const host = (values.host as string | undefined)?.replace(/^\[(.*)\]$/, '$1');
          if (!host) throw new UsageError('add needs --host');
          // Said before the device is contacted, not after its fingerprint was compared.
          const badName = NameSchema.safeParse(name);
          if (!badName.success) throw new UsageError(`"${name}": ${badName.error.issues[0]?.message ?? 'not a device name'}`);
          let taken = true;
          try {
            devices.get(name);
          } catch {
            taken = false;
          }
          if (taken) throw new AppError('CONFLICT', `A device named "${name}" already exists`);
          let jump: JumpHost | undefined;
          if (values.jump) {
            const parsed = parseJump(values.jump as string);
            if (!parsed) throw new UsageError('--jump must be USER@HOST[:PORT]');
            jump = { ...parsed, ...(values['jump-host-key'] ? { hostKey: values['jump-host-key'] as string } : {}), ...(values['jump-identity'] ? { identityFile: values['jump-identity'] as string } : {}) };
          } else if (values['jump-host-key'] || values['jump-identity']) throw new UsageError('--jump-host-key and --jump-identity need --jump');
          if (values['passphrase-file'] && !values.identity) throw new UsageError('--passphrase-file needs --identity (the key it opens)');
          if (values['password-file'] && values.identity) throw new UsageError('--password-file and --identity are two ways to log in: give one');
          const auth = values.identity ? { identityFile: values.identity, auth: 'key' } : values['password-file'] ? { auth: 'password' } : {};
          // Without its own key (--jump-identity) the jump host takes the device's login, as `ssh -J` does.
          const jumpLogin = async () =>
            values.identity
              ? { auth: 'key' as const, identityFile: values.identity as string, ...(values['passphrase-file'] ? { passphrase: await firstLine(values['passphrase-file'] as string, "the key's passphrase") } : {}) }
              : values['password-file']
                ? { auth: 'password' as const, password: await firstLine(values['password-file'] as string, "the device account's password") }
                : { auth: 'agent' as const };
          const profile = {
            name,
            host,
            port: number('port') ?? 22,
            user: values.user ?? 'jetson',
            ...auth,
            ...(jump ? { jump } : {}),
            ...(values['host-key'] ? { hostKey: values['host-key'] } : {}),
            ...(values.site ? { site: values.site } : {}),
            ...(values.tag ? { tags: values.tag } : {}),
            ...(values.rpo ? { rpoMinutes: number('rpo') } : {}),
            ...(values.rto ? { rtoMinutes: number('rto') } : {}),
          };
          // A profile that cannot be is said at its option before anything is contacted (a port 0
          // read as 'unreachable', 70000 as Node's own range error).
          const checked = DeviceProfileSchema.safeParse(profile);
          if (!checked.success) {
            const flags: Record<string, string> = { name: 'NAME', host: '--host', port: '--port', user: '--user', identityFile: '--identity', hostKey: '--host-key', site: '--site', tags: '--tag', rpoMinutes: '--rpo', rtoMinutes: '--rto', jump: '--jump' };
            throw new UsageError(checked.error.issues.map((issue) => `${flags[String(issue.path[0])] ?? issue.path.join('.')}: ${issue.message}`).join('\n'));
          }
          if (jump && !jump.hostKey) {
            const fingerprint = await DeviceConnector.probeHostKey(jump.host, jump.port);
            io.err(`The host key of the jump host ${jump.host}:${jump.port} has the fingerprint\n  ${fingerprint}\n` + 'Compare it with the jump host, then repeat this command with --jump-host-key ' + fingerprint);
            io.out(fingerprint);
            return EXIT_CONFIRM_HOST_KEY;
          }
          if (!values['host-key']) {
            const fingerprint = jump
              ? await DeviceConnector.probeHostKeyVia(host, profile.port, await devices.jumpOptions(jump, await jumpLogin())).catch((error: unknown) => {
                  throw givenKeyRefused(error, name, { host, port: profile.port }, jump);
                })
              : await DeviceConnector.probeHostKey(host, profile.port);
            io.err(`The host key of ${host}:${profile.port}${jump ? ` (through ${jump.host})` : ''} has the fingerprint\n  ${fingerprint}\n` + 'Compare it with the device, then repeat this command with --host-key ' + fingerprint);
            io.out(fingerprint);
            return EXIT_CONFIRM_HOST_KEY;
          }
          const secrets = {
            ...(values['passphrase-file'] ? { passphrase: await firstLine(values['passphrase-file'] as string, "the key's passphrase") } : {}),
            ...(values['password-file'] ? { password: await firstLine(values['password-file'] as string, "the device account's password") } : {}),
          };
          const added = devices.add(profile, secrets, 'cli');
          if (!values.offline) {
            try {
              (await DeviceConnection.open(await devices.connectOptions(name))).close();
            } catch (error) {
              devices.remove(name, 'cli');
              throw givenKeyRefused(error, name, { host, port: profile.port, hostKey: added.profile.hostKey }, jump);
            }
          }
          io.out(`added ${name} (${added.profile.user}@${added.profile.host}:${added.profile.port}, host key ${added.profile.hostKey})`);
          return 0;
        }
        case 'import': {
          const file = one();
          const cannotRead = (error: unknown): never => {
            throw new AppError('NOT_FOUND', `Cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
          };
          // Refused before it is read: the whole file is held in memory, and parsed on one line.
          const tooLarge = profilesFileTooLarge(file, (await stat(file).catch(cannotRead)).size);
          if (tooLarge) throw new AppError('VALIDATION', tooLarge);
          const text = await readFile(file, 'utf8').catch(cannotRead);
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch (error) {
            throw new AppError('VALIDATION', `${file} is not valid JSON: ${(error as Error).message}`);
          }
          const imported = devices.import(json, 'cli', { replace: Boolean(values.replace) });
          io.out(`imported ${counted(imported.length, 'device')}: ${imported.map((d) => d.profile.name).join(', ')}`);
          // A profile exported on another laptop names its key files there: said now, not at the first backup.
          for (const { profile } of imported) for (const warning of await unreadableKeyFiles(profile)) io.err(`warning: ${warning}`);
          return 0;
        }
        case 'export':
          io.out(JSON.stringify(devices.export(args), null, 2));
          return 0;
        case 'list': {
          const list = devices.summaries();
          if (values.json) io.out(JSON.stringify(list, null, 2));
          else if (list.length === 0) io.out('No devices. Add one with: jetvault device add NAME --host HOST');
          else for (const d of list) io.out(`${d.name.padEnd(20)} ${`${d.user}@${d.host}:${d.port}`.padEnd(32)} ${d.site.padEnd(16)} ${counted(d.sourceCount, 'source')}`);
          return 0;
        }
        case 'facts': {
          const name = one();
          const facts = await connector.refreshFacts(name);
          const { profile } = devices.get(name);
          const proposals = proposeSources(facts, profile.sources);
          if (values.accept && proposals.length > 0) devices.update(name, { ...profile, sources: [...profile.sources, ...proposals] }, {}, 'cli');
          if (values.json) io.out(JSON.stringify({ facts, proposals, accepted: values.accept === true && proposals.length > 0 }, null, 2));
          else {
            io.out(`${name}: ${facts.l4t ? `L4T ${facts.l4t.release}.${facts.l4t.revision}` : 'no L4T release file'}${facts.model ? ` on ${facts.model}` : ''}, kernel ${facts.kernel} (${facts.arch})`);
            for (const disk of facts.disks) io.out(`  ${diskLine(disk)}`);
            io.out(`  tools: ${Object.keys(facts.tools).join(', ') || 'none found'}`);
            for (const e of facts.databaseErrors) io.out(`  ${e.engine === 'postgres' ? 'PostgreSQL' : 'MySQL'} at ${e.where} not listed: ${e.message}`);
            for (const p of proposals) io.out(`  ${values.accept ? 'added' : 'proposed'} source ${p.name} (${p.kind})`);
            const ownSources = new Set([...profile.sources, ...proposals].flatMap((s) => (s.kind === 'sqlite' ? [s.path] : [])));
            const leftOut = facts.sqliteFiles.filter((f) => !ownSources.has(f)).length;
            if (leftOut > 0) io.out(`  ${counted(leftOut, 'more SQLite file', 'more SQLite files')} not proposed: a device has at most ${MAX_SOURCES} sources (they are copied with their folder)`);
            if (proposals.length > 0 && !values.accept) io.out(`Add them with: jetvault device facts ${name} --accept`);
          }
          return 0;
        }
        case 'trust': {
          const name = one();
          const wanted = values['jump-host-key'] ? { target: 'jump' as const, fingerprint: values['jump-host-key'] as string } : values['host-key'] ? { target: 'device' as const, fingerprint: values['host-key'] as string } : null;
          if (values['jump-host-key'] && values['host-key']) throw new UsageError('trust pins one key at a time: the jump host first (--jump-host-key), then the device (--host-key)');
          if (wanted) {
            const before = devices.get(name).profile;
            const previous = wanted.target === 'jump' ? before.jump?.hostKey : before.hostKey;
            await connector.pinPresentedHostKey(name, wanted.fingerprint, 'cli', wanted.target);
            io.out(`pinned ${wanted.fingerprint} for ${wanted.target === 'jump' ? `the jump host of ${name}` : name}${previous && previous !== wanted.fingerprint ? ` (was ${previous})` : ''}`);
            return 0;
          }
          const check = await connector.checkHostKey(name);
          // The jump host first: the device's key is read through it.
          const [target, comparison] = check.jump && !check.jump.matches ? (['jump', check.jump] as const) : (['device', check.device!] as const);
          io.out(comparison.presented);
          if (comparison.matches) {
            io.err(`${name} presents its pinned host key${check.jump ? ', and so does its jump host' : ''}.`);
            return 0;
          }
          const who = target === 'jump' ? `the jump host of ${name}` : name;
          const fix = `jetvault device trust ${name} --${target === 'jump' ? 'jump-host-key' : 'host-key'} ${comparison.presented}`;
          io.err(
            comparison.pinned
              ? `The host key of ${who} has CHANGED: pinned ${comparison.pinned}, presented ${comparison.presented}.\n` +
                  `If it was reinstalled, compare the new fingerprint with the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run: ${fix}\n` +
                  'Otherwise do not: someone may be between you and the device.'
              : `No host key is pinned for ${who} yet; it presents ${comparison.presented}.\n` +
                  `Compare it with the host itself (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then run: ${fix}`,
          );
          return EXIT_CONFIRM_HOST_KEY;
        }
        case 'db-password': {
          if (args.length !== 2) throw new UsageError('db-password needs a device NAME and a SOURCE');
          const [name, source] = args as [string, string];
          if (Boolean(values.clear) === Boolean(values['password-file'])) throw new UsageError('db-password needs --password-file FILE, or --clear to forget the password');
          const password = values.clear ? '' : await firstLine(values['password-file'] as string, `the password of the database login of ${source}`);
          const { profile } = devices.get(name);
          devices.update(name, profile, { databasePasswords: { [source]: password } }, 'cli');
          io.out(values.clear ? `forgot the database password of ${name}/${source}` : `stored the database password of ${name}/${source}`);
          return 0;
        }
        case 'remove':
          devices.remove(one(), 'cli');
          return 0;
        default:
          throw new UsageError(action ? `unknown action "${action}"` : 'missing action');
      }
    });
  },
};
