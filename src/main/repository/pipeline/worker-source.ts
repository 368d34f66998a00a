/**
 * The chunk worker's code, as a self-contained CommonJS script run with `new Worker(src, {eval: true})`.
 * Kept as text so it runs the same under tsx, vitest and a bundled Electron main without a separate
 * build entry; the chunker's cut function is embedded from its own source text, so there is one
 * implementation. Jobs:
 * - file: read 16 MiB of a local file from an offset (sync reads are fine off the main thread), cut
 *   it at every boundary it holds, hash and compress the chunks; the caller continues at `next`;
 * - small: read, hash and compress a batch of small local files;
 * - piece: cut, hash and compress a piece of a stream (a file arriving over SSH, a dump) that the
 *   main thread collected in shared memory; the uncut tail goes back with the cut, and each payload
 *   is left in the piece itself (compressed in place, or the chunk as it is), so nothing is copied
 *   or transferred back;
 * - bytes: hash and compress a batch of small streamed files given back to back in shared memory,
 *   payloads in place likewise;
 * - restore: write files of a local repository (see restore-worker-source.ts).
 * Compression mirrors compress() in ../compress/codec.ts (a test checks they agree).
 */
import { findBoundary, gearScanner } from '../chunker/chunker';
import { GEAR_WASM } from '../chunker/gear-wasm';
import { qualityFor, SAMPLE, WORTH } from '../compress/codec';
import { copyInto } from './copy-into';
import { RESTORE_WORKER_SOURCE } from './restore-worker-source';

/** Bytes a file job reads (at least two max chunks): small enough to keep memory flat. */
export const FILE_JOB_BYTES = 16 * 1024 * 1024;

export const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const fs = require('node:fs');
const mac = Buffer.from(workerData.mac);
const gear = new Int32Array(workerData.gear);
const { min, avg, max } = workerData.chunker;
const SAMPLE = ${SAMPLE}, WORTH = ${WORTH}, JOB = ${FILE_JOB_BYTES};
const findBoundary = (${findBoundary.toString()});
const copyInto = (${copyInto.toString()});
/** Cuts in WebAssembly: the bytes of a piece are loaded once, then scanned in place. */
const scanner = (${gearScanner.toString()})('${GEAR_WASM}', gear);
const qualityFor = (${qualityFor.toString()});
let scratch = null;
/** Ids already in the repository when the pool started or was taken up again (runs of sorted 32-byte ids, shared memory). */
let known = workerData.known.map((run) => Buffer.from(run));
function inRun(run, id) {
  let lo = 0, hi = run.length / 32 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = run.compare(id, 0, 32, mid * 32, mid * 32 + 32);
    if (c === 0) return true;
    if (c < 0) lo = mid + 1; else hi = mid - 1;
  }
  return false;
}
function isKnown(id) {
  for (const run of known) if (inRun(run, id)) return true;
  return false;
}
${RESTORE_WORKER_SOURCE}

function brotli(data, quality) {
  return zlib.brotliCompressSync(data, { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: quality, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
}
function compress(data) {
  if (data.length < 64) return null;
  const probe = data.length > SAMPLE * 2 ? brotli(data.subarray(0, SAMPLE), 1).length / SAMPLE : 0;
  if (probe > WORTH) return null;
  const packed = brotli(data, qualityFor(data.length, probe));
  return packed.length > data.length * WORTH ? null : packed;
}
/**
 * A chunk's id and codec, and its Brotli form when that is worth keeping (null: stored as it is).
 * A chunk the repository holds already is neither compressed nor copied (codec 255, the common
 * case for fleets and re-reads).
 */
function examine(data) {
  const id = crypto.createHmac('sha256', mac).update(data).digest();
  if (known.length > 0 && isKnown(id)) return { id, codec: 255, packed: null };
  const packed = compress(data);
  return { id, codec: packed ? 1 : 0, packed };
}
/** Hashes and compresses; the payload gets its own ArrayBuffer so it can be transferred. */
function processChunk(data, transfer) {
  const { id, codec, packed } = examine(data);
  if (codec === 255) return { id, codec, payload: new Uint8Array(0), rawLength: data.length };
  const src = packed || data;
  const payload = new Uint8Array(src.length);
  payload.set(src);
  transfer.push(payload.buffer);
  return { id, codec, payload, rawLength: data.length };
}
/**
 * Hashes and compresses data[at, at + cut) of a shared piece in place: afterwards the payload is
 * data[at, at + length). compress() keeps Brotli only when it is smaller than the chunk, so the
 * packed bytes fit where the chunk was; the main thread reads them once the job's result is posted.
 */
function processShared(data, at, cut) {
  const chunk = data.subarray(at, at + cut);
  const { id, codec, packed } = examine(chunk);
  if (packed) copyInto(chunk, packed, 0);
  return { id, codec, at, length: codec === 255 ? 0 : packed ? packed.length : cut, rawLength: cut };
}
function readInto(fd, buf, offset) {
  let len = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, len, buf.length - len, offset + len);
    if (n === 0) return { len, eof: true };
    len += n;
    if (len === buf.length) return { len, eof: false };
  }
}
function fileJob(msg, transfer) {
  // Read one piece and cut at every boundary it holds (to the end once eof). The uncut rest (one
  // chunk's worth at most, usually under an average chunk) holds no boundary: it is read again as
  // the start of the next piece, whose scan resumes after it.
  scratch = scratch || Buffer.allocUnsafe(Math.max(JOB, 2 * max));
  const fd = fs.openSync(msg.path, 'r');
  let len, eof;
  try {
    ({ len, eof } = readInto(fd, scratch, msg.offset));
  } finally {
    fs.closeSync(fd);
  }
  let { cuts, pos } = cutAll(scratch, len, eof, msg.resume || 0);
  // Tell the caller where the next piece starts before hashing this one, so another worker can
  // start on it: cutting is sequential per file, hashing and compressing are not.
  parentPort.postMessage({ seq: msg.seq, cut: { next: msg.offset + pos, eof: eof && pos >= len, scanned: len - pos } });
  const chunks = [];
  pos = 0;
  for (const cut of cuts) {
    chunks.push(processChunk(scratch.subarray(pos, pos + cut), transfer));
    pos += cut;
  }
  return { chunks, next: msg.offset + pos, eof: eof && pos >= len };
}
/**
 * Chunk lengths of data[0, len): every boundary the data holds (to the end once eof); pos = bytes
 * cut. A boundary depends only on the bytes before it, so cutting here is the same as cutting the
 * whole stream. The first \`resume\` bytes are known to hold no boundary (the previous piece's rest).
 */
