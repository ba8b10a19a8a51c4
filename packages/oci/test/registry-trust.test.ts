// The registry client against hostile registries (small HTTP servers of the test's own, on this
// machine): credentials go to a token service only over HTTPS (or loopback, or --insecure) and
// never after a redirect to another host; manifests, configs and error bodies are read only up
// to a limit; TLS spoken to a plain-HTTP port says so; a Docker config.json that does not parse
// is reported without a word of what it holds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copy } from '../src/copy.ts';
import { MAX_MANIFEST_BYTES } from '../src/descriptor.ts';
import { sha256 } from '../src/digest.ts';
import { MediaType } from '../src/mediatypes.ts';
import { lookupCredentials } from '../src/registry/auth.ts';
import { RegistryClient, RegistryError } from '../src/registry/client.ts';
import { Store } from '../src/store.ts';

interface Fake {
  server: Server;
  port: number;
  /** Every request seen: method, path and its Authorization header. */
  seen: { method: string; url: string; auth?: string }[];
  /** Bytes of response bodies written so far. */
  sent: number;
}

const servers: Server[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function fake(
  handler: (req: IncomingMessage, res: ServerResponse, f: Fake) => void,
  host = '127.0.0.1',
): Promise<Fake> {
  const f: Fake = { server: createServer(), port: 0, seen: [], sent: 0 };
  f.server.on('request', (req, res) => {
    f.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      ...(req.headers.authorization ? { auth: req.headers.authorization } : {}),
    });
    handler(req, res, f);
  });
  await new Promise<void>((r) => f.server.listen(0, host, r));
  f.port = (f.server.address() as AddressInfo).port;
  servers.push(f.server);
  return f;
}

/** Writes `total` bytes of `fill` as fast as the client takes them, counting what went out. */
function stream(res: ServerResponse, f: Fake, total: number, fill = ' '): void {
  const chunk = Buffer.alloc(64 * 1024, fill);
  let left = total;
  const more = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      f.sent += n;
      if (!res.write(chunk.subarray(0, n))) return void res.once('drain', more);
    }
    res.end();
  };
  res.on('close', () => {
    left = 0;
  });
  more();
}

/** An address of this machine that is not loopback (where the rules for plain HTTP differ), if any. */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

const CREDS = { username: 'user', password: 'S3cretPassword' };

describe('bearer token services', () => {
  it.skipIf(!outside)('a realm over plain HTTP on another host gets no credentials (unless --insecure)', async () => {
    const tokens = await fake((_req, res) => res.end('{"token":"t0k"}'), outside);
    const realm = `http://${outside}:${tokens.port}/token`;
    const reg = await fake((req, res) => {
      if (req.headers.authorization === 'Bearer t0k') return void res.end('[]');
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="reg"` });
      res.end();
    });
    const host = `127.0.0.1:${reg.port}`;
    const client = new RegistryClient(host, { credentials: CREDS });
    const err = await client
      .repository('a')
      .listTags()
      .catch((e: unknown) => e);
    await client.close();
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toBe(
      `${host} sends for tokens to http://${outside}:${tokens.port}/token, which is not HTTPS: ` +
        'refusing to send credentials there (pass --insecure to allow plain HTTP)',
    );
    expect(tokens.seen).toEqual([]);

    const insecure = new RegistryClient(host, { credentials: CREDS, insecure: true });
    expect(await insecure.repository('a').listTags()).toEqual([]);
    await insecure.close();
    expect(tokens.seen[0]?.auth).toBe(`Basic ${Buffer.from('user:S3cretPassword').toString('base64')}`);
  });

  it('a realm on loopback over plain HTTP is fine (the registry rule)', async () => {
    const tokens = await fake((_req, res) => res.end('{"token":"t0k"}'));
    const reg = await fake((req, res) => {
      if (req.headers.authorization === 'Bearer t0k') return void res.end('{"tags":["1"]}');
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${tokens.port}/token"` });
      res.end();
    });
    const client = new RegistryClient(`127.0.0.1:${reg.port}`, { credentials: CREDS });
    expect(await client.repository('a').listTags()).toEqual(['1']);
    await client.close();
  });

  it('after a redirect to another host, a 401 there sends no credentials anywhere', async () => {
    const evil = await fake((_req, res) => res.end('{"token":"stolen"}'));
    const cdn = await fake((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${evil.port}/token"` });
      res.end();
    });
    const digest = sha256(Buffer.from('blob'));
    const reg = await fake((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' });
        return void res.end();
      }
      if (req.url?.startsWith('/v2/a/blobs/')) {
        res.writeHead(307, { location: `http://127.0.0.1:${cdn.port}/storage/blob` });
        return void res.end();
      }
      res.end('{}');
    });
    const client = new RegistryClient(`127.0.0.1:${reg.port}`, { credentials: CREDS });
    const err = await client
      .repository('a')
      .fetchBlob({ digest, size: 4 })
      .catch((e: unknown) => e);
    await client.close();
    expect((err as Error).message).toMatch(/unauthorized \(HTTP 401\) after a redirect to another host/);
    expect(cdn.seen.length).toBeGreaterThan(0);
    expect(cdn.seen.every((r) => r.auth === undefined)).toBe(true);
    expect(evil.seen).toEqual([]);
  });
});

