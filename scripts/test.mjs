#!/usr/bin/env node
// `npm test`: lint, type-check, security lint, unit tests (vitest), build, end-to-end tests
// (Playwright against the test host in Debian's Chromium). Runs every step even after a failure,
// prints one summary, and exits non-zero if anything failed. The summary repeats each failed step's
// own account of the failure (vitest's "Failed Suites/Tests" section, or the step's last lines), so
// the end of a CI log says what failed without scrolling back through the later steps.
import { spawn } from 'node:child_process';
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

/** Runs a command with its output passed through live and kept (for the failure account). */
function run(cmd) {
  return new Promise((resolve) => {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['inherit', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' } });
    const kept = [];
    const keep = (to) => (chunk) => {
      to.write(chunk);
      kept.push(chunk);
    };
    child.stdout.on('data', keep(process.stdout));
    child.stderr.on('data', keep(process.stderr));
    child.on('error', (error) => resolve({ status: null, output: String(error) }));
    child.on('close', (status) => resolve({ status, output: Buffer.concat(kept).toString('utf8') }));
  });
}

/** What a failed step said about its failure: from vitest's first failure heading on, else its last lines. */
function failureAccount(output) {
  const lines = output.split('\n');
  const from = lines.findIndex((l) => /⎯{3,} (Failed Suites|Failed Tests|Unhandled Errors?)/.test(l));
  const part = from >= 0 ? lines.slice(from) : lines.slice(-40);
  return part.length > 150 ? [...part.slice(0, 120), `… (${part.length - 150} lines left out)`, ...part.slice(-30)] : part;
}

const only = process.argv.slice(2);
const totals = { passed: 0, failed: 0, skipped: 0 };
const results = [];
for (const step of steps) {
  if (only.length > 0 && !only.includes(step.name)) continue;
  if (step.report) rmSync(step.report, { force: true });
  const started = Date.now();
  console.log(`\n=== ${step.name}: ${step.cmd.join(' ')}`);
  const { status, output } = await run(step.cmd);
  const ok = status === 0;
  let counts = '';
  if (step.report && existsSync(step.report)) {
    const report = JSON.parse(readFileSync(step.report, 'utf8'));
    const c =
      step.name === 'unit'
        ? {
            passed: report.numPassedTests,
            // A suite whose beforeAll failed reports its tests as skipped, not failed: count the suite.
            failed: report.numFailedTests + report.testResults.filter((f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed')).length,
            skipped: report.numPendingTests + report.numTodoTests,
          }
        : { passed: report.stats.expected + report.stats.flaky, failed: report.stats.unexpected, skipped: report.stats.skipped };
    totals.passed += c.passed;
    totals.failed += c.failed;
    totals.skipped += c.skipped;
    counts = ` (${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped)`;
  } else if (step.report && !ok) {
    totals.failed += 1; // the runner itself failed before reporting
  }
  results.push({ name: step.name, ok, seconds: ((Date.now() - started) / 1000).toFixed(1), counts, output });
}

const failedSteps = results.filter((r) => !r.ok);
for (const r of failedSteps) {
  console.log(`\n=== what failed in ${r.name}`);
  console.log(failureAccount(r.output).join('\n'));
}
console.log('\n=== summary');
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(18)} ${r.seconds.padStart(6)}s${r.counts}`);
if (failedSteps.length > 0 && totals.failed === 0) totals.failed = failedSteps.length;
console.log(`\ntests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(failedSteps.length > 0 ? 1 : 0);
