/**
 * What a backup reads: a stream of entries, so the same archiver serves a local directory walk now
 * and a device's tar/dump stream later. Rules for a source:
 * - paths are '/'-separated, relative (no leading '/'), and every directory comes before its contents;
 * - a name that is not valid UTF-8 is given with its other bytes as lone surrogates (snapshot/names.ts);
 * - once the stream leaves a directory's subtree it does not come back to it (depth-first order);
 * - `open` of a file yields its bytes; an entry that fails to open or read is counted, not fatal.
 */
import type { NodeMeta } from '../snapshot/tree';

export interface SourceEntry {
  path: string;
  meta: NodeMeta;
  open?: () => AsyncIterable<Buffer>;
  /**
   * The file's chunk ids when they are in the repository already (an interrupted run stored them):
   * nothing is read. Only for regular files whose metadata matches what was stored.
   */
  content?: string[];
  /**
   * A file put together from runs of chunks the repository holds and streams still to be cut, in
   * order (a large file of which a few blocks changed: devices/sources/block-delta.ts). A stream
   * starts where cutting the whole file would start a chunk and ends where it would end one, or at
   * the file's end — so the file is stored exactly as if it had been read whole.
   */
  segments?: Segment[];
  /**
   * A local file's path, when it has one: worker threads then read it directly (the fast path).
   * Bytes when the path is not valid UTF-8.
   */
  localPath?: string | Buffer;
}

export type Segment = { content: string[]; size: number } | { open: () => AsyncIterable<Buffer> };

export interface SourceWarning {
  path: string;
  message: string;
}

export interface Source {
  /** Paths as the user gave them, recorded in the snapshot. */
  paths: string[];
  kind: string;
  entries(signal?: AbortSignal): AsyncIterable<SourceEntry>;
  /** Problems met while listing (unreadable directories...). */
  warnings: SourceWarning[];
}
