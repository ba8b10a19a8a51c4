import { readFileSync } from 'node:fs';
import { type Readable, Transform } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, request } from 'undici';
import { type Descriptor, MAX_MANIFEST_BYTES, manifestMediaType } from '../descriptor.ts';
import { DigestError, isDigest, sha256, verifyBytes } from '../digest.ts';
import { MANIFEST_ACCEPT } from '../mediatypes.ts';
import { isLoopbackHost, registryHost } from '../ref.ts';
import type { OnBytes, Sink, Source } from '../target.ts';
import { basicHeader, type Challenge, type Credentials, lookupCredentials, parseChallenges } from './auth.ts';

export interface RegistryOptions {
  /** Use plain HTTP. Without it, HTTPS is used, falling back to HTTP only for loopback hosts. */
  plainHttp?: boolean;
  /** Allow the HTTP fallback for a non-loopback host too. */
  insecure?: boolean;
  /** PEM file (or text) of CAs to trust for this registry, in addition to the system's. */
  caFile?: string;
  caPem?: string;
  /** Per-connection opt-out of certificate verification. Off by default. */
  skipTlsVerify?: boolean;
  /** Explicit credentials; `null` forces anonymous; undefined looks them up (env, Docker config). */
  credentials?: Credentials | null;
  env?: NodeJS.ProcessEnv;
  /** Attempts after the first on 429, 5xx and broken connections (default 4). */
  retries?: number;
  /** Base of the exponential backoff in ms (default 200). */
  backoffMs?: number;
  /** Upload blobs in PATCH chunks of this size instead of one PUT. */
  chunkSize?: number;
  userAgent?: string;
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface RequestStats {
  requests: number;
  byMethod: Record<string, number>;
  bytesUp: number;
  bytesDown: number;
}

type Body = Buffer | string | (() => Promise<Readable>) | undefined;

interface Req {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Path with query, or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Token scopes this request needs, e.g. `repository:foo:pull,push`. */
  scope?: string;
  /** Statuses that count as an answer (others are errors). */
  ok: number[];
  /** Leave the body unread for the caller (GET blob). */
  stream?: boolean;
}

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NET_CODES =
  /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|UND_ERR_SOCKET|UND_ERR_CLOSED|UND_ERR_CONNECT_TIMEOUT|UND_ERR_HEADERS_TIMEOUT|UND_ERR_BODY_TIMEOUT)$/;
const CERT_CODES = /CERT|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO|ERR_TLS/;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function header(res: Res, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function errCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code ?? e.cause?.code ?? '';
}

/**
 * What to tell the user when `url` failed with `err`: TLS spoken to a plain-HTTP port makes
 * OpenSSL say "wrong version number", which names neither the cause nor the way out.
 */
function connectProblem(err: unknown, url: string): string {
  const code = errCode(err);
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return (
      `${new URL(url).host} does not speak HTTPS there (it answered in plain HTTP, it seems): ` +
      'if it is a plain-HTTP registry, say so with --plain-http (or --insecure to allow falling back to HTTP)'
    );
  }
  return `${err instanceof Error ? err.message : String(err)}${code ? ` (${code})` : ''}`;
}

/**
 * A response body read into memory, at most `limit` bytes: beyond that the connection is dropped
 * and `tooLarge` is thrown (a registry streaming endless bytes costs no memory).
 */
