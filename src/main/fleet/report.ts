/**
 * A device's protection report: one self-contained HTML page (inline styles, no scripts, no
 * external resources) that prints to PDF: protection status, RPO and RTO against their
 * objectives, the share of the last 30 days within the RPO, the sources and when each was last backed
 * up, the last backup runs and the last drills.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AppError, toAppError } from '../../shared/errors';
import { formatBytes } from '../../shared/format-bytes';
import { formatAge, formatDuration } from '../../shared/format-duration';
import { formatShare } from '../../shared/format-share';
import { describeSource } from '../../shared/describe-source';
import type { DeviceProfile } from '../../shared/schemas/devices';
import type { TextFile } from '../../shared/schemas/fleet';
import type { HistoryStore } from '../history/history-store';
import type { OverviewService } from './overview-service';
import { rpoCompliance } from './rpo-compliance';
import type { PlatformAdapter } from '../services/index';

export function escapeHtml(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function bytes(n: number | null): string {
  return n === null ? '—' : formatBytes(n);
}

function duration(ms: number | null): string {
  return ms === null ? '—' : formatDuration(ms);
}

/**
 * Whole units gone by, rounded down as on the Fleet page: a backup 23 h 59 min old within a 24 h RPO
 * is "23 h" since, not "24 h" against an RPO of 24 h.
 */
function age(m: number): string {
  if (m < 90) return `${Math.floor(m)} min`;
  if (m < 48 * 60) return `${Math.floor(m / 60)} h`;
  return `${Math.floor(m / 1440)} days`;
}

/** A share in whole percent, but to a tenth near the ends: 400 MiB free of 100 GiB is "0.4 %", not "0 %" (a full disk). */
function percent(f: number): string {
  const p = f * 100;
  if (p <= 0 || p >= 100 || (p >= 1 && p <= 99)) return `${Math.round(p)} %`;
  return `${Math.min(99.9, Math.max(0.1, Math.round(p * 10) / 10))} %`;
}

/** The span the report's RPO compliance covers. */
const COMPLIANCE_DAYS = 30;

function minutes(m: number): string {
  return m < 60 ? `${m} min` : m % 60 === 0 ? `${m / 60} h` : `${(m / 60).toFixed(1)} h`;
}

const STYLE = `
  body { font: 14px/1.45 system-ui, sans-serif; color: #111; margin: 2rem; }
  h1 { margin: 0 0 .25rem; font-size: 1.6rem; } h2 { margin-top: 1.75rem; font-size: 1.15rem; border-bottom: 1px solid #ccc; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #e3e3e3; }
  th { background: #f3f3f3; } .ok { color: #176b2c; font-weight: 600; } .bad { color: #a4161a; font-weight: 600; } .warn { color: #8a5a00; font-weight: 600; }
  .muted { color: #555; } dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; } dt { font-weight: 600; }
  @page { size: A4; margin: 14mm 12mm; }
  @media print {
    body { margin: 0; font-size: 11pt; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    h2 { break-after: avoid; } tr, dl { break-inside: avoid; } thead { display: table-header-group; }
    th { background: #eee; } a { color: inherit; text-decoration: none; }
  }`;

