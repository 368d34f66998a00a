/** Stable error codes that cross the IPC boundary. The renderer branches on these, never on messages. */
export const ERROR_CODES = [
  'VALIDATION', // input did not match the channel's schema
  'UNKNOWN_CHANNEL',
  'FORBIDDEN', // the sender is not one of our own windows / not authenticated
  'NOT_FOUND',
  'CONFLICT',
  'CANCELLED',
  'UNAVAILABLE', // a device, repository or service could not be reached
  'TIMEOUT', // it answered too slowly, or the link went dead
  'AUTH_FAILED', // the device refused our key / password
  'HOST_KEY_UNKNOWN', // first contact: the fingerprint must be confirmed before anything is sent
  'HOST_KEY_MISMATCH', // the device presents a different key than the pinned one
  'REMOTE_COMMAND_FAILED', // a command on the device exited non-zero
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface IpcErrorShape {
  code: ErrorCode;
  message: string;
  /** Field-level problems for VALIDATION errors, e.g. `[{path: "theme", message: "Invalid option"}]`. */
  issues?: { path: string; message: string }[];
}

export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: IpcErrorShape };

/** An error with a stable code. Services throw it; `handle()` turns it into `{ok:false}`; the preload rebuilds it. */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly code: ErrorCode;
  readonly issues: IpcErrorShape['issues'];

  constructor(code: ErrorCode, message: string, issues?: IpcErrorShape['issues']) {
    super(message);
    this.code = code;
    this.issues = issues;
  }

  toShape(): IpcErrorShape {
    return this.issues ? { code: this.code, message: this.message, issues: this.issues } : { code: this.code, message: this.message };
  }

  static fromShape(shape: IpcErrorShape): AppError {
    return new AppError(shape.code, shape.message, shape.issues);
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Whatever an api call rejected with (AppError, its plain copy from the preload, an Error) as an AppError. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (typeof error === 'object' && error !== null) {
    const { code, message, issues } = error as Partial<IpcErrorShape>;
    if (isErrorCode(code) && typeof message === 'string') return new AppError(code, message, Array.isArray(issues) ? issues : undefined);
    if (typeof message === 'string') return new AppError('INTERNAL', message);
  }
  return new AppError('INTERNAL', String(error));
}
