/**
 * Key slots: each technician's password wraps the same master secret. A slot is a cleartext JSON
 * object under keys/<slot id>:
 *   { version: 1, kdf: "scrypt", N, r, p, salt, wrapped, label, host, created }
 * wrapping key = scrypt(password, salt, 32, {N, r, p}); wrapped = nonce[12] | AES-256-GCM(master) | tag,
 * with AAD "jetvault/v1/key/" + slot id so a slot cannot be renamed into another.
 */
import { randomBytes, scrypt as scryptCb } from 'node:crypto';
import { hostname } from 'node:os';
import { RepositoryError } from '../errors';
import { NAMES } from '../backend/backend';
import type { Backend } from '../backend/backend';
import { open, seal, NONCE_BYTES } from './aead';

export interface KdfParams {
  N: number;
  r: number;
  p: number;
}

/** 32 MiB and ~0.1 s per attempt here: slow for guessing, quick enough to try every slot. */
export const DEFAULT_KDF: KdfParams = { N: 1 << 15, r: 8, p: 1 };

export interface KeySlotFile extends KdfParams {
  version: 1;
  kdf: 'scrypt';
  salt: string;
  wrapped: string;
  label: string;
  host: string;
  created: string;
}

export interface KeySlotInfo {
  id: string;
  label: string;
  host: string;
  created: string;
  current: boolean;
}

