/**
 * Where repository objects live. Object-store shaped on purpose (S3, SFTP and local disk must all
 * fit): whole objects are put atomically, read whole or by byte range, listed by prefix and deleted.
 * There is no rename and no append, so the format never relies on either.
 */
export interface ObjectInfo {
  name: string;
  size: number;
}

export interface Backend {
  /** A human-readable location, for messages. */
  readonly location: string;
  /**
   * Stores `data` (one buffer, or pieces to concatenate) under `name` atomically: readers see the
   * old object, no object, or all of `data`.
   */
  put(name: string, data: Buffer | readonly Buffer[]): Promise<void>;
  /** Reads a whole object, or `length` bytes from `offset`. Throws a `not-found` RepositoryError when absent. */
  get(name: string, range?: { offset: number; length: number }): Promise<Buffer>;
  /** Size of an object, or null when absent. */
  stat(name: string): Promise<number | null>;
  /** Every object whose name starts with `prefix` (e.g. "data/", "snapshots/"). */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Removes an object; removing an absent object is not an error. */
  delete(name: string): Promise<void>;
  /** Whether the repository container (directory, bucket) exists. */
  exists(): Promise<boolean>;
  /** Optional: releases connections (SFTP, S3 sockets), so a finished command can exit. */
  close?(): void;
  /**
   * Optional: a staged object written piece by piece and made visible under its name only by
   * `commit` (atomic, like `put`), so a writer need not hold the whole object in memory. Backends
   * without it get `put` with the pieces held in memory.
   */
  stage?(): StagedObject;
  /** Optional: removes staged objects left by interrupted writers. Only safe while no writer runs (prune). */
  removeStaged?(): Promise<number>;
  /**
   * Optional: a create-only put of a small object. Resolves true when `data` is now stored under
   * `name`, false when an object of that name already existed (nothing was written). Only for
   * stores that enforce it atomically (a link/O_EXCL on disk, `If-None-Match: *` on S3); a backend
   * that cannot leaves it out, and callers fall back to write-then-list (see lock.ts).
   */
  putIfAbsent?(name: string, data: Buffer): Promise<boolean>;
  /**
   * Optional: how many packs the uploader writes at once (default 2). A remote store with per-request
   * latency gains from more in flight, at the cost of one pack held in memory per upload.
   */
  readonly uploadConcurrency?: number;
}

/** An object being written: pieces appended in order; nothing is visible until `commit`. */
export interface StagedObject {
  /** Queues a piece; the buffer must not change afterwards. */
  write(piece: Buffer): void;
  /** Bytes queued and not yet written. */
  readonly pending: number;
  /** Settles when every queued piece is written; rejects if a write failed. */
  drained(): Promise<void>;
  /** Makes the written bytes durable and visible as `name`. */
  commit(name: string): Promise<void>;
  /** Drops the staged bytes. */
  discard(): Promise<void>;
}

/** Object names used by the format. */
export const NAMES = {
  config: 'config',
  keys: 'keys/',
  data: 'data/',
  index: 'index/',
  snapshots: 'snapshots/',
  locks: 'locks/',
  pack: (id: string): string => `data/${id.slice(0, 2)}/${id}`,
  packId: (name: string): string => name.slice(name.lastIndexOf('/') + 1),
} as const;
