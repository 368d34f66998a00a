/**
 * A file name as the console shows it: every character that would not show as itself is written
 * as an escape, as `ls -b` does — bytes that are not UTF-8 (kept as U+DC80–U+DCFF by
 * `decodeName`) as `\xE9`, control characters as `\n`, `\t` or `\x01`, and invisible or
 * direction-changing ones (U+202E RIGHT-TO-LEFT OVERRIDE, zero-width spaces) as `\u202E` — with
 * a backslash itself as `\\`, so two different names never look the same and none looks like
 * another (`evil\u202Etxt.exe` drawn as "evilexe.txt").
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\\]/gu;

const hex = (code: number, width: number) => code.toString(16).toUpperCase().padStart(width, '0');

export function visibleName(name: string): string {
  return name.replace(HIDDEN, (ch) => {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') return '\\\\';
    if (ch === '\n') return '\\n';
    if (ch === '\t') return '\\t';
    if (ch === '\r') return '\\r';
    if (code >= 0xdc80 && code <= 0xdcff) return `\\x${hex(code - 0xdc00, 2)}`;
    if (code < 0x100) return `\\x${hex(code, 2)}`;
    return code > 0xffff ? `\\u{${hex(code, 5)}}` : `\\u${hex(code, 4)}`;
  });
}
