/**
 * S3-compatible object storage (AWS S3, MinIO, Ceph RGW) as a repository backend. Objects map 1:1
 * to keys under an optional prefix. S3 puts are atomic per object, so `put` is one PutObject, or a
 * multipart upload for large packs (completed only when every part is stored, aborted otherwise).
 * Transient failures (throttling, 5xx, resets) are retried by the SDK with backoff.
 *
 * Location: `s3:ENDPOINT/BUCKET[/PREFIX]`, with ENDPOINT `https://host[:port]`, `http://host:port`
 * (a local MinIO/RGW) or a bare host (https). Path-style addressing is used for endpoints given
 * with a scheme (MinIO, RGW), virtual-host style for AWS.
 *
 * The SDK is loaded on first use: importing it costs ~160 ms, which every local backup would pay.
 */
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { RepositoryError } from '../errors';
import type { Backend, ObjectInfo } from './backend';
import { locationCredentialsError } from '../../../shared/schemas/repositories';

export interface S3Location {
  endpoint: string | null;
  bucket: string;
  prefix: string;
  pathStyle: boolean;
}

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Parses `s3:ENDPOINT/BUCKET[/PREFIX]`; throws with the expected shape. */
export function parseS3Location(location: string): S3Location {
  const credentials = locationCredentialsError(location);
  if (credentials) throw new RepositoryError('missing', credentials);
  const match = /^s3:(?:(https?):\/\/)?([^/]+)\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(location);
  if (!match) throw new RepositoryError('invalid', `"${location}" is not an S3 location: expected s3:https://HOST[:PORT]/BUCKET[/PREFIX] or s3:s3.amazonaws.com/BUCKET[/PREFIX]`);
  const [, scheme, host, bucket, prefix] = match;
  const aws = !scheme && /(^|\.)amazonaws\.com$/.test(host!);
  return {
    endpoint: aws ? null : `${scheme ?? 'https'}://${host}`,
    bucket: bucket!,
    prefix: (prefix ?? '').replace(/^\/+|\/+$/g, '').replace(/(.)$/, '$1/'),
    pathStyle: !aws,
  };
}

/**
 * One PutObject up to 32 MiB: a full pack is 16 MiB plus the blob that crossed the line (chunks up to
 * 8 MiB), so most packs are 16–24 MiB; as a multipart upload each cost five requests with the parts
 * in sequence. Larger objects (packs of repositories made with a larger pack size) go multipart.
 */
const MULTIPART_OVER = 32 * 1024 * 1024;
const PART_SIZE = 16 * 1024 * 1024;

function status(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return status(error) === 404 || name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket';
}

/** Unreachable, reset, timed out, throttled or a 5xx: the SDK's own retries ran out, the retry wrapper may try again. */
function isTransient(error: unknown): boolean {
  const code = status(error);
  if (code !== undefined) return code >= 500 || code === 429;
  const e = error as { name?: string; code?: string };
  return ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'].includes(e.code ?? '') || ['TimeoutError', 'RequestTimeout'].includes(e.name ?? '');
}

/** The store refused the request: wrong keys, or a key without rights on this bucket. */
function isDenied(error: unknown): boolean {
  const code = status(error);
  return code === 401 || code === 403;
}

const DENIED_ADVICE = 'access denied — check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that this key may use the bucket';

function describe(error: unknown): string {
  // A refused HEAD has no body, so the SDK names it only "Unknown: UnknownError".
  if (isDenied(error) && ['Unknown', 'UnknownError', undefined].includes((error as { name?: string }).name)) return `${DENIED_ADVICE} (HTTP ${status(error)})`;
  const e = error as { name?: string; message?: string; code?: string };
  return `${e.name ?? 'Error'}${status(error) ? ` (HTTP ${status(error)})` : ''}: ${e.message ?? e.code ?? String(error)}`;
}

type Sdk = typeof S3Sdk;
let sdkLoading: Promise<Sdk> | null = null;
const loadSdk = (): Promise<Sdk> => {
  // The SDK's notice that its releases after January 2027 need Node 22 is for whoever upgrades it
  // (the lockfile pins this one; the app's Electron runs Node 24): on an operator's terminal it was
  // nine lines before every S3 command's output. An operator's own setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return (sdkLoading ??= import('@aws-sdk/client-s3'));
};

export class S3Backend implements Backend {
  readonly location: string;
  /** Four PutObjects in flight: 19–30% faster initial backups than two against radosgw (decision 016). */
  readonly uploadConcurrency = 4;
  readonly #config: S3ClientConfig;
  #opened: Promise<{ client: S3Client; sdk: Sdk }> | null = null;
  #client: S3Client | null = null;
  readonly #where: S3Location;

  constructor(location: string, options: { credentials?: S3Credentials; region?: string; maxAttempts?: number } = {}) {
    this.location = location;
    this.#where = parseS3Location(location);
    this.#config = {
      region: options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: this.#where.pathStyle,
      maxAttempts: options.maxAttempts ?? 5,
      // Checksums only where S3 requires them: Ceph RGW and older MinIO reject the SDK's default
      // trailing CRC32 on streamed uploads; integrity is the format's own (AEAD per blob, ids by HMAC).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(this.#where.endpoint ? { endpoint: this.#where.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    };
  }