async function readCapped(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** The start of a response body, for error messages: at most 64 KiB is read. */
async function bodyStart(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      chunks.push(c);
      n += c.length;
      if (n >= 64 * 1024) {
        body.destroy();
        break;
      }
    }
  } catch {
    /* what arrived is enough */
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A client of one registry per the OCI distribution spec: ping, auth (anonymous, basic, bearer
 * tokens from the `WWW-Authenticate` challenge), retries with backoff, and per-registry TLS.
 */
export class RegistryClient {
  readonly host: string;
  readonly stats: RequestStats = { requests: 0, byMethod: {}, bytesUp: 0, bytesDown: 0 };
  private readonly agent: Agent;
  private base: string | undefined;
  private credentials: Credentials | undefined | null;
  private credentialsLoaded = false;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, string>();

  constructor(
    registry: string,
    readonly options: RegistryOptions = {},
  ) {
    this.host = registryHost(registry);
    const ca = options.caPem ?? (options.caFile ? readFileSync(options.caFile, 'utf8') : undefined);
    this.agent = new Agent({
      connect: {
        // Keep the system's roots when adding a registry's own CA.
        ...(ca ? { ca: [...rootCertificates, ca] } : {}),
        rejectUnauthorized: !options.skipTlsVerify,
      },
      keepAliveTimeout: 30_000,
      connections: 16,
    });
    if (options.credentials !== undefined) {
      this.credentials = options.credentials;
      this.credentialsLoaded = true;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  repository(name: string): Repository {
    return new Repository(this, name);
  }

  /** Picks the scheme and checks the registry speaks the v2 API; returns the base URL. */
  async ping(): Promise<string> {
    if (this.base) return this.base;
    const loopback = isLoopbackHost(this.host);
    const schemes = this.options.plainHttp
      ? ['http']
      : loopback || this.options.insecure
        ? ['https', 'http']
        : ['https'];
    let lastErr: unknown;
    for (const scheme of schemes) {
      const url = `${scheme}://${this.host}/v2/`;
      try {
        const res = await request(url, { method: 'GET', dispatcher: this.agent, headers: this.baseHeaders() });
        this.count('GET');
        await res.body.dump();
        if (res.statusCode === 200 || res.statusCode === 401) {
          this.base = `${scheme}://${this.host}`;
          const www = res.headers['www-authenticate'];
          if (res.statusCode === 401 && www) this.challenge = parseChallenges(String(www))[0];
          return this.base;
        }
        const tls = res.statusCode === 400 && scheme === 'http' ? ' (or one that wants HTTPS: drop --plain-http)' : '';
        lastErr = new RegistryError(
          `GET ${url} answered ${res.statusCode}: not an OCI registry${tls}?`,
          res.statusCode,
        );
      } catch (err) {
        lastErr = Object.assign(new Error(connectProblem(err, url)), { code: errCode(err) });
        const code = errCode(err);
        if (CERT_CODES.test(code)) {
          throw new RegistryError(
            `TLS certificate of ${this.host} not trusted (${code}): pass its CA with --ca-file, or --skip-tls-verify to opt out for this registry`,
            undefined,
            code,
          );
        }
      }
    }
    const msg = lastErr instanceof Error ? lastErr.message : String(lastErr);
    throw new RegistryError(`cannot reach registry ${this.host}: ${msg}`, undefined, errCode(lastErr), true);
  }

  /**
   * The token service's URL, if it may be sent credentials: the registry's own rule — HTTPS, or
   * plain HTTP only to a loopback host, with --insecure, or to the registry itself when that is
   * plain HTTP by request (--plain-http).
   */
  private tokenService(realm: string): URL {
    let u: URL;
    try {
      u = new URL(realm);
    } catch {
      throw new RegistryError(`${this.host}: its bearer challenge names no usable token service (realm)`);
    }
    if (u.protocol === 'https:') return u;
    const allowed =
      u.protocol === 'http:' &&
      (isLoopbackHost(u.host) || this.options.insecure || (this.options.plainHttp && u.host === this.host));
    if (!allowed) {
      throw new RegistryError(
        `${this.host} sends for tokens to ${u.protocol}//${u.host}${u.pathname}, which is not HTTPS: ` +
          'refusing to send credentials there (pass --insecure to allow plain HTTP)',
      );
    }
    return u;
  }

  private baseHeaders(): Record<string, string> {
    return { 'user-agent': this.options.userAgent ?? 'stele' };
  }

  private count(method: string): void {
    this.stats.requests++;
    this.stats.byMethod[method] = (this.stats.byMethod[method] ?? 0) + 1;
  }

  private async creds(): Promise<Credentials | undefined> {
    if (!this.credentialsLoaded) {
      this.credentials = await lookupCredentials(this.host === 'registry-1.docker.io' ? 'docker.io' : this.host, {
        env: this.options.env,
      });
      this.credentialsLoaded = true;
    }
    return this.credentials ?? undefined;
  }

  private async authorization(scope: string | undefined): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.creds();
      if (!c) return undefined;
      if ('identityToken' in c)
        throw new RegistryError(`${this.host} wants basic auth but only an identity token is configured`);
      return basicHeader(c);
    }
    if (ch.scheme === 'bearer') {
      const key = scope ?? '';
      const cached = this.tokens.get(key);
      if (cached) return `Bearer ${cached}`;
      const token = await this.fetchToken(ch, scope);
      this.tokens.set(key, token);
      return `Bearer ${token}`;
    }
    throw new RegistryError(`${this.host} asks for unsupported auth scheme '${ch.scheme}'`);
  }

  private async fetchToken(ch: Challenge, scope: string | undefined): Promise<string> {
    const realm = ch.params.realm;
    if (!realm) throw new RegistryError(`${this.host}: bearer challenge without realm`);
    const service = this.tokenService(realm);
    const c = await this.creds();
    let res: Dispatcher.ResponseData;
    if (c && 'identityToken' in c) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: c.identityToken,
        service: ch.params.service ?? '',
        client_id: 'stele',
        ...(scope ? { scope } : {}),
      });
      // undici follows no redirect: credentials go to the realm and nowhere else.
      res = await request(service, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { ...this.baseHeaders(), 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } else {
      const u = new URL(service);
      if (ch.params.service) u.searchParams.set('service', ch.params.service);
      if (scope) for (const s of scope.split(' ')) u.searchParams.append('scope', s);
      res = await request(u, {
        method: 'GET',
        dispatcher: this.agent,
        headers: { ...this.baseHeaders(), ...(c ? { authorization: basicHeader(c) } : {}) },
      });
    }
    this.count(c && 'identityToken' in c ? 'POST' : 'GET');
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new RegistryError(
        `token service ${service.host} refused ${c ? 'the credentials' : 'anonymous access'} for ${scope ?? 'the registry'} (HTTP ${res.statusCode})`,
        res.statusCode,
      );
    }
    const text = (
      await readCapped(
        res.body,
        MAX_MANIFEST_BYTES,
        () => new RegistryError(`token service ${service.host} answered with more than ${MAX_MANIFEST_BYTES} bytes`),
      )
    ).toString('utf8');
    const body = (() => {
      try {
        return JSON.parse(text) as { token?: unknown; access_token?: unknown } | null;
      } catch {
        return null; // reported below
      }
    })();
    const token = body?.token ?? body?.access_token;
    if (typeof token !== 'string' || !token) {
      throw new RegistryError(`token service ${service.host} answered without a token`);
    }
    return token;
  }

  /**
   * Sends a request with auth, following redirects (GET/HEAD) and retrying 429/5xx and broken
   * connections with exponential backoff. Bodies given as functions are reopened per attempt.
   */
  async send(req: Req): Promise<Res> {
    const base = await this.ping();
    const retries = this.options.retries ?? 4;
    const backoff = this.options.backoffMs ?? 200;
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      let url = /^https?:\/\//.test(req.path) ? req.path : `${base}${req.path}`;
      try {
        const auth = await this.authorization(req.scope);
        let res = await this.once(req, url, auth);
        // Redirects (blob storage behind a CDN): our credentials go only where the request went
        // first (same scheme, host and port); once it has left, they never follow.
        const origin = new URL(url).origin;
        let left = false;
        for (let hops = 0; [301, 302, 303, 307, 308].includes(res.status) && hops < 5; hops++) {
          const loc = header(res, 'location');
          await res.body.dump();
          if (!loc) throw new RegistryError(`${req.method} ${url}: redirect without location`, res.status);
          url = new URL(loc, url).toString();
          left ||= new URL(url).origin !== origin;
          res = await this.once(
            { ...req, method: req.method === 'HEAD' ? 'HEAD' : 'GET' },
            url,
            left ? undefined : auth,
          );
        }
        if (res.status === 401 && left) {
          await res.body.dump();
          throw new RegistryError(
            `${req.method} ${url}: unauthorized (HTTP 401) after a redirect to another host`,
            401,
          );
        }
        if (res.status === 401 && !authRetried) {
          const www = header(res, 'www-authenticate');
          await res.body.dump();
          if (www) {
            const ch = parseChallenges(www).find((c) => c.scheme === 'bearer' || c.scheme === 'basic');
            if (ch) {
              this.challenge = ch;
              this.tokens.delete(req.scope ?? '');
              authRetried = true;
              attempt--;
              continue;
            }
          }
          throw new RegistryError(`${req.method} ${url}: unauthorized (HTTP 401)`, 401);
        }
        if (req.ok.includes(res.status)) return res;
        const text = req.method === 'HEAD' ? '' : await bodyStart(res.body);
        if (req.method === 'HEAD') await res.body.dump();
        if (RETRY_STATUS.has(res.status) && attempt < retries) {
          const after = Number(header(res, 'retry-after'));
          await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, 10_000) : jitter(backoff, attempt));
          continue;
        }
        throw new RegistryError(describeFailure(req.method, url, res.status, text), res.status);
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        const code = errCode(err);
        if (NET_CODES.test(code) && attempt < retries) {
          await sleep(jitter(backoff, attempt));
          continue;
        }
        if (err instanceof DigestError) throw err;
        throw new RegistryError(
          `${req.method} ${url}: ${connectProblem(err, url)}`,
          undefined,
          code,
          NET_CODES.test(code),
        );
      }
    }
  }

  private async once(req: Req, url: string, auth: string | undefined): Promise<Res> {
    const headers: Record<string, string> = { ...this.baseHeaders(), ...req.headers };
    if (auth) headers.authorization = auth;
    let body: Buffer | string | Readable | undefined;
    if (typeof req.body === 'function') {
      const counter = new Transform({
        transform: (chunk: Buffer, _e, cb) => {
          this.stats.bytesUp += chunk.length;
          cb(null, chunk);
        },
      });
      const src = await req.body();
      src.on('error', (e) => counter.destroy(e));
      body = src.pipe(counter);
    } else {
      body = req.body;
      if (body) this.stats.bytesUp += Buffer.byteLength(body);
    }
    this.count(req.method);
    const res = await request(url, { method: req.method, headers, body, dispatcher: this.agent });
    return { status: res.statusCode, headers: res.headers, body: res.body, url };
  }
}

