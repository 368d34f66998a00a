/**
 * File names are bytes on Linux, strings in JavaScript. A name that is valid UTF-8 is its string;
 * a name that is not keeps every byte that does not form valid UTF-8 as a lone surrogate
 * U+DC80..U+DCFF (the "surrogateescape" convention of PEP 383). Valid UTF-8 never decodes to a lone
 * surrogate, so the mapping is one-to-one and reversible, and such names still sort, compare and
 * join as strings. Trees additionally store the raw bytes of such names (`rawName`, see
 * docs/repository-format.md), and file system calls get the bytes back through `fsPath`.
 */

/** Bytes → string, lossless. Self-contained: its source also runs inside the walker worker. */
export function decodeName(bytes: Uint8Array): string {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = buf.toString('utf8');
  // The decoder writes U+FFFD for every invalid sequence: without one, the decoding was exact.
  if (!text.includes('\ufffd') || Buffer.from(text, 'utf8').equals(buf)) return text;
  let out = '';
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    let n = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0x80) n = 1;
    else if (b >= 0xc2 && b <= 0xdf) n = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      n = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f; // no UTF-16 surrogates encoded as UTF-8
    } else if (b >= 0xf0 && b <= 0xf4) {
      n = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    }
    let ok = n > 0 && i + n <= buf.length;
    for (let k = 1; ok && k < n; k++) {
      const c = buf[i + k]!;
      if (c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xbf)) ok = false;
    }
    if (ok) {
      out += buf.toString('utf8', i, i + n);
      i += n;
    } else {
      out += String.fromCharCode(0xdc00 + b);
      i += 1;
    }
  }
  return out;
}

const LONE_SURROGATE = /\p{Cs}/u;

/** Whether `name` stands for bytes that are not valid UTF-8. */
export function isRawName(name: string): boolean {
  return LONE_SURROGATE.test(name);
}

/** String → the bytes it stands for (inverse of decodeName). */
export function encodeName(name: string): Buffer {
  if (!isRawName(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (const ch of name) {
    const code = ch.charCodeAt(0);
    if (ch.length === 1 && code >= 0xdc80 && code <= 0xdcff) {
      if (run) parts.push(Buffer.from(run, 'utf8'));
      run = '';
      parts.push(Buffer.from([code - 0xdc00]));
    } else run += ch;
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path for `node:fs`: the string itself when it is plain UTF-8, else its bytes. */
export function fsPath(path: string): string | Buffer {
  return isRawName(path) ? encodeName(path) : path;
}

/** Linux's PATH_MAX: a path of this many bytes or more (4,096 with its NUL) is refused by every file system call (ENAMETOOLONG). */
export const PATH_MAX = 4096;

/** Whether `path`, as the bytes it names, is too long for any file system call on Linux. */
export function pathTooLong(path: string): boolean {
  // A UTF-16 unit is at most three bytes: only a long string is worth encoding to tell.
  return path.length * 3 >= PATH_MAX && encodeName(path).length >= PATH_MAX;
}
