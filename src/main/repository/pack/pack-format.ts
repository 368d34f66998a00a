/**
 * Pack files: immutable containers of encrypted blobs.
 *
 *   "JVP2" | salt[32] | blob_0 | ... | blob_n-1 | header | header_length u32 LE
 *
 * pack key = HKDF-SHA-256(enc, salt, "jetvault/v1/pack"); blob = AES-256-GCM(pack key,
 * nonce = 0x00 0x00 0x00 0x00 | blob offset as u64 BE, plaintext = codec u8 | payload, aad = type u8 | id[32]) | tag.
 * header = AES-256-GCM(pack key, nonce = 0xff * 12, entries, aad = magic) | tag, where entries are
 * count u32 LE then per blob: type u8 | id[32] | offset u32 LE | length u32 LE | raw length u32 LE.
 * A fresh key per pack and distinct offsets make nonces unique; the AAD binds each blob to its id and type.
 *
 * Name: SHA-256 of magic | salt | every blob's tag in order | header | header_length. Each tag
 * authenticates its blob's bytes, so the name still stands for every byte, while the writer hashes
 * 16 bytes per blob instead of all of them (decision 020). "JVP1" packs, written before, are named
 * by the SHA-256 of all their bytes and are otherwise identical; both are read.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { RepositoryError } from '../errors';
import { blobId, hkdf, open, randomSalt, seal, SALT_BYTES, TAG_BYTES } from '../crypto/aead';
import { decompress } from '../compress/codec';

/** What packs are written as. */
export const PACK_MAGIC = Buffer.from('JVP2');
/** Packs named by the SHA-256 of all their bytes (written before decision 020). */
export const PACK_MAGIC_V1 = Buffer.from('JVP1');
export const PACK_PREFIX = PACK_MAGIC.length + SALT_BYTES;
const ENTRY_BYTES = 1 + 32 + 12;
const HEADER_NONCE = Buffer.alloc(12, 0xff);

export type BlobType = 'data' | 'tree';
const TYPE_CODE: Record<BlobType, number> = { data: 0, tree: 1 };
const CODE_TYPE: BlobType[] = ['data', 'tree'];

export interface PackEntry {
  type: BlobType;
  id: string;
  offset: number;
  length: number;
  rawLength: number;
}

function blobNonce(offset: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(offset), 4);
  return nonce;
}

function blobAad(type: BlobType, id: Buffer): Buffer {
  return Buffer.concat([Buffer.from([TYPE_CODE[type]]), id]);
}

const keyCache = new Map<string, Buffer>();

/** HKDF per pack, cached: reading a tree walks many blobs of few packs. */
function packKey(enc: Buffer, salt: Buffer): Buffer {
  const cacheKey = `${enc.toString('hex')}:${salt.toString('hex')}`;
  const cached = keyCache.get(cacheKey);
  if (cached) return cached;
  const key = hkdf(enc, salt, 'jetvault/v1/pack');
  if (keyCache.size >= 1024) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(cacheKey, key);
  return key;
}

/** Builds one pack in memory (bounded by the pack size target) so it can be put atomically. */
export class PackBuilder {
  readonly salt = randomSalt();
  private readonly key: Buffer;
  private readonly hash = createHash('sha256');
  readonly entries: PackEntry[] = [];
  size = 0;

  /** `sink` receives the pack's bytes as they are produced (a staged file, or memory). */
  constructor(
    enc: Buffer,
    readonly sink: PackSink = new MemorySink(),
  ) {
    this.key = packKey(enc, this.salt);
    this.push(PACK_MAGIC, this.salt);
  }

  /** Appends bytes that the pack's name covers directly. */
  private push(...parts: Buffer[]): void {
    for (const part of parts) {
      this.sink.write(part);
      this.hash.update(part);
      this.size += part.length;
    }
  }

  /** Appends ciphertext whose tag (pushed right after) stands for it in the name. */
  private pushCovered(part: Buffer): void {
    this.sink.write(part);
    this.size += part.length;
  }

  /** Adds a blob whose payload is already compressed under `codec`. */
  add(type: BlobType, id: Buffer, codec: number, payload: Buffer, rawLength: number): void {
    const offset = this.size;
    const cipher = createCipheriv('aes-256-gcm', this.key, blobNonce(offset));
    cipher.setAAD(blobAad(type, id));
    this.pushCovered(cipher.update(Buffer.from([codec])));
    this.pushCovered(cipher.update(payload));
    cipher.final();
    this.push(cipher.getAuthTag());
    this.entries.push({ type, id: id.toString('hex'), offset, length: this.size - offset, rawLength });
  }

  /** Writes the header; returns the pack's id (its name, hex) and size. */
  finish(): { id: string; size: number } {
    const table = Buffer.alloc(4 + this.entries.length * ENTRY_BYTES);
    table.writeUInt32LE(this.entries.length, 0);
    this.entries.forEach((e, i) => {
      const at = 4 + i * ENTRY_BYTES;
      table[at] = TYPE_CODE[e.type];
      Buffer.from(e.id, 'hex').copy(table, at + 1);
      table.writeUInt32LE(e.offset, at + 33);
      table.writeUInt32LE(e.length, at + 37);
      table.writeUInt32LE(e.rawLength, at + 41);
    });
    const header = seal(this.key, HEADER_NONCE, table, PACK_MAGIC);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(header.length, 0);
    this.push(header, length);
    return { id: this.hash.digest('hex'), size: this.size };
  }
}

/** Where a pack's bytes go while it is built. */
export interface PackSink {
  write(piece: Buffer): void;
  readonly pending: number;
  drained(): Promise<void>;
}