function jitter(base: number, attempt: number): number {
  const d = base * 2 ** attempt;
  return d / 2 + Math.random() * d;
}

function describeFailure(method: string, url: string, status: number, text: string): string {
  let detail = '';
  try {
    const errs = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors ?? [];
    detail = errs.map((e) => `${e.code ?? ''}${e.message ? `: ${e.message}` : ''}`).join('; ');
  } catch {
    detail = text.slice(0, 200).trim();
  }
  const hint =
    status === 401 || status === 403 ? ' (check credentials: docker config, STELE_REGISTRY_USERNAME/PASSWORD)' : '';
  return `${method} ${url}: HTTP ${status}${detail ? ` ${detail}` : ''}${hint}`;
}

/** One repository on a registry, usable as a copy Source and Sink. */
export class Repository implements Source, Sink {
  constructor(
    readonly client: RegistryClient,
    readonly name: string,
  ) {}

  describe(): string {
    return `registry ${this.client.host}/${this.name}`;
  }

  private scope(push: boolean): string {
    return `repository:${this.name}:${push ? 'pull,push' : 'pull'}`;
  }

  async hasBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<boolean> {
    const res = await this.client.send({
      method: 'HEAD',
      path: `/v2/${this.name}/blobs/${desc.digest}`,
      scope: this.scope(false),
      ok: [200, 404],
    });
    await res.body.dump();
    if (res.status !== 200) return false;
    const len = Number(header(res, 'content-length'));
    return !Number.isFinite(len) || desc.size === undefined || len === desc.size;
  }

