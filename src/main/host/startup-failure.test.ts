/**
 * A console that cannot open its data says why and stops: the test host (the app shows the same words
 * in a dialog) prints one clear line and exits 1, and leaves the data as it found it. Each case is a
 * real process on a real data folder.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { HISTORY_FILE } from '../history/database';
import { HistoryStore } from '../history/history-store';
import { spawnTestHost } from '../testing/host-process';
import { tempDir } from '../testing/temp-dir';

/** Starts the test host on `home` and returns its exit code and output (bounded: it either exits or is killed). */
function startHost(home: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawnTestHost(home);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    }),
  );
}

/** A path as a pattern that matches it exactly. */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** One line, no stack trace: what an operator reads, not what a developer debugs. */
function expectOneClearLine(stderr: string, message: RegExp): void {
  expect(stderr).toMatch(/^Jetvault could not start: /);
  expect(stderr).toMatch(message);
  expect(stderr).toMatch(/The repositories and their snapshots are not affected\./);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('the console cannot open its data folder', () => {
  it('a history file that is not a database: said so, exit 1, the file untouched', async () => {
    const home = path.join(tempDir(), 'data');
    mkdirSync(home);
    const file = path.join(home, HISTORY_FILE);
    const bytes = Buffer.from('this is not an SQLite database, it was overwritten by something else\n'.repeat(200));
    writeFileSync(file, bytes);
    const { code, stderr, stdout } = await startHost(home);
    expect(code).toBe(1);
    expect(stdout).not.toMatch(/JETVAULT_HOST_URL=/);
    expectOneClearLine(stderr, new RegExp(`The history store at ${literal(file)} is not usable: file is not a database`));
    expect(readFileSync(file).equals(bytes)).toBe(true);
  }, 60_000);

  it('a history written by a newer Jetvault: asks for an update, and the history keeps its rows', async () => {
    const home = path.join(tempDir(), 'data');
    new HistoryStore(home).close();
    const db = new Database(path.join(home, HISTORY_FILE));
    db.prepare('INSERT INTO schema_migrations (id, name, checksum, applied_at) VALUES (?, ?, ?, ?)').run(9999, 'from the future', 'x', new Date().toISOString());
    const before = db.prepare('SELECT count(*) AS n FROM schema_migrations').get() as { n: number };
    db.close();
    const { code, stderr } = await startHost(home);
    expect(code).toBe(1);
    expectOneClearLine(stderr, /written by a newer Jetvault \(migration 9999 "from the future" is unknown\); update Jetvault/);
    const after = new Database(path.join(home, HISTORY_FILE), { readonly: true });
    expect(after.prepare('SELECT count(*) AS n FROM schema_migrations').get()).toEqual(before);
    after.close();
  }, 60_000);

  it('a file where the data folder should be: names the folder and the problem', async () => {
    const home = path.join(tempDir(), 'data');
    writeFileSync(home, 'a file, not a folder');
    const { code, stderr } = await startHost(home);
    expect(code).toBe(1);
    expectOneClearLine(stderr, new RegExp(`The data folder ${literal(home)} cannot be used: a file \\(not a folder\\) is in its way`));
    expect(readFileSync(home, 'utf8')).toBe('a file, not a folder');
  }, 60_000);
});
