/**
 * Every value the console's API takes is bounded: a string has a maximum length (a pattern alone can
 * repeat without end), an array a maximum number of items. A page that sends a 100 MB string or a
 * million names (the Electron IPC has no size limit of its own) is refused by the contract before any
 * handler runs, not left to parse, store and print it.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { channels } from './contract';
import { DeviceProfileSchema } from './schemas/devices';

interface JsonSchema {
  type?: string;
  maxLength?: number;
  pattern?: string;
  maxItems?: number;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  additionalProperties?: JsonSchema | boolean;
}

/** An anchored pattern without `*`, `+` or `{n,}` matches strings of a bounded length only. */
function boundedPattern(pattern: string | undefined): boolean {
  if (pattern === undefined || !pattern.startsWith('^') || !pattern.endsWith('$')) return false;
  const bare = pattern.replace(/\\./g, '').replace(/\[[^\]]*\]/g, 'x');
  return !/[*+]|\{\d+,\}/.test(bare);
}

function unbounded(schema: z.ZodType): string[] {
  const found: string[] = [];
  const walk = (s: JsonSchema | undefined, at: string): void => {
    if (!s || typeof s !== 'object') return;
    if (s.type === 'string' && s.maxLength === undefined && s.enum === undefined && s.const === undefined && !boundedPattern(s.pattern)) found.push(`${at || '(input)'}: a string without a maximum length`);
    if (s.type === 'array' && s.maxItems === undefined) found.push(`${at || '(input)'}: an array without a maximum number of items`);
    for (const [key, value] of Object.entries(s.properties ?? {})) walk(value, at ? `${at}.${key}` : key);
    walk(s.items, `${at}[]`);
    for (const alternative of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) walk(alternative, at);
    if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${at}{}`);
  };
  walk(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema, '');
  return found;
}

describe('the API contract', () => {
  it('bounds every string and array a channel takes', () => {
    const found = Object.entries(channels).flatMap(([name, spec]) => unbounded(spec.input as z.ZodType).map((issue) => `${name} ${issue}`));
    expect(found).toEqual([]);
  });

  it('bounds every string and array of a device profile (devices:add, update and import take it as they come)', () => {
    expect(unbounded(DeviceProfileSchema)).toEqual([]);
  });
});
