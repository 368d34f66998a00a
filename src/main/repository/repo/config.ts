/** The repository's config object: format version, id and the parameters every writer must share. */
import type { ChunkerParams } from '../chunker/chunker';

export interface RepositoryConfig {
  version: 1;
  id: string;
  created: string;
  chunker: ChunkerParams;
  /** Target pack size in bytes; packs close at the first blob that reaches it. */
  packSize: number;
  /**
   * Id and chunker keys shared with another repository (hex), replacing the ones derived from this
   * repository's master secret: written by `init --copy-chunker-params-from`, so both cut the same
   * data into the same chunks with the same ids and `copy` uploads only what is missing.
   */
  idKeys?: { mac: string; chunker: string };
}

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
