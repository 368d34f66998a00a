#!/usr/bin/env node
// better-sqlite3 is a native module: Node and Electron need it built for different ABIs.
//   node scripts/native-abi.mjs node      (before tests, the CLI and the test host)
//   node scripts/native-abi.mjs electron  (before `npm start` / packaging)
// Each rebuilds only when the current build is for the other runtime, so switching between
// `npm start` and `npm test` costs one rebuild, and repeating either costs nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const marker = 'node_modules/.jetvault-native-abi';
const target = process.argv[2];
if (target !== 'node' && target !== 'electron') {
  console.error('usage: native-abi.mjs node|electron');
  process.exit(2);
}
const current = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : '';
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

if (target === 'node') {
  const probe = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { encoding: 'utf8' });
  if (probe.status === 0) {
    writeFileSync(marker, `node-${process.versions.modules}\n`);
    process.exit(0);
  }
  console.log(`native-abi: better-sqlite3 is not built for this Node (${current || 'unknown build'}); rebuilding (about 90 s from source)...`);
  execFileSync(npm, ['rebuild', 'better-sqlite3'], { stdio: 'inherit' });
  writeFileSync(marker, `node-${process.versions.modules}\n`);
} else {
  const wanted = `electron-${require('electron/package.json').version}`;
  if (current === wanted) process.exit(0);
  console.log(`native-abi: rebuilding native modules for ${wanted} (was ${current || 'unknown'})...`);
  execFileSync(npx, ['electron-builder', 'install-app-deps'], { stdio: 'inherit' });
  writeFileSync(marker, `${wanted}\n`);
}