describe('reading limits', () => {
  const manifestPath = (tag: string) => `/v2/a/manifests/${tag}`;

  it('a manifest that never ends is read no further than the limit', async () => {
    const reg = await fake((req, res, f) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(200, { 'content-type': MediaType.OciManifest });
      res.write('{"schemaVersion": 2, "x": "');
      stream(res, f, 64 * 1024 * 1024, 'x');
    });
    const client = new RegistryClient(`127.0.0.1:${reg.port}`, { credentials: null });
    const err = await client
      .repository('a')
      .getManifest('big')
      .catch((e: unknown) => e);
    await client.close();
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as Error).message).toBe(
      `registry 127.0.0.1:${reg.port}/a: the manifest big is larger than ${MAX_MANIFEST_BYTES} bytes, more than a manifest may have`,
    );
    expect(reg.sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('a manifest whose Content-Length is over the limit is not read at all', async () => {
    const reg = await fake((req, res, f) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(200, { 'content-type': MediaType.OciManifest, 'content-length': String(64 * 1024 * 1024) });
      stream(res, f, 64 * 1024 * 1024);
    });
    const client = new RegistryClient(`127.0.0.1:${reg.port}`, { credentials: null });
    await expect(client.repository('a').getManifest('big')).rejects.toThrow(/is larger than 4194304 bytes/);
    await client.close();
    expect(reg.sent).toBeLessThan(16 * 1024 * 1024);
  });

  it('a config over the limit is refused before it is fetched', async () => {
    const config = { mediaType: MediaType.OciConfig, digest: sha256(Buffer.from('cfg')), size: 100 * 1024 * 1024 };
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] }),
    );
    const reg = await fake((req, res) => {
      if (req.url === manifestPath('1') || req.url === manifestPath(sha256(manifest))) {
        res.writeHead(200, { 'content-type': MediaType.OciManifest, 'docker-content-digest': sha256(manifest) });
        return void res.end(req.method === 'HEAD' ? undefined : manifest);
      }
      if (req.url?.includes('/blobs/')) {
        res.writeHead(404);
        return void res.end();
      }
      res.end('{}');
    });
    const client = new RegistryClient(`127.0.0.1:${reg.port}`, { credentials: null });
    const store = await Store.open(mkdtempSync(join(tmpdir(), 'stele-registry-trust-')));
    dirs.push(store.root);
    const err = await copy(client.repository('a'), '1', store, ['x']).catch((e: unknown) => e);
    await client.close();
    expect((err as Error).message).toBe(
      `registry 127.0.0.1:${reg.port}/a: the config ${config.digest} of ${sha256(manifest)} is ${100 * 1024 * 1024} bytes, more than the ${MAX_MANIFEST_BYTES} a config may have`,
    );
    expect(reg.seen.filter((r) => r.url.includes('/blobs/'))).toEqual([]);
  });

  it('an error answer with an endless body is cut short', async () => {
    const reg = await fake((req, res, f) => {
      if (req.url === '/v2/') return void res.end('{}');
      res.writeHead(400, { 'content-type': 'text/plain' });
      stream(res, f, 64 * 1024 * 1024, 'e');
    });
    const client = new RegistryClient(`127.0.0.1:${reg.port}`, { credentials: null });
    const err = await client
      .repository('a')
      .listTags()
      .catch((e: unknown) => e);
    await client.close();
    expect((err as Error).message).toMatch(/HTTP 400 e{200}$/);
    expect(reg.sent).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('messages', () => {
  it.skipIf(!outside)('TLS to a plain-HTTP registry names the cause and --plain-http', async () => {
    const reg = await fake((_req, res) => res.end('{}'), outside);
    const host = `${outside}:${reg.port}`;
    const client = new RegistryClient(host, { credentials: null, retries: 0 });
    const err = await client.ping().catch((e: unknown) => e);
    await client.close();
    expect((err as Error).message).toBe(
      `cannot reach registry ${host}: ${host} does not speak HTTPS there (it answered in plain HTTP, it seems): ` +
        'if it is a plain-HTTP registry, say so with --plain-http (or --insecure to allow falling back to HTTP)',
    );
    expect((err as Error).message).not.toMatch(/wrong version number/);
  });

  it('a Docker config.json that does not parse: where, never what', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stele-docker-config-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'config.json'),
      `{\n  "auths": {\n    "reg.example": {"username": "u", "password": 'S3cretPassword'}\n  }\n}\n`,
    );
    const err = await lookupCredentials('reg.example', { env: { DOCKER_CONFIG: dir } }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `${join(dir, 'config.json')} is not valid JSON (line 3, column 50: invalid symbol)`,
    );
    expect((err as Error).message).not.toMatch(/S3cret|assword|'/);

    // A field of the wrong type is named, its value not shown.
    writeFileSync(join(dir, 'config.json'), '{"auths": {"reg.example": {"auth": 12345678}}}');
    const typed = await lookupCredentials('reg.example', { env: { DOCKER_CONFIG: dir } }).catch((e: unknown) => e);
    expect((typed as Error).message).toBe(`${join(dir, 'config.json')}: auths["reg.example"].auth is not a string`);
  });
});
