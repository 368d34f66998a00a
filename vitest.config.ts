import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'fleet/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    // Native modules (better-sqlite3) and child processes (sshd, postgres) behave best in forks.
    pool: 'forks',
    // One test file per core, not vitest's default of one fewer: the fleet tests spend much of their
    // time waiting on sshd, PostgreSQL and links, so on two cores two files at once took the suite
    // from 1,581 s to 934 s (75% of the machine busy); three at once (863 s, 94% busy) made
    // timing-sensitive tests fail. Decision 027.
    maxWorkers: availableParallelism(),
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The repository fixtures' temp folders live under one folder that is removed after the run.
    globalSetup: ['src/main/testing/test-tmp.ts'],
  },
});
