/**
 * A small leveled logger. Secrets never reach it: callers log ids and names, never passwords or
 * keys, and `redact()` masks the usual suspects in structured details as a second line of defence.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };
const SECRET_KEY = /pass(word|phrase)?|secret|token|private.?key|credential/i;

export interface Logger {
  error(message: string, detail?: unknown): void;
  warn(message: string, detail?: unknown): void;
  info(message: string, detail?: unknown): void;
  debug(message: string, detail?: unknown): void;
}

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) out[key] = SECRET_KEY.test(key) ? '[redacted]' : redact(inner, depth + 1);
  return out;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Logger {
  const emit = (at: LogLevel, message: string, detail?: unknown): void => {
    if (ORDER[at] > ORDER[level]) return;
    const suffix = detail === undefined ? '' : ` ${JSON.stringify(redact(detail))}`;
    write(`${new Date().toISOString()} ${at.padEnd(5)} ${message}${suffix}`);
  };
  return {
    error: (m, d) => emit('error', m, d),
    warn: (m, d) => emit('warn', m, d),
    info: (m, d) => emit('info', m, d),
    debug: (m, d) => emit('debug', m, d),
  };
}

export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
