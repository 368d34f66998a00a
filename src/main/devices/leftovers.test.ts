/**
 * What a cut backup leaves running on a device, stopped by the next run of the same console
 * (leftovers.ts), against a fleet device's real sshd: the link dies under a marked command (the
 * device's sshd never hears the console leave), and only `stopLeftovers` of that console's id stops
 * it — never a process its mark no longer names, never through a folder the login does not own.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fleetForFile } from '../testing/fleet-suite';
import { waitFor } from '../testing/wait';
import { leftoversOf, marked, stopLeftovers } from './leftovers';
import { sh } from './shell-quote';
import { DeviceConnection } from './ssh-connection';

const { skip, fleet } = fleetForFile('leftover tests', { devices: 1, proxy: true, sharedModelMB: 1, uniqueModelMB: 1 });

const CONSOLE = '0123456789abcdef';
const OTHER = 'fedcba9876543210';

const open = () => {
  const device = fleet().devices[0]!;
  return DeviceConnection.open({ host: device.host, port: device.port, user: device.user, auth: { kind: 'key', privateKey: readFileSync(device.identityFile) }, hostKey: device.hostKeyFingerprint });
};

const running = (name: string) => fleet().devices[0]!.sessionProcesses(name);

/** The start time /proc gives the process (field 22), as a mark records it. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19]!;
}

describe.skipIf(skip)('what a cut backup leaves running on the device', () => {
  const opened: DeviceConnection[] = [];
  const made: string[] = [];
  afterEach(() => {
    for (const c of opened.splice(0)) c.close();
    fleet().devices[0]!.proxy!.releaseDead();
    for (const name of ['sleep', 'tail']) spawnSync('pkill', ['-u', fleet().devices[0]!.user, '-x', name]);
    for (const p of made.splice(0)) rmSync(p, { recursive: true, force: true });
  });

  const connect = async () => {
    const c = await open();
    opened.push(c);
    return c;
  };
  const tmp = async (c: DeviceConnection) => (await c.run(sh`printf %s "\${TMPDIR:-/tmp}"`)).trim();

  it('is stopped by the next run of the same console, which names it; another console\'s run leaves it alone', async () => {
    const device = fleet().devices[0]!;
    const cut = await connect();
    made.push(path.join(await tmp(cut), `.jetvault-runs-${CONSOLE}`), path.join(await tmp(cut), `.jetvault-runs-${OTHER}`));
    // A pipeline with a subshell (named as the login shell: not reported), and a session that is one program.
    const command = await cut.exec(marked(sh`{ sleep 300; true; } | cat`, CONSOLE));
    command.stdout.resume();
    const alone = await cut.exec(marked(sh`exec tail -f /dev/null`, CONSOLE));
    alone.stdout.resume();
    await waitFor('the commands run', () => running('sleep').length === 1 && running('tail').length === 1, 5_000);
    // The link dies; the console gives the connection up; the device's sshd hears nothing of it.
    device.proxy!.stall({ deviceHearsNothing: true });
    cut.close();
    device.proxy!.restore();
    await new Promise((r) => setTimeout(r, 300));
    expect(running('sleep')).toHaveLength(1);

    const next = await connect();
    expect(leftoversOf(await next.run(marked(stopLeftovers(OTHER), OTHER)))).toEqual([]);
    expect(running('sleep')).toHaveLength(1);
    expect(leftoversOf(await next.run(marked(stopLeftovers(CONSOLE), CONSOLE))).sort()).toEqual(['cat', 'sleep', 'tail']);
    expect(running('sleep')).toEqual([]);
    expect(running('cat')).toEqual([]);
    expect(running('tail')).toEqual([]);
    // Its mark is forgotten with it, and the run's own (the stop's) is not taken for a leftover.
    expect(leftoversOf(await next.run(marked(stopLeftovers(CONSOLE), CONSOLE)))).toEqual([]);
  }, 60_000);

  it('never stops a process its mark no longer names, nor through a folder the login does not own or a symlink', async () => {
    const device = fleet().devices[0]!;
    const c = await connect();
    const temp = await tmp(c);
    // A process of the login's, under a pid a mark names with another start time (the pid was reused).
    const other = await c.exec(sh`exec sleep 300`);
    other.stdout.resume();
    await waitFor('sleep runs', () => running('sleep').length === 1, 5_000);
    const [pid] = running('sleep');
    const own = path.join(temp, `.jetvault-runs-${CONSOLE}`);
    made.push(own);
    await c.run(marked(sh`true`, CONSOLE)); // makes the folder, as the login
    writeFileSync(path.join(own, String(pid)), '1\n');
    expect(leftoversOf(await c.run(marked(stopLeftovers(CONSOLE), CONSOLE)))).toEqual([]);
    expect(running('sleep')).toEqual([pid]);
    expect(spawnSync('ls', ['-A', own], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)).not.toContain(String(pid));

    // A folder of that name made by someone else (root here), open to all, naming the process rightly.
    const foreign = path.join(temp, `.jetvault-runs-${OTHER}`);
    made.push(foreign);
    mkdirSync(foreign);
    chmodSync(foreign, 0o777);
    writeFileSync(path.join(foreign, String(pid)), `${startTime(pid!)}\n`);
    expect(leftoversOf(await c.run(marked(stopLeftovers(OTHER), OTHER)))).toEqual([]);
    expect(running('sleep')).toEqual([pid]);
    // …and marks nothing there.
    await c.run(marked(sh`true`, OTHER));
    expect(spawnSync('ls', ['-A', foreign], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)).toEqual([String(pid)]);

    // A symlink to a folder the login owns, naming it rightly.
    const third = 'aaaaaaaaaaaaaaaa';
    const target = path.join(temp, `jv-leftovers-target-${process.pid}`);
    const link = path.join(temp, `.jetvault-runs-${third}`);
    made.push(target, link);
    mkdirSync(target, { mode: 0o700 });
    writeFileSync(path.join(target, String(pid)), `${startTime(pid!)}\n`);
    spawnSync('chown', ['-R', `${device.user}:`, target]);
    symlinkSync(target, link);
    expect(leftoversOf(await c.run(marked(stopLeftovers(third), third)))).toEqual([]);
    expect(running('sleep')).toEqual([pid]);
  }, 60_000);

  it('leaves a command\'s output, errors and exit status as they are', async () => {
    const c = await connect();
    made.push(path.join(await tmp(c), `.jetvault-runs-${CONSOLE}`));
    const command = await c.exec(marked(sh`printf 'a\nb'; echo oops >&2; exit 3`, CONSOLE));
    const chunks: Buffer[] = [];
    command.stdout.on('data', (b: Buffer) => chunks.push(b));
    const result = await command.done;
    expect(Buffer.concat(chunks).toString()).toBe('a\nb');
    expect(result).toEqual({ code: 3, signal: null, stderr: 'oops\n' });
  }, 30_000);
});
