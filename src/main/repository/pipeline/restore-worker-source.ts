/**
 * Restore side of the workers (appended to the chunk worker's script): for a local repository,
 * a worker reads blobs straight from pack files, decrypts, decompresses and verifies them, writes
 * the file under a temp name, sets mode/owner/times and renames it into place — all with sync
 * calls on its own thread. Restores are bound by per-file syscalls; doing them here keeps them off
 * the main thread's I/O pool and lets both cores work. It mirrors openBlob() in ../pack/pack-format.ts
 * (the round-trip and damage tests exercise both).
 *
 * A second job, `blobs`, serves restores that stream elsewhere (a tar stream onto a device): it reads
 * a run of blobs (neighbours in one pack with one read), opens and verifies each as above, and
 * returns their plaintexts in order, transferred, so the main thread only frames and sends them.
 * A third, `hashes`, hashes a file's blobs in fixed blocks (see blockHashes below).
 */
export const RESTORE_WORKER_SOURCE = `
const enc = Buffer.from(workerData.enc);
const packKeys = new Map();
function packKey(salt) {
  let key = packKeys.get(salt);
  if (!key) {
    key = Buffer.from(crypto.hkdfSync('sha256', enc, Buffer.from(salt, 'hex'), Buffer.from('jetvault/v1/pack'), 32));
    packKeys.set(salt, key);
  }
  return key;
}
function openBlob(b, sealed, verify = true) {
  const what = 'data blob ' + b.id.slice(0, 12) + ' in pack ' + b.pack.slice(0, 12);
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(b.offset), 4);
  const id = Buffer.from(b.id, 'hex');
  const d = crypto.createDecipheriv('aes-256-gcm', packKey(b.salt), nonce);
  d.setAAD(Buffer.concat([Buffer.from([0]), id]));
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  let plain;
  try {
    plain = d.update(sealed.subarray(0, sealed.length - 16));
    const tail = d.final(); // empty for GCM: no copy of the whole blob to join it
    if (tail.length > 0) plain = Buffer.concat([plain, tail]);
  } catch {
    throw new Error(what + ': authentication failed (data damaged or tampered with)');
  }
  let data = plain.subarray(1);
  if (plain[0] === 1) data = zlib.brotliDecompressSync(data);
  else if (plain[0] !== 0) throw new Error(what + ': unknown codec ' + plain[0]);
  if (data.length !== b.rawLength || (verify && !crypto.createHmac('sha256', mac).update(data).digest().equals(id))) {
    throw new Error(what + ': content does not match its id');
  }
  return data;
}
function packPath(root, pack) {
  return root + '/data/' + pack.slice(0, 2) + '/' + pack;
}
/** Fills buf[0, length) from the pack file at \`position\`. */
function readFully(fd, buf, length, position, pack) {
  for (let done = 0; done < length; ) {
    const n = fs.readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error('pack ' + pack.slice(0, 12) + ' is shorter than its index says');
    done += n;
  }
}
/**
 * Blobs of this size or more that hold only zeros are not written: the file gets a hole there (a
 * sparse file — a preallocated image — comes back sparse, not as gigabytes of zeros on disk). A long
 * run of zeros is cut into maximum-size chunks, so it is such blobs. Mirrored in restorer.ts.
 */
const HOLE_MIN = 64 * 1024;
let zeros = Buffer.alloc(0);
function isHole(data) {
  if (data.length < HOLE_MIN) return false;
  if (zeros.length < data.length) zeros = Buffer.alloc(data.length);
  return data.equals(zeros.subarray(0, data.length));
}
function restoreFiles(msg) {
  let open = { path: '', fd: -1 };
  const read = (b) => {
    const path = packPath(msg.root, b.pack);
    if (open.path !== path) {
      if (open.fd >= 0) fs.closeSync(open.fd);
      open = { path, fd: fs.openSync(path, 'r') };
    }
    const buf = Buffer.allocUnsafe(b.length);
    readFully(open.fd, buf, b.length, b.offset, b.pack);
    return buf;
  };
  try {
    return { files: msg.files.map((f) => {
      const fd = fs.openSync(f.temp, 'wx', 0o600);
      try {
        let pos = 0;
        for (const b of f.blobs) {
          let data;
          try {
            data = openBlob(b, read(b));
          } catch (error) {
            // The repository's data is damaged or missing (not the target's fault): the restore goes on.
            throw Object.assign(error instanceof Error ? error : new Error(String(error)), { damaged: true });
          }
          if (!isHole(data)) fs.writeSync(fd, data, 0, data.length, pos);
          pos += data.length;
        }
        fs.ftruncateSync(fd, pos); // a hole at the end has no write to set the size
      } catch (error) {
        fs.closeSync(fd);
        fs.rmSync(f.temp, { force: true });
        return { error: String(error && error.message || error), damaged: !!(error && error.damaged) };
      }
      fs.closeSync(fd);
      if (f.chown) try { fs.chownSync(f.temp, f.uid, f.gid); } catch {}
      fs.chmodSync(f.temp, f.mode);
      fs.utimesSync(f.temp, f.mtime, f.mtime);
      fs.renameSync(f.temp, f.path);
      return { bytes: f.size };
    }) };
  } finally {
    if (open.fd >= 0) fs.closeSync(open.fd);
  }
}
/** Reads that may join blobs separated by at most this many bytes of other blobs. */
const JOIN_GAP = 256 * 1024;
function readBlobs(msg, transfer) {
  const out = [];
  let fd = -1, fdPack = '';
  try {
    for (let i = 0; i < msg.blobs.length; ) {
      const first = msg.blobs[i];
      // The run of following blobs of the same pack that lie close after one another: one read.
      let j = i + 1, end = first.offset + first.length;
      while (j < msg.blobs.length) {
        const b = msg.blobs[j];
        if (b.pack !== first.pack || b.offset < end || b.offset - end > JOIN_GAP) break;
        end = b.offset + b.length;
        j++;
      }
      if (fdPack !== first.pack) {
        if (fd >= 0) fs.closeSync(fd);
        fd = fs.openSync(packPath(msg.root, first.pack), 'r');
        fdPack = first.pack;
      }
      const span = Buffer.allocUnsafeSlow(end - first.offset);
      readFully(fd, span, span.length, first.offset, first.pack);
      for (; i < j; i++) {
        const b = msg.blobs[i];
        const data = openBlob(b, span.subarray(b.offset - first.offset, b.offset - first.offset + b.length));
        // Small results may sit in Node's shared buffer pool, which must not be transferred: copied.
        const own = data.byteLength < 16384 ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        transfer.push(own.buffer);
        out.push(own);
      }
    }
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  return { blobs: out };
}
/**
 * A third job, \`hashes\`: SHA-256 of a file's blobs in fixed blocks, for comparing with a device's
 * copy (block deltas). Each blob is authenticated by its GCM tag; its id is not recomputed — the
 * hashes are only compared, and a damaged blob would only make its blocks differ. One read buffer,
 * reused: this is a pass over a whole large file.
 */
function blockHashes(msg) {
  const out = [];
  let hash = crypto.createHash('sha256');
  let filled = 0;
  let fd = -1, fdPack = '';
  let buf = Buffer.alloc(0);
  try {
    for (const b of msg.blobs) {
      if (fdPack !== b.pack) {
        if (fd >= 0) fs.closeSync(fd);
        fd = fs.openSync(packPath(msg.root, b.pack), 'r');
        fdPack = b.pack;
      }
      if (buf.length < b.length) buf = Buffer.allocUnsafeSlow(Math.max(b.length, 2 * buf.length));
      readFully(fd, buf, b.length, b.offset, b.pack);
      const data = openBlob(b, buf.subarray(0, b.length), false);
      for (let at = 0; at < data.length; ) {
        const take = Math.min(data.length - at, msg.blockSize - filled);
        hash.update(data.subarray(at, at + take));
        at += take;
        filled += take;
        if (filled === msg.blockSize) {
          out.push(hash.digest('hex'));
          hash = crypto.createHash('sha256');
          filled = 0;
        }
      }
    }
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  if (filled > 0) out.push(hash.digest('hex'));
  return { hashes: out };
}
`;

