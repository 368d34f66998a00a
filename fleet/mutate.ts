/**
 * Moving a device forward in time, as a running app would: files change, logs grow, rows come and
 * go, a file rots, a disk fills up. Changes are made directly on the device root (host side) or
 * through the device's own database sockets, and keep the device account as owner.
 */
import { appendFileSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { logLines } from './content';
import { run, sleep, waitFor } from './exec';
import { psql } from './postgres';
import { Rng } from './random';
import type { ResourceLog } from './registry';
import { sqlite } from './sqlite';

interface MutableDevice {
  name: string;
  app: string;
  root: string;
  sqlitePath: string;
  pg: { socketDir: string; database: string };
  account: { name: string; uid: number; gid: number; home: string };
}

let generation = 0;

function walk(dir: string, out: string[]): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

export class Mutator {
  private readonly rng: Rng;

  constructor(
    private readonly device: MutableDevice,
    private readonly log: ResourceLog,
  ) {
    this.rng = new Rng(`${device.name}:mutate:${++generation}`);
  }

  private abs(rel: string): string {
    return path.isAbsolute(rel) ? rel : path.join(this.device.root, rel);
  }

  /** The app, config and log files a backup covers (not databases, not the PostgreSQL data dir). */
  files(): string[] {
    const { root, app } = this.device;
    const dirs = [`opt/${app}`, `etc/${app}`, `var/log/${app}`].map((d) => path.join(root, d));
    return dirs
      .filter(existsSync)
      .flatMap((d) => walk(d, []))
      .filter((f) => !/\/data\/local\.db/.test(f))
      .sort();
  }

  /**
   * Changes `fraction` of the files (at least one): text files get a line appended, binary files
   * (models) get 4 KiB overwritten in place so their size stays. Returns the changed paths.
   */
  changeFiles(fraction = 0.01): string[] {
    const files = this.files();
    const count = Math.max(1, Math.round(files.length * fraction));
    const chosen = new Set<string>();
    while (chosen.size < Math.min(count, files.length)) chosen.add(this.rng.pick(files));
    for (const file of chosen) {
      const { size } = statSync(file);
      if (/\.(onnx|engine|gz)$/.test(file) && size > 8192) {
        const fd = openSync(file, 'r+');
        const block = Buffer.alloc(4096);
        for (let i = 0; i < block.length; i++) block[i] = Math.floor(this.rng.next() * 256);
        writeSync(fd, block, 0, block.length, this.rng.int(0, size - block.length));
        closeSync(fd);
      } else {
        appendFileSync(file, `# changed ${new Date().toISOString()} ${this.rng.hex(8)}\n`);
      }
    }
    return [...chosen];
  }

  /**
   * Overwrites `bytes` bytes at a random place in the device's largest model (its size kept), as a
   * retuned layer written in place would. Returns the model's path.
   */
  patchModel(bytes = 4096): string {
    const models = this.files().filter((f) => /\.(onnx|engine)$/.test(f));
    if (models.length === 0) throw new Error(`${this.device.name} has no model files`);
    const model = models.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a));
    const { size } = statSync(model);
    const block = Buffer.alloc(Math.min(bytes, size));
    for (let i = 0; i < block.length; i++) block[i] = Math.floor(this.rng.next() * 256);
    const fd = openSync(model, 'r+');
    writeSync(fd, block, 0, block.length, this.rng.int(0, size - block.length));
    closeSync(fd);
    return model;
  }

  /** Appends `lines` timestamped lines to the live app log. */
  appendLogs(lines = 100, file = 'app.log'): string {
    const target = path.join(this.device.root, 'var/log', this.device.app, file);
    const existed = existsSync(target);
    appendFileSync(target, logLines(this.rng, this.device.name, lines, new Date()));
    if (!existed) chownSync(target, this.device.account.uid, this.device.account.gid);
    return target;
  }

  /** Rotates the live log as logrotate would: app.log → app.log.1 → app.log.2.gz … (keeps 5), new empty app.log. */
  rotateLogs(file = 'app.log', keep = 5): void {
    const dir = path.join(this.device.root, 'var/log', this.device.app);
    const at = (n: number) => path.join(dir, n === 0 ? file : n === 1 ? `${file}.1` : `${file}.${n}.gz`);
    rmSync(at(keep), { force: true });
    for (let n = keep - 1; n >= 2; n--) if (existsSync(at(n))) renameSync(at(n), at(n + 1));
    if (existsSync(at(1))) {
      writeFileSync(at(2), gzipSync(readFileSync(at(1))));
      chownSync(at(2), this.device.account.uid, this.device.account.gid);
      rmSync(at(1));
    }
    if (existsSync(at(0))) renameSync(at(0), at(1));
    writeFileSync(at(0), '');
    chownSync(at(0), this.device.account.uid, this.device.account.gid);
  }

  /** Overwrites `bytes` bytes in the middle of a file with garbage (size unchanged): silent bit rot. */
  corruptFile(rel: string, bytes = 64): void {
    const file = this.abs(rel);
    const { size } = statSync(file);
    if (size === 0) throw new Error(`${file} is empty: nothing to corrupt`);
    const fd = openSync(file, 'r+');
    const at = Math.floor(size / 2);
    const original = Buffer.alloc(Math.min(bytes, size - at));
    readSync(fd, original, 0, original.length, at);
    writeSync(fd, Buffer.from(original.map((b) => b ^ 0xa5)), 0, original.length, at);
    closeSync(fd);
  }

  /** PostgreSQL: inserts `n` deposits in a new transaction; returns the new row count of `deposits`. */
  async pgInsertRows(n: number): Promise<number> {
    await this.sql(`WITH t AS (INSERT INTO transactions (machine_id, started_at, ended_at, total_cents, status) VALUES (1, now(), now(), ${n * 25}, 'done') RETURNING id)
INSERT INTO deposits (transaction_id, material_id, barcode, weight_g, confidence, accepted, scanned_at)
SELECT t.id, 1 + i % 4, lpad((i * 7919)::text, 13, '0'), 25.5, 0.97, true, now() FROM t, generate_series(1, ${n}) i;`);
    return this.pgCount('deposits');
  }

  async pgUpdateRows(n: number): Promise<void> {
    await this.sql(`UPDATE deposits SET confidence = confidence * 0.99, accepted = NOT accepted WHERE id IN (SELECT id FROM deposits ORDER BY random() LIMIT ${n});`);
  }

  async pgDeleteRows(n: number): Promise<void> {
    await this.sql(`DELETE FROM deposits WHERE id IN (SELECT id FROM deposits ORDER BY id DESC LIMIT ${n});`);
  }

  async pgCount(table: string): Promise<number> {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`Not a table name: ${table}`);
    return Number(await this.sql(`SELECT count(*) FROM ${table};`));
  }

  /** Runs SQL in the app database as the app role. */
  sql(statements: string): Promise<string> {
    return psql(this.device.pg.socketDir, this.device.pg.database, statements, this.device.app);
  }

  /** SQLite: inserts, updates, deletes scans (as the device account, in one transaction each). */
  async sqliteInsertRows(n: number): Promise<number> {
    await this.sqlite(`BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${n})
INSERT INTO scans (barcode, material, weight_g, confidence, accepted, scanned_at) SELECT printf('%013d', abs(random()) % 10000000000000), 'ALU', 14.2, 0.95, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now') FROM c; COMMIT;`);
    return this.sqliteCount('scans');
  }

  async sqliteUpdateRows(n: number): Promise<void> {
    await this.sqlite(`UPDATE scans SET synced = 1 - synced WHERE id IN (SELECT id FROM scans ORDER BY random() LIMIT ${n});`);
  }

  async sqliteDeleteRows(n: number): Promise<void> {
    await this.sqlite(`DELETE FROM scans WHERE id IN (SELECT id FROM scans ORDER BY id DESC LIMIT ${n});`);
  }

  async sqliteCount(table: string): Promise<number> {
    if (!/^[a-z_]+$/.test(table)) throw new Error(`Not a table name: ${table}`);
    return Number(await this.sqlite(`SELECT count(*) FROM ${table};`));
  }

  sqlite(statements: string): Promise<string> {
    return sqlite(this.device.sqlitePath, statements, this.device.account);
  }

  /**
   * Keeps the SQLite database open in a writer, as the running app does: a `sqlite3` process (as the
   * device account) with automatic checkpoints off, which has written `rows` rows that live only in
   * the `-wal` file until `close()`. Backups must still capture them (`.backup` does).
   */
  async sqliteOpenWriter(rows = 100): Promise<{ pid: number; walBytes: number; close(): Promise<void> }> {
    const { uid, gid } = this.device.account;
    const child = spawn('/usr/bin/sqlite3', ['-batch', this.device.sqlitePath], { uid, gid, detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    const pid = child.pid!;
    this.log.addPid(pid, `sqlite writer of ${this.device.name}`);
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    child.stdin.on('error', () => {});
    child.stdin.write(`PRAGMA wal_autocheckpoint=0;
BEGIN; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows})
INSERT INTO scans (barcode, material, weight_g, confidence, accepted, scanned_at) SELECT printf('%013d', abs(random()) % 10000000000000), 'PET', 24.9, 0.93, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now') FROM c; COMMIT;
SELECT 1;
`);
    const wal = `${this.device.sqlitePath}-wal`;
    const walBytes = await waitFor('the SQLite writer to commit into the WAL', () => (existsSync(wal) && statSync(wal).size > 0 ? statSync(wal).size : undefined), { timeoutMs: 10_000 });
    return {
      pid,
      walBytes,
      close: async () => {
        child.stdin.end();
        await Promise.race([exited, sleep(5_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        this.log.remove((r) => r.kind === 'pid' && r.pid === pid);
      },
    };
  }

  /**
   * Puts `rel` (a device directory) on its own small tmpfs of `sizeMB` (its current contents copied
   * in), then fills it with `filler.bin` until the device reports ENOSPC, leaving `leaveBytes` free.
   * Root only. The mount (and everything written there while mounted) goes away with `releaseDisk`
   * or when the device stops; the original contents underneath are untouched.
   */
  async fillDisk(rel: string, options: { sizeMB?: number; leaveBytes?: number } = {}): Promise<{ mount: string; freeBytes: number }> {
    const target = this.abs(rel);
    if (!lstatSync(target).isDirectory()) throw new Error(`${target} is not a directory`);
    const { uid, gid } = this.device.account;
    const holding = `${target}.jvf-orig-view`;
    mkdirSync(holding);
    await run('cp', ['-a', `${target}/.`, holding]);
    this.log.add({ kind: 'mount', path: target });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${options.sizeMB ?? 8}m,uid=${uid},gid=${gid},mode=0755`, 'jvf-quota', target]);
    await run('cp', ['-a', `${holding}/.`, target]);
    await run('rm', ['-rf', holding]);
    const leave = options.leaveBytes ?? 0;
    const filler = path.join(target, 'filler.bin');
    const fd = openSync(filler, 'w');
    chownSync(filler, uid, gid);
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    try {
      for (let i = 0; i < 1_000_000; i++) {
        const free = await this.freeBytes(target);
        if (free <= leave) break;
        writeSync(fd, chunk, 0, Math.min(chunk.length, free - leave));
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
    } finally {
      closeSync(fd);
    }
    return { mount: target, freeBytes: await this.freeBytes(target) };
  }

  /** Unmounts what `fillDisk` mounted on `rel`. */
  async releaseDisk(rel: string): Promise<void> {
    const target = this.abs(rel);
    await run('umount', [target]);
    this.log.remove((r) => r.kind === 'mount' && r.path === target);
  }

  async freeBytes(dir: string): Promise<number> {
    const out = (await run('df', ['-P', '-B1', dir])).stdout.trim().split('\n').pop() ?? '';
    return Number(out.split(/\s+/)[3]);
  }
}
