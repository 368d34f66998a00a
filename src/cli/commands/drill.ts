import { formatDuration } from '../../shared/format-duration';
import type { Command } from '../command';
import { UsageError } from '../command';
import { withServices } from '../services';
import { EXIT, exitCodeOf, readPassword, REPO_OPTIONS, REPO_USAGE } from './repo-common';

export const drillCommand: Command = {
  name: 'drill',
  summary: "restore a device's latest backup into a scratch area on it, verify, clean up and measure the RTO",
  usage: [
    'Usage: jetvault drill --device NAME [--json]',
    '',
    "Restores the device's latest complete backup run into a scratch folder on the device (files:",
    'sha256-verified on the device), removes it again, and records the recovery time per source and',
    'in total; the device page shows it as the RTO against the objective.',
    'Exit code 0: passed; 3: passed, but some sources could not be drilled (skipped); 1: failed;',
    '10, 11, 12: no repository, locked by a prune, wrong password.',
    REPO_USAGE,
  ].join('\n'),
  options: { ...REPO_OPTIONS, device: { type: 'string' } },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError('drill takes no positional arguments');
    if (typeof values.device !== 'string') throw new UsageError('--device NAME is required');
    const device = values.device;
    const env: NodeJS.ProcessEnv = { ...io.env, ...(typeof values.repo === 'string' ? { JETVAULT_REPOSITORY: values.repo } : {}) };
    return withServices({ ...io, env }, async (services) => {
      // A misspelt device is said before the password is asked for (the services read it from env when they open the repository).
      services.devices.get(device);
      if (env.JETVAULT_PASSWORD === undefined) env.JETVAULT_PASSWORD = await readPassword(values, io);
      const started = services.drills.start(device);
      const { record, error } = await started.done;
      const drill = services.drills.get(started.drillId);
      if (!drill) {
        io.err(`jetvault drill: ${device}: ${record.error?.message ?? record.status}`);
        // The repository failed before the drill began (another console's prune holds it): 11 as for every command.
        return exitCodeOf(error);
      }
      const rto = services.drills.rto(device);
      if (values.json) io.out(JSON.stringify({ ...drill, rto: { objectiveMinutes: rto.objectiveMinutes, estimateMs: rto.estimateMs, status: rto.status } }, null, 2));
      else {
        for (const s of drill.sources) {
          const how = s.result === 'passed' ? `${formatDuration(s.durationMs)}, ${s.files} entries` : (s.error ?? '');
          io.out(`${s.result.padEnd(7)} ${s.source} (${s.kind}): ${how}`);
        }
        io.out(`${device}: drill ${drill.result}${drill.totalMs !== null ? ` in ${formatDuration(drill.totalMs)} (RTO objective ${rto.objectiveMinutes} min: ${rto.status})` : ''}`);
        if (drill.error) io.err(`jetvault drill: ${drill.error}`);
        if (drill.cleanup && drill.cleanup !== 'done') io.err(`scratch area ${drill.cleanup}`);
        if (drill.leftoversStopped) io.err(`note: ${device}: first stopped what an earlier run had left running on the device (${drill.leftoversStopped.join(', ')})`);
      }
      return drill.result === 'passed' ? EXIT.ok : drill.result === 'partial' ? EXIT.partial : EXIT.failure;
    });
  },
};
