/**
 * The chunk worker's code, as a self-contained CommonJS script run with `new Worker(src, {eval: true})`.
 * Kept as text so it runs the same under tsx, vitest and a bundled Electron main without a separate
 * build entry. It mirrors compress() in ../compress/codec.ts (a test checks they agree): HMAC id,
 * then Brotli q1 unless a 64 KiB probe shows the data does not compress.
 */
import { SAMPLE, WORTH } from '../compress/codec';

export const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const mac = Buffer.from(workerData.mac);
const SAMPLE = ${SAMPLE}, WORTH = ${WORTH};
function brotli(data) {
  return zlib.brotliCompressSync(data, { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
}
function compress(data) {
  if (data.length < 64) return null;
  if (data.length > SAMPLE * 2 && brotli(data.subarray(0, SAMPLE)).length > SAMPLE * WORTH) return null;
  const packed = brotli(data);
  return packed.length > data.length * WORTH ? null : packed;
}
parentPort.on('message', (msg) => {
  const data = Buffer.from(msg.chunk.buffer, msg.chunk.byteOffset, msg.chunk.byteLength);
  const id = crypto.createHmac('sha256', mac).update(data).digest();
  const packed = compress(data);
  if (packed) parentPort.postMessage({ seq: msg.seq, id, codec: 1, payload: packed });
  else parentPort.postMessage({ seq: msg.seq, id, codec: 0, payload: msg.chunk }, [msg.chunk.buffer]);
});
`;
