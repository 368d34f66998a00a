/**
 * A refused input said in a form's words. The main process names each reason by the path of the
 * value it is about (`sources.0.paths.1`, as zod reports it, so an imported JSON file can be
 * mended); a form shows most reasons at their fields and its banner says only the rest, with the
 * path in words ("source 1, path 2").
 */
import { counted, verb } from './plural';

export interface Issue {
  path: string;
  message: string;
}

/** How a form took a refusal: how many of its fields it marked, and the reasons no field shows. */
export interface Refusal {
  fields: number;
  rest: Issue[];
}

const INDEX = /^\d+$/;

/**
 * A refusal's reasons placed at a form's `fields`: an issue's path less `prefix` (e.g.
 * `sources.2.`) and less list positions (`paths.0` is the paths field's, `services.stop.1` the
 * services.stop field's). A field shows its first reason; what no field shows stays in `rest`.
 */
export function placeIssues(issues: readonly Issue[], fields: ReadonlySet<string>, prefix = ''): { marked: Record<string, string>; refusal: Refusal } {
  const marked: Record<string, string> = {};
  const rest: Issue[] = [];
  for (const issue of issues) {
    const field = issue.path.startsWith(prefix) ? issue.path.slice(prefix.length).replace(/(\.\d+)+$/, '') : null;
    if (field !== null && fields.has(field)) marked[field] ??= issue.message;
    else rest.push(issue);
  }
  return { marked, refusal: { fields: Object.keys(marked).length, rest } };
}

/** "sources.0.paths.1" → "source 1, path 2"; "identityFile" → "identity file"; "(input)" → "". */
export function issuePlace(path: string): string {
  if (path === '(input)') return '';
  const segments = path.split('.').filter((s) => s !== '');
  const words: string[] = [];
  segments.forEach((segment, i) => {
    if (INDEX.test(segment)) {
      if (i === 0) words.push(`entry ${Number(segment) + 1}`);
      return;
    }
    const word = segment.replace(/([a-z\d])([A-Z])/g, '$1 $2').toLowerCase();
    const next = segments[i + 1];
    words.push(next !== undefined && INDEX.test(next) ? `${singular(word)} ${Number(next) + 1}` : word);
  });
  return words.join(', ');
}

function singular(word: string): string {
  if (word.endsWith('ies')) return `${word.slice(0, -3)}y`;
  if (/(ss|x|ch|sh)es$/.test(word)) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

/** One reason as a banner says it: "source 2, name: Required", or the bare message where it has no place. */
export function reasonText(issue: Issue): string {
  const place = issuePlace(issue.path);
  return place ? `${place}: ${issue.message}` : issue.message;
}

/**
 * A refused save's banner: its message and the reasons the form shows nowhere else; where fields
 * were marked, it points at them rather than repeating them. The message stays: it may say more
 * than any field ("rvm-017: /home/me/.ssh/id.pub is a public key: name its private key (…)").
 */
export function refusalText(message: string, refusal: Refusal): string {
  const marked = refusal.fields === 0 ? '' : refusal.fields === 1 ? 'The marked field says why' : `The ${counted(refusal.fields, 'marked field')} ${verb(refusal.fields, 'says', 'say')} why`;
  const said = refusal.rest.length === 0 ? message : `${message} (${refusal.rest.map(reasonText).join('; ')})`;
  if (!marked) return said;
  return `${said}${/[.!?]$/.test(said) ? '' : '.'} ${refusal.rest.length === 0 ? marked : marked.replace(' why', ' the rest')}.`;
}
