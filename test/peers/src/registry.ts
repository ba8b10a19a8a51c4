// A real OCI registry: Debian's `docker-registry` (distribution 2.8) on a free loopback port, with
// its own storage dir, optionally TLS (a self-signed certificate clients trust through `caFile`)
// and htpasswd basic auth (bcrypt cost 5 — higher costs make every request slow).
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { freePort, type PeerProcess, removeDir, runCommand, spawnPeer, tempDir, waitFor } from './process.ts';

export interface RegistryOptions {
  /** Serve https with a fresh self-signed certificate for 127.0.0.1 and localhost. */
  tls?: boolean;
  /** Require basic auth with this one user (htpasswd, bcrypt). */
  htpasswd?: { username: string; password: string };
  /** How long to wait for GET /v2/ to answer (default 30 s). */
  readyTimeoutMs?: number;
}

export interface Registry {
  /** `127.0.0.1:PORT` — the registry part of an image reference. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** Temp dir holding config, storage, certificate and htpasswd file; removed by stop(). */
  readonly dir: string;
  /** PEM file of the self-signed certificate (TLS only); trust it as a CA. */
  readonly caFile?: string;
  readonly caPem?: string;
  readonly credentials?: { username: string; password: string };
  readonly process: PeerProcess;
  /** Milliseconds from spawn until GET /v2/ answered. */
  readonly startMs: number;
  stop(): Promise<void>;
}

export const REGISTRY_REALM = 'stele-test-registry';

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const dir = tempDir('registry');
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const scheme = opts.tls ? 'https' : 'http';
    const url = `${scheme}://${host}`;

    let caFile: string | undefined;
    let caPem: string | undefined;
    let keyFile: string | undefined;
    if (opts.tls) {
      caFile = join(dir, 'cert.pem');
      keyFile = join(dir, 'key.pem');
      await makeSelfSignedCert(caFile, keyFile);
      caPem = readFileSync(caFile, 'utf8');
    }

    let htpasswdFile: string | undefined;
    if (opts.htpasswd) {
      const { username, password } = opts.htpasswd;
      if (!username || username.includes(':'))
        throw new Error('startRegistry: htpasswd username must be non-empty and without ":"');
      htpasswdFile = join(dir, 'htpasswd');
      // -i reads the password from stdin so it never shows in a process list.
      await runCommand('htpasswd', ['-B', '-C', '5', '-i', '-c', htpasswdFile, username], {
        input: password,
        timeoutMs: 30_000,
      });
    }

    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      registryConfig({
        addr: host,
        storage: join(dir, 'storage'),
        secret: randomBytes(16).toString('hex'),
        tls: caFile && keyFile ? { certificate: caFile, key: keyFile } : undefined,
        htpasswd: htpasswdFile,
      }),
    );

    const t0 = Date.now();
    const proc = spawnPeer('registry', 'docker-registry', ['serve', config], { cwd: dir });
    try {
      const expect = opts.htpasswd ? 401 : 200;
      await waitFor(
        async () => {
          const res = await rawRequest(`${url}/v2/`, { ca: caPem });
          if (res.status !== expect) throw new Error(`GET /v2/ answered ${res.status}, want ${expect}`);
          return true;
        },
        { timeoutMs: opts.readyTimeoutMs ?? 30_000, intervalMs: 50, proc, what: `registry on ${host}` },
      );
    } catch (err) {
      await proc.stop(2_000);
      throw err;
    }
    const startMs = Date.now() - t0;

    let stopped: Promise<void> | undefined;
    return {
      host,
      url,
      dir,
      caFile,
      caPem,
      credentials: opts.htpasswd ? { ...opts.htpasswd } : undefined,
      process: proc,
      startMs,
      stop() {
        stopped ??= (async () => {
          try {
            await proc.stop(5_000);
          } finally {
            removeDir(dir);
          }
        })();
        return stopped;
      },
    };
  } catch (err) {
    removeDir(dir);
    throw err;
  }
}

function registryConfig(c: {
  addr: string;
  storage: string;
  secret: string;
  tls?: { certificate: string; key: string };
  htpasswd?: string;
}): string {
  // JSON is valid YAML: no hand-written quoting of paths.
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(c.storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(c.addr)}`,
    `  secret: ${q(c.secret)}`,
  ];
  if (c.tls) lines.push('  tls:', `    certificate: ${q(c.tls.certificate)}`, `    key: ${q(c.tls.key)}`);
  if (c.htpasswd) lines.push('auth:', '  htpasswd:', `    realm: ${q(REGISTRY_REALM)}`, `    path: ${q(c.htpasswd)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * A self-signed P-256 certificate valid for IP:127.0.0.1 and DNS:localhost, marked as a CA so
 * that clients can put it in their trust store as is (Node `ca`, Go cert pools, skopeo --cert-dir).
 */
async function makeSelfSignedCert(certFile: string, keyFile: string): Promise<void> {
  await runCommand(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=stele test registry',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyCertSign',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ],
    { timeoutMs: 30_000 },
  );
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** PEM to trust (in addition to nothing else: the default CAs are replaced). */
  ca?: string;
  auth?: { username: string; password: string };
  timeoutMs?: number;
}

/**
 * One HTTP(S) request with node:http(s) — TLS verification stays on; `ca` is the only trust
 * anchor given. Used for readiness and by tests that speak the distribution API by hand.
 */
export function rawRequest(url: string, opts: RawRequestOptions = {}): Promise<RawResponse> {
  const u = new URL(url);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth) {
    headers.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
  }
  const body = typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body;
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(
      u,
      { method: opts.method ?? 'GET', headers, ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}: timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** rawRequest against this registry with its CA and credentials filled in. */
export function registryRequest(
  reg: Pick<Registry, 'url' | 'caPem' | 'credentials'>,
  path: string,
  opts: Omit<RawRequestOptions, 'ca' | 'auth'> = {},
): Promise<RawResponse> {
  const target = /^https?:\/\//.test(path) ? path : `${reg.url}${path}`;
  return rawRequest(target, { ...opts, ca: reg.caPem, auth: reg.credentials });
}