export function deviceReport(store: HistoryStore, overview: OverviewService, name: string, now = new Date()): TextFile {
  const device = overview.overview().devices.find((d) => d.name === name);
  if (!device) throw new AppError('NOT_FOUND', `No device named "${name}"`);
  const runs = store.sql.deviceRuns.all(device.id, 20);
  const drills = store.sql.drillsByDevice.all(device.id, 10);
  const statusClass = device.status === 'protected' ? 'ok' : 'bad';
  const rpoText =
    device.ageMinutes === null
      ? '<span class="bad">never backed up</span>'
      : `<span class="${device.rpoState === 'ok' ? 'ok' : 'bad'}">${escapeHtml(age(device.ageMinutes))} since the last good backup</span> against an RPO of ${escapeHtml(minutes(device.rpoMinutes))} (${escapeHtml(device.tier)}, from the ${escapeHtml(device.rpoFrom)})`;
  // The share of the last 30 days (or of the days since the device was added) within its RPO, exact
  // to the second as on the dashboards.
  const nowS = Math.floor(now.getTime() / 1000);
  const record = store.sql.deviceByName.get(name)!;
  const addedAt = record.created_at;
  const span = COMPLIANCE_DAYS * 86_400;
  const [compliance] = rpoCompliance(store.sql, [{ id: device.id, rpoMinutes: device.rpoMinutes, createdAt: addedAt }], { from: nowS - span, to: nowS, bucket: span, now: nowS });
  const addedDays = (nowS - Date.parse(addedAt) / 1000) / 86_400;
  const complianceText = !compliance
    ? 'not yet measured (added just now)'
    : `<span class="${compliance.fraction >= 1 ? 'ok' : 'bad'}">${escapeHtml(formatShare(compliance.fraction))}</span> of the time within its RPO over ${addedDays < COMPLIANCE_DAYS ? `the ${escapeHtml(addedDays < 1 ? 'hours' : `${Math.floor(addedDays)} day${Math.floor(addedDays) === 1 ? '' : 's'}`)} since it was added` : `the last ${COMPLIANCE_DAYS} days`}${compliance.outsideSeconds > 0 ? ` (${escapeHtml(formatAge(compliance.outsideSeconds * 1000))} outside it)` : ''}`;
  const rtoText =
    device.rtoEstimateMs === null
      ? device.rtoState === 'failed'
        ? // Drilled, but no drill has measured a recovery: not "no drill yet" above a table of failed drills.
          `<span class="bad">the newest drill failed</span>, and none has measured a recovery time yet — objective ${escapeHtml(minutes(device.rtoObjectiveMinutes))}`
        : `<span class="warn">no drill yet</span> — objective ${escapeHtml(minutes(device.rtoObjectiveMinutes))}`
      : `<span class="${device.rtoState === 'ok' ? 'ok' : device.rtoState === 'partial' ? 'warn' : 'bad'}">${escapeHtml(duration(device.rtoEstimateMs))}</span> measured against an objective of ${escapeHtml(minutes(device.rtoObjectiveMinutes))}${device.rtoState === 'failed' ? ' (the newest drill failed)' : device.rtoState === 'partial' ? ' (by a drill that skipped sources it cannot drill: they are not in it)' : ''}`;
  const runRows = runs
    .map((r) => {
      const error = r.error ? (JSON.parse(r.error) as { message?: string }).message : '';
      return `<tr><td>${escapeHtml(r.started_at)}</td><td class="${r.status === 'succeeded' ? 'ok' : r.status === 'failed' ? 'bad' : ''}">${escapeHtml(r.status)}</td><td>${escapeHtml(duration(r.duration_ms))}</td><td>${escapeHtml(bytes(r.bytes_done))}</td><td>${escapeHtml(bytes(r.bytes_added))}</td><td>${escapeHtml(error)}</td></tr>`;
    })
    .join('\n');
  // What the device's backups hold, source by source, with when each was last backed up: a source added
  // since the last run reads "not backed up yet" (the device can still be within its RPO then).
  const profile = JSON.parse(record.profile) as DeviceProfile;
  const sourceRows = profile.sources
    .map((s) => {
      const last = store.sql.lastSourceBackup.get(device.id, s.name)?.finished_at ?? null;
      return `<tr><td>${escapeHtml(s.name)}</td><td>${escapeHtml(s.kind)}</td><td>${escapeHtml(describeSource(s, false))}</td><td${last ? '' : ' class="warn"'}>${escapeHtml(last ?? 'not backed up yet')}</td></tr>`;
    })
    .join('\n');
  const drillRows = drills
    .map((d) => `<tr><td>${escapeHtml(d.started_at)}</td><td class="${d.result === 'passed' ? 'ok' : d.result === 'failed' ? 'bad' : 'warn'}">${escapeHtml(d.result)}</td><td>${escapeHtml(duration(d.total_ms))}</td><td>${escapeHtml(d.error ?? '')}</td></tr>`)
    .join('\n');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Jetvault report — ${escapeHtml(device.name)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(device.name)}</h1>
<p class="muted">Protection report generated ${escapeHtml(now.toISOString())} · site ${escapeHtml(device.site || '—')} · tags ${escapeHtml(device.tags.join(', ') || '—')}</p>
<h2>Protection status</h2>
<dl>
<dt>Status</dt><dd class="${statusClass}" id="status">${escapeHtml(device.status)}</dd>
<dt>RPO</dt><dd>${rpoText}</dd>
<dt>RPO compliance</dt><dd id="rpo-compliance">${complianceText}</dd>
<dt>RTO</dt><dd>${rtoText}</dd>
<dt>Last good backup</dt><dd>${escapeHtml(device.lastGoodAt ?? 'never')}</dd>
<dt>Last contact</dt><dd>${escapeHtml(device.reachability)}${device.lastContactAt ? ` (${escapeHtml(device.lastContactAt)})` : ''}</dd>
<dt>Last verification</dt><dd>${escapeHtml(device.lastVerifyAt ? `${device.lastVerifyAt} — ${device.lastVerifyStatus}` : 'none yet')}</dd>
<dt>Disk free</dt><dd>${escapeHtml(device.diskFreeBytes === null ? 'unknown' : `${bytes(device.diskFreeBytes)} (${percent(device.diskFreeFraction ?? 0)})`)}</dd>
<dt>Databases</dt><dd>${device.databaseUp === null ? 'none or unknown' : device.databaseUp ? '<span class="ok">up</span>' : '<span class="bad">down</span>'}</dd>
</dl>
<h2>Sources</h2>
${profile.sources.length === 0 ? '<p>No sources yet.</p>' : `<table><thead><tr><th>Source</th><th>Kind</th><th>What</th><th>Last backed up (UTC)</th></tr></thead><tbody>\n${sourceRows}\n</tbody></table>`}
<h2>Last backup runs</h2>
${runs.length === 0 ? '<p>No backup has run yet.</p>' : `<table><thead><tr><th>Started (UTC)</th><th>Result</th><th>Duration</th><th>Transferred</th><th>Added</th><th>Error</th></tr></thead><tbody>\n${runRows}\n</tbody></table>`}
<h2>Restore drills</h2>
${drills.length === 0 ? '<p>No drill yet.</p>' : `<table><thead><tr><th>Started (UTC)</th><th>Result</th><th>Recovery time</th><th>Error</th></tr></thead><tbody>\n${drillRows}\n</tbody></table>`}
</body></html>
`;
  return { filename: `jetvault-report-${device.name}-${now.toISOString().slice(0, 10)}.html`, mimeType: 'text/html', text: html };
}

export interface OpenedReport {
  /** Where the report was written (the PDF when the platform printed one, else the HTML page). */
  path: string;
  format: 'pdf' | 'html';
  /** Whether it was handed to the system's viewer (the desktop app); elsewhere the path is shown. */
  opened: boolean;
}

/**
 * Writes the device's report under `<data dir>/reports/` and opens it for printing: in the desktop
 * app it is printed to PDF (Chromium, its print CSS) and opened in the system's PDF viewer; where the
 * platform can do neither (the test host, a server), the saved file's location is returned.
 */
export async function openDeviceReport(
  deps: { store: HistoryStore; overview: OverviewService; platform: Pick<PlatformAdapter, 'openPath' | 'printToPdf'>; dataDir: string },
  name: string,
  now = new Date(),
): Promise<OpenedReport> {
  const file = deviceReport(deps.store, deps.overview, name, now);
  const dir = path.join(deps.dataDir, 'reports');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const html = path.join(dir, file.filename);
  await writeFile(html, file.text, { mode: 0o600 });
  let target = html;
  let format: OpenedReport['format'] = 'html';
  if (deps.platform.printToPdf) {
    const pdf = html.replace(/\.html$/, '.pdf');
    try {
      await deps.platform.printToPdf(html, pdf);
    } catch (error) {
      throw new AppError('INTERNAL', `The report was saved to ${html} but could not be printed to PDF: ${toAppError(error).message}`);
    }
    target = pdf;
    format = 'pdf';
  }
  if (!deps.platform.openPath) return { path: target, format, opened: false };
  try {
    await deps.platform.openPath(target);
  } catch (error) {
    throw new AppError('UNAVAILABLE', `The report was saved to ${target} but no application opened it: ${toAppError(error).message}`);
  }
  return { path: target, format, opened: true };
}
