/**
 * A bit flipped in a pack: `check --read-data` says how to store the damaged data again, a backup
 * alone does not (it reuses the damaged copy), and after `repair-packs` the next backup does — the
 * repository checks clean and restores the file byte for byte, the older snapshot included.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from '../../main/repository/backend/local-backend';
import { NAMES } from '../../main/repository/backend/backend';
import { Repository } from '../../main/repository/repo/repository';
import { findSnapshot, loadTree } from '../../main/repository/snapshot/snapshot';
import { flipByte } from '../../main/repository/testing/fixtures';
import { tempDir } from '../../main/testing/temp-dir';
import type { CliIo } from '../command';
import { runCli } from '../main';

function io(env: Record<string, string>): CliIo & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l), env: { ...env } };
}

describe('jetvault repair-packs', () => {
  it('after a flipped bit, check says what to run; repair-packs and a backup store the damaged data again', { timeout: 60_000 }, async () => {
    const home = tempDir('jv-cli-');
    const data = join(home, 'data');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'model.bin'), randomBytes(3_000_000));
    await writeFile(join(data, 'config.yaml'), 'fps: 30\n');
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1' };
    expect(await runCli(['init'], io(env))).toBe(0);
    const first = io(env);
    expect(await runCli(['backup', data, '--json'], first)).toBe(0);
    const firstId = (JSON.parse(first.lines[0]!) as { id: string }).id;

    const dir = join(home, 'repository');
    const repo = await Repository.open(new LocalBackend(dir), 'pw-1');
    let tree = await loadTree(repo, (await findSnapshot(repo, firstId)).tree);
    for (const part of data.split('/').filter(Boolean)) tree = await loadTree(repo, tree.nodes.find((n) => n.name === part)!.subtree!);
    const where = repo.index.get(tree.nodes.find((n) => n.name === 'model.bin')!.content![0]!)!;
    await flipByte(join(dir, NAMES.pack(where.pack)), where.offset + 10);

    const checked = io(env);
    expect(await runCli(['check', '--read-data'], checked)).toBe(1);
    expect(checked.lines.join('\n')).toContain(`To store the damaged data again: \`jetvault repair-packs ${where.pack.slice(0, 12)}\``);
    // A backup alone reuses the damaged copy: still damaged.
    expect(await runCli(['backup', data], io(env))).toBe(0);
    expect(await runCli(['check', '--read-data'], io(env))).toBe(1);

    const repaired = io(env);
    expect(await runCli(['repair-packs', where.pack.slice(0, 12)], repaired)).toBe(0);
    expect(repaired.lines.join('\n')).toMatch(/removed 1 damaged pack; \d+ blobs? that still read (was|were) stored again .*\n1 blob could not be read and is gone: back up the affected devices or paths again/);
    expect(await runCli(['backup', data], io(env))).toBe(0);
    const clean = io(env);
    expect(await runCli(['check', '--read-data'], clean)).toBe(0);
    expect(clean.errors).toEqual([]);
    // The first snapshot needed the same data: it restores byte for byte again.
    const target = tempDir('jv-restore-');
    expect(await runCli(['restore', firstId, '--target', target], io(env))).toBe(0);
    expect(readFileSync(join(target, data, 'model.bin')).equals(readFileSync(join(data, 'model.bin')))).toBe(true);

    const unknown = io(env);
    expect(await runCli(['repair-packs', 'ffffffffffff'], unknown)).toBe(1);
    expect(unknown.errors.join('\n')).toMatch(/no indexed pack starts with "ffffffffffff"/);
  });
});
