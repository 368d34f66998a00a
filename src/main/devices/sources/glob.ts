/**
 * Include/exclude patterns of a files source, relative to the source path they apply under:
 * `*` and `?` stay within one path segment, `**` crosses segments, `[...]` is a character class.
 * A pattern without `/` matches a name at any depth (like rsync and restic); a leading `/` anchors
 * it to the source path (`/app.py` is only the top-level one, as in rsync).
 */
function escape(char: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(char) ? `\\${char}` : char;
}

export function globToRegExp(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else out += '.*';
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        out += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
        i = end;
      }
    } else out += escape(c);
  }
  return new RegExp(`^${out}$`, 's');
}

export class PathMatcher {
  readonly #anywhere: RegExp[];
  readonly #anchored: RegExp[];

  constructor(patterns: readonly string[]) {
    const trimmed = patterns.map((p) => p.replace(/\/+$/, ''));
    const clean = (p: string) => globToRegExp(p.replace(/^\.?\//, ''));
    this.#anywhere = trimmed.filter((p) => !p.includes('/')).map(clean);
    this.#anchored = trimmed.filter((p) => p.includes('/')).map(clean);
  }

  get empty(): boolean {
    return this.#anywhere.length === 0 && this.#anchored.length === 0;
  }

  /** `relative` is the path below the source path, '/'-separated, no leading slash. */
  matches(relative: string): boolean {
    const name = relative.slice(relative.lastIndexOf('/') + 1);
    return this.#anywhere.some((re) => re.test(name)) || this.#anchored.some((re) => re.test(relative));
  }
}

/** A pattern that matches exactly this relative path and nothing else (glob characters escaped, anchored). */
export function literalPattern(relative: string): string {
  return `/${relative.replace(/[*?[]/g, (c) => `[${c}]`)}`;
}
