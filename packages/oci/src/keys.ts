import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scrypt as scryptCb,
} from 'node:crypto';
import { promisify } from 'node:util';
import nacl from 'tweetnacl';

const scrypt = promisify(scryptCb) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/** The PEM label cosign 2 writes; cosign 1's label is accepted when reading. */
export const PRIVATE_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
const READABLE_LABELS = [PRIVATE_KEY_LABEL, 'ENCRYPTED COSIGN PRIVATE KEY'];

/** scrypt parameters cosign uses (go-securesystemslib's defaults). */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
export const SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

interface Envelope {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function unpem(text: string, labels: string[]): { label: string; der: Buffer } {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m?.[1] || !labels.includes(m[1])) {
    throw new KeyError(
      `not a cosign private key (want a PEM block labelled ${labels.map((l) => `'${l}'`).join(' or ')})`,
    );
  }
  return { label: m[1], der: Buffer.from((m[2] ?? '').replace(/\s+/g, ''), 'base64') };
}

async function deriveKey(
  passphrase: string,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  const { N, r, p } = params;
  if (!Number.isInteger(N) || N < 2 || (N & (N - 1)) !== 0 || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) {
    throw new KeyError(`unsupported scrypt parameters N=${N} r=${r} p=${p}`);
  }
  return scrypt(Buffer.from(passphrase, 'utf8'), salt, 32, { N, r, p, maxmem: 256 * N * r * p + 1024 * 1024 });
}

/** Encrypts bytes the way go-securesystemslib's `encrypted` package does (scrypt + nacl/secretbox), as JSON. */
export async function encryptEnvelope(
  plaintext: Buffer,
  passphrase: string,
  params: ScryptParams = SCRYPT,
): Promise<Buffer> {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = await deriveKey(passphrase, salt, params);
  const sealed = Buffer.from(nacl.secretbox(plaintext, nonce, key));
  const env: Envelope = {
    kdf: { name: 'scrypt', params: { N: params.N, r: params.r, p: params.p }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: sealed.toString('base64'),
  };
  return Buffer.from(JSON.stringify(env));
}

export async function decryptEnvelope(json: Buffer | string, passphrase: string): Promise<Buffer> {
  let env: Envelope;
  try {
    env = JSON.parse(json.toString()) as Envelope;
  } catch {
    throw new KeyError('encrypted key is not the JSON envelope cosign writes');
  }
  if (env.kdf?.name !== 'scrypt') throw new KeyError(`unsupported key derivation '${env.kdf?.name}'`);
  if (env.cipher?.name !== 'nacl/secretbox') throw new KeyError(`unsupported cipher '${env.cipher?.name}'`);
  const nonce = Buffer.from(env.cipher.nonce, 'base64');
  if (nonce.length !== 24) throw new KeyError('secretbox nonce must be 24 bytes');
  const key = await deriveKey(passphrase, Buffer.from(env.kdf.salt, 'base64'), env.kdf.params);
  const opened = nacl.secretbox.open(Buffer.from(env.ciphertext, 'base64'), nonce, key);
  if (!opened) throw new KeyError('wrong passphrase for the private key (or the key file is damaged)');
  return Buffer.from(opened);
}

export interface KeyPairPem {
  /** PKIX `PUBLIC KEY` PEM. */
  publicPem: string;
  /** cosign-format encrypted private key PEM. */
  privatePem: string;
}

/** A new ECDSA P-256 key pair; the private key encrypted with `passphrase` in cosign's format. */
export async function generateKeyPair(passphrase: string, params: ScryptParams = SCRYPT): Promise<KeyPairPem> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const env = await encryptEnvelope(der, passphrase, params);
  return {
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    privatePem: pem(PRIVATE_KEY_LABEL, env),
  };
}

/** Decrypts a cosign private key PEM; only ECDSA P-256 keys are accepted. */
export async function loadPrivateKey(pemText: string, passphrase: string): Promise<KeyObject> {
  const { der } = unpem(pemText, READABLE_LABELS);
  const pkcs8 = await decryptEnvelope(der, passphrase);
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  checkP256(key);
  return key;
}

export function loadPublicKey(pemText: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pemText);
  } catch (err) {
    throw new KeyError(`not a PEM public key: ${(err as Error).message}`);
  }
  checkP256(key);
  return key;
}

function checkP256(key: KeyObject): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KeyError(
      `only ECDSA P-256 keys are supported (got ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''})`.trim(),
    );
  }
}
