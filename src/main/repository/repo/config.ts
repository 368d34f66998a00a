/** The repository's config object: format version, id and the parameters every writer must share. */
import type { ChunkerParams } from '../chunker/chunker';

export interface RepositoryConfig {
  version: 1;
  id: string;
  created: string;
  chunker: ChunkerParams;
  /** Target pack size in bytes; packs close at the first blob that reaches it. */
  packSize: number;
}

export const DEFAULT_PACK_SIZE = 16 * 1024 * 1024;
