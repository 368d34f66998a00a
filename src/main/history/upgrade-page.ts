/**
 * The page the app's upgrade window shows (electron/upgrade-window.ts): static, no script, a CSP that
 * allows only its own style block by hash. Kept apart from Electron so Chromium can be shown it in a test.
 */
import { createHash } from 'node:crypto';
import type { HistoryUpgrade } from './upgrade';

const CSS = `html,body{margin:0;height:100%;background:#0f1419;color:#e6edf3;font:15px/1.45 system-ui,sans-serif}
body{display:flex;flex-direction:column;justify-content:center;padding:0 28px;box-sizing:border-box}
h1{font-size:17px;font-weight:600;margin:0 0 8px}p{margin:0 0 6px;color:#aab6c2}
.bar{height:4px;margin-top:14px;background:#1f2a35;overflow:hidden;border-radius:2px}
.bar i{display:block;width:30%;height:100%;background:#4aa3ff;animation:go 1.4s ease-in-out infinite}
@keyframes go{from{transform:translateX(-100%)}to{transform:translateX(340%)}}
@media (prefers-reduced-motion:reduce){.bar i{animation:none;width:100%;opacity:.5}}`;

export function upgradePageHtml(upgrade: HistoryUpgrade): string {
  const styleHash = createHash('sha256').update(CSS).digest('base64');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'sha256-${styleHash}'">
<title>Jetvault</title><style>${CSS}</style></head><body role="status">
<h1>Upgrading the history store</h1>
<p>From version ${upgrade.from} to ${upgrade.to}: once after an update. A large fleet's history can take a minute; the console opens when it is done.</p>
<p>The repositories and their snapshots are not touched. Closing this window stops the upgrade; it starts again at the next launch.</p>
<div class="bar"><i></i></div></body></html>`;
}
