import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { type Descriptor, type ImageManifest, parseManifest } from '../descriptor.ts';
import { type Digest, parseDigest, sha256 } from '../digest.ts';
import { isIndexType, MediaType } from '../mediatypes.ts';
import type { Sink, Source } from '../target.ts';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** The tag cosign stores an image's signatures under: `sha256-<hex>.sig`. */
export function signatureTag(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex}.sig`;
}

/** The simple-signing payload cosign signs. */
export function simpleSigningPayload(dockerReference: string, digest: Digest): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional: null,
    }),
  );
}

/** ECDSA over SHA-256 of `payload`; base64 of the DER signature (what the annotation holds). */
export function signPayload(payload: Buffer, key: KeyObject): string {
  return cryptoSign('sha256', payload, key).toString('base64');
}

export interface Attachment {
  mediaType: string;
  payload: Buffer;
  /** Base64 DER signature from the `dev.cosignproject.cosign/signature` annotation. */
  signature?: string;
}

export type Verdict = { ok: true; dockerReference: string } | { ok: false; reason: string };

/**
 * Checks one signature attachment against `digest`: a simple-signing payload, a valid ECDSA
 * signature by `key` over exactly those bytes, of cosign's type, naming this manifest digest.
 */
export function verifyAttachment(a: Attachment, key: KeyObject, digest: Digest): Verdict {
  if (a.mediaType !== MediaType.CosignSimpleSigning) {
    return { ok: false, reason: `attachment is ${a.mediaType}, not a cosign simple-signing payload` };
  }
  if (!a.signature) return { ok: false, reason: `no ${SIGNATURE_ANNOTATION} annotation` };
  let good = false;
  try {
    good = cryptoVerify('sha256', a.payload, key, Buffer.from(a.signature, 'base64'));
  } catch (err) {
    return { ok: false, reason: `malformed signature: ${(err as Error).message}` };
  }
  if (!good) return { ok: false, reason: 'signature does not verify with this key (wrong key or tampered payload)' };
  let p: {
    critical?: {
      type?: string;
      image?: { 'docker-manifest-digest'?: string };
      identity?: { 'docker-reference'?: string };
    };
  };
  try {
    p = JSON.parse(a.payload.toString());
  } catch {
    return { ok: false, reason: 'signed payload is not JSON' };
  }
  if (p.critical?.type !== COSIGN_SIGNATURE_TYPE) {
    return { ok: false, reason: `signed payload type is '${p.critical?.type}', not '${COSIGN_SIGNATURE_TYPE}'` };
  }
  const signed = p.critical?.image?.['docker-manifest-digest'];
  if (signed !== digest) return { ok: false, reason: `signature is for ${signed}, not for ${digest}` };
  return { ok: true, dockerReference: p.critical?.identity?.['docker-reference'] ?? '' };
}

export interface SignatureReport {
  digest: Digest;
  /** Valid signatures (their docker-reference). */
  verified: string[];
  /** Why each other attachment was refused. */
  refused: string[];
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The attachments under `digest`'s .sig tag; empty when there is no signature manifest. */
export async function readAttachments(src: Source, digest: Digest): Promise<Attachment[]> {
  let desc: Descriptor;
  try {
    desc = await src.resolve(signatureTag(digest));
  } catch (err) {
    if ((err as { status?: number }).status === 404 || /not found|not in the store/.test((err as Error).message))
      return [];
    throw err;
  }
  const m = parseManifest(await src.fetchManifest(desc), desc.mediaType);
  if (m.kind !== 'manifest') throw new Error(`${signatureTag(digest)} is an index, not a signature manifest`);
  const out: Attachment[] = [];
  for (const layer of m.manifest.layers) {
    const payload = await readAll(await src.fetchBlob(layer));
    if (sha256(payload) !== layer.digest)
      throw new Error(`signature payload ${layer.digest} does not match its digest`);
    out.push({ mediaType: layer.mediaType, payload, signature: layer.annotations?.[SIGNATURE_ANNOTATION] });
  }
  return out;
}

/** Verifies the signatures on one manifest digest. */
export async function verifyDigest(src: Source, digest: Digest, key: KeyObject): Promise<SignatureReport> {
  const report: SignatureReport = { digest, verified: [], refused: [] };
  for (const a of await readAttachments(src, digest)) {
    const v = verifyAttachment(a, key, digest);
    if (v.ok) report.verified.push(v.dockerReference);
    else report.refused.push(v.reason);
  }
  return report;
}

/**
 * Verifies `desc` and, for an index, each manifest in it. Throws with every reason unless each
 * has at least one valid signature.
 */
export async function verifyImage(src: Source, desc: Descriptor, key: KeyObject): Promise<SignatureReport[]> {
  const digests = [desc.digest];
  if (isIndexType(desc.mediaType)) {
    const m = parseManifest(await src.fetchManifest(desc), desc.mediaType);
    if (m.kind === 'index') digests.push(...m.index.manifests.map((d) => d.digest));
  }
  const reports: SignatureReport[] = [];
  for (const d of digests) reports.push(await verifyDigest(src, d, key));
  const bad = reports.filter((r) => r.verified.length === 0);
  if (bad.length) {
    const why = bad
      .map(
        (r) =>
          `${r.digest}: ${r.refused.length ? r.refused.join('; ') : `no signature (no ${signatureTag(r.digest)} tag)`}`,
      )
      .join('\n  ');
    throw new SignatureError(`signature verification failed:\n  ${why}`, reports);
  }
  return reports;
}

export class SignatureError extends Error {
  constructor(
    message: string,
    readonly reports: SignatureReport[],
  ) {
    super(message);
    this.name = 'SignatureError';
  }
}

const SIG_CONFIG_BASE = { architecture: '', os: '', config: {} };

/**
 * Signs one manifest digest: appends a layer (payload + signature annotation) to the manifest at
 * its `.sig` tag, creating it if absent, with the config listing the payload digests.
 */
export async function signDigest(
  repo: Source & Sink,
  digest: Digest,
  key: KeyObject,
  dockerReference: string,
): Promise<{ tag: string; manifest: Descriptor; payload: Buffer; signature: string }> {
  const payload = simpleSigningPayload(dockerReference, digest);
  const signature = signPayload(payload, key);
  const tag = signatureTag(digest);
  let layers: Descriptor[] = [];
  try {
    const existing = await repo.resolve(tag);
    const m = parseManifest(await repo.fetchManifest(existing), existing.mediaType);
    if (m.kind === 'manifest') layers = m.manifest.layers;
  } catch (err) {
    if (!((err as { status?: number }).status === 404 || /not found|not in the store/.test((err as Error).message)))
      throw err;
  }
  const layer: Descriptor = {
    mediaType: MediaType.CosignSimpleSigning,
    digest: sha256(payload),
    size: payload.length,
    annotations: { [SIGNATURE_ANNOTATION]: signature },
  };
  // The same payload signed again with the same key replaces the older layer.
  layers = [
    ...layers.filter((l) => !(l.digest === layer.digest && l.annotations?.[SIGNATURE_ANNOTATION] === signature)),
    layer,
  ];
  const config = Buffer.from(
    JSON.stringify({ ...SIG_CONFIG_BASE, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }),
  );
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length };
  for (const [desc, bytes] of [
    [layer, payload],
    [configDesc, config],
  ] as const) {
    if (!(await repo.hasBlob(desc))) await repo.pushBlob(desc, async () => Readable.from([bytes]));
  }
  const manifest: ImageManifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const mdesc: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length };
  await repo.pushManifest(mdesc, bytes, [tag]);
  return { tag, manifest: mdesc, payload, signature };
}

/** Signs `desc`, and for an index every manifest in it too. */
export async function signImage(
  repo: Source & Sink,
  desc: Descriptor,
  key: KeyObject,
  dockerReference: string,
): Promise<{ digest: Digest; tag: string }[]> {
  const digests = [desc.digest];
  if (isIndexType(desc.mediaType)) {
    const m = parseManifest(await repo.fetchManifest(desc), desc.mediaType);
    if (m.kind === 'index') digests.push(...m.index.manifests.map((d) => d.digest));
  }
  const out: { digest: Digest; tag: string }[] = [];
  for (const d of digests) out.push({ digest: d, tag: (await signDigest(repo, d, key, dockerReference)).tag });
  return out;
}

/**
 * Reads a signature file in the containers/image "sigstore-json" format (what skopeo's dir:
 * transport and its test fixtures hold): `\0sigstore-json\n` then JSON with mimeType,
 * base64 payload and annotations.
 */
export function parseSigstoreJson(bytes: Buffer): Attachment {
  const prefix = Buffer.from('\0sigstore-json\n');
  if (!bytes.subarray(0, prefix.length).equals(prefix)) throw new Error('not a sigstore-json signature file');
  const j = JSON.parse(bytes.subarray(prefix.length).toString()) as {
    mimeType?: string;
    payload?: string;
    annotations?: Record<string, string>;
  };
  return {
    mediaType: j.mimeType ?? '',
    payload: Buffer.from(j.payload ?? '', 'base64'),
    signature: j.annotations?.[SIGNATURE_ANNOTATION],
  };
}
