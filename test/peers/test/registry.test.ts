import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive, leftovers, removeDir, runCommand } from '../src/process.ts';
import { REGISTRY_REALM, type Registry, rawRequest, registryRequest, startRegistry } from '../src/registry.ts';

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Monolithic upload the way distribution 2.8 honours it: POST for a session, then PUT ?digest=. */
async function pushBlob(reg: Registry, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const post = await registryRequest(reg, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(post.status, post.body.toString()).toBe(202);
  const location = post.headers.location;
  expect(location).toBeTruthy();
  const target = new URL(String(location), reg.url);
  target.searchParams.set('digest', digest);
  const put = await registryRequest(reg, target.toString(), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  });
  expect(put.status, put.body.toString()).toBe(201);
  expect(put.headers['docker-content-digest']).toBe(digest);
  return digest;
}

async function blobRoundTrip(reg: Registry, repo: string): Promise<void> {
  const data = randomBytes(64 * 1024 + 17);
  const digest = await pushBlob(reg, repo, data);

  const head = await registryRequest(reg, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers['content-length']).toBe(String(data.length));
  expect(head.headers['docker-content-digest']).toBe(digest);

  const get = await registryRequest(reg, `/v2/${repo}/blobs/${digest}`);
  expect(get.status).toBe(200);
  expect(Buffer.compare(get.body, data)).toBe(0);

  const missing = await registryRequest(reg, `/v2/${repo}/blobs/${sha256(randomBytes(8))}`, { method: 'HEAD' });
  expect(missing.status).toBe(404);
}

async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  for (const [name, content] of Object.entries(files)) {
    p.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Pushes a one-layer OCI image and returns the digests involved. */
async function pushImage(reg: Registry, repo: string, tag: string) {
  const tar = await layerTar({ 'hello.txt': `hello from ${repo}\n` });
  const layer = gzipSync(tar);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    }),
  );
  const layerDigest = await pushBlob(reg, repo, layer);
  const configDigest = await pushBlob(reg, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await registryRequest(reg, `/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  expect(put.status, put.body.toString()).toBe(201);
  return { manifestDigest: sha256(manifest), layerDigest, configDigest };
}

function connectRefused(host: string): Promise<boolean> {
  const [h, p] = host.split(':');
  return new Promise((resolve) => {
    const s = connect({ host: h, port: Number(p) });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function assertStopped(reg: Registry): Promise<void> {
  const { pid } = reg.process;
  await reg.stop();
  expect(isAlive(pid)).toBe(false);
  expect(leftovers().some((l) => l.pid === pid)).toBe(false);
  expect(await connectRefused(reg.host)).toBe(true);
  expect(existsSync(reg.dir)).toBe(false);
}

describe('registry peer (plain http)', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry();
    console.log(`[peers] registry (http) ready in ${reg.startMs} ms on ${reg.host}`);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('answers GET /v2/ with 200 and the API version header', async () => {
    const res = await rawRequest(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });

  it('round-trips a blob (POST, PUT ?digest=, HEAD, GET)', async () => {
    await blobRoundTrip(reg, 'smoke/blob');
  });

  it('serves a pushed OCI manifest that skopeo can inspect', async () => {
    const img = await pushImage(reg, 'smoke/img', 'v1');
    const { stdout } = await runCommand(
      'skopeo',
      ['inspect', '--tls-verify=false', '--no-creds', `docker://${reg.host}/smoke/img:v1`],
      { timeoutMs: 60_000 },
    );
    const info = JSON.parse(stdout) as { Digest: string; Architecture: string; Os: string; Layers: string[] };
    expect(info.Digest).toBe(img.manifestDigest);
    expect(info.Architecture).toBe('amd64');
    expect(info.Os).toBe('linux');
    expect(info.Layers).toEqual([img.layerDigest]);
  });

  it('deletes manifests (storage.delete.enabled)', async () => {
    const img = await pushImage(reg, 'smoke/del', 'v1');
    const del = await registryRequest(reg, `/v2/smoke/del/manifests/${img.manifestDigest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    const head = await registryRequest(reg, `/v2/smoke/del/manifests/${img.manifestDigest}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(head.status).toBe(404);
  });

  it('stop() ends the process, frees the port and removes the dir', async () => {
    const other = await startRegistry();
    await assertStopped(other);
  });
});

describe('registry peer (TLS + htpasswd)', () => {
  let reg: Registry;
  const credentials = { username: 'stele', password: randomBytes(12).toString('hex') };
  let scratch: string;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'stele-reg-test-'));
    reg = await startRegistry({ tls: true, htpasswd: credentials });
    console.log(`[peers] registry (https+htpasswd) ready in ${reg.startMs} ms on ${reg.host}`);
  });
  afterAll(async () => {
    await reg?.stop();
    if (scratch) removeDir(scratch);
  });

  it('exposes an https url, a CA file and the credentials', () => {
    expect(reg.url).toBe(`https://${reg.host}`);
    expect(reg.caFile && existsSync(reg.caFile)).toBe(true);
    expect(reg.caPem).toContain('BEGIN CERTIFICATE');
    expect(reg.credentials).toEqual(credentials);
    // bcrypt, cost 5 (higher costs make every authenticated request slow)
    expect(readFileSync(join(reg.dir, 'htpasswd'), 'utf8')).toMatch(/^stele:\$2y\$05\$/);
  });

  it('refuses an anonymous GET /v2/ with a basic challenge', async () => {
    const res = await rawRequest(`${reg.url}/v2/`, { ca: reg.caPem });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe(`Basic realm="${REGISTRY_REALM}"`);
  });

  it('refuses a wrong password', async () => {
    const res = await rawRequest(`${reg.url}/v2/`, {
      ca: reg.caPem,
      auth: { username: credentials.username, password: `${credentials.password}x` },
    });
    expect(res.status).toBe(401);
  });

  it('accepts basic auth over TLS trusting only the generated CA', async () => {
    const res = await rawRequest(`${reg.url}/v2/`, { ca: reg.caPem, auth: credentials });
    expect(res.status).toBe(200);
    const viaName = await rawRequest(`https://localhost:${reg.host.split(':')[1]}/v2/`, {
      ca: reg.caPem,
      auth: credentials,
    });
    expect(viaName.status).toBe(200);
  });

  it('fails TLS verification without the CA', async () => {
    await expect(rawRequest(`${reg.url}/v2/`, { auth: credentials })).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('round-trips a blob with auth', async () => {
    await blobRoundTrip(reg, 'secure/blob');
  });

  it('is readable by skopeo with the CA as cert dir and an auth file', async () => {
    const img = await pushImage(reg, 'secure/img', 'v1');
    const certDir = join(scratch, 'certs');
    await runCommand('mkdir', ['-p', certDir]);
    await runCommand('cp', [String(reg.caFile), join(certDir, 'ca.crt')]);
    const authFile = join(scratch, 'auth.json');
    const auth = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    writeFileSync(authFile, JSON.stringify({ auths: { [reg.host]: { auth } } }), { mode: 0o600 });
    const { stdout } = await runCommand(
      'skopeo',
      ['inspect', '--cert-dir', certDir, '--authfile', authFile, `docker://${reg.host}/secure/img:v1`],
      { timeoutMs: 60_000 },
    );
    expect((JSON.parse(stdout) as { Digest: string }).Digest).toBe(img.manifestDigest);
  });

  it('stop() ends the process, frees the port and removes the dir', async () => {
    const other = await startRegistry({ tls: true, htpasswd: credentials });
    await assertStopped(other);
  });
});
