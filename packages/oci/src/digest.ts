import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** `algorithm:hex`, e.g. `sha256:9f86…`. Only sha256 and sha512 are accepted. */
export type Digest = string;

const PATTERNS: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

/** Content did not match the digest or size it was addressed by. */
export class DigestError extends Error {
  constructor(
    message: string,
    readonly expected: Digest,
    readonly actual?: Digest,
  ) {
    super(message);
    this.name = 'DigestError';
  }
}

/** A digest as messages quote it: at most 80 characters of whatever it was. */
function quoted(digest: string): string {
  return `'${digest.length > 80 ? `${digest.slice(0, 80)}…` : digest}'`;
}

export function parseDigest(digest: string): { algorithm: 'sha256' | 'sha512'; hex: string } {
  const i = digest.indexOf(':');
  const algorithm = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  const pattern = Object.hasOwn(PATTERNS, algorithm) ? PATTERNS[algorithm] : undefined;
  if (i < 0 || !pattern) throw new Error(`unsupported digest algorithm in ${quoted(digest)} (want sha256 or sha512)`);
  if (!pattern.test(hex)) throw new Error(`malformed digest ${quoted(digest)}`);
  return { algorithm: algorithm as 'sha256' | 'sha512', hex };
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

export function sha256(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function digestOf(data: Buffer | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/** Throws a DigestError unless `data` has the given digest (and size, when given). */
export function verifyBytes(data: Buffer, expected: Digest, size?: number): void {
  if (size !== undefined && data.length !== size) {
    throw new DigestError(`size mismatch for ${expected}: expected ${size} bytes, got ${data.length}`, expected);
  }
  const actual = digestOf(data, parseDigest(expected).algorithm);
  if (actual !== expected)
    throw new DigestError(`digest mismatch: expected ${expected}, got ${actual}`, expected, actual);
}

/**
 * A pass-through stream that hashes what flows through it and fails (before the final chunk is
 * acknowledged) when the content does not match `expected` or runs past `size`. Without
 * `expected` it only computes the digest, available as `.digest` after the end.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash;
  private readonly algorithm: 'sha256' | 'sha512';
  bytes = 0;
  digest: Digest | undefined;

  constructor(
    readonly expected?: Digest,
    readonly size?: number,
  ) {
    super();
    this.algorithm = expected ? parseDigest(expected).algorithm : 'sha256';
    this.hash = createHash(this.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.size !== undefined && this.bytes > this.size) {
      cb(
        new DigestError(
          `size mismatch for ${this.expected ?? 'blob'}: more than the expected ${this.size} bytes`,
          this.expected ?? '',
        ),
      );
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digest = `${this.algorithm}:${this.hash.digest('hex')}`;
    if (this.size !== undefined && this.bytes !== this.size) {
      cb(
        new DigestError(
          `size mismatch for ${this.expected ?? 'blob'}: expected ${this.size} bytes, got ${this.bytes}`,
          this.expected ?? '',
          this.digest,
        ),
      );
      return;
    }
    if (this.expected && this.digest !== this.expected) {
      cb(new DigestError(`digest mismatch: expected ${this.expected}, got ${this.digest}`, this.expected, this.digest));
      return;
    }
    cb();
  }
}
