#!/usr/bin/env node
// `npm test`: lint, type-check, security lint, unit tests (vitest), build, end-to-end tests
// (Playwright against the test host in Debian's Chromium). Runs every step even after a failure,
// prints one summary, and exits non-zero if anything failed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';

const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
mkdirSync('test-results', { recursive: true });

const steps = [
  { name: 'lint', cmd: [npx, 'eslint', '.', '--max-warnings', '0'] },
  { name: 'typecheck', cmd: ['npm', 'run', '--silent', 'typecheck'] },
  { name: 'electronegativity', cmd: [process.execPath, 'scripts/electronegativity.mjs'] },
  {
    name: 'unit',
    cmd: [npx, 'vitest', 'run', '--reporter=default', '--reporter=json', '--outputFile.json=test-results/vitest.json'],
    report: 'test-results/vitest.json',
  },
  { name: 'build', cmd: [npx, 'electron-vite', 'build'] },
  { name: 'e2e', cmd: [npx, 'playwright', 'test'], report: 'test-results/playwright.json' },
];

const only = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const results = [];
for (const step of steps) {
  if (only.length > 0 && !only.includes(step.name)) continue;
  if (step.report) rmSync(step.report, { force: true });
  const started = Date.now();
  console.log(`\n=== ${step.name}: ${step.cmd.join(' ')}`);
  const run = spawnSync(step.cmd[0], step.cmd.slice(1), { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: '0' } });
  const ok = run.status === 0;
  let counts = '';
  if (step.report && existsSync(step.report)) {
    const report = JSON.parse(readFileSync(step.report, 'utf8'));
    const c =
      step.name === 'unit'
        ? { passed: report.numPassedTests, failed: report.numFailedTests, skipped: report.numPendingTests + report.numTodoTests }
        : { passed: report.stats.expected + report.stats.flaky, failed: report.stats.unexpected, skipped: report.stats.skipped };
    totals.passed += c.passed;
    totals.failed += c.failed;
    totals.skipped += c.skipped;
    counts = ` (${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped)`;
  } else if (step.report && !ok) {
    totals.failed += 1; // the runner itself failed before reporting
  }
  results.push({ name: step.name, ok, seconds: ((Date.now() - started) / 1000).toFixed(1), counts });
}

console.log('\n=== summary');
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(18)} ${r.seconds.padStart(6)}s${r.counts}`);
const failedSteps = results.filter((r) => !r.ok);
if (failedSteps.length > 0 && totals.failed === 0) totals.failed = failedSteps.length;
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedSteps.length > 0 ? 1 : 0);
