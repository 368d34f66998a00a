/**
 * What a backup cut off by a silent link leaves running on the device, and how the next run stops it.
 *
 * A link that goes silent (a cellular modem that lost its cell, a cable pulled) is given up by the
 * console (decision 028), but the device's sshd hears nothing: its TCP retransmits unacknowledged
 * data for ~15 minutes (tcp_retries2) before it closes the session. Until then the run's commands
 * stay on the device, blocked writing into the dead link — pg_dump holding its transaction open (a
 * snapshot that keeps VACUUM from cleaning up behind it), tar, a SQLite copy in the temp folder —
 * and the technician's retry, or the scheduler's, starts the same commands beside them.
 *
 * So each backup and drill command marks itself on the device: the login shell sshd starts for it
 * leads its own session (sshd calls setsid for every exec), and writes its pid and start time (field
 * 22 of /proc/PID/stat, so a reused pid is never taken for it) into a folder of this console's and
 * this device's (`marked`; the folder's name is `DeviceService.marksScope`). The next backup, drill
 * or restore of the device from this console stops every marked session that still runs
 * (`stopLeftovers`, part of the job's first command): TERM to its process group — the dump
 * commands' traps then remove their temp copies — and KILL 2 s later to what is left.
 * (A drill's pg_restore left so held its scratch database open: the next drill could not drop it.)
 *
 * Safe because a console runs one job per device at a time, across its processes (the job manager
 * refuses a device busy in another one): when a job starts, no other job of the device from this
 * console is running, so every marked session still alive was left by a cut one. Another console
 * (another laptop, another data folder) marks into a folder of its own id and is never touched; so
 * does another device of the inventory on the same login (one Jetson under two addresses). The
 * folder is used only when it is this login's own and not a symlink, so another user of the device
 * cannot make a root login stop processes it names. A restore's own commands are not marked: its
 * swap is never stopped from outside (decision 007).
 *
 * Cost: the mark is shell built-ins only (`mkdir` once per device); the stop costs one `rm` per run
 * (the previous run's marks), and a scan of /proc only when a marked session is still alive.
 */
import { AppError } from '../../shared/errors';
import { sections } from './facts';
import { raw, sh, type RawShell } from './shell-quote';
import { DEVICE_WORK_PREFIX } from './sources/listing';
import { runToString, type CommandRunner } from './ssh-connection';

/** The section of the run's first command's output that names what it stopped, a process per line. */
const SECTION = 'leftovers';

const SCOPE = /^[0-9a-f]{16}$/;

/** The folder of this console's marks on the device (in its temp folder), as shell: `JV_R=…`. */
function marksFolder(scope: string): RawShell {
  if (!SCOPE.test(scope)) throw new AppError('INTERNAL', `not a marks scope: ${scope}`);
  return raw(`JV_R="\${TMPDIR:-/tmp}/${DEVICE_WORK_PREFIX}runs-${scope}"`);
}

/**
 * `command`, marked first as described above. Silent and harmless where it cannot mark (no /proc, a
 * temp folder it may not write to): the command runs as it would, only a cut run's leftovers are
 * then not stopped.
 */
export function marked(command: RawShell, scope: string): RawShell {
  return sh`${marksFolder(scope)}; [ -d "$JV_R" ] || mkdir -m 700 "$JV_R" 2>/dev/null; if [ -O "$JV_R" ] && [ ! -h "$JV_R" ] && read -r JV_S < /proc/$$/stat; then set -- \${JV_S##*) }; shift 19; echo "$1" > "$JV_R/$$"; set --; fi 2>/dev/null
${command}`;
}

/** A runner whose every command is `marked` (a backup's or a drill's; see above). */
export function markedRunner(runner: CommandRunner, scope: string): CommandRunner {
  const wrapped: CommandRunner = {
    target: runner.target,
    exec: (command, signal) => runner.exec(marked(command, scope), signal),
    run: (command, options) => runToString(wrapped, command, options),
    ...(runner.databasePassword ? { databasePassword: runner.databasePassword } : {}),
  };
  return wrapped;
}

/**
 * Stops what this console's cut runs left on the device (see above) and forgets their marks; prints
 * `@@leftovers`, then the name of each process it stopped — the sessions' own shells and their
 * subshells (the same program) left out, unless a session is that program alone (`exec tar …`).
 * Run as a marked command, it skips its own mark. Appended to the run's first command.
 */
export function stopLeftovers(scope: string): RawShell {
  return sh`echo @@${raw(SECTION)}
jv_group() {
  for JV_Q in /proc/[0-9]*/stat; do
    read -r JV_S < "$JV_Q" || continue
    set -- \${JV_S##*) }
    [ "$3" != "$JV_P" ] || [ "$1" = Z ] && continue
    JV_S=\${JV_S#*\\(}; echo "\${JV_Q%/stat} \${JV_S%) *}"
  done
}
${marksFolder(scope)}; JV_OLD=
if [ -O "$JV_R" ] && [ ! -h "$JV_R" ]; then
  for JV_F in "$JV_R"/*; do
    JV_P=\${JV_F##*/}
    case $JV_P in ''|*[!0-9]*) continue ;; esac
    [ "$JV_P" = "$$" ] && continue
    JV_OLD="$JV_OLD $JV_P"
    JV_T=; read -r JV_T < "$JV_F" || continue
    JV_S=; read -r JV_S < "/proc/$JV_P/stat" || continue
    JV_L=\${JV_S#*\\(}; JV_L=\${JV_L%) *}
    set -- \${JV_S##*) }; JV_SID=$4; shift 19
    [ "$JV_SID" = "$JV_P" ] && [ "$1" = "$JV_T" ] || continue
    JV_N=$(jv_group | while read -r JV_Q JV_N; do [ "$JV_Q" = "/proc/$JV_P" ] || [ "$JV_N" = "$JV_L" ] || echo "$JV_N"; done)
    echo "\${JV_N:-$JV_L}"
    kill -TERM "-$JV_P"
    JV_N=0
    while [ -n "$(jv_group)" ] && [ $JV_N -lt 20 ]; do sleep 0.1; JV_N=$((JV_N + 1)); done
    kill -KILL "-$JV_P"
  done 2>/dev/null
  [ -z "$JV_OLD" ] || (cd "$JV_R" && rm -f -- $JV_OLD)
fi`;
}

/** The names of the processes `stopLeftovers` stopped, each once, in the order it named them. */
export function leftoversOf(output: string): string[] {
  return [...new Set(sections(output).get(SECTION)?.map((name) => name.trim()) ?? [])];
}
