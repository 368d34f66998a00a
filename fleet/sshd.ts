/**
 * One OpenSSH server per device: Debian's /usr/sbin/sshd run as root (the realistic setup: it
 * authenticates and then drops to the device account), its own ed25519 host key, key-only login for
 * the one device account, sftp, and a log file. In a network namespace it is started through
 * `nsenter --net` so it shares the host's mount namespace (mutations like tmpfs mounts stay visible).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { run, waitFor } from './exec';
import type { ResourceLog } from './registry';

export interface KeyPair {
  privateKeyFile: string;
  publicKey: string;
}

export async function keygen(file: string, comment: string): Promise<KeyPair> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return { privateKeyFile: file, publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** `SHA256:…` exactly as `ssh-keygen -l` prints it, from an OpenSSH public key line. */
export function fingerprint(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export interface SshdOptions {
  dir: string;
  listen: string;
  port: number;
  user: string;
  hostKeyFile: string;
  authorizedKeysFile: string;
  /** Run inside this network namespace. */
  netns?: string;
  /** Give sshd (and so every session) its own UTS namespace with this host name. */
  hostname?: string;
  /** Also accept the account's password (the fleet's devices are key-only). */
  passwordAuth?: boolean;
  /** Unauthenticated connections at once before sshd drops new ones (`start:rate:full`; default 100:30:200). */
  maxStartups?: string;
  registry: ResourceLog;
  what: string;
}

export interface Sshd {
  pid: number;
  logFile: string;
  configFile: string;
}

function config(o: SshdOptions): string {
  return `# jetvault test fleet: ${o.what}
Port ${o.port}
ListenAddress ${o.listen}
HostKey ${o.hostKeyFile}
PidFile ${o.dir}/sshd.pid
AuthorizedKeysFile ${o.authorizedKeysFile}
AllowUsers ${o.user}
PubkeyAuthentication yes
PasswordAuthentication ${o.passwordAuth ? 'yes' : 'no'}
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
# Fleet dirs live under /tmp (mode 1777), which StrictModes rejects as an ancestor of the keys file.
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups ${o.maxStartups ?? '100:30:200'}
MaxSessions 10
ClientAliveInterval 15
LogLevel VERBOSE
Subsystem sftp internal-sftp
`;
}

/** A port the kernel considers free on `host` right now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves with the first line the server sends (its SSH banner). */
export function banner(host: string, port: number, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => (socket.destroy(), reject(new Error('no banner'))), timeoutMs);
    let data = '';
    socket.on('data', (b: Buffer) => {
      data += b.toString('latin1');
      if (data.includes('\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.split('\n')[0]!.trim());
      }
    });
    socket.on('error', (e) => (clearTimeout(timer), reject(e)));
  });
}

export async function startSshd(o: SshdOptions): Promise<Sshd> {
  if (!existsSync('/usr/sbin/sshd')) throw new Error('/usr/sbin/sshd not found: apt-get install openssh-server');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation directory
  const configFile = `${o.dir}/sshd_config`;
  const logFile = `${o.dir}/sshd.log`;
  writeFileSync(configFile, config(o));
  await run('/usr/sbin/sshd', ['-t', '-f', configFile]);
  const log = openSync(logFile, 'a');
  let argv = ['/usr/sbin/sshd', '-D', '-e', '-f', configFile];
  if (o.hostname) argv = ['unshare', '--uts', '--', '/bin/sh', '-c', 'hostname "$1" && shift && exec "$@"', 'sh', o.hostname, ...argv];
  if (o.netns) argv = ['nsenter', `--net=/run/netns/${o.netns}`, '--', ...argv];
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  const pid = child.pid!;
  o.registry.addPid(pid, o.what);
  let exited: number | null | undefined;
  child.on('exit', (code) => (exited = code));
  child.unref();
  const probe = async () => {
    if (exited !== undefined) throw new Error(`sshd exited with ${exited}`);
    return (await banner(o.listen, o.port)).startsWith('SSH-2.0-'); // the veth address is reachable from the host too
  };
  await waitFor(`${o.what} to listen on ${o.listen}:${o.port}`, probe, { timeoutMs: 15_000, intervalMs: 40, logFile });
  return { pid, logFile, configFile };
}
