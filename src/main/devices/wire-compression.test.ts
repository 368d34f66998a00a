import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LocalRunner } from './local-runner';
import { sh } from './shell-quote';
import type { RawShell } from './shell-quote';
import type { CommandRunner } from './ssh-connection';
import { chooseCompression, execCompressed, hasGzip, LINK_CONFIRMS, SLOW_EXEC_MS, useCompression } from './wire-compression';

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

  it('times a slow first answer again, up to LINK_CONFIRMS times, and only a link slow every time compresses', async () => {
    /** A device whose next `slow` answers take longer than a fast link's would; its other answers come at once. */
    const answering = (slow: number) => {
      let asked = 0;
      const device: CommandRunner = {
        target: 'rvm-017',
        exec: runner.exec.bind(runner),
        run: async () => {
          if (asked++ < slow) await new Promise((resolve) => setTimeout(resolve, SLOW_EXEC_MS + 20));
          return '';
        },
      };
      return { device, asked: () => asked };
    };
    const slowFirst = { execMs: SLOW_EXEC_MS + 30, gzip: true };
    // Busy for a moment: the second confirm is fast, so the link is.
    const busy = answering(1);
    expect(await chooseCompression(busy.device, undefined, slowFirst)).toBe(false);
    expect(busy.asked()).toBe(2);
    // Slow every time, as a field link is.
    const wan = answering(Number.POSITIVE_INFINITY);
    expect(await chooseCompression(wan.device, 'auto', slowFirst)).toBe(true);
    expect(wan.asked()).toBe(LINK_CONFIRMS);
    // A fast first answer, or a profile that decides, asks nothing more.
    const settled = answering(0);
    expect(await chooseCompression(settled.device, undefined, { execMs: 3, gzip: true })).toBe(false);
    expect(await chooseCompression(settled.device, 'on', { execMs: 3, gzip: true })).toBe(true);
    expect(await chooseCompression(settled.device, 'off', slowFirst)).toBe(false);
    expect(await chooseCompression(settled.device, undefined, { ...slowFirst, gzip: false })).toBe(false);
    expect(settled.asked()).toBe(0);
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