/** Keeps the pieces in memory (backends that cannot stage, tests). */
export class MemorySink implements PackSink {
  readonly parts: Buffer[] = [];
  readonly pending = 0;
  write(piece: Buffer): void {
    this.parts.push(piece);
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
}

/** The salt at the start of a pack and the encrypted header at its end, enough to list its blobs. */
export function parsePackHeader(enc: Buffer, prefix: Buffer, tail: Buffer, packSize: number, packId: string): { salt: Buffer; entries: PackEntry[] } {
  const magic = prefix.subarray(0, 4);
  if (prefix.length < PACK_PREFIX || !(magic.equals(PACK_MAGIC) || magic.equals(PACK_MAGIC_V1))) throw new RepositoryError('corrupt', `pack ${packId}: bad magic`);
  const key = packKey(enc, prefix.subarray(4, PACK_PREFIX));
  const table = open(key, HEADER_NONCE, tail, magic, `pack ${packId} header`);
  const count = table.readUInt32LE(0);
  if (table.length !== 4 + count * ENTRY_BYTES) throw new RepositoryError('corrupt', `pack ${packId}: header length mismatch`);
  const entries: PackEntry[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * ENTRY_BYTES;
    const type = CODE_TYPE[table[at]!];
    if (!type) throw new RepositoryError('corrupt', `pack ${packId}: unknown blob type`);
    const entry = {
      type,
      id: table.subarray(at + 1, at + 33).toString('hex'),
      offset: table.readUInt32LE(at + 33),
      length: table.readUInt32LE(at + 37),
      rawLength: table.readUInt32LE(at + 41),
    };
    if (entry.offset < PACK_PREFIX || entry.offset + entry.length > packSize - tail.length - 4) {
      throw new RepositoryError('corrupt', `pack ${packId}: blob outside the pack`);
    }
    entries.push(entry);
  }
  return { salt: Buffer.from(prefix.subarray(4, PACK_PREFIX)), entries };
}

/**
 * Checks a whole pack as read back — its header opens and its bytes call for its name — and
 * returns what is wrong, or null (its blobs are opened one by one by the caller).
 */
export function packProblem(enc: Buffer, bytes: Buffer, packId: string): string | null {
  let entries: PackEntry[];
  let headerStart: number;
  try {
    if (bytes.length < PACK_PREFIX + 4) throw new RepositoryError('corrupt', 'truncated');
    const length = headerLength(bytes.subarray(bytes.length - 4));
    headerStart = bytes.length - 4 - length;
    if (headerStart < PACK_PREFIX) throw new RepositoryError('corrupt', 'bad header length');
    entries = parsePackHeader(enc, bytes.subarray(0, PACK_PREFIX), bytes.subarray(headerStart, bytes.length - 4), bytes.length, packId).entries;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  const hash = createHash('sha256');
  if (bytes.subarray(0, 4).equals(PACK_MAGIC_V1)) hash.update(bytes);
  else {
    // The blobs must fill the pack from the prefix to the header, so the tags cover every byte.
    hash.update(bytes.subarray(0, PACK_PREFIX));
    let at = PACK_PREFIX;
    for (const entry of [...entries].sort((a, b) => a.offset - b.offset)) {
      if (entry.offset !== at || entry.length < TAG_BYTES) return 'blobs do not fill the pack';
      at += entry.length;
      hash.update(bytes.subarray(at - TAG_BYTES, at));
    }
    if (at !== headerStart) return 'blobs do not fill the pack';
    hash.update(bytes.subarray(headerStart));
  }
  return hash.digest('hex') === packId ? null : 'content does not match its name';
}

/** Length of the encrypted header, read from the last 4 bytes of a pack. */
export function headerLength(last4: Buffer): number {
  return last4.readUInt32LE(0);
}

/**
 * Decrypts one blob (its sealed bytes at `entry.offset`), checks its id, returns the plaintext.
 * `salt` is the pack's salt (kept in the index so a blob is one ranged read).
 */
export function openBlob(enc: Buffer, mac: Buffer, salt: Buffer, entry: PackEntry, sealed: Buffer, packId: string): Buffer {
  const id = Buffer.from(entry.id, 'hex');
  const what = `${entry.type} blob ${entry.id.slice(0, 12)} in pack ${packId.slice(0, 12)}`;
  const plaintext = open(packKey(enc, salt), blobNonce(entry.offset), sealed, blobAad(entry.type, id), what);
  const data = decompress(plaintext[0] ?? -1, plaintext.subarray(1), what);
  if (data.length !== entry.rawLength || !blobId(mac, data).equals(id)) throw new RepositoryError('corrupt', `${what}: content does not match its id`);
  return data;
}

/**
 * Decrypts one blob without decompressing it: its codec and payload as stored, for copying the
 * blob into another repository under the same id (the GCM tag, bound to id and type, authenticates
 * it; the id is recomputed when the copy is verified).
 */
export function openStoredBlob(enc: Buffer, salt: Buffer, entry: PackEntry, sealed: Buffer, packId: string): { codec: number; payload: Buffer } {
  const what = `${entry.type} blob ${entry.id.slice(0, 12)} in pack ${packId.slice(0, 12)}`;
  const plaintext = open(packKey(enc, salt), blobNonce(entry.offset), sealed, blobAad(entry.type, Buffer.from(entry.id, 'hex')), what);
  if (plaintext.length === 0) throw new RepositoryError('corrupt', `${what}: empty`);
  return { codec: plaintext[0]!, payload: plaintext.subarray(1) };
}

export const PACK_TAG_BYTES = TAG_BYTES;
