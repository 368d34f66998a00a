/**
 * A line diff (Myers' O(ND) algorithm) of two texts, as unified-diff hunks with context. Used to
 * compare two versions of a config file; the renderer only shows what this returns.
 */

export type DiffLine = { op: ' ' | '-' | '+'; text: string; oldLine: number | null; newLine: number | null };

export interface DiffHunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  lines: DiffLine[];
}

export interface LineDiff {
  hunks: DiffHunk[];
  added: number;
  removed: number;
}

/** Splits into lines without their terminators; a final newline does not make an empty last line. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * The edit script from `a` to `b`: every line of both, in order, marked kept, removed or added.
 * Past `maxEdits` differing lines the middle part is shown as removed then added (still a correct
 * diff, no longer minimal) rather than spend O(D²) memory on it.
 */
export function diffLines(a: readonly string[], b: readonly string[], maxEdits = 4_000): DiffLine[] {
  // Common prefix and suffix are cheap to strip and usual for config edits.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const n = endA - start;
  const m = endB - start;
  const max = n + m;
  const trace: Int32Array[] = [];
  const v = new Int32Array(2 * max + 2);
  const offset = max + 1;
  let found = max === 0;
  for (let d = 0; d <= max && !found; d++) {
    if (d > maxEdits) break;
    // Only diagonals -d..d matter at step d: keeps the trace at O(D²) instead of O(D·(N+M)).
    trace.push(v.slice(offset - d, offset + d + 1));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[start + x] === b[start + y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = true;
        break;
      }
    }
  }
  const middle: DiffLine[] = [];
  if (!found) {
    for (let i = 0; i < n; i++) middle.push({ op: '-', text: a[start + i]!, oldLine: start + i + 1, newLine: null });
    for (let j = 0; j < m; j++) middle.push({ op: '+', text: b[start + j]!, oldLine: null, newLine: start + j + 1 });
    middle.reverse(); // undone below
  }
  // Walk back through the trace to recover the middle part's edit script.
  let x = n;
  let y = m;
  for (let d = found ? trace.length - 1 : -1; d >= 0 && (x > 0 || y > 0); d--) {
    const vd = trace[d]!;
    const k = x - y;
    const at = (kk: number) => vd[kk + d]!;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      middle.push({ op: ' ', text: a[start + x]!, oldLine: start + x + 1, newLine: start + y + 1 });
    }
    if (d === 0) break;
    if (x === prevX) {
      y--;
      middle.push({ op: '+', text: b[start + y]!, oldLine: null, newLine: start + y + 1 });
    } else {
      x--;
      middle.push({ op: '-', text: a[start + x]!, oldLine: start + x + 1, newLine: null });
    }
  }
  middle.reverse();
  const out: DiffLine[] = [];
  for (let i = 0; i < start; i++) out.push({ op: ' ', text: a[i]!, oldLine: i + 1, newLine: i + 1 });
  out.push(...middle);
  for (let i = 0; i < a.length - endA; i++) out.push({ op: ' ', text: a[endA + i]!, oldLine: endA + i + 1, newLine: endB + i + 1 });
  return out;
}

/** Groups an edit script into hunks with `context` unchanged lines around each change. */
export function toHunks(script: readonly DiffLine[], context = 3): LineDiff {
  const hunks: DiffHunk[] = [];
  let added = 0;
  let removed = 0;
  const changed = script.map((l) => l.op !== ' ');
  // Lines of each side before index i, for hunk headers.
  const oldBefore = new Int32Array(script.length + 1);
  const newBefore = new Int32Array(script.length + 1);
  script.forEach((l, i) => {
    oldBefore[i + 1] = oldBefore[i]! + (l.op !== '+' ? 1 : 0);
    newBefore[i + 1] = newBefore[i]! + (l.op !== '-' ? 1 : 0);
  });
  let prevEnd = 0;
  let i = 0;
  while (i < script.length) {
    if (!changed[i]) {
      i++;
      continue;
    }
    const from = Math.max(prevEnd, i - context);
    let to = i;
    // Extend while another change follows within 2 × context unchanged lines.
    for (let j = i; j < script.length; j++) {
      if (changed[j]) to = j;
      else if (j - to > 2 * context) break;
    }
    const end = Math.min(script.length, to + context + 1);
    const lines = script.slice(from, end);
    for (const l of lines) {
      if (l.op === '+') added++;
      if (l.op === '-') removed++;
    }
    const oldLines = oldBefore[end]! - oldBefore[from]!;
    const newLines = newBefore[end]! - newBefore[from]!;
    // An empty side starts at the line before it (as `diff -u` prints it).
    hunks.push({
      oldStart: oldLines > 0 ? oldBefore[from]! + 1 : oldBefore[from]!,
      oldLines,
      newStart: newLines > 0 ? newBefore[from]! + 1 : newBefore[from]!,
      newLines,
      lines,
    });
    prevEnd = end;
    i = end;
  }
  return { hunks, added, removed };
}

/** The unified diff text of a LineDiff (for the CLI and for tests against `diff -u`). */
export function formatUnified(diff: LineDiff, oldName: string, newName: string): string {
  if (diff.hunks.length === 0) return '';
  const out = [`--- ${oldName}`, `+++ ${newName}`];
  for (const h of diff.hunks) {
    out.push(`@@ -${h.oldStart}${h.oldLines === 1 ? '' : `,${h.oldLines}`} +${h.newStart}${h.newLines === 1 ? '' : `,${h.newLines}`} @@`);
    for (const l of h.lines) out.push(`${l.op}${l.text}`);
  }
  return `${out.join('\n')}\n`;
}
