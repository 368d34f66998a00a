/**
 * Include patterns for restore, matched against snapshot paths ("home/pi/model.bin", no leading '/').
 * `*` matches within one path segment, `**` across segments, `?` one character; a pattern that
 * matches a directory includes everything under it. A leading '/' is ignored.
 */
export type Match = 'yes' | 'no' | 'maybe';

function toRegExp(pattern: string): RegExp {
  let out = '';
  const p = pattern.replace(/^\/+/, '').replace(/\/+$/, '');
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

/** 'yes': restore this path; 'maybe': a directory that may contain matches; 'no': skip it all. */
export function compilePatterns(patterns: string[]): (path: string) => Match {
  if (patterns.length === 0) return () => 'yes';
  const compiled = patterns.map((p) => ({ re: toRegExp(p), segments: p.replace(/^\/+/, '').split('/') }));
  return (path) => {
    const parts = path.split('/');
    for (let i = parts.length; i > 0; i--) {
      const prefix = parts.slice(0, i).join('/');
      if (compiled.some((c) => c.re.test(prefix))) return 'yes';
    }
    // Could a deeper path still match? Compare the leading segments literally/glob-wise.
    for (const c of compiled) {
      if (c.segments.some((s) => s === '**')) return 'maybe';
      if (c.segments.length > parts.length && parts.every((seg, i) => toRegExp(c.segments[i]!).test(seg))) return 'maybe';
    }
    return 'no';
  };
}
