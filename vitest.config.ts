import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'fleet/**/*.test.ts', 'scripts/**/*.test.ts'],
    environment: 'node',
    // Native modules (better-sqlite3) and child processes (sshd, postgres) behave best in forks.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // The repository fixtures' temp folders live under one folder that is removed after the run.
    globalSetup: ['src/main/testing/test-tmp.ts'],
  },
});
