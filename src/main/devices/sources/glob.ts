/**
 * Include/exclude patterns of a files source, relative to the source path they apply under:
 * `*` and `?` stay within one path segment, `**` crosses segments, `[...]` is a character class.
 * A pattern without `/` matches a name at any depth (like rsync and restic); a leading `/` anchors
 * it to the source path (`/app.py` is only the top-level one, as in rsync); a trailing `/` makes it
 * match folders only (`cache/`). What is inside a matched folder is matched with it — excluded, or
 * for an include (`/models`, `config/`) kept whole. A files source also takes a pattern written as
 * the full device path below one of its paths (`/opt/myrvm/data/x.db` in a source of /opt/myrvm),
 * applied below that path only.
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

/**
 * Why `pattern` cannot be used, or null when it can: a character class a regular expression cannot
 * hold (a range out of order, `[z-a]`) would otherwise fail every backup of its source.
 */
export function globError(pattern: string): string | null {
  try {
    globToRegExp(pattern.replace(/\/+$/, '').replace(/^\.?\//, ''));
    return null;
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split(': ').at(-1) ?? error.message) : String(error);
    return `"${pattern}" is not a valid pattern (${reason.charAt(0).toLowerCase()}${reason.slice(1)})`;
  }
}

/** Every include or exclude pattern of the profile's files sources that cannot be used, by field path. */
export function patternIssues(sources: readonly { kind: string; include?: string[] | undefined; exclude?: string[] | undefined }[]): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  sources.forEach((source, i) => {
    if (source.kind !== 'files') return;
    for (const field of ['include', 'exclude'] as const) {
      (source[field] ?? []).forEach((pattern, j) => {
        const error = globError(pattern);
        if (error) issues.push({ path: `sources.${i}.${field}.${j}`, message: error });
      });
    }
  });
  return issues;
}

export class PathMatcher {
  readonly #anywhere: { re: RegExp; dirOnly: boolean }[];
  readonly #anchored: { re: RegExp; dirOnly: boolean }[];

  /** A pattern ending in `/` (`cache/`) matches folders only, as in rsync and .gitignore. */
  constructor(patterns: readonly string[]) {
    const parsed = patterns.map((p) => ({ pattern: p.replace(/\/+$/, ''), dirOnly: /.\/$/.test(p) }));
    const clean = ({ pattern, dirOnly }: { pattern: string; dirOnly: boolean }) => ({ re: globToRegExp(pattern.replace(/^\.?\//, '')), dirOnly });
    this.#anywhere = parsed.filter((p) => !p.pattern.includes('/')).map(clean);
    this.#anchored = parsed.filter((p) => p.pattern.includes('/')).map(clean);
  }

  get empty(): boolean {
    return this.#anywhere.length === 0 && this.#anchored.length === 0;
  }

  /** `relative` is the path below the source path, '/'-separated, no leading slash; `isDir`: it is a folder (unknown: taken as one). */
  matches(relative: string, isDir = true): boolean {
    const name = relative.slice(relative.lastIndexOf('/') + 1);
    return this.#anywhere.some(({ re, dirOnly }) => (isDir || !dirOnly) && re.test(name)) || this.#anchored.some(({ re, dirOnly }) => (isDir || !dirOnly) && re.test(relative));
  }
}

/** A pattern that matches exactly this relative path and nothing else (glob characters escaped, anchored). */
export function literalPattern(relative: string): string {
  return `/${relative.replace(/[*?[]/g, (c) => `[${c}]`)}`;
}
