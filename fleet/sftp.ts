/**
 * A real SFTP server for repository tests and benchmarks: Debian's OpenSSH sshd (internal-sftp) as
 * root on 127.0.0.x with its own host key, one unprivileged account that may log in with a key and,
 * when asked, a password, a storage folder it owns, and a DelayProxy in front so a test can cut the
 * link. Same resource registry as the device fleet, so `stop()`, the exit handlers and the reaper
 * remove the process, the account and the files whatever happens.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount, isRoot } from './accounts';
import { run } from './exec';
import { spawnReaper } from './fleet';
import { DelayProxy } from './proxy';
import type { Endpoint } from './proxy';
import { allocateDir, cleanupStale, forget, Registry, track } from './registry';
import { fingerprint, freePort, keygen, startSshd } from './sshd';

export interface SftpServer {
  /** Where clients connect: the delay proxy. */
  host: string;
  port: number;
  /** sshd's own address. */
  direct: Endpoint;
  user: string;
  /** The account's password (password login is on only with `password: true`). */
  password: string;
  identityFile: string;
  /** `SHA256:…` as OpenSSH prints it. */
  hostKeyFingerprint: string;
  /** A folder the account owns, for repositories. */
  storage: string;
  dir: string;
  proxy: DelayProxy;
  sshdPid: number;
  /** `sftp:USER@HOST:PORT:/storage/<name>`. */
  location(name: string): string;
  /** SIGKILLs every live SSH session of this server (sshd's children and theirs), as a crashed server would drop them. */
  killSessions(): Promise<number>;
  stop(): Promise<void>;
}

/** Why this machine cannot run one, or null. */
export function sftpMissing(): string | null {
  if (!isRoot()) return 'the SFTP test server runs sshd as root and creates an account (CI runs as root)';
  if (!existsSync('/usr/sbin/sshd')) return '/usr/sbin/sshd is missing (apt-get install openssh-server)';
  return null;
}

/** Children of a process, from /proc (sshd forks one per connection). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export async function startSftpServer(options: { baseDir?: string; password?: boolean; address?: string } = {}): Promise<SftpServer> {
  const missing = sftpMissing();
  if (missing) throw new Error(missing);
  const baseDir = options.baseDir ?? '/tmp';
  cleanupStale(baseDir);
  const { id, dir } = allocateDir(baseDir);
  const registry = new Registry(dir, id);
  registry.add({ kind: 'dir', path: dir });
  track(registry);
  const reaper = spawnReaper(dir);
  let proxy: DelayProxy | undefined;
  const stop = async (): Promise<void> => {
    await proxy?.close().catch(() => undefined);
    const problems = registry.cleanup();
    forget(registry);
    if (reaper) {
      try {
        process.kill(reaper, 'SIGTERM');
      } catch {}
    }
    if (problems.length > 0) throw new Error(`SFTP server ${id} left: ${problems.join('; ')}`);
  };
  try {
    const account = await createAccount(`jvf-${id}-s`, path.join(dir, 'home'), registry);
    const password = randomBytes(12).toString('base64url');
    if (options.password) await run('chpasswd', [], { input: `${account.name}:${password}\n` });
    const storage = path.join(dir, 'storage');
    mkdirSync(storage, { mode: 0o755 });
    chownSync(storage, account.uid, account.gid);
    const hostKey = await keygen(path.join(dir, 'ssh_host_ed25519_key'), 'jetvault sftp test host key');
    const client = await keygen(path.join(dir, 'id_ed25519'), 'jetvault-sftp-test');
    const authorizedKeys = path.join(dir, 'authorized_keys');
    writeFileSync(authorizedKeys, `${client.publicKey}\n`, { mode: 0o644 });
    const listen = options.address ?? `127.0.0.${250 + (parseInt(id, 16) % 5)}`;
    let started: { port: number; pid: number } | undefined;
    for (let attempt = 0; !started; attempt++) {
      const port = await freePort(listen);
      try {
        const sshd = await startSshd({ dir, listen, port, user: account.name, hostKeyFile: hostKey.privateKeyFile, authorizedKeysFile: authorizedKeys, passwordAuth: options.password ?? false, registry, what: `sshd of SFTP server ${id}` });
        started = { port, pid: sshd.pid };
      } catch (error) {
        if (attempt >= 3 || !/Address already in use/.test((error as Error).message)) throw error;
      }
    }
    const direct = { host: listen, port: started.port };
    proxy = new DelayProxy(direct);
    const endpoint = await proxy.listen(listen);
    const sshdPid = started.pid;
    return {
      host: endpoint.host,
      port: endpoint.port,
      direct,
      user: account.name,
      password,
      identityFile: client.privateKeyFile,
      hostKeyFingerprint: fingerprint(hostKey.publicKey),
      storage,
      dir,
      proxy,
      sshdPid,
      location: (name) => `sftp:${account.name}@${endpoint.host}:${endpoint.port}:${path.join(storage, name)}`,
      killSessions: () => {
        // Each connection is a monitor process and its unprivileged child, which owns the socket.
        const sessions = childrenOf(sshdPid);
        for (const pid of [...sessions.flatMap(childrenOf), ...sessions]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }
        return Promise.resolve(sessions.length);
      },
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
