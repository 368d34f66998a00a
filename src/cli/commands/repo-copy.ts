import { copyBetween } from '../../main/repository/copy/copy';
import type { CopyFilter, CopyProgress, CopyResult } from '../../main/repository/copy/copy';
import type { CliIo, Command } from '../command';
import { parseTimeOption, UsageError } from '../command';
import { EXIT, formatBytes, openOtherRepository, readOtherPassword, REPO_OPTIONS, REPO_USAGE, shortId, withRepository } from './repo-common';
import { counted } from '../../shared/plural';

/** `--since`: a date/time or an age (`parseTimeOption`). */
export function parseSince(text: string, now = Date.now()): Date {
  return parseTimeOption('--since', text, now);
}

function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line: snapshots, content gone through (of the total), stored, rate, ETA; then the read-back. */
export function formatCopyProgress(p: CopyProgress, elapsedMs: number): string {
  if (p.phase === 'verify') return `verifying what was written: ${p.packsVerified}/${p.packsToVerify} packs`;
  if (p.phase === 'prepare') return 'listing snapshots…';
  const secs = elapsedMs / 1000;
  const rate = secs > 0 ? p.bytesDone / secs : 0;
  const pct = p.bytesTotal > 0 ? ` (${Math.min(100, Math.floor((p.bytesDone / p.bytesTotal) * 100))}%)` : '';
  const eta = p.bytesTotal > 0 && rate > 0 && secs >= 1 ? `, ETA ${formatDuration(Math.max(0, p.bytesTotal - p.bytesDone) / rate)}` : '';
  return `snapshot ${Math.min(p.snapshotsDone + 1, p.snapshotsTotal)}/${p.snapshotsTotal}, ${formatBytes(p.bytesDone)} / ${formatBytes(p.bytesTotal)}${pct}, stored ${formatBytes(p.bytesUploaded)}, ${formatBytes(rate)}/s${eta}`;
}

function ttyCopyProgress(stream: { isTTY?: boolean; write(text: string): unknown } = process.stderr): { onProgress: (p: CopyProgress) => void; done(): void } {
  const started = Date.now();
  let last = 0;
  return {
    onProgress: (p) => {
      if (stream.isTTY !== true || Date.now() - last < 200) return;
      last = Date.now();
      stream.write(`\r\x1b[K${formatCopyProgress(p, last - started)}`);
    },
    done: () => {
      if (stream.isTTY === true) stream.write('\r\x1b[K');
    },
  };
}

function printResult(result: CopyResult, to: string, io: CliIo): void {
  if (result.mode === 're-chunk') io.out(`the repositories do not share chunker parameters: file contents were re-chunked (create the destination with \`jetvault init --copy-chunker-params-from\` to avoid it)`);
  for (const c of result.copied) io.out(`snapshot ${shortId(c.from)} copied to ${shortId(c.to)}  ${c.time}  ${c.device}  ${c.source}`);
  const packs = result.packsRecovered > 0 ? `; reused ${counted(result.packsRecovered, 'pack')} an interrupted copy had stored` : '';
  io.out(
    `${counted(result.copied.length, 'snapshot')} copied to ${to}, ${result.skipped} already there; stored ${result.blobsUploaded} blobs, ${formatBytes(result.bytesUploaded)} ` +
      `(${result.blobsSkipped} blobs already there)${packs}; ${(result.durationMs / 1000).toFixed(1)}s`,
  );
  for (const d of result.damaged) io.err(`error: snapshot ${shortId(d.id)} (${d.time} ${d.device} ${d.source}) was not copied: its data here is damaged (${d.why})`);
  if (result.damaged.length > 0) io.err('run `jetvault check --read-data` on this repository to see which files the damage affects; the other snapshots were copied');
  const v = result.verification;
  if (v) {
    for (const e of v.errors) io.err(`error: ${e}`);
    io.out(
      v.errors.length === 0
        ? `read back ${counted(v.packs, 'pack')}, ${counted(v.blobs, 'blob')} and ${counted(v.snapshots, 'snapshot')}: no errors`
        : `${counted(v.errors.length, 'error')} reading back what was written: run \`jetvault check --read-data -r ${to}\`, then copy again`,
    );
  }
}

export const repoCopyCommand: Command = {
  name: 'copy',
  summary: 'copy snapshots to another repository (only the data it lacks)',
  usage: [
    'Usage: jetvault copy --to REPO [--device D] [--source S] [--since TIME] [--no-verify] [--json]',
    '',
    'Copies the snapshots of the repository (-r) that REPO does not hold yet, without reading any device:',
    'only blobs REPO lacks are stored, then everything written is read back and verified. A copy keeps the',
    "snapshot's time, host, paths, device and tags; run it again to resume an interrupted copy or to copy",
    'new snapshots (those already copied are skipped). When REPO was created with',
    '`jetvault init --copy-chunker-params-from` this repository, blobs are copied as they are; otherwise',
    'file contents are re-chunked for REPO (slower, same result).',
    '',
    'Copy options:',
    '      --to REPO                destination repository (a folder, s3:…; same forms as --repo)',
    '      --to-password-file FILE  its password (default: $JETVAULT_TO_PASSWORD, else prompt)',
    '      --device D               only snapshots of device D',
    '      --source S               only source S (a device source name, or a kind such as local)',
    '      --since TIME             only snapshots taken since TIME (2026-11-01, 2026-11-01T08:00Z, 36h, 7d, 2w)',
    '      --no-verify              skip reading back what was written',
    'A snapshot whose data here is damaged is left out and named; the others are copied. Exit code 1 then,',
    'and when reading back finds damage; 10/11/12 as for the other commands, for either repository.',
    REPO_USAGE,
  ].join('\n'),
  options: {
    ...REPO_OPTIONS,
    to: { type: 'string' },
    'to-password-file': { type: 'string' },
    device: { type: 'string' },
    source: { type: 'string' },
    since: { type: 'string' },
    'no-verify': { type: 'boolean' },
  },
  async run({ values, positionals }, io) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]!}`);
    if (typeof values.to !== 'string' || values.to === '') throw new UsageError('give the destination: --to REPO');
    const to = values.to;
    const filter: CopyFilter = {
      ...(typeof values.device === 'string' ? { device: values.device } : {}),
      ...(typeof values.source === 'string' ? { source: values.source } : {}),
      ...(typeof values.since === 'string' ? { since: parseSince(values.since) } : {}),
    };
    return withRepository(values, io, 'none', async (source) => {
      const destination = await openOtherRepository(to, () => readOtherPassword(values['to-password-file'], 'JETVAULT_TO_PASSWORD', io, `enter password of ${to}: `), io, `destination ${to}`);
      const progress = ttyCopyProgress();
      let result: CopyResult;
      try {
        result = await copyBetween(source, destination, {
          ...filter,
          verify: values['no-verify'] !== true,
          onProgress: progress.onProgress,
          onReadOnlySource: () => io.err('warning: the source repository is read-only here, so no lease was taken on it: a prune started elsewhere meanwhile could remove data this copy reads'),
        });
      } finally {
        progress.done();
        await destination.closeIdleWorkers();
        destination.backend.close?.(); // an SFTP connection would keep the process alive
      }
      if (values.json) io.out(JSON.stringify(result, null, 2));
      else printResult(result, to, io);
      return result.ok ? EXIT.ok : EXIT.failure;
    });
  },
};
