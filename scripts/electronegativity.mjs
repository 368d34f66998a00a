#!/usr/bin/env node
// Runs @doyensec/electronegativity over src/ and fails on any HIGH-severity finding.
// Lower findings are printed for review (e.g. "review the use of openExternal", which goes
// through the allowlist in src/main/services/external-links.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const electronVersion = require('electron/package.json').version;
mkdirSync('test-results', { recursive: true });
const out = 'test-results/electronegativity.csv';
execFileSync('npx', ['electronegativity', '-i', 'src', '-e', electronVersion, '-r', '-v', 'false', '-o', out], {
  stdio: ['ignore', 'ignore', 'inherit'],
});

/** Minimal CSV reader for the tool's quoted output. */
function parseCsv(text) {
  const rows = [];
  let row = [], field = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; }
    else if (c === '\n') { row.push(field); rows.push(row); row = []; field = ''; }
    else if (c !== '\r') field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  return rows;
}

const [header, ...rows] = parseCsv(readFileSync(out, 'utf8'));
const col = (name) => header.findIndex((h) => h.trim() === name);
const findings = rows
  .filter((r) => r[col('issue')])
  .map((r) => ({ issue: r[col('issue')], severity: r[col('severity')], file: r[col('filename')], at: r[col('location')] }));
for (const f of findings) console.log(`electronegativity: ${f.severity.padEnd(13)} ${f.issue.padEnd(28)} ${f.file}:${f.at}`);
const high = findings.filter((f) => /HIGH/i.test(f.severity));
if (high.length > 0) {
  console.error(`electronegativity: ${high.length} high-severity finding(s); fix them before merging.`);
  process.exit(1);
}
console.log(`electronegativity: ${findings.length} finding(s), none of high severity`);