  async fetchBlob(desc: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    const res = await this.client.send({
      method: 'GET',
      path: `/v2/${this.name}/blobs/${desc.digest}`,
      scope: this.scope(false),
      ok: [200, 404],
      stream: true,
    });
    if (res.status === 404) {
      await res.body.dump();
      throw new RegistryError(`blob ${desc.digest} not found in ${this.describe()}`, 404);
    }
    const stats = this.client.stats;
    const body = res.body as unknown as Readable;
    const out = new Transform({
      transform(chunk: Buffer, _e, cb) {
        stats.bytesDown += chunk.length;
        cb(null, chunk);
      },
    });
    body.on('error', (e) => out.destroy(e));
    out.on('close', () => {
      if (!body.readableEnded) body.destroy();
    });
    return body.pipe(out);
  }

  /** Asks the registry to link a blob from another repository; true if it did. */
  async mountBlob(desc: Descriptor, from: string): Promise<boolean> {
    const res = await this.client.send({
      method: 'POST',
      path: `/v2/${this.name}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
      scope: `${this.scope(true)} repository:${from}:pull`,
      ok: [201, 202],
    });
    await res.body.dump();
    if (res.status === 202) {
      // Not mounted: cancel the upload session it opened instead.
      const loc = header(res, 'location');
      if (loc) await this.cancelUpload(loc);
    }
    return res.status === 201;
  }

  private async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.client.send({
        method: 'DELETE',
        path: await this.absolute(location),
        scope: this.scope(true),
        ok: [204, 404, 202, 200],
      });
      await res.body.dump();
    } catch {
      /* best effort */
    }
  }

  private async absolute(location: string): Promise<string> {
    return new URL(location, `${await this.client.ping()}/`).toString();
  }

  private async startUpload(): Promise<string> {
    const res = await this.client.send({
      method: 'POST',
      path: `/v2/${this.name}/blobs/uploads/`,
      scope: this.scope(true),
      ok: [202],
    });
    await res.body.dump();
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError(`${this.describe()}: upload started without a Location`);
    return this.absolute(loc);
  }

  private withDigest(location: string, digest: string): string {
    const u = new URL(location);
    u.searchParams.set('digest', digest);
    return u.toString();
  }

  /** Uploads a blob: POST then one PUT (monolithic), or PATCH chunks then PUT when chunkSize is set. */
  async pushBlob(desc: Descriptor, open: () => Promise<Readable>, onBytes?: OnBytes): Promise<void> {
    const tries = 1 + (this.client.options.retries ?? 4);
    for (let attempt = 0; ; attempt++) {
      let sent = 0;
      const counted = async () => {
        const src = await open();
        const t = new Transform({
          transform(chunk: Buffer, _e, cb) {
            sent += chunk.length;
            onBytes?.(chunk.length);
            cb(null, chunk);
          },
        });
        src.on('error', (e) => t.destroy(e));
        return src.pipe(t);
      };
      try {
        if (this.client.options.chunkSize) await this.uploadChunked(desc, counted, this.client.options.chunkSize);
        else await this.uploadMonolithic(desc, counted);
        return;
      } catch (err) {
        if (sent) onBytes?.(-sent);
        const e = err as RegistryError;
        const again = e.retryable || (e.status !== undefined && RETRY_STATUS.has(e.status));
        if (!again || attempt + 1 >= tries) throw err;
        await sleep(jitter(this.client.options.backoffMs ?? 200, attempt));
      }
    }
  }

  private async uploadMonolithic(desc: Descriptor, open: () => Promise<Readable>): Promise<void> {
    const loc = await this.startUpload();
    const res = await this.client.send({
      method: 'PUT',
      path: this.withDigest(loc, desc.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: open,
      scope: this.scope(true),
      ok: [201],
    });
    await res.body.dump();
  }

  private async uploadChunked(desc: Descriptor, open: () => Promise<Readable>, chunkSize: number): Promise<void> {
    let loc = await this.startUpload();
    let offset = 0;
    const src = await open();
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const flush = async () => {
      if (!pendingLen) return;
      const chunk = Buffer.concat(pending, pendingLen);
      pending = [];
      pendingLen = 0;
      const res = await this.client.send({
        method: 'PATCH',
        path: loc,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.length),
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
        scope: this.scope(true),
        ok: [202],
        // A PATCH must not be replayed blindly: a retry restarts the whole upload.
      });
      await res.body.dump();
      offset += chunk.length;
      const next = header(res, 'location');
      if (next) loc = await this.absolute(next);
    };
    for await (const c of src as AsyncIterable<Buffer>) {
      // Chunks of exactly chunkSize (the last one shorter), however the source cuts its data.
      for (let at = 0; at < c.length; ) {
        const piece = c.subarray(at, at + chunkSize - pendingLen);
        pending.push(piece);
        pendingLen += piece.length;
        at += piece.length;
        if (pendingLen >= chunkSize) await flush();
      }
    }
    await flush();
    if (offset !== desc.size)
      throw new DigestError(
        `size mismatch for ${desc.digest}: read ${offset} bytes, expected ${desc.size}`,
        desc.digest,
      );
    const res = await this.client.send({
      method: 'PUT',
      path: this.withDigest(loc, desc.digest),
      headers: { 'content-length': '0' },
      scope: this.scope(true),
      ok: [201],
    });
    await res.body.dump();
  }

  /** Tag or digest → descriptor of the manifest (HEAD, falling back to GET). */
  async resolve(ref: string): Promise<Descriptor> {
    const res = await this.client.send({
      method: 'HEAD',
      path: `/v2/${this.name}/manifests/${ref}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scope: this.scope(false),
      ok: [200, 404],
    });
    await res.body.dump();
    if (res.status === 404) throw new RegistryError(`${this.client.host}/${this.name}:${ref} not found`, 404);
    const digest = header(res, 'docker-content-digest');
    const mediaType = header(res, 'content-type')?.split(';')[0]?.trim();
    const size = Number(header(res, 'content-length'));
    if (digest && mediaType && Number.isFinite(size) && (!isDigest(ref) || ref === digest)) {
      return { mediaType, digest, size };
    }
    const { desc } = await this.getManifest(ref);
    return desc;
  }

