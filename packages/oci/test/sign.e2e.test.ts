// Signing and verification against the real registry; skopeo carries Stele's .sig attachments.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { type Registry, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copy,
  generateKeyPair,
  loadPrivateKey,
  loadPublicKey,
  MediaType,
  parseSigstoreJson,
  pushMultiArch,
  RegistryClient,
  readAttachments,
  SIGNATURE_ANNOTATION,
  Store,
  sha256,
  signatureTag,
  signImage,
  verifyAttachment,
  verifyImage,
} from '../src/index.ts';
import { makeImage } from './helpers/images.ts';

const run = promisify(execFile);
const FAST = { N: 1024, r: 8, p: 1 };
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'stele-sign-e2e-'));
  dirs.push(d);
  return d;
}

describe('cosign-compatible signatures on a real registry', () => {
  let reg: Registry;
  let client: RegistryClient;
  beforeAll(async () => {
    reg = await startRegistry();
    client = new RegistryClient(reg.host, { credentials: null });
    const store = await Store.open(tmp());
    await makeImage(store, 'a:amd64', { platform: { os: 'linux', architecture: 'amd64' } });
    await makeImage(store, 'a:arm64', { platform: { os: 'linux', architecture: 'arm64' } });
    await pushMultiArch(store, ['a:amd64', 'a:arm64'], client.repository('sig/a'), '1');
    await makeImage(store, 'u:1');
    await copy(store, 'u:1', client.repository('sig/unsigned'), ['1']);
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('signs an index and its per-arch manifests; verify accepts them and refuses a wrong key', async () => {
    const kp = await generateKeyPair('pw', FAST);
    const repo = client.repository('sig/a');
    const desc = await repo.resolve('1');
    const signed = await signImage(repo, desc, await loadPrivateKey(kp.privatePem, 'pw'), `${reg.host}/sig/a`);
    expect(signed).toHaveLength(3);
    const tags = await repo.listTags();
    for (const s of signed) expect(tags).toContain(signatureTag(s.digest));
    // Layout cosign and skopeo expect.
    const sig = await repo.getManifest(signatureTag(desc.digest));
    const m = JSON.parse(sig.bytes.toString());
    expect(sig.desc.mediaType).toBe(MediaType.OciManifest);
    expect(m.layers[0].mediaType).toBe(MediaType.CosignSimpleSigning);
    expect(m.layers[0].annotations[SIGNATURE_ANNOTATION]).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const cfg = JSON.parse((await readAll(await repo.fetchBlob(m.config))).toString());
    expect(cfg).toEqual({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: [m.layers[0].digest] },
    });

    const reports = await verifyImage(repo, desc, loadPublicKey(kp.publicPem));
    expect(reports.map((r) => r.verified)).toEqual([
      [`${reg.host}/sig/a`],
      [`${reg.host}/sig/a`],
      [`${reg.host}/sig/a`],
    ]);
    const other = await generateKeyPair('x', FAST);
    await expect(verifyImage(repo, desc, loadPublicKey(other.publicPem))).rejects.toThrow(
      /signature verification failed:[\s\S]*wrong key or tampered payload/,
    );
  });

  it('refuses a missing signature and a tampered payload, saying why', async () => {
    const kp = await generateKeyPair('pw', FAST);
    const pub = loadPublicKey(kp.publicPem);
    const unsigned = client.repository('sig/unsigned');
    const desc = await unsigned.resolve('1');
    await expect(verifyImage(unsigned, desc, pub)).rejects.toThrow(/no signature \(no sha256-[a-f0-9]{64}\.sig tag\)/);

    // A signature made for this image, then its payload swapped under the same annotation.
    await signImage(unsigned, desc, await loadPrivateKey(kp.privatePem, 'pw'), 'x');
    const sig = await unsigned.getManifest(signatureTag(desc.digest));
    const m = JSON.parse(sig.bytes.toString());
    const payload = Buffer.from(
      (await readAll(await unsigned.fetchBlob(m.layers[0]))).toString().replace('"x"', '"y"'),
    );
    const layer = { ...m.layers[0], digest: sha256(payload), size: payload.length };
    await unsigned.pushBlob(layer, async () => Readable.from([payload]));
    const bytes = Buffer.from(JSON.stringify({ ...m, layers: [layer] }));
    await unsigned.pushManifest(
      { mediaType: MediaType.OciManifest, digest: sha256(bytes), size: bytes.length },
      bytes,
      [signatureTag(desc.digest)],
    );
    await expect(verifyImage(unsigned, desc, pub)).rejects.toThrow(/wrong key or tampered payload/);
  });

  it('skopeo with use-sigstore-attachments carries the .sig along and reads it back intact', async () => {
    const kp = await generateKeyPair('pw', FAST);
    const src = client.repository('sig/a');
    const desc = await src.resolve('1');
    const pub = loadPublicKey(kp.publicPem);
    await signImage(src, desc, await loadPrivateKey(kp.privatePem, 'pw'), `${reg.host}/sig/a`);
    const regd = tmp();
    writeFileSync(join(regd, 'stele.yaml'), `docker:\n  ${reg.host}:\n    use-sigstore-attachments: true\n`);
    const base = ['--insecure-policy', '--registries.d', regd];
    await run('skopeo', [
      ...base,
      'copy',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${reg.host}/sig/a:1`,
      `docker://${reg.host}/sig/copied:1`,
    ]);
    const copied = client.repository('sig/copied');
    const reports = await verifyImage(copied, await copied.resolve('1'), pub);
    expect(reports[0]?.verified.length).toBeGreaterThan(0);

    // skopeo reads the attachments into a dir: in its sigstore-json files; they verify as-is.
    const out = tmp();
    await run('skopeo', [
      ...base,
      'copy',
      '--src-tls-verify=false',
      `docker://${reg.host}/sig/a:1-linux-amd64`,
      `dir:${out}`,
    ]);
    const files = readdirSync(out).filter((f) => f.startsWith('signature-'));
    expect(files.length).toBeGreaterThan(0);
    const digest = sha256(readFileSync(join(out, 'manifest.json')));
    const verdicts = files.map((f) => verifyAttachment(parseSigstoreJson(readFileSync(join(out, f))), pub, digest));
    expect(verdicts.some((v) => v.ok)).toBe(true);
    const atts = await readAttachments(src, digest);
    expect(files.map((f) => parseSigstoreJson(readFileSync(join(out, f))).payload.toString())).toEqual(
      atts.map((a) => a.payload.toString()),
    );
  });
});

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
