// End-to-end against the real Debian registry (distribution 2.8) and skopeo, on loopback.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Registry, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  copy,
  DigestError,
  MediaType,
  parseManifest,
  pushMultiArch,
  RegistryClient,
  type RegistryOptions,
  Store,
  sha256,
} from '../src/index.ts';
import { makeImage } from './helpers/images.ts';

const run = promisify(execFile);
const dirs: string[] = [];
function tmp(prefix = 'stele-oci-e2e-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(`${p.slice(root.length)} ${sha256(readFileSync(p))}`);
    }
  };
  walk(root);
  return out.sort();
}

async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', ['--insecure-policy', ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

for (const mode of ['plain', 'tls+htpasswd'] as const) {
  describe(`registry round trips (${mode})`, () => {
    let reg: Registry;
    let opts: RegistryOptions;
    let skopeoAuth: (dir: 'src' | 'dest') => string[];
    beforeAll(async () => {
      reg =
        mode === 'plain'
          ? await startRegistry()
          : await startRegistry({ tls: true, htpasswd: { username: 'stele', password: 'pa55-word' } });
      opts = mode === 'plain' ? { credentials: null } : { caFile: reg.caFile, credentials: reg.credentials };
      const certDir = tmp();
      if (reg.caPem) writeFileSync(join(certDir, 'ca.crt'), reg.caPem);
      skopeoAuth = (dir) =>
        mode === 'plain'
          ? [`--${dir}-tls-verify=false`]
          : [
              `--${dir}-cert-dir`,
              certDir,
              `--${dir}-creds`,
              `${reg.credentials?.username}:${reg.credentials?.password}`,
            ];
    });
    afterAll(async () => {
      await reg?.stop();
    });

    it('pushes a single-arch image, pulls it back identical, and re-pushing sends no blob', async () => {
      const store = await Store.open(tmp());
      const img = await makeImage(store, 'local/app:1', { layerSizes: [50_000, 10_000, 3_000] });
      const client = new RegistryClient(reg.host, opts);
      const repo = client.repository('team/app');
      const pushed = await copy(store, 'local/app:1', repo, ['1']);
      expect(pushed.descriptor.digest).toBe(img.descriptor.digest);
      expect(pushed.blobsCopied).toBe(4);

      const resolved = await repo.resolve('1');
      expect(resolved).toEqual(img.descriptor);

      const store2 = await Store.open(tmp());
      const ref = `${reg.host}/team/app:1`;
      const pulled = await copy(repo, '1', store2, [ref]);
      expect(pulled.descriptor.digest).toBe(img.descriptor.digest);
      for (const l of [...img.layers, img.config]) {
        expect(sha256(await store2.readBlob(l.digest))).toBe(l.digest);
      }
      expect((await store2.resolve(ref)).digest).toBe(img.descriptor.digest);

      const again = new RegistryClient(reg.host, opts);
      const res = await copy(store, 'local/app:1', again.repository('team/app'), ['1']);
      expect(res.blobsCopied).toBe(0);
      expect(again.stats.byMethod.PATCH ?? 0).toBe(0);
      expect(again.stats.byMethod.POST ?? 0).toBe(0);
      expect(again.stats.bytesUp).toBe(img.manifest.length);
      await client.close();
      await again.close();
    });

    it('pushes a multi-arch index with per-arch tags and pulls all of it or one platform', async () => {
      const store = await Store.open(tmp());
      await makeImage(store, 'local/multi:amd64', { platform: { os: 'linux', architecture: 'amd64' } });
      await makeImage(store, 'local/multi:arm64', { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
      const client = new RegistryClient(reg.host, opts);
      const repo = client.repository('team/multi');
      const { index, manifests } = await pushMultiArch(store, ['local/multi:amd64', 'local/multi:arm64'], repo, 'v1');
      expect(manifests.map((m) => m.tag)).toEqual(['v1-linux-amd64', 'v1-linux-arm64-v8']);
      expect((await repo.listTags()).sort()).toEqual(['v1', 'v1-linux-amd64', 'v1-linux-arm64-v8']);
      expect((await repo.resolve('v1')).mediaType).toBe(MediaType.OciIndex);

      const all = await Store.open(tmp());
      const res = await copy(repo, 'v1', all, [`${reg.host}/team/multi:v1`]);
      expect(res.descriptor.digest).toBe(index.digest);
      expect(res.blobsCopied).toBe(6);
      const one = await Store.open(tmp());
      const res1 = await copy(repo, 'v1', one, ['x'], { platforms: [{ os: 'linux', architecture: 'arm64' }] });
      expect(res1.blobsCopied).toBe(3);
      expect(
        await one.hasBlob({ digest: (manifests[1] as { descriptor: { digest: string } }).descriptor.digest }),
      ).toBe(true);
      expect(
        await one.hasBlob({ digest: (manifests[0] as { descriptor: { digest: string } }).descriptor.digest }),
      ).toBe(false);

      // skopeo reads the index Stele pushed, down to a platform's blobs.
      const out = tmp();
      await skopeo(['copy', '--all', ...skopeoAuth('src'), `docker://${reg.host}/team/multi:v1`, `oci:${out}:v1`]);
      const idx = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
      expect(idx.manifests[0].digest).toBe(index.digest);
      await client.close();
    });

    it('skopeo inspects and copies what Stele pushed', async () => {
      const store = await Store.open(tmp());
      const img = await makeImage(store, 'local/sk:1');
      const client = new RegistryClient(reg.host, opts);
      await copy(store, 'local/sk:1', client.repository('team/sk'), ['1']);
      const info = JSON.parse(
        await skopeo([
          'inspect',
          ...skopeoAuth('src').map((a) => a.replace('--src-', '--')),
          `docker://${reg.host}/team/sk:1`,
        ]),
      );
      expect(info.Digest).toBe(img.descriptor.digest);
      expect(info.Layers).toEqual(img.layers.map((l) => l.digest));
      const out = tmp();
      await skopeo(['copy', ...skopeoAuth('src'), `docker://${reg.host}/team/sk:1`, `oci:${out}:1`]);
      const idx = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
      expect(idx.manifests[0].digest).toBe(img.descriptor.digest);
      await client.close();
    });

    for (const format of ['oci', 'v2s2'] as const) {
      it(`pulls what skopeo pushed (${format})`, async () => {
        const src = await Store.open(tmp());
        // skopeo's oci: transport only reads OCI media types; --format v2s2 converts on the way.
        const img = await makeImage(src, 'seed:1');
        await skopeo([
          'copy',
          '--format',
          format,
          ...skopeoAuth('dest'),
          `oci:${src.root}:seed:1`,
          `docker://${reg.host}/sk/${format}:1`,
        ]);
        const client = new RegistryClient(reg.host, opts);
        const store = await Store.open(tmp());
        const res = await copy(client.repository(`sk/${format}`), '1', store, ['it']);
        const m = parseManifest(await store.readBlob(res.descriptor.digest));
        expect(res.descriptor.mediaType).toBe(format === 'oci' ? MediaType.OciManifest : MediaType.DockerManifest);
        expect(m.kind).toBe('manifest');
        if (m.kind === 'manifest')
          expect(m.manifest.layers.map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
        await client.close();
      });
    }
  });
}

describe('registry auth and TLS failures', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry({ tls: true, htpasswd: { username: 'u', password: 'right' } });
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('refuses an untrusted certificate with a hint, and a wrong password with the status', async () => {
    const noCa = new RegistryClient(reg.host, { credentials: reg.credentials });
    await expect(noCa.ping()).rejects.toThrow(/certificate of 127\.0\.0\.1:\d+ not trusted .*--ca-file/);
    const wrong = new RegistryClient(reg.host, {
      caFile: reg.caFile,
      credentials: { username: 'u', password: 'wrong' },
    });
    await expect(wrong.repository('a/b').resolve('1')).rejects.toThrow(/HTTP 401.*check credentials/);
    // The per-connection opt-out, and nothing else, lets an untrusted certificate through.
    const skip = new RegistryClient(reg.host, { skipTlsVerify: true, credentials: reg.credentials });
    expect(await skip.ping()).toBe(`https://${reg.host}`);
    const anon = new RegistryClient(reg.host, { caFile: reg.caFile, credentials: null });
    await expect(anon.repository('a/b').resolve('1')).rejects.toThrow(/401/);
  });

  it('finds credentials in a Docker config.json', async () => {
    const dockerDir = tmp();
    writeFileSync(
      join(dockerDir, 'config.json'),
      JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('u:right').toString('base64') } } }),
    );
    const client = new RegistryClient(reg.host, { caFile: reg.caFile, env: { DOCKER_CONFIG: dockerDir } });
    const store = await Store.open(tmp());
    await makeImage(store, 'x:1');
    const res = await copy(store, 'x:1', client.repository('cfg/x'), ['1']);
    expect(res.blobsCopied).toBe(3);
  });
});

