import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HistoryStore } from '../main/history/history-store';
import { tempDir } from '../main/testing/temp-dir';
import type { CliIo } from './command';
import { withServices } from './services';

describe('withServices', () => {
  it("records a backup's storage sample before it closes the history store, and logs nothing after it returned", async () => {
    const home = tempDir();
    mkdirSync(path.join(home, 'repository')); // where the repository would be: its disk's free space is sampled
    const err: string[] = [];
    const io: CliIo = { out: () => undefined, err: (line) => err.push(line), env: { JETVAULT_HOME: home } };
    await withServices(io, async ({ jobs }) => {
      await jobs.start({ kind: 'backup', title: 'Back up rvm-017', phases: ['transfer'] }, () => Promise.resolve(1)).done;
    });
    const logged = err.length;
    // Whatever the command started in the background has ended: nothing more comes later.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(err.slice(logged)).toEqual([]);
    expect(err.join('\n')).not.toMatch(/storage sample failed/);
    const store = new HistoryStore(home);
    try {
      const metrics = store.db.prepare<[], { metric: string }>('SELECT metric FROM metric_samples ORDER BY metric').all();
      expect(metrics.map((m) => m.metric)).toEqual(['laptop_free', 'repository_bytes']);
    } finally {
      store.close();
    }
  });
});
