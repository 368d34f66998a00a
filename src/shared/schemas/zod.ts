/**
 * Zod as every schema of the console uses it, configured once (each schema module imports `z` from
 * here, so the configuration is in place wherever a schema is).
 * - No `new Function` probing: the renderer's CSP forbids eval, and a blocked probe is noise.
 * - A missing value reads "Required (text)", not "Invalid input: expected string, received undefined":
 *   an operator reads these under a form's field or after `device import`.
 */
import { z } from 'zod';

const EXPECTED: Record<string, string> = { string: 'text', number: 'a number', int: 'a whole number', boolean: 'true or false', array: 'a list', object: 'a group of settings' };

z.config({
  jitless: true,
  customError: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? `Required (${EXPECTED[issue.expected] ?? issue.expected})` : undefined),
});

export { z };