function scrypt(password: string, salt: Buffer, kdf: KdfParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFC'), salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + (1 << 20) }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

const aad = (id: string): Buffer => Buffer.from(`jetvault/v1/key/${id}`);

export async function addKeySlot(backend: Backend, master: Buffer, password: string, label: string, kdf = DEFAULT_KDF): Promise<string> {
  if (password.length === 0) throw new RepositoryError('invalid', 'an empty password is not allowed');
  const id = randomBytes(16).toString('hex');
  const salt = randomBytes(32);
  const nonce = randomBytes(NONCE_BYTES);
  const wrapKey = await scrypt(password, salt, kdf);
  const slot: KeySlotFile = {
    version: 1,
    kdf: 'scrypt',
    ...kdf,
    salt: salt.toString('base64'),
    wrapped: Buffer.concat([nonce, seal(wrapKey, nonce, master, aad(id))]).toString('base64'),
    label,
    host: hostname(),
    created: new Date().toISOString(),
  };
  await backend.put(`${NAMES.keys}${id}`, Buffer.from(JSON.stringify(slot, null, 1)));
  return id;
}

/**
 * A key slot of a format this version does not read (a later version, another key derivation):
 * written by a newer Jetvault, not damaged — its password is right or wrong only to that version.
 */
export class NewerKeySlotError extends RepositoryError {
  constructor(
    readonly slotId: string,
    readonly format: string,
  ) {
    super('corrupt', `key slot ${slotId} was written by a newer Jetvault (${format}), which this one cannot read`);
  }
}

async function readSlot(backend: Backend, id: string): Promise<KeySlotFile> {
  const text = (await backend.get(`${NAMES.keys}${id}`)).toString('utf8');
  let slot: Partial<KeySlotFile>;
  try {
    slot = JSON.parse(text) as Partial<KeySlotFile>;
  } catch {
    throw new RepositoryError('corrupt', `key slot ${id} is damaged (not a key slot file)`);
  }
  if (slot !== null && typeof slot === 'object' && ((slot.version as unknown) !== 1 || (slot.kdf as unknown) !== 'scrypt') && (typeof slot.version === 'number' || typeof slot.kdf === 'string')) {
    const version = slot.version as unknown;
    const format = [typeof version === 'number' ? `key slot version ${version}` : '', typeof slot.kdf === 'string' ? JSON.stringify(slot.kdf) : ''].filter(Boolean).join(', ');
    throw new NewerKeySlotError(id, format);
  }
  if (slot === null || typeof slot !== 'object' || typeof slot.salt !== 'string' || typeof slot.wrapped !== 'string' || ![slot.N, slot.r, slot.p].every((n) => Number.isInteger(n))) {
    throw new RepositoryError('corrupt', `key slot ${id} is damaged (fields missing)`);
  }
  return slot as KeySlotFile;
}

async function tryUnwrap(slot: KeySlotFile, id: string, password: string): Promise<Buffer | null> {
  const wrapKey = await scrypt(password, Buffer.from(slot.salt, 'base64'), slot);
  const wrapped = Buffer.from(slot.wrapped, 'base64');
  try {
    return open(wrapKey, wrapped.subarray(0, NONCE_BYTES), wrapped.subarray(NONCE_BYTES), aad(id), 'key slot');
  } catch {
    return null;
  }
}

export async function listSlotIds(backend: Backend): Promise<string[]> {
  return (await backend.list(NAMES.keys)).map((o) => o.name.slice(NAMES.keys.length));
}

/** Finds the slot this password opens; throws `wrong-password` when none does. */
export async function unlockMaster(backend: Backend, password: string, opens: (master: Buffer) => boolean = () => true): Promise<{ master: Buffer; slotId: string }> {
  const ids = await listSlotIds(backend);
  if (ids.length === 0) throw new RepositoryError('corrupt', `repository at ${backend.location} has no key slots`);
  // A damaged slot (bit rot, a stray file under keys/) locks out only its own password, not every one.
  const damaged: string[] = [];
  const newer: NewerKeySlotError[] = [];
  let opened: string | null = null;
  for (const id of ids) {
    let slot: KeySlotFile;
    try {
      slot = await readSlot(backend, id);
    } catch (error) {
      if (error instanceof NewerKeySlotError) {
        newer.push(error);
        continue;
      }
      if (!(error instanceof RepositoryError) || error.failure !== 'corrupt') throw error;
      damaged.push(id);
      continue;
    }
    const master = await tryUnwrap(slot, id, password).catch(() => null);
    // A slot left by an init that was cut off before its config wraps another master key: the
    // same password typed for the init run again must still reach the slot of this repository.
    if (master && opens(master)) return { master, slotId: id };
    if (master) opened = id;
  }
  if (opened !== null) {
    throw new RepositoryError('corrupt', `key slot ${opened.slice(0, 8)} opens with this password, but the repository's config does not decrypt with its key: the config is damaged, or the slot was left by an init of another repository`);
  }
  const formats = [...new Set(newer.map((e) => e.format))].join('; ');
  if (newer.length > 0 && newer.length + damaged.length === ids.length) {
    throw new RepositoryError(
      'corrupt',
      `every key slot of the repository at ${backend.location} was written by a newer Jetvault (${formats}), which this one cannot read: open it with that version of Jetvault or a later one${damaged.length > 0 ? ` (key slot(s) ${damaged.map((id) => id.slice(0, 8)).join(', ')} are damaged)` : ''}`,
    );
  }
  const skipped = [
    ...(damaged.length > 0 ? [`key slot(s) ${damaged.map((id) => id.slice(0, 8)).join(', ')} are damaged and were skipped`] : []),
    ...(newer.length > 0 ? [`key slot(s) ${newer.map((e) => e.slotId.slice(0, 8)).join(', ')} were written by a newer Jetvault (${formats}) and were skipped: a password of theirs opens the repository only in that version or a later one`] : []),
  ];
  if (damaged.length > 0 && damaged.length === ids.length) {
    throw new RepositoryError('corrupt', `repository at ${backend.location}: every key slot is damaged (${damaged.map((id) => id.slice(0, 8)).join(', ')}); no password can open it`);
  }
  throw new RepositoryError('wrong-password', `wrong password: no key slot of this repository opens with it${skipped.length > 0 ? ` (${skipped.join('; ')})` : ''}`);
}

/** The first key slot `password` opens (damaged slots skipped), or null: one password per slot. */
export async function slotOpenedBy(backend: Backend, password: string): Promise<string | null> {
  for (const id of await listSlotIds(backend)) {
    const slot = await readSlot(backend, id).catch(() => null);
    if (slot && (await tryUnwrap(slot, id, password).catch(() => null))) return id;
  }
  return null;
}

export async function listKeySlots(backend: Backend, currentId: string): Promise<KeySlotInfo[]> {
  const out: KeySlotInfo[] = [];
  for (const id of await listSlotIds(backend)) {
    // A damaged slot is listed (so `key remove` can take it away), not fatal to the listing.
    const slot = await readSlot(backend, id).catch((error: unknown) => {
      if (error instanceof NewerKeySlotError) return { newer: error.format };
      if (error instanceof RepositoryError && error.failure === 'corrupt') return null;
      throw error;
    });
    if (slot === null || 'newer' in slot) out.push({ id, label: slot === null ? '(damaged)' : `(newer format: ${slot.newer})`, host: '', created: '', current: id === currentId });
    else out.push({ id, label: String(slot.label), host: String(slot.host), created: String(slot.created), current: id === currentId });
  }
  return out.sort((a, b) => a.created.localeCompare(b.created));
}

/** Removes a slot; refuses to remove the one in use or the last one (that would lock everyone out). */
export async function removeKeySlot(backend: Backend, id: string, currentId: string): Promise<void> {
  const ids = await listSlotIds(backend);
  if (!ids.includes(id)) throw new RepositoryError('not-found', `no key slot ${id}`);
  if (id === currentId) throw new RepositoryError('exists', 'refusing to remove the key slot in use; use `key passwd` to change its password');
  await backend.delete(`${NAMES.keys}${id}`);
}

/** Changes a password: the new slot is written before the old one is removed, so a crash never locks out. */
export async function changePassword(backend: Backend, master: Buffer, currentId: string, password: string, kdf = DEFAULT_KDF): Promise<string> {
  const old = await readSlot(backend, currentId);
  const id = await addKeySlot(backend, master, password, old.label, kdf);
  await backend.delete(`${NAMES.keys}${currentId}`);
  return id;
}