  /** GET a manifest by tag or digest; verified when asked by digest. */
  async getManifest(ref: string): Promise<{ desc: Descriptor; bytes: Buffer }> {
    const res = await this.client.send({
      method: 'GET',
      path: `/v2/${this.name}/manifests/${ref}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scope: this.scope(false),
      ok: [200, 404],
    });
    if (res.status === 404) {
      await res.body.dump();
      throw new RegistryError(`${this.client.host}/${this.name}:${ref} not found`, 404);
    }
    const tooLarge = () =>
      new RegistryError(
        `${this.describe()}: the manifest ${ref} is larger than ${MAX_MANIFEST_BYTES} bytes, more than a manifest may have`,
      );
    const length = Number(header(res, 'content-length'));
    if (Number.isFinite(length) && length > MAX_MANIFEST_BYTES) {
      res.body.destroy();
      throw tooLarge();
    }
    const bytes = await readCapped(res.body, MAX_MANIFEST_BYTES, tooLarge);
    const digest = isDigest(ref) ? ref : sha256(bytes);
    if (isDigest(ref)) verifyBytes(bytes, ref);
    let mediaType = header(res, 'content-type')?.split(';')[0]?.trim();
    if (!mediaType) {
      try {
        mediaType = manifestMediaType(bytes);
      } catch (err) {
        throw new RegistryError(`${this.describe()}: the manifest ${ref}: ${(err as Error).message}`);
      }
    }
    return { desc: { mediaType, digest, size: bytes.length }, bytes };
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const { bytes } = await this.getManifest(desc.digest);
    verifyBytes(bytes, desc.digest, desc.size);
    return bytes;
  }

  async hasManifest(desc: Descriptor): Promise<boolean> {
    const res = await this.client.send({
      method: 'HEAD',
      path: `/v2/${this.name}/manifests/${desc.digest}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scope: this.scope(false),
      ok: [200, 404],
    });
    await res.body.dump();
    return res.status === 200;
  }

  /** PUT the manifest under each tag, or by digest when there are none. */
  async pushManifest(desc: Descriptor, bytes: Buffer, tags: string[]): Promise<void> {
    verifyBytes(bytes, desc.digest, desc.size);
    for (const target of tags.length ? tags : [desc.digest]) {
      const res = await this.client.send({
        method: 'PUT',
        path: `/v2/${this.name}/manifests/${target}`,
        headers: { 'content-type': desc.mediaType },
        body: bytes,
        scope: this.scope(true),
        ok: [201, 200],
      });
      await res.body.dump();
      const got = header(res, 'docker-content-digest');
      if (got && got !== desc.digest) {
        throw new DigestError(`registry stored ${target} as ${got}, expected ${desc.digest}`, desc.digest, got);
      }
    }
  }

  async listTags(): Promise<string[]> {
    const res = await this.client.send({
      method: 'GET',
      path: `/v2/${this.name}/tags/list`,
      scope: this.scope(false),
      ok: [200, 404],
    });
    const text = await res.body.text();
    if (res.status === 404) return [];
    return (JSON.parse(text) as { tags?: string[] | null }).tags ?? [];
  }
}
