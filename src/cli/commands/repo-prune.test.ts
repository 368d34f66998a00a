/** `jetvault prune` on a repository with a damaged pack it would repack: the rest pruned, the pack named. */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
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

describe('jetvault prune', () => {
  it('keeps a pack whose used data is damaged, prunes the rest, names the pack and says to run check --read-data (exit 1, again on a re-run)', { timeout: 60_000 }, async () => {
    const home = tempDir('jv-cli-');
    const data = join(home, 'data');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'keep.bin'), randomBytes(300_000));
    await writeFile(join(data, 'gone.bin'), randomBytes(300_000));
    const env = { JETVAULT_HOME: home, JETVAULT_PASSWORD: 'pw-1' };
    expect(await runCli(['init'], io(env))).toBe(0);
    expect(await runCli(['backup', data], io(env))).toBe(0);
    await rm(join(data, 'gone.bin'));
    const second = io(env);
    expect(await runCli(['backup', data, '--json'], second)).toBe(0);
    const secondId = (JSON.parse(second.lines[0]!) as { id: string }).id;

    const dir = join(home, 'repository');
    const repo = await Repository.open(new LocalBackend(dir), 'pw-1');
    let tree = await loadTree(repo, (await findSnapshot(repo, secondId)).tree);
    for (const part of data.split('/').filter(Boolean)) tree = await loadTree(repo, tree.nodes.find((n) => n.name === part)!.subtree!);
    const where = repo.index.get(tree.nodes.find((n) => n.name === 'keep.bin')!.content![0]!)!;
    await flipByte(join(dir, NAMES.pack(where.pack)), where.offset + 10);

    const forgot = io(env);
    expect(await runCli(['forget', '--keep-last', '1'], forgot)).toBe(0);
    for (let run = 0; run < 2; run++) {
      const pruned = io(env);
      expect(await runCli(['prune'], pruned)).toBe(1);
      expect(pruned.errors.join('\n')).toMatch(new RegExp(`pack ${where.pack.slice(0, 12)} was kept as it is: data snapshots need in it is damaged.*Run \`jetvault check --read-data\``));
      expect(pruned.lines.join('\n')).toMatch(/blobs in use/);
    }
    const packs = (await repo.backend.list(NAMES.data)).map((o) => NAMES.packId(o.name));
    expect(packs).toContain(where.pack);
    const json = io(env);
    expect(await runCli(['prune', '--json'], json)).toBe(1);
    expect((JSON.parse(json.lines[0]!) as { damagedPacks: string[] }).damagedPacks).toEqual([where.pack]);
  });
});
