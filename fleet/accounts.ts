/**
 * Device accounts. As root, each device gets its own unprivileged account (`jvf-<fleet>-<n>`) with a
 * `*` password field (key-only: with `UsePAM no` sshd refuses a locked `!` account) and /bin/bash,
 * like the `jetson` user of a real board. Parallel fleets contend for /etc/passwd's lock, so useradd
 * is retried for a bounded time.
 */
import { mkdirSync, chownSync } from 'node:fs';
import { userInfo } from 'node:os';
import { CommandError, run, sleep } from './exec';
import type { ResourceLog } from './registry';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export async function createAccount(name: string, home: string, registry: ResourceLog): Promise<Account> {
  registry.add({ kind: 'user', name, uid: -1 });
  for (let attempt = 0; ; attempt++) {
    try {
      await run('useradd', ['--no-create-home', '--home-dir', home, '--shell', '/bin/bash', '--password', '*', '--user-group', '--comment', 'jetvault test fleet device', name], { timeoutMs: 20_000 });
      break;
    } catch (error) {
      const stderr = error instanceof CommandError ? error.result.stderr : '';
      if (attempt >= 60 || !/lock|try again/i.test(stderr)) throw error;
      await sleep(50 + Math.random() * 150);
    }
  }
  const ids = (await run('id', ['-u', name])).stdout.trim();
  const gid = Number((await run('id', ['-g', name])).stdout.trim());
  const account = { name, uid: Number(ids), gid, home };
  registry.remove((r) => r.kind === 'user' && r.name === name);
  registry.add({ kind: 'user', name, uid: account.uid });
  mkdirSync(home, { recursive: true, mode: 0o755 });
  chownSync(home, account.uid, account.gid);
  return account;
}

export function currentAccount(): Account {
  const me = userInfo();
  return { name: me.username, uid: me.uid, gid: me.gid, home: me.homedir };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