describe('bad input from the registry', () => {
  let reg: Registry;
  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('a blob with one flipped byte fails the pull with a digest error and leaves the store unchanged', async () => {
    const src = await Store.open(tmp());
    const img = await makeImage(src, 'flip:1', { layerSizes: [40_000] });
    const client = new RegistryClient(reg.host, { credentials: null });
    await copy(src, 'flip:1', client.repository('bad/flip'), ['1']);
    const layer = img.layers[0] as { digest: string };
    const hex = layer.digest.slice(7);
    const data = join(reg.dir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data);
    bytes[1000] = (bytes[1000] as number) ^ 0x01;
    writeFileSync(data, bytes);
    const store = await Store.open(tmp());
    const before = snapshot(store.root);
    const err = await copy(client.repository('bad/flip'), '1', store, ['flip']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestError);
    expect(String(err)).toMatch(new RegExp(`digest mismatch: expected ${layer.digest}`));
    // Blobs verified before the failure may stay (content-addressed, intact); nothing else changes.
    const after = snapshot(store.root).filter((l) => !before.includes(l));
    for (const line of after) expect(line).toMatch(/^\/blobs\/sha256\/([a-f0-9]{64}) sha256:\1$/);
    expect(after.some((l) => l.includes(hex))).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  describe('a connection cut mid-blob', () => {
    let proxy: Server;
    let cuts = 0;
    let cutLimit = 0;
    beforeAll(async () => {
      // A loopback proxy in front of the registry that cuts blob downloads halfway, `cutLimit` times.
      proxy = createServer((req, res) => {
        const target = new URL(req.url ?? '/', reg.url);
        const up = httpRequest(target, { method: req.method, headers: req.headers }, (upRes) => {
          const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          if (isBlob && cuts < cutLimit) {
            cuts++;
            let sent = 0;
            const half = Number(upRes.headers['content-length'] ?? 0) / 2;
            upRes.on('data', (c: Buffer) => {
              if (sent < half) res.write(c.subarray(0, Math.max(0, half - sent)));
              sent += c.length;
              if (sent >= half) {
                upRes.destroy();
                res.socket?.destroy();
              }
            });
            return;
          }
          upRes.pipe(res);
        });
        req.pipe(up);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    });
    afterAll(async () => {
      await new Promise((r) => proxy.close(r));
    });
    const proxyHost = () => `127.0.0.1:${(proxy.address() as { port: number }).port}`;

    it('is retried and the pull completes', async () => {
      const src = await Store.open(tmp());
      const img = await makeImage(src, 'cut:1', { layerSizes: [300_000] });
      await copy(src, 'cut:1', new RegistryClient(reg.host, { credentials: null }).repository('bad/cut'), ['1']);
      cuts = 0;
      cutLimit = 1;
      const store = await Store.open(tmp());
      const res = await copy(new RegistryClient(proxyHost(), { credentials: null }).repository('bad/cut'), '1', store, [
        'c',
      ]);
      expect(cuts).toBe(1);
      expect(res.descriptor.digest).toBe(img.descriptor.digest);
      for (const l of img.layers) expect(sha256(await store.readBlob(l.digest))).toBe(l.digest);
    });

    it('fails clearly with nothing half-written when the connection keeps breaking', async () => {
      cuts = 0;
      cutLimit = 1000;
      const store = await Store.open(tmp());
      const before = snapshot(store.root);
      const err = await copy(
        new RegistryClient(proxyHost(), { credentials: null, backoffMs: 10 }).repository('bad/cut'),
        '1',
        store,
        ['c'],
      ).catch((e: unknown) => e);
      expect(String(err)).toMatch(/terminated|socket|closed|ECONNRESET|UND_ERR/i);
      expect(cuts).toBeGreaterThan(1);
      const added = snapshot(store.root).filter((l) => !before.includes(l));
      for (const line of added) expect(line).toMatch(/^\/blobs\/sha256\/([a-f0-9]{64}) sha256:\1$/);
      expect(readdirSync(join(store.root, '.tmp'))).toEqual([]);
      expect(await store.list()).toEqual([]);
    });
  });
});