function cutAll(data, len, eof, resume) {
  const cuts = [];
  let pos = 0;
  if (len > min) scanner.load(data, len);
  while (pos < len) {
    const cut = findBoundary(data, pos, len - pos, gear, min, avg, max, eof, cuts.length === 0 ? resume : 0, scanner.scan);
    if (cut < 0) break;
    cuts.push(cut);
    pos += cut;
  }
  return { cuts, pos };
}
function pieceJob(msg) {
  const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  const { cuts, pos } = cutAll(data, data.length, msg.final, msg.resume || 0);
  // The tail starts the next piece (the main thread is already collecting it).
  const tail = new Uint8Array(data.length - pos);
  copyInto(tail, data.subarray(pos), 0);
  parentPort.postMessage({ seq: msg.seq, cut: { next: pos, eof: msg.final, tail } }, [tail.buffer]);
  const chunks = [];
  let at = 0;
  for (const cut of cuts) {
    chunks.push(processShared(data, at, cut));
    at += cut;
  }
  return { chunks, next: pos, eof: msg.final };
}
function bytesJob(msg) {
  const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  const files = [];
  let start = 0;
  let loaded = false;
  for (const end of msg.ends) {
    const chunks = [];
    // Most files here are below the minimum chunk size (one chunk, nothing to scan); the batch is
    // loaded for scanning at the first one that is not.
    if (end - start > min && !loaded) {
      scanner.load(data, data.length);
      loaded = true;
    }
    for (let pos = start; pos < end; ) {
      const cut = findBoundary(data, pos, end - pos, gear, min, avg, max, true, 0, scanner.scan);
      chunks.push(processShared(data, pos, cut));
      pos += cut;
    }
    files.push({ chunks });
    start = end;
  }
  return { files };
}
function smallJob(msg, transfer) {
  return { files: msg.paths.map((path) => {
    try {
      const data = fs.readFileSync(path);
      const chunks = [];
      for (let pos = 0; pos < data.length; ) {
        const cut = findBoundary(data, pos, data.length - pos, gear, min, avg, max, true, 0);
        chunks.push(processChunk(data.subarray(pos, pos + cut), transfer));
        pos += cut;
      }
      return { chunks };
    } catch (error) {
      return { error: String(error && error.message || error) };
    }
  }) };
}
parentPort.on('message', (msg) => {
  if (msg.type === 'known') {
    // A pool kept between backups learns what the repository holds now (no reply: messages keep their order).
    known = msg.known.map((run) => Buffer.from(run));
    return;
  }
  const transfer = [];
  try {
    let result;
    if (msg.type === 'file') result = fileJob(msg, transfer);
    else if (msg.type === 'piece') result = pieceJob(msg);
    else if (msg.type === 'bytes') result = bytesJob(msg);
    else if (msg.type === 'restore') result = restoreFiles(msg);
    else if (msg.type === 'blobs') result = readBlobs(msg, transfer);
    else if (msg.type === 'hashes') result = blockHashes(msg);
    else result = smallJob(msg, transfer);
    parentPort.postMessage({ seq: msg.seq, result }, transfer);
  } catch (error) {
    parentPort.postMessage({ seq: msg.seq, error: String(error && error.message || error) });
  }
});
`;
