#!/usr/bin/env node
// Entry of the `jetvault` command: runs the TypeScript CLI through tsx, so `npx jetvault` works
// right after `npm ci` without a build step.
import { register } from 'tsx/esm/api';

register();
const { tuneGarbageCollection } = await import('../src/main/gc-tuning.ts');
tuneGarbageCollection();
const { runCli, processIo } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2), processIo);
