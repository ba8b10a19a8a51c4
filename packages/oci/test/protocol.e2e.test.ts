// Protocol paths the plain registry does not exercise by itself: chunked upload, cross-repository
// mount, and — through a loopback front that speaks bearer tokens and fails on purpose — token
// auth and retries on 503/429. Blobs and manifests always end in the real registry.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Registry, startRegistry } from '@stele/test-peers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CopyEvent, copy, RegistryClient, Store, sha256 } from '../src/index.ts';
import { makeImage } from './helpers/images.ts';

let reg: Registry;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'stele-proto-'));
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  reg = await startRegistry();
});
afterAll(async () => {
  await reg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('uploads', () => {
  it('chunked (PATCH) uploads land intact', async () => {
    const store = await Store.open(tmp());
    const img = await makeImage(store, 'c:1', { layerSizes: [300_000] });
    const client = new RegistryClient(reg.host, { credentials: null, chunkSize: 64 * 1024 });
    await copy(store, 'c:1', client.repository('proto/chunked'), ['1']);
    expect(client.stats.byMethod.PATCH ?? 0).toBeGreaterThan(2);
    const back = await Store.open(tmp());
    const res = await copy(new RegistryClient(reg.host, { credentials: null }).repository('proto/chunked'), '1', back, [
      'x',
    ]);
    expect(res.descriptor.digest).toBe(img.descriptor.digest);
    for (const l of img.layers) expect(sha256(await back.readBlob(l.digest))).toBe(l.digest);
  });

  it('mounts blobs across repositories of one registry instead of sending them', async () => {
    const store = await Store.open(tmp());
    await makeImage(store, 'm:1', { layerSizes: [100_000, 50_000] });
    const client = new RegistryClient(reg.host, { credentials: null });
    await copy(store, 'm:1', client.repository('proto/from'), ['1']);
    const events: CopyEvent[] = [];
    const before = client.stats.bytesUp;
    await copy(client.repository('proto/from'), '1', client.repository('proto/to'), ['1'], {
      onEvent: (e) => events.push(e),
    });
    expect(events.filter((e) => e.type === 'blob-skip').map((e) => (e as { reason: string }).reason)).toEqual([
      'mounted',
      'mounted',
      'mounted',
    ]);
    expect(client.stats.bytesUp - before).toBeLessThan(2000); // the manifest only
  });
});

describe('bearer tokens and retries (through a loopback front)', () => {
  let front: Server;
  let host: string;
  const seen = { tokenRequests: 0, failed503: 0, failed429: 0, scopes: new Set<string>() };
  beforeAll(async () => {
    let failManifestPut = true;
    let failBlobHead = true;
    front = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://front');
      if (url.pathname === '/token') {
        seen.tokenRequests++;
        const basic = Buffer.from('bob:builder').toString('base64');
        if (req.headers.authorization !== `Basic ${basic}`) {
          res.writeHead(401).end();
          return;
        }
        const scope = url.searchParams.getAll('scope').join(' ');
        seen.scopes.add(scope);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok ${scope}` }));
        return;
      }
      const repo = /^\/v2\/(.+?)\/(blobs|manifests|tags)\//.exec(url.pathname)?.[1];
      const need = repo
        ? `repository:${repo}:${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push'}`
        : '';
      const auth = req.headers.authorization ?? '';
      const ok = !repo
        ? auth.startsWith('Bearer ') || url.pathname === '/v2/'
        : auth.startsWith('Bearer tok ') && auth.includes(repo);
      if (!ok || (repo && need.endsWith('push') && !auth.includes('push'))) {
        res
          .writeHead(401, {
            'www-authenticate': `Bearer realm="http://${host}/token",service="front"${need ? `,scope="${need}"` : ''}`,
          })
          .end();
        return;
      }
      if (req.method === 'PUT' && url.pathname.includes('/manifests/') && failManifestPut) {
        failManifestPut = false;
        seen.failed503++;
        req.resume();
        res.writeHead(503, { 'retry-after': '0' }).end();
        return;
      }
      if (req.method === 'HEAD' && url.pathname.includes('/blobs/') && failBlobHead) {
        failBlobHead = false;
        seen.failed429++;
        res.writeHead(429).end();
        return;
      }
      const headers = { ...req.headers };
      delete headers.authorization;
      const up = httpRequest(new URL(req.url ?? '/', reg.url), { method: req.method, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    host = `127.0.0.1:${(front.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => front.close(r));
  });

  it('gets tokens per scope with basic credentials and retries 503 and 429', async () => {
    const store = await Store.open(tmp());
    const img = await makeImage(store, 'b:1');
    const client = new RegistryClient(host, { credentials: { username: 'bob', password: 'builder' }, backoffMs: 5 });
    await copy(store, 'b:1', client.repository('proto/bearer'), ['1']);
    expect(seen.failed503).toBe(1);
    expect(seen.failed429).toBe(1);
    expect(seen.scopes.has('repository:proto/bearer:pull,push')).toBe(true);
    const back = await Store.open(tmp());
    const res = await copy(client.repository('proto/bearer'), '1', back, ['b']);
    expect(res.descriptor.digest).toBe(img.descriptor.digest);
    // Tokens are cached per scope, not fetched per request.
    expect(seen.tokenRequests).toBeLessThanOrEqual(4);
    const wrong = new RegistryClient(host, { credentials: { username: 'bob', password: 'x' } });
    await expect(wrong.repository('proto/bearer').resolve('1')).rejects.toThrow(
      /token service .* refused the credentials/,
    );
  });
});
