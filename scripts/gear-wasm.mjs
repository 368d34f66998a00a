// Compiles src/main/repository/chunker/gear.wat into gear-wasm.ts (the module's bytes, base64).
//   node scripts/gear-wasm.mjs           after editing the .wat
//   node scripts/gear-wasm.mjs --check   exits 1 when gear-wasm.ts is not the .wat compiled (a unit test runs this)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const dir = fileURLToPath(new URL('../src/main/repository/chunker/', import.meta.url));
const wabt = await wabtInit();
const module = wabt.parseWat('gear.wat', readFileSync(`${dir}gear.wat`, 'utf8'));
const bytes = Buffer.from(module.toBinary({}).buffer);
module.destroy();
const text = `/** gear.wat compiled: scripts/gear-wasm.mjs writes this file (and checks it in a unit test). */\nexport const GEAR_WASM = '${bytes.toString('base64')}';\n`;
if (process.argv.includes('--check')) {
  if (readFileSync(`${dir}gear-wasm.ts`, 'utf8') !== text) {
    console.error('gear-wasm.ts is not gear.wat compiled: run node scripts/gear-wasm.mjs');
    process.exit(1);
  }
  console.log(`gear-wasm.ts matches gear.wat (${bytes.length} bytes)`);
} else {
  writeFileSync(`${dir}gear-wasm.ts`, text);
  console.log(`gear-wasm.ts: ${bytes.length} bytes`);
}