  /** The client, created with the SDK on first use. */
  #open(): Promise<{ client: S3Client; sdk: Sdk }> {
    this.#opened ??= loadSdk().then((sdk) => {
      this.#client = new sdk.S3Client(this.#config);
      return { client: this.#client, sdk };
    });
    return this.#opened;
  }

  #key(name: string): string {
    return `${this.#where.prefix}${name}`;
  }

  #fail(what: string, name: string, error: unknown): never {
    if (isNotFound(error)) throw new RepositoryError('not-found', `${name} not found in ${this.location}`);
    if (isDenied(error)) throw new RepositoryError('denied', `S3 ${what} of ${name} in ${this.location}: ${DENIED_ADVICE} (${describe(error)})`);
    throw new RepositoryError(isTransient(error) ? 'unavailable' : 'corrupt', `S3 ${what} of ${name} in ${this.location} failed: ${describe(error)}`);
  }

  async put(name: string, data: Buffer | readonly Buffer[]): Promise<void> {
    const body = Buffer.isBuffer(data) ? data : Buffer.concat(data);
    const Bucket = this.#where.bucket;
    const Key = this.#key(name);
    try {
      const { client, sdk } = await this.#open();
      if (body.length <= MULTIPART_OVER) {
        await client.send(new sdk.PutObjectCommand({ Bucket, Key, Body: body, ContentLength: body.length }));
        return;
      }
      const { UploadId } = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }));
      try {
        const parts: { ETag: string; PartNumber: number }[] = [];
        for (let offset = 0, n = 1; offset < body.length; offset += PART_SIZE, n++) {
          const part = body.subarray(offset, Math.min(body.length, offset + PART_SIZE));
          const { ETag } = await client.send(new sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber: n, Body: part, ContentLength: part.length }));
          parts.push({ ETag: ETag!, PartNumber: n });
        }
        // Until this completes, nothing is visible under the key.
        await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
      } catch (error) {
        await client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      this.#fail('upload', name, error);
    }
  }

  /**
   * Create-only put: one PutObject with `If-None-Match: *` (never multipart — Ceph 16.2's
   * CompleteMultipartUpload ignores the header). 412 means the name exists; 409 is AWS's answer to
   * a create racing another on the same key, which loses too.
   */
  async putIfAbsent(name: string, data: Buffer): Promise<boolean> {
    if (data.length > MULTIPART_OVER) throw new RepositoryError('corrupt', `create-only put of ${name}: ${data.length} bytes is more than one PutObject takes here`);
    try {
      const { client, sdk } = await this.#open();
      await client.send(new sdk.PutObjectCommand({ Bucket: this.#where.bucket, Key: this.#key(name), Body: data, ContentLength: data.length, IfNoneMatch: '*' }));
      return true;
    } catch (error) {
      if (status(error) === 412 || status(error) === 409) return false;
      this.#fail('create-only upload', name, error);
    }
  }

  async get(name: string, range?: { offset: number; length: number }): Promise<Buffer> {
    if (range && range.length === 0) return Buffer.alloc(0);
    try {
      const { client, sdk } = await this.#open();
      const out = await client.send(
        new sdk.GetObjectCommand({ Bucket: this.#where.bucket, Key: this.#key(name), ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}) }),
      );
      const bytes = Buffer.from(await out.Body!.transformToByteArray());
      if (range && bytes.length !== range.length) throw new RepositoryError('corrupt', `${name} in ${this.location}: asked for ${range.length} bytes at ${range.offset}, got ${bytes.length}`);
      return bytes;
    } catch (error) {
      if (error instanceof RepositoryError) throw error;
      this.#fail('download', name, error);
    }
  }

  async stat(name: string): Promise<number | null> {
    try {
      const { client, sdk } = await this.#open();
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: this.#where.bucket, Key: this.#key(name) }));
      return head.ContentLength ?? 0;
    } catch (error) {
      if (isNotFound(error)) return null;
      this.#fail('stat', name, error);
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let ContinuationToken: string | undefined;
    try {
      const { client, sdk } = await this.#open();
      do {
        const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.#where.bucket, Prefix: this.#key(prefix), ...(ContinuationToken ? { ContinuationToken } : {}) }));
        for (const o of page.Contents ?? []) out.push({ name: o.Key!.slice(this.#where.prefix.length), size: o.Size ?? 0 });
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    } catch (error) {
      this.#fail('listing', prefix, error);
    }
    return out;
  }

  async delete(name: string): Promise<void> {
    try {
      const { client, sdk } = await this.#open();
      await client.send(new sdk.DeleteObjectCommand({ Bucket: this.#where.bucket, Key: this.#key(name) }));
    } catch (error) {
      if (!isNotFound(error)) this.#fail('delete', name, error);
    }
  }

  /** The repository exists when its config object does (the bucket may hold other things). */
  async exists(): Promise<boolean> {
    const { client, sdk } = await this.#open();
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.#where.bucket }));
    } catch (error) {
      if (isNotFound(error)) return false;
      if (isDenied(error)) throw new RepositoryError('denied', `${this.location}: ${describe(error)}`);
      throw new RepositoryError(isTransient(error) ? 'unavailable' : 'missing', `Cannot reach ${this.location}: ${describe(error)}`);
    }
    return (await this.stat('config')) !== null;
  }

  /** Creates the bucket if it is not there yet (`init` on a fresh store). */
  async ensureBucket(): Promise<void> {
    const { client, sdk } = await this.#open();
    try {
      await client.send(new sdk.HeadBucketCommand({ Bucket: this.#where.bucket }));
    } catch (error) {
      if (isDenied(error)) throw new RepositoryError('denied', `${this.location}: ${describe(error)}`);
      if (!isNotFound(error)) throw new RepositoryError('missing', `Cannot reach ${this.location}: ${describe(error)}`);
      await client.send(new sdk.CreateBucketCommand({ Bucket: this.#where.bucket })).catch((e: unknown) => this.#fail('bucket creation', this.#where.bucket, e));
    }
  }

  close(): void {
    this.#client?.destroy();
  }
}
