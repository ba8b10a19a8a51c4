import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decryptEnvelope,
  encryptEnvelope,
  generateKeyPair,
  loadPrivateKey,
  loadPublicKey,
  parseSigstoreJson,
  signatureTag,
  signPayload,
  simpleSigningPayload,
  verifyAttachment,
} from '../src/index.ts';

const run = promisify(execFile);
const FIXTURES = '/usr/share/gocode/src/github.com/containers/image/signature/fixtures';
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// Cheap scrypt for tests that only check the format; one test uses cosign's real parameters.
const FAST = { N: 1024, r: 8, p: 1 };

describe('keys', () => {
  it('generates a P-256 pair whose encrypted private key round-trips with the passphrase only', async () => {
    const kp = await generateKeyPair('correct horse', FAST);
    expect(kp.publicPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(kp.privatePem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    const body = kp.privatePem.split('\n').slice(1, -2).join('');
    const env = JSON.parse(Buffer.from(body, 'base64').toString());
    expect(env.kdf).toMatchObject({ name: 'scrypt', params: FAST });
    expect(env.cipher.name).toBe('nacl/secretbox');
    expect(Buffer.from(env.cipher.nonce, 'base64')).toHaveLength(24);
    expect(Buffer.from(env.kdf.salt, 'base64')).toHaveLength(32);
    const priv = await loadPrivateKey(kp.privatePem, 'correct horse');
    const pub = loadPublicKey(kp.publicPem);
    const payload = simpleSigningPayload('r/x', `sha256:${'a'.repeat(64)}`);
    const v = verifyAttachment(
      { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', payload, signature: signPayload(payload, priv) },
      pub,
      `sha256:${'a'.repeat(64)}`,
    );
    expect(v).toEqual({ ok: true, dockerReference: 'r/x' });
    await expect(loadPrivateKey(kp.privatePem, 'wrong')).rejects.toThrow(/wrong passphrase/);
  });

  it("uses cosign's scrypt parameters by default", async () => {
    const kp = await generateKeyPair('');
    const body = kp.privatePem.split('\n').slice(1, -2).join('');
    expect(JSON.parse(Buffer.from(body, 'base64').toString()).kdf.params).toEqual({ N: 32768, r: 8, p: 1 });
    await expect(loadPrivateKey(kp.privatePem, '')).resolves.toBeDefined();
  });

  it("decrypts go-securesystemslib's own test vector (the envelope cosign keys use)", async () => {
    const vector =
      '{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}';
    expect((await decryptEnvelope(vector, 'supersecret')).toString()).toBe('reallyimportant');
    await expect(decryptEnvelope(vector, 'supersecreT')).rejects.toThrow(/wrong passphrase/);
    const ours = await encryptEnvelope(Buffer.from('x'), 'p', FAST);
    const tampered = JSON.parse(ours.toString());
    const ct = Buffer.from(tampered.ciphertext, 'base64');
    ct[0] = (ct[0] as number) ^ 1;
    tampered.ciphertext = ct.toString('base64');
    await expect(decryptEnvelope(JSON.stringify(tampered), 'p')).rejects.toThrow(/wrong passphrase|damaged/);
  });

  it('refuses non-P-256 public keys', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    expect(() => loadPublicKey(rsa.toString())).toThrow(/only ECDSA P-256/);
  });
});

describe('signature tag and payload', () => {
  it('follow cosign', () => {
    const d = `sha256:${'0123456789abcdef'.repeat(4)}`;
    expect(signatureTag(d)).toBe(`sha256-${'0123456789abcdef'.repeat(4)}.sig`);
    expect(JSON.parse(simpleSigningPayload('h/r', d).toString())).toEqual({
      critical: {
        identity: { 'docker-reference': 'h/r' },
        image: { 'docker-manifest-digest': d },
        type: 'cosign container image signature',
      },
      optional: null,
    });
  });
});

describe.skipIf(!existsSync(FIXTURES))("real cosign signatures (containers/image's fixtures)", () => {
  const pub = () => loadPublicKey(readFileSync(join(FIXTURES, 'cosign.pub'), 'utf8'));
  function check(dir: string): { ok: boolean; reasons: string[] } {
    const d = join(FIXTURES, dir);
    if (!existsSync(join(d, 'manifest.json'))) return { ok: false, reasons: ['no manifest'] };
    const digest = `sha256:${createHash('sha256')
      .update(readFileSync(join(d, 'manifest.json')))
      .digest('hex')}`;
    const reasons: string[] = [];
    let ok = false;
    for (const f of readdirSync(d).filter((n) => n.startsWith('signature-'))) {
      const v = verifyAttachment(parseSigstoreJson(readFileSync(join(d, f))), pub(), digest);
      if (v.ok) ok = true;
      else reasons.push(v.reason);
    }
    return { ok, reasons };
  }

  it('accepts the valid ones', () => {
    for (const dir of [
      'dir-img-cosign-valid',
      'dir-img-cosign-valid-2',
      'dir-img-cosign-valid-with-tag',
      'dir-img-cosign-mixed',
    ]) {
      expect(check(dir).ok, dir).toBe(true);
    }
    // The mixed case holds one signature by another key, refused for that reason.
    expect(check('dir-img-cosign-mixed').reasons).toEqual([expect.stringMatching(/does not verify with this key/)]);
  });

  it('refuses modified-manifest, other-attachment, manifest-digest-error and no-manifest, with the reason', () => {
    expect(check('dir-img-cosign-modified-manifest')).toEqual({
      ok: false,
      reasons: [expect.stringMatching(/signature is for sha256:634a8f35.*not for sha256:/)],
    });
    expect(check('dir-img-cosign-other-attachment')).toEqual({
      ok: false,
      reasons: [expect.stringMatching(/text\/plain, not a cosign simple-signing payload/)],
    });
    expect(check('dir-img-cosign-manifest-digest-error').ok).toBe(false);
    expect(check('dir-img-cosign-no-manifest').ok).toBe(false);
  });

  it('refuses them under a wrong key and with a tampered payload', async () => {
    const other = loadPublicKey((await generateKeyPair('x', FAST)).publicPem);
    const d = join(FIXTURES, 'dir-img-cosign-valid');
    const digest = `sha256:${createHash('sha256')
      .update(readFileSync(join(d, 'manifest.json')))
      .digest('hex')}`;
    const a = parseSigstoreJson(readFileSync(join(d, 'signature-1')));
    expect(verifyAttachment(a, other, digest)).toEqual({
      ok: false,
      reason: expect.stringMatching(/wrong key or tampered/),
    });
    const tampered = { ...a, payload: Buffer.from(a.payload.toString().replace('cosign-signed', 'cosign-signeD')) };
    expect(verifyAttachment(tampered, pub(), digest)).toEqual({
      ok: false,
      reason: expect.stringMatching(/wrong key or tampered/),
    });
  });
});

describe('openssl', () => {
  it('accepts Stele signatures over their payloads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stele-sig-'));
    dirs.push(dir);
    const kp = await generateKeyPair('pw', FAST);
    const payload = simpleSigningPayload('127.0.0.1:5000/x', `sha256:${'b'.repeat(64)}`);
    const sig = signPayload(payload, await loadPrivateKey(kp.privatePem, 'pw'));
    writeFileSync(join(dir, 'pub.pem'), kp.publicPem);
    writeFileSync(join(dir, 'payload'), payload);
    writeFileSync(join(dir, 'sig.der'), Buffer.from(sig, 'base64'));
    const ok = await run('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      join(dir, 'pub.pem'),
      '-signature',
      join(dir, 'sig.der'),
      join(dir, 'payload'),
    ]);
    expect(ok.stdout).toMatch(/Verified OK/);
    writeFileSync(join(dir, 'payload'), Buffer.concat([payload, Buffer.from(' ')]));
    const bad = await run('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      join(dir, 'pub.pem'),
      '-signature',
      join(dir, 'sig.der'),
      join(dir, 'payload'),
    ]).then(
      () => 'accepted',
      (e: { stdout?: string }) => e.stdout ?? '',
    );
    expect(bad).toMatch(/Verification failure/);
  });
});
