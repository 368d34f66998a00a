import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LocalRunner } from './local-runner';
import { sh } from './shell-quote';
import type { RawShell } from './shell-quote';
import { execCompressed, hasGzip, SLOW_EXEC_MS, useCompression } from './wire-compression';

const runner = new LocalRunner();

async function run(command: RawShell, input: Buffer = Buffer.alloc(0)) {
  let wire = 0;
  const running = await execCompressed(runner, command, undefined, (bytes) => (wire += bytes));
  running.stdin.end(input);
  const chunks: Buffer[] = [];
  for await (const chunk of running.stdout) chunks.push(chunk as Buffer);
  const result = await running.done;
  return { out: Buffer.concat(chunks), code: result.code, stderr: result.stderr, wire };
}

describe('compression on the wire', () => {
  it('delivers exactly what the command wrote, with fewer bytes crossing when it compresses', async () => {
    const text = Buffer.from('INSERT INTO readings VALUES (1, 20.5);\n'.repeat(20_000));
    const random = randomBytes(1_000_000);
    const out = await run(sh`cat`, Buffer.concat([text, random]));
    expect(out.code).toBe(0);
    expect(out.out.equals(Buffer.concat([text, random]))).toBe(true);
    expect(out.wire).toBeLessThan(random.length + text.length / 10);
    expect(out.wire).toBeGreaterThan(random.length);
  });

  it("keeps the command's own exit status, stderr, `set -e`, traps and here-documents", async () => {
    expect(await run(sh`echo out; echo err >&2; exit 3`)).toMatchObject({ code: 3, out: Buffer.from('out\n'), stderr: 'err\n' });
    expect((await run(sh`set -e\nfalse\necho never`)).code).toBe(1);
    expect((await run(sh`trap 'echo cleaned >&2' EXIT\nexit 0`)).stderr).toBe('cleaned\n');
    const doc = await run(sh`cat <<'EOF'\nline $HOME\nEOF\nexit 7`);
    expect(doc).toMatchObject({ code: 7, out: Buffer.from('line $HOME\n') });
    // An empty output still arrives as an empty stream (an unchanged SQLite copy sends nothing).
    expect(await run(sh`true`)).toMatchObject({ code: 0, out: Buffer.alloc(0) });
  });

  it('passes a command built with sh, hostile arguments and all, through unchanged', async () => {
    const hostile = `it's a "name" with $(rm -rf /) and \`ticks\`; ) } newline\nhere`;
    expect((await run(sh`printf '%s' ${hostile}`)).out.toString()).toBe(hostile);
  });

  it('turns a stream that is not gzip (a cut or corrupt transfer) into a clear error', async () => {
    // The real command's output replaced by bytes that are not a gzip stream, as a broken link would.
    const broken = { target: 'rvm-017', exec: (_: RawShell, signal?: AbortSignal) => runner.exec(sh`printf 'not gzip at all'`, signal), run: runner.run.bind(runner) };
    const running = await execCompressed(broken, sh`cat`);
    running.stdin.end();
    const read = (async () => {
      for await (const chunk of running.stdout) void chunk;
    })();
    await expect(read).rejects.toThrow(/compressed output from rvm-017 was cut off or corrupt/);
  });

  it('is chosen on a slow link where the device has gzip, unless the profile says otherwise', () => {
    const slow = { execMs: SLOW_EXEC_MS + 1, gzip: true };
    const fast = { execMs: 3, gzip: true };
    expect(useCompression(undefined, slow)).toBe(true);
    expect(useCompression('auto', slow)).toBe(true);
    expect(useCompression('auto', fast)).toBe(false);
    expect(useCompression('on', fast)).toBe(true);
    expect(useCompression('off', slow)).toBe(false);
    expect(useCompression('on', { ...slow, gzip: false })).toBe(false);
    expect(hasGzip('@@l4t\n@@end\n@@gzip\n/usr/bin/gzip\n')).toBe(true);
    expect(hasGzip('@@l4t\n@@end\n@@gzip\n')).toBe(false);
    expect(hasGzip('')).toBe(false);
  });
});
