/**
 * The fleet's own SSH client (ssh2), for tests and health checks: it refuses any host key other than
 * the device's expected fingerprint, so every test that uses it also checks the host key.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client } from 'ssh2';
import type { ConnectConfig } from 'ssh2';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  identityFile: string;
  hostKeyFingerprint: string;
}

export interface SshResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface SshOptions {
  timeoutMs?: number;
  /** ssh2 keepalives: how fast a dead link is noticed. */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  /** Called with each stdout chunk (the whole stdout is then not kept). */
  onData?: (chunk: Buffer) => void;
  stdin?: string | Buffer;
}

export function connect(target: SshTarget, options: SshOptions = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let seen = '';
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: readFileSync(target.identityFile),
      readyTimeout: options.timeoutMs ?? 20_000,
      keepaliveInterval: options.keepaliveIntervalMs ?? 5_000,
      keepaliveCountMax: options.keepaliveCountMax ?? 3,
      hostVerifier: (key: Buffer) => {
        seen = `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
        return seen === target.hostKeyFingerprint;
      },
    };
    client.once('ready', () => resolve(client));
    client.once('error', (error) => {
      client.end();
      reject(seen && seen !== target.hostKeyFingerprint ? new Error(`Host key mismatch for ${target.host}:${target.port}: got ${seen}, expected ${target.hostKeyFingerprint}`) : error);
    });
    client.connect(config);
  });
}

/** Runs one command on an open connection. */
export function execOn(client: Client, command: string, options: SshOptions = {}): Promise<SshResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (client.end(), reject(new Error(`ssh command timed out: ${command}`))), options.timeoutMs ?? 120_000);
    client.once('error', (error) => (clearTimeout(timer), reject(error)));
    client.once('close', () => (clearTimeout(timer), reject(new Error('ssh connection closed'))));
    client.exec(command, (error, channel) => {
      if (error) return clearTimeout(timer), reject(error);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      channel.on('data', (b: Buffer) => (options.onData ? options.onData(b) : out.push(b)));
      channel.stderr.on('data', (b: Buffer) => err.push(b));
      let code: number | null = null;
      channel.on('exit', (c: number | null) => (code = c));
      channel.on('close', () => {
        clearTimeout(timer);
        resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
      });
      if (options.stdin !== undefined) channel.end(options.stdin);
      else channel.end();
    });
  });
}

/** Connects, runs `command`, disconnects. */
export async function sshExec(target: SshTarget, command: string, options: SshOptions = {}): Promise<SshResult> {
  const client = await connect(target, options);
  try {
    return await execOn(client, command, options);
  } finally {
    client.end();
  }
}
